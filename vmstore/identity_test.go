package vmstore

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestAccountIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	seen := map[uint64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		wg.Add(1)
		go func() { // concurrent creations must not share an id
			defer wg.Done()
			a, err := s.CreateAccount(AccountSpec{Name: n, Password: "x"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if a.ID == 0 || seen[a.ID] != "" {
				t.Errorf("%s got id %d (taken by %q)", n, a.ID, seen[a.ID])
			}
			seen[a.ID] = n
		}()
	}
	wg.Wait()
	var top uint64
	var topName string
	for id, n := range seen {
		if id > top {
			top, topName = id, n
		}
	}
	got, err := s.AccountByID(top)
	if err != nil || got.Name != topName {
		t.Fatalf("AccountByID(%d) = %+v, %v", top, got, err)
	}
	// Deleting the newest account and reopening must not give its id again.
	if err := s.DeleteAccount(topName); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccountByID(top); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted account by id: %v", err)
	}
	s.Close()
	s = openTest(t, dir)
	a, err := s.CreateAccount(AccountSpec{Name: topName, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= top {
		t.Fatalf("re-created %s got id %d, not above %d", topName, a.ID, top)
	}
	if id, err := s.AccountID(topName); err != nil || id != a.ID {
		t.Fatalf("AccountID = %d, %v", id, err)
	}
}

// writeLegacyAccount writes an account record as stores before account ids
// and the name syntax wrote them (no id, any name).
func writeLegacyAccount(t *testing.T, s *Store, name string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "passwordHash": "x", "quota": map[string]any{}, "options": map[string]any{}, "created": time.Now()})
	if err := s.blindUpdate(func(txn *badger.Txn) error { return txn.Set(accountKey(name), b) }); err != nil {
		t.Fatal(err)
	}
}

func TestAssignAccountIDs(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "modern")
	modern, _ := s.GetAccount("modern")
	for _, n := range []string{"old1", "old2", ".", ".."} {
		writeLegacyAccount(t, s, n)
	}
	makeLegacy(t, s) // a store from before account ids: migration 3 runs
	s.Close()
	s = openTest(t, dir)
	ids := map[uint64]bool{}
	accts, err := s.ListAccounts()
	if err != nil || len(accts) != 5 {
		t.Fatalf("list: %d %v", len(accts), err)
	}
	for _, a := range accts {
		if a.ID == 0 || ids[a.ID] {
			t.Fatalf("%q: id %d", a.Name, a.ID)
		}
		ids[a.ID] = true
		if a.Name == "modern" && a.ID != modern.ID {
			t.Fatalf("an account that had an id got another: %d -> %d", modern.ID, a.ID)
		}
	}
	// Idempotent: a second run changes nothing.
	if err := assignAccountIDs(s); err != nil {
		t.Fatal(err)
	}
	again, _ := s.ListAccounts()
	for i := range again {
		if again[i].ID != accts[i].ID {
			t.Fatalf("second run changed %q: %d -> %d", again[i].Name, accts[i].ID, again[i].ID)
		}
	}
	n, err := s.CreateAccount(AccountSpec{Name: "newer", Password: "x"})
	if err != nil || ids[n.ID] {
		t.Fatalf("new account id %d reuses one (%v)", n.ID, err)
	}
	// Names outside today's syntax stay listable and deletable.
	for _, name := range []string{".", ".."} {
		if err := s.DeleteAccount(name); err != nil {
			t.Fatalf("delete %q: %v", name, err)
		}
	}
	left, _ := s.ListAccounts()
	if len(left) != 4 {
		t.Fatalf("after deleting . and ..: %+v", left)
	}
}

