package channel

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func grantStore(t *testing.T) *vmstore.Store {
	t.Helper()
	s, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-" + u, PIN: "1234"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func grantFor(t *testing.T, s *vmstore.Store, user string) Grant {
	t.Helper()
	res, err := s.Deposit(vmstore.DepositReq{User: user, Body: strings.NewReader("Subject: x\r\n\r\nhello\r\n"), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := s.Mailbox(user, "INBOX")
	id, _ := s.AccountID(user)
	return Grant{AccountID: id, User: user, Mailbox: "INBOX", UIDValidity: mb.UIDValidity, UID: res.Message.UID, Section: "2"}
}

// TestGrants: a grant opens while valid and names what it was issued
// for; tampered, foreign-key, expired, re-created-account, re-created
// mailbox and used-up grants are refused with their errors.
func TestGrants(t *testing.T) {
	s := grantStore(t)
	gs, err := NewGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	gs.Now = func() time.Time { return now }
	g := grantFor(t, s, "alice")
	g.MaxUses = 2
	g.Seen = true
	tok, issued, err := gs.Issue(g)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "alice") || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token leaks or is not URL-safe: %s", tok)
	}
	got, err := gs.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.UID != g.UID || got.Section != "2" || !got.Seen || got.MaxUses != 2 || got.ID != issued.ID {
		t.Fatalf("opened %+v", got)
	}
	// Same key again from the store: the token survives a restart.
	gs2, _ := NewGrants(s)
	gs2.Now = gs.Now
	if _, err := gs2.Open(tok); err != nil {
		t.Fatalf("second Grants: %v", err)
	}
	// Tampered: every single-character change.
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if _, err := gs.Open(string(b)); err == nil {
			t.Fatalf("tampered token opened (char %d)", i)
		}
	}
	// Another store's key.
	other, _ := newGrants(s, bytes.Repeat([]byte{7}, 32))
	if _, err := other.Open(tok); !errors.Is(err, ErrGrantInvalid) {
		t.Fatalf("foreign key: %v", err)
	}
	// Uses.
	if gs.Use(got) != nil || gs.Use(got) != nil || !errors.Is(gs.Use(got), ErrGrantUsed) {
		t.Fatal("MaxUses 2 not enforced")
	}
	// Expiry (clamped to an hour).
	g.Expires = now.Add(10 * time.Hour)
	tok2, _, _ := gs.Issue(g)
	gs.Now = func() time.Time { return now.Add(MaxGrantLife) }
	if _, err := gs.Open(tok2); !errors.Is(err, ErrGrantExpired) {
		t.Fatalf("expired: %v", err)
	}
	gs.Now = func() time.Time { return now }
	// Another account's identity in a grant for alice cannot be issued.
	bad := g
	bad.AccountID++
	if _, _, err := gs.Issue(bad); !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("issue with another identity: %v", err)
	}
	// Deleted and created again: the same name is another identity.
	if err := s.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw2", PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	grantFor(t, s, "alice") // a message of the same UID exists again
	if _, err := gs.Open(tok); !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("re-created account: %v", err)
	}
	// Mailbox re-created (new UIDVALIDITY).
	gb := grantFor(t, s, "bob")
	gb.Mailbox = "Old"
	if _, err := s.CreateMailbox("bob", "Old", ""); err != nil {
		t.Fatal(err)
	}
	mb, _ := s.Mailbox("bob", "Old")
	gb.UIDValidity = mb.UIDValidity
	tb, _, _ := gs.Issue(gb)
	if _, err := gs.Open(tb); !errors.Is(err, ErrGrantGone) {
		t.Fatalf("no such message: %v", err)
	}
	_ = s.DeleteMailbox("bob", "Old")
	if _, err := gs.Open(tb); !errors.Is(err, ErrGrantGone) {
		t.Fatalf("deleted mailbox: %v", err)
	}
	if _, err := gs.Open(""); !errors.Is(err, ErrGrantInvalid) {
		t.Fatal("empty token")
	}
}

func FuzzGrantOpen(f *testing.F) {
	f.Add("")
	f.Add("AQ")
	f.Add(strings.Repeat("A", 120))
	s, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	gs, err := newGrants(s, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := gs.Unseal(tok); err == nil {
			t.Fatal("forged token accepted")
		}
	})
}

