package channel

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

const testHost = "vm.example.net:1993"

// resolverFixture is a store with alice (one voice message), bob, a
// submission identity and a media server, and a resolver over it.
type resolverFixture struct {
	st    *vmstore.Store
	r     *Resolver
	now   time.Time
	audio []byte
	msg   *vmstore.DepositRes
}

func testAudio() []byte {
	a := make([]byte, 40_000)
	for i := range a {
		a[i] = byte(i*31 + i>>9) // NULs included
	}
	return a
}

func voiceMessage(audio []byte) string {
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"You have a voice message.\r\n--b\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(audio); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(audio[i:min(i+57, len(audio))]))
		b.WriteString("\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

func newResolverFixture(t testing.TB) *resolverFixture {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, n := range []string{"alice", "bob", "submitter", "media"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: n, Password: "pw"}); err != nil {
			t.Fatal(err)
		}
	}
	f := &resolverFixture{st: st, now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), audio: testAudio()}
	f.r = NewResolver(st, testHost, "alias.example.net")
	f.r.Roles = map[string][]string{"submit": {"submitter"}, "stream": {"media"}}
	f.r.Now = func() time.Time { return f.now }
	f.msg, err = st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(voiceMessage(f.audio)), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *resolverFixture) rump(rest string) string {
	return "imap://alice@" + testHost + "/INBOX;UIDVALIDITY=" + itoa(f.msg.Mailbox.UIDValidity) + "/;UID=" + itoa(f.msg.Message.UID) + rest
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func (f *resolverFixture) authorize(t *testing.T, rump string) string {
	t.Helper()
	s, err := f.r.AuthorizeURL("alice", rump, "INTERNAL")
	if err != nil {
		t.Fatalf("AuthorizeURL(%q): %v", rump, err)
	}
	if !strings.HasPrefix(s, rump+":internal:") || len(s) != len(rump)+len(":internal:")+TokenLen {
		t.Fatalf("authorized URL %q does not extend the rump %q", s, rump)
	}
	return s
}

func readAll(t *testing.T, res *Resolved, mode message.Mode) []byte {
	t.Helper()
	p, err := res.Open(mode)
	if err != nil {
		t.Fatal(err)
	}
	rd, n, err := res.Content(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Fatalf("content %d octets, announced %d", len(b), n)
	}
	return b
}

var (
	alice     = Requester{User: "alice", Authenticated: true}
	bob       = Requester{User: "bob", Authenticated: true}
	anonymous = Requester{}
	submitter = Requester{User: "alice", Authenticated: true, Submit: true}
	media     = Requester{User: "media", Authenticated: true, Applications: []string{"stream"}}
)

// TestResolveAccessMatrix: GENURLAUTH then Resolve for each access
// identifier and requester; only the admitted ones get the part.
func TestResolveAccessMatrix(t *testing.T) {
	f := newResolverFixture(t)
	exp := ";EXPIRE=2026-12-05T13:00:00Z"
	cases := []struct {
		access string
		ok     map[string]bool
	}{
		{exp + ";URLAUTH=anonymous", map[string]bool{"alice": true, "bob": true, "anonymous": true, "submitter": true, "media": true}},
		{";URLAUTH=authuser", map[string]bool{"alice": true, "bob": true}}, // not the submit and stream entities
		{";URLAUTH=user+bob", map[string]bool{"bob": true}},
		{";URLAUTH=submit+alice", map[string]bool{"submitter": true}},
		{";URLAUTH=stream", map[string]bool{"media": true}},
	}
	reqs := map[string]Requester{"alice": alice, "bob": bob, "anonymous": anonymous, "submitter": submitter, "media": media}
	for _, c := range cases {
		url := f.authorize(t, f.rump("/;SECTION=2"+c.access))
		for name, req := range reqs {
			res, err := f.r.ResolveURL(context.Background(), url, req)
			if c.ok[name] {
				if err != nil {
					t.Errorf("%s by %s: %v", c.access, name, err)
					continue
				}
				if got := readAll(t, res, message.Decoded); !bytes.Equal(got, f.audio) {
					t.Errorf("%s by %s: decoded part differs from the audio", c.access, name)
				}
				res.Close()
			} else if !errors.Is(err, ErrNotPermitted) {
				t.Errorf("%s by %s: %v, want ErrNotPermitted", c.access, name, err)
			}
		}
	}
}

// TestResolveRefusals: every way a URL stops working.
func TestResolveRefusals(t *testing.T) {
	f := newResolverFixture(t)
	ctx := context.Background()
	url := f.authorize(t, f.rump("/;SECTION=1;URLAUTH=user+bob"))
	res, err := f.r.ResolveURL(ctx, url, bob)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, res, message.Raw)); got != "You have a voice message." {
		t.Fatalf("section 1 = %q", got)
	}
	res.Close()
	// Upper-case hex verifies too; one digit changed does not.
	upper := url[:len(url)-TokenLen] + strings.ToUpper(url[len(url)-TokenLen:])
	if _, err := f.r.ResolveURL(ctx, upper, bob); err != nil {
		t.Errorf("upper-case token: %v", err)
	}
	flip := []byte(url)
	if flip[len(flip)-5] == '0' {
		flip[len(flip)-5] = '1'
	} else {
		flip[len(flip)-5] = '0'
	}
	if _, err := f.r.ResolveURL(ctx, string(flip), bob); !errors.Is(err, ErrBadToken) {
		t.Errorf("flipped token digit: %v", err)
	}
	// Any change of a rump octet breaks it, even one that means the same.
	for _, alt := range []string{
		strings.Replace(url, "/;SECTION=1", "/;section=1", 1),
		strings.Replace(url, "alice@vm.example.net", "alice@VM.example.net", 1),
		strings.Replace(url, "/INBOX;", "/%49NBOX;", 1),
	} {
		if _, err := f.r.ResolveURL(ctx, alt, bob); !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v, want ErrBadToken", alt, err)
		}
	}
	// Rump without token, other mechanism, another server.
	if _, err := f.r.ResolveURL(ctx, f.rump("/;SECTION=1;URLAUTH=user+bob"), bob); !errors.Is(err, ErrBadToken) {
		t.Errorf("rump: %v", err)
	}
	other := strings.Replace(url, ":internal:", ":x-other:", 1)
	if _, err := f.r.ResolveURL(ctx, other, bob); !errors.Is(err, ErrMechanism) {
		t.Errorf("other mechanism: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, strings.Replace(url, testHost, "evil.example.net:1993", 1), bob); !errors.Is(err, ErrNotOurs) {
		t.Errorf("other host: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, "imap://alice@"+testHost+"/INBOX", bob); !errors.Is(err, ErrNotPart) {
		t.Errorf("mailbox URL: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, "imap://alice@"+testHost+"/INBOX/;UID=1", bob); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("plain URL by another user: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, "imap:x", bob); !errors.Is(err, ErrBadURL) {
		t.Errorf("malformed: %v", err)
	}
	// The same token for another mailbox or user names nothing that
	// verifies, and says nothing about whether it exists.
	for _, alt := range []string{
		strings.Replace(url, "/INBOX;", "/Sent;", 1),
		strings.Replace(url, "/INBOX;", "/NoSuchBox;", 1),
		strings.Replace(url, "imap://alice@", "imap://nobody@", 1),
		strings.Replace(url, "imap://alice@", "imap://", 1),
	} {
		if _, err := f.r.ResolveURL(ctx, alt, bob); !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v, want ErrBadToken", alt, err)
		}
	}

	// Expiry: valid up to and including the instant, with offsets.
	exp := f.authorize(t, f.rump("/;SECTION=1;EXPIRE=2026-12-05T05:00:00.5-08:00;URLAUTH=authuser"))
	f.now = time.Date(2026, 12, 5, 13, 0, 0, 500_000_000, time.UTC)
	if _, err := f.r.ResolveURL(ctx, exp, bob); err != nil {
		t.Errorf("at the expiry instant: %v", err)
	}
	f.now = f.now.Add(time.Millisecond)
	if _, err := f.r.ResolveURL(ctx, exp, bob); !errors.Is(err, ErrExpired) {
		t.Errorf("after expiry: %v", err)
	}
	f.now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

	// Nonexistent section after a valid token; stale UIDVALIDITY.
	wrongSec, err := f.r.AuthorizeMessage("alice", "INBOX", f.msg.Mailbox.UIDValidity, f.msg.Message.UID, "7", Access{Kind: AccessAuthUser}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.ResolveURL(ctx, wrongSec, bob); !errors.Is(err, ErrGone) || !errors.Is(err, message.ErrNoSuchPart) {
		t.Errorf("no such section: %v", err)
	}
	stale, err := f.r.AuthorizeMessage("alice", "INBOX", f.msg.Mailbox.UIDValidity+1, f.msg.Message.UID, "", Access{Kind: AccessAuthUser}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.ResolveURL(ctx, stale, bob); !errors.Is(err, ErrGone) {
		t.Errorf("stale UIDVALIDITY: %v", err)
	}

	// Expunged message.
	whole := f.authorize(t, f.rump(";URLAUTH=authuser"))
	if _, err := f.r.ResolveURL(ctx, whole, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Remove("alice", f.msg.Mailbox.ID, []uint32{f.msg.Message.UID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.ResolveURL(ctx, whole, bob); !errors.Is(err, ErrGone) {
		t.Errorf("expunged: %v", err)
	}
}

// TestResolveResetAndRecreate: RESETKEY kills every earlier token (one
// mailbox, then all), and an account deleted and created again under the
// name never validates the old account's URLs.
func TestResolveResetAndRecreate(t *testing.T) {
	f := newResolverFixture(t)
	ctx := context.Background()
	u1 := f.authorize(t, f.rump("/;SECTION=2;URLAUTH=authuser"))
	u2 := f.authorize(t, f.rump("/;SECTION=1;URLAUTH=authuser"))
	if err := f.r.Reset("alice", "INBOX", "x-other"); !errors.Is(err, ErrMechanism) {
		t.Fatalf("reset other mechanism: %v", err)
	}
	if err := f.r.Reset("alice", "NoSuchBox", ""); !errors.Is(err, ErrGone) {
		t.Fatalf("reset missing mailbox: %v", err)
	}
	if err := f.r.Reset("alice", "INBOX", "INTERNAL"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{u1, u2} {
		if _, err := f.r.ResolveURL(ctx, u, bob); !errors.Is(err, ErrBadToken) {
			t.Errorf("after RESETKEY INBOX: %v", err)
		}
	}
	u3 := f.authorize(t, f.rump("/;SECTION=1;URLAUTH=authuser"))
	if u3 == u2 {
		t.Fatal("same token after RESETKEY")
	}
	if _, err := f.r.ResolveURL(ctx, u3, bob); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Reset("alice", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.ResolveURL(ctx, u3, bob); !errors.Is(err, ErrBadToken) {
		t.Errorf("after RESETKEY: %v", err)
	}
	u4 := f.authorize(t, f.rump("/;SECTION=1;URLAUTH=authuser"))
	if err := f.st.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	// The same UID and UIDVALIDITY can exist again in the new account.
	if _, err := f.st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(voiceMessage(f.audio))}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.ResolveURL(ctx, u4, bob); !errors.Is(err, ErrBadToken) {
		t.Errorf("re-created account: %v", err)
	}
}

// TestAuthorizeRefusals: GENURLAUTH's checks.
func TestAuthorizeRefusals(t *testing.T) {
	f := newResolverFixture(t)
	cases := []struct {
		user, rump, mech string
		want             error
	}{
		{"alice", f.rump("/;SECTION=1;URLAUTH=authuser"), "X-OTHER", ErrMechanism},
		{"alice", f.rump("/;SECTION=1"), "INTERNAL", ErrBadURL},
		{"alice", "imap://alice@" + testHost + "/INBOX", "INTERNAL", ErrNotPart},
		{"alice", f.rump("/;SECTION=1;URLAUTH=authuser:internal:" + strings.Repeat("0", 66)), "INTERNAL", ErrBadURL},
		{"alice", strings.Replace(f.rump(";URLAUTH=authuser"), testHost, "other.example.net", 1), "INTERNAL", ErrNotOurs},
		{"alice", strings.Replace(f.rump(";URLAUTH=authuser"), "alice@", "", 1), "INTERNAL", ErrBadURL},
		{"bob", f.rump(";URLAUTH=authuser"), "INTERNAL", ErrNotPermitted},
		{"alice", f.rump(";URLAUTH=unknownapp"), "INTERNAL", ErrBadAccess},
		{"alice", f.rump(";EXPIRE=2026-12-05T11:00:00Z;URLAUTH=authuser"), "INTERNAL", ErrExpired},
		{"alice", f.rump(";URLAUTH=anonymous"), "INTERNAL", ErrNotPermitted},
		{"alice", f.rump(";EXPIRE=2026-12-07T11:00:00Z;URLAUTH=anonymous"), "INTERNAL", ErrNotPermitted},
		{"alice", strings.Replace(f.rump(";URLAUTH=authuser"), "/INBOX;", "/Nope;", 1), "INTERNAL", ErrGone},
		{"alice", strings.Replace(f.rump(";URLAUTH=authuser"), "UIDVALIDITY="+itoa(f.msg.Mailbox.UIDValidity), "UIDVALIDITY="+itoa(f.msg.Mailbox.UIDValidity-1), 1), "INTERNAL", ErrGone},
		{"alice", strings.Replace(f.rump(";URLAUTH=authuser"), ";UID=", ";UID=9", 1), "INTERNAL", ErrGone},
		{"alice", f.rump("/;SECTION=4;URLAUTH=authuser"), "INTERNAL", ErrGone},
	}
	for _, c := range cases {
		if _, err := f.r.AuthorizeURL(c.user, c.rump, c.mech); !errors.Is(err, c.want) {
			t.Errorf("%s %q %s: %v, want %v", c.user, c.rump, c.mech, err, c.want)
		}
	}
	// Host without port means 143; the alias is accepted; mixed-case
	// parameter names are kept byte for byte.
	r2 := NewResolver(f.st, "vm.example.net")
	if _, err := r2.AuthorizeURL("alice", strings.Replace(f.rump(";URLAUTH=authuser"), testHost, "VM.example.net:143", 1), "internal"); err != nil {
		t.Errorf("default port: %v", err)
	}
	mixed := strings.Replace(strings.Replace(f.rump(";uRlAuTh=authuser"), testHost, "alias.example.net", 1), "alice@", "Alice@", 1)
	if got, err := f.r.AuthorizeURL("alice", mixed, "internal"); err != nil || !strings.HasPrefix(got, mixed+":internal:") {
		t.Errorf("alias, mixed case: %q %v", got, err)
	} else if res, err := f.r.ResolveURL(context.Background(), got, bob); err != nil {
		t.Errorf("alias, mixed case, resolved: %v", err)
	} else {
		res.Close()
	}
}

// TestResolveOwnAndPartial: URLs without URLAUTH resolve for the owner
// with Own (CATENATE); ;PARTIAL= cuts the encoded octets for Raw and the
// decoded ones for Decoded; past the end is empty.
func TestResolveOwnAndPartial(t *testing.T) {
	f := newResolverFixture(t)
	ctx := context.Background()
	own := Requester{User: "alice", Authenticated: true, Own: true}
	plain := "imap://alice@" + testHost + "/INBOX/;UID=" + itoa(f.msg.Message.UID) + "/;SECTION=2/;PARTIAL=100.50"
	res, err := f.r.ResolveURL(ctx, plain, own)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, res, message.Decoded); !bytes.Equal(got, f.audio[100:150]) {
		t.Errorf("decoded partial differs")
	}
	raw := readAll(t, res, message.Raw)
	msg := voiceMessage(f.audio)
	body := msg[strings.Index(msg, "base64\r\n\r\n")+len("base64\r\n\r\n"):]
	if string(raw) != body[100:150] {
		t.Errorf("raw partial = %q", raw)
	}
	res.Close()
	ref, err := ParseRef(f.r.BaseURL("alice"), "/INBOX/;UID="+itoa(f.msg.Message.UID)+"/;SECTION=1/;PARTIAL=4")
	if err != nil {
		t.Fatal(err)
	}
	res, err = f.r.Resolve(ctx, ref, own)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, res, message.Raw)); got != "have a voice message." {
		t.Errorf("partial to the end = %q", got)
	}
	res.Close()
	past := "imap://alice@" + testHost + "/INBOX/;UID=" + itoa(f.msg.Message.UID) + "/;SECTION=1/;PARTIAL=1000.5"
	res, err = f.r.ResolveURL(ctx, past, own)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, res, message.Raw); len(got) != 0 {
		t.Errorf("past the end = %q", got)
	}
	res.Close()
	if _, err := f.r.ResolveURL(ctx, strings.Replace(plain, "alice@", "bob@", 1), Requester{User: "bob", Authenticated: true, Own: true}); !errors.Is(err, ErrGone) {
		t.Errorf("own URL to a message bob lacks: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, plain, Requester{User: "bob", Authenticated: true, Own: true}); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("alice's URL with bob's rights: %v", err)
	}
	if _, err := f.r.ResolveURL(ctx, strings.Replace(plain, "alice@", "", 1), own); err != nil {
		t.Errorf("own URL without user: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.r.ResolveURL(cctx, plain, own); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestRequesterRoles: Requester derives submit and applications from Roles.
func TestRequesterRoles(t *testing.T) {
	f := newResolverFixture(t)
	if r := f.r.Requester("submitter"); !r.Submit || len(r.Applications) != 0 || !r.Authenticated {
		t.Errorf("submitter: %+v", r)
	}
	if r := f.r.Requester("media"); r.Submit || len(r.Applications) != 1 || r.Applications[0] != "stream" {
		t.Errorf("media: %+v", r)
	}
	if err := CheckURLHost("vm.example.net:99999"); err == nil {
		t.Error("port out of range accepted")
	}
	if err := CheckURLHost("[2001:db8::1]:993"); err != nil {
		t.Error(err)
	}
}

// FuzzResolve: whatever the string, ResolveURL neither panics nor
// resolves anything but the one authorized URL (and its upper-case-token
// spelling) for a requester the access identifier admits.
func FuzzResolve(f *testing.F) {
	fx := newResolverFixture(f)
	good, err := fx.r.AuthorizeURL("alice", fx.rump("/;SECTION=2;URLAUTH=user+bob"), "INTERNAL")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1] + "0")
	f.Add(strings.Replace(good, "user+bob", "user+alice", 1))
	f.Add(fx.rump("/;SECTION=2/;PARTIAL=0.10;URLAUTH=anonymous"))
	f.Add("imap://alice@" + testHost + "/INBOX/;UID=1")
	for _, c := range validURLs {
		f.Add(c.in)
	}
	tok := good[len(good)-TokenLen:]
	f.Fuzz(func(t *testing.T, s string) {
		for _, req := range []Requester{bob, alice, anonymous, {User: "alice", Authenticated: true, Own: true}} {
			res, err := fx.r.ResolveURL(context.Background(), s, req)
			if err != nil {
				if res != nil {
					t.Fatal("result and error")
				}
				continue
			}
			res.Close()
			u, _ := Parse(s)
			if u.Access.Kind == AccessNone {
				if !req.Own || (u.User != "" && u.User != req.User) {
					t.Fatalf("%q resolved without URLAUTH for %+v", s, req)
				}
				continue
			}
			if !strings.EqualFold(s[len(s)-TokenLen:], tok) || req.User != "bob" {
				t.Fatalf("%q resolved for %+v", s, req)
			}
		}
	})
}

// BenchmarkResolve: Resolve of a valid URL, of a wrong token and of a
// missing mailbox (bench/urlauth compares them with opening the part
// directly).
func BenchmarkResolve(b *testing.B) {
	f := newResolverFixture(b)
	good, err := f.r.AuthorizeURL("alice", f.rump("/;SECTION=2;URLAUTH=user+bob"), "INTERNAL")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("direct-open", func(b *testing.B) { // the reference: no URL checks
		sec, _ := message.Parse("2")
		for b.Loop() {
			p, err := message.Open(f.st, "alice", "INBOX", f.msg.Message.UID, sec, message.Raw)
			if err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			res, err := f.r.ResolveURL(ctx, good, bob)
			if err != nil {
				b.Fatal(err)
			}
			res.Close()
		}
	})
	b.Run("wrong-token", func(b *testing.B) {
		bad := good[:len(good)-2] + "00"
		for b.Loop() {
			f.r.ResolveURL(ctx, bad, bob)
		}
	})
	b.Run("missing-mailbox", func(b *testing.B) {
		bad := strings.Replace(good, "/INBOX;", "/NoSuchBox;", 1)
		for b.Loop() {
			f.r.ResolveURL(ctx, bad, bob)
		}
	})
}