func TestAccountNameSyntax(t *testing.T) {
	good := []string{"alice", "demo", "+15551234567", "5551234", "john.doe", "j_doe+vm", "a-b", "a",
		"0123456789012345678901234567890123456789012345678901234567890123"}
	bad := []string{"", ".", "..", "a..b", ".alice", "alice.", "-alice", "alice-", "_x", "+", "+a1", "a b", "a/b",
		"a@example.com", "ali%ce", "a\x00b", "é", "01234567890123456789012345678901234567890123456789012345678901234"}
	for _, n := range good {
		if err := CheckUserName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		err := CheckUserName(n)
		var ne *NameError
		if !errors.Is(err, ErrBadName) || !errors.Is(err, ErrInvalidName) || !errors.As(err, &ne) || ne.Reason == "" {
			t.Errorf("%q: %v", n, err)
		}
	}
	s := openTest(t, "")
	for _, n := range []string{".", "..", "a..b", "bad name"} {
		if _, err := s.CreateAccount(AccountSpec{Name: n, Password: "x"}); !errors.Is(err, ErrBadName) {
			t.Errorf("CreateAccount(%q): %v", n, err)
		}
	}
	// Names are folded: "Alice" creates "alice", and is found either way.
	a, err := s.CreateAccount(AccountSpec{Name: "Alice", Password: "pw"})
	if err != nil || a.Name != "alice" {
		t.Fatalf("CreateAccount(Alice) = %+v, %v", a, err)
	}
	if _, err := s.CreateAccount(AccountSpec{Name: "ALICE", Password: "pw"}); !errors.Is(err, ErrExists) {
		t.Fatalf("ALICE after Alice: %v", err)
	}
	if got, err := s.CheckPassword("ALICE", "pw"); err != nil || got.Name != "alice" {
		t.Fatalf("login as ALICE: %+v %v", got, err)
	}
}

func TestHubEndsDeletedAccount(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "x")
	a, _ := s.GetAccount("x")
	sub := s.Hub().SubscribeAccount("x", a.ID, 0)
	defer sub.Close()
	called := make(chan uint64, 4)
	remove := s.Hub().OnAccountDeleted(func(user string, id uint64) {
		if user == "x" {
			called <- id
		}
	})
	defer remove()
	gen := s.AccountDeletions()
	if err := s.DeleteAccount("x"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-called:
		if id != a.ID {
			t.Fatalf("deleted id %d, want %d", id, a.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no account-deleted call")
	}
	if !sub.AccountGone() || s.AccountDeletions() == gen {
		t.Fatalf("gone %v, deletions %d -> %d", sub.AccountGone(), gen, s.AccountDeletions())
	}
	sub.Drain()
	// The name's next account does not reach the old subscription.
	mustAccount(t, s, "x")
	if _, err := s.Deposit(DepositReq{User: "x", Mailbox: "INBOX", Body: strings.NewReader("Subject: hi\r\n\r\nhi\r\n")}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := sub.Drain(); len(evs) != 0 {
		t.Fatalf("old subscription got %d events of the new account", len(evs))
	}
}

// FuzzCheckUserName: an accepted name is its own folded form, a single URL
// path segment as it is (no escaping, not a dot segment), no longer than
// the limit, and has no character a SIP URI user or an IMAP URL user would
// have to escape.
func FuzzCheckUserName(f *testing.F) {
	for _, s := range []string{"alice", "+15551234567", "john.doe", "a..b", ".", "..", "Alice", "a/b", "é", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckUserName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("%q: error %v is not ErrBadName", name, err)
			}
			return
		}
		if FoldUserName(name) != name || len(name) > MaxUserNameLen || name == "." || name == ".." ||
			url.PathEscape(name) != name || strings.ContainsAny(name, "@:;?&=$,/%") {
			t.Fatalf("accepted %q", name)
		}
	})
}

// Every journaled event names the identity of its account.
func TestEventsCarryAccountID(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "y")
	first, _ := s.GetAccount("y")
	deposit := func() {
		t.Helper()
		if _, err := s.Deposit(DepositReq{User: "y", Mailbox: "INBOX", Body: strings.NewReader("Subject: hi\r\n\r\nhi\r\n")}); err != nil {
			t.Fatal(err)
		}
	}
	deposit()
	if err := s.DeleteAccount("y"); err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "y")
	second, _ := s.GetAccount("y")
	deposit()
	evs, err := s.ReadJournal(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	for _, ev := range evs {
		want := first.ID
		if deleted {
			want = second.ID
		}
		if ev.Type == EventAccountDelete {
			deleted = true
		}
		if ev.AccountID != want {
			t.Fatalf("%s of %s: account id %d, want %d", ev.Type, ev.User, ev.AccountID, want)
		}
	}
}