// TestGrantRevokedByResetKey: a grant carries a MAC under the mailbox's
// URLAUTH access key; removing the key (RESETKEY of the mailbox or of all)
// revokes it, and a new key does not bring it back.
func TestGrantRevokedByResetKey(t *testing.T) {
	s := grantStore(t)
	gs, err := NewGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, mailbox := range []string{"INBOX", ""} {
		tok, _, err := gs.Issue(grantFor(t, s, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gs.Open(tok); err != nil {
			t.Fatal(err)
		}
		if err := s.ResetURLAuthKeys("alice", 0, mailbox); err != nil {
			t.Fatal(err)
		}
		if _, err := gs.Open(tok); !errors.Is(err, ErrGrantRevoked) {
			t.Fatalf("after RESETKEY %q: %v", mailbox, err)
		}
		if _, _, _, err := s.URLAuthKey("alice", 0, "INBOX"); err != nil { // a new key
			t.Fatal(err)
		}
		if _, err := gs.Open(tok); !errors.Is(err, ErrGrantRevoked) {
			t.Fatalf("after RESETKEY %q and a new key: %v", mailbox, err)
		}
	}
}

// TestGrantUsesSurviveRestart: a grant's uses are counted in the store,
// so a store closed and opened again (a restart) still refuses a grant
// that opened its MaxUses sessions.
func TestGrantUsesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *vmstore.Store {
		s, err := vmstore.Open(vmstore.Options{Dir: dir, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, err := s.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-alice", PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	gs, err := NewGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	g := grantFor(t, s, "alice")
	g.MaxUses = 2
	tok, _, err := gs.Issue(g)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := gs.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := gs.Use(opened); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open()
	defer s.Close()
	gs, err = NewGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	opened, err = gs.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.GrantUses(opened.ID[:], opened.Expires); err != nil || n != 1 {
		t.Fatalf("uses after restart: %d %v, want 1", n, err)
	}
	if err := gs.Use(opened); err != nil {
		t.Fatalf("second use: %v", err)
	}
	if err := gs.Use(opened); !errors.Is(err, ErrGrantUsed) {
		t.Fatalf("third use of a two-use grant: %v", err)
	}
}

type fakeLimiter struct {
	throttle        bool
	begun, failed   int
	abandoned       int
	services, accts []string
}

type fakeAttempt struct{ l *fakeLimiter }

func (a fakeAttempt) Failed() time.Duration { a.l.failed++; return 0 }
func (a fakeAttempt) Abandon()              { a.l.abandoned++ }

func (l *fakeLimiter) Begin(_ context.Context, service string, _ netip.Addr, account string) (LimitedAttempt, error) {
	l.begun++
	l.services, l.accts = append(l.services, service), append(l.accts, account)
	if l.throttle {
		return nil, errors.New("throttled")
	}
	return fakeAttempt{l}, nil
}

// TestGrantOpenFromLimited: an invalid token presented to OpenFrom is a
// failed credential of the address; a valid or merely expired one is not;
// a throttled address is refused unchecked with an error that matches
// ErrGrantInvalid.
func TestGrantOpenFromLimited(t *testing.T) {
	s := grantStore(t)
	gs, err := NewGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	lim := &fakeLimiter{}
	gs.Limiter = lim
	src := netip.MustParseAddr("192.0.2.7")
	tok, _, err := gs.Issue(grantFor(t, s, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.OpenFrom(context.Background(), tok, src); err != nil {
		t.Fatal(err)
	}
	if _, err := gs.OpenFrom(context.Background(), tok[:len(tok)-2]+"AA", src); !errors.Is(err, ErrGrantInvalid) {
		t.Fatalf("tampered: %v", err)
	}
	now := time.Now()
	gs.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if _, err := gs.OpenFrom(context.Background(), tok, src); !errors.Is(err, ErrGrantExpired) {
		t.Fatalf("expired: %v", err)
	}
	if lim.begun != 3 || lim.failed != 1 || lim.abandoned != 2 || lim.services[0] != "grant" {
		t.Fatalf("limiter: %+v", lim)
	}
	lim.throttle = true
	gs.Now = time.Now
	if _, err := gs.OpenFrom(context.Background(), tok, src); !errors.Is(err, ErrGrantThrottled) || !errors.Is(err, ErrGrantInvalid) {
		t.Fatalf("throttled: %v", err)
	}
}
