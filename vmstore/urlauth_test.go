package vmstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func countURLAuthKeys(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kURLAuth)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestURLAuthKeys: a key is made once per account and mailbox, found by
// URLAuthLookup, replaced by RESETKEY (one mailbox or all), and gone with
// its mailbox and with its account; an account created again under the
// name finds none of the old keys.
func TestURLAuthKeys(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "alice")
	mustAccount(t, s, "bob")
	if _, ok, err := s.URLAuthLookup("alice", "INBOX"); err != nil || ok {
		t.Fatalf("lookup before any key: ok %v err %v", ok, err)
	}
	k1, id, mb, err := s.URLAuthKey("alice", 0, "inbox")
	if err != nil || len(k1) != URLAuthKeySize || id == 0 || mb.Name != "INBOX" {
		t.Fatalf("URLAuthKey: %x %d %+v %v", k1, id, mb, err)
	}
	k2, id2, _, err := s.URLAuthKey("alice", id, "INBOX")
	if err != nil || !bytes.Equal(k1, k2) || id2 != id {
		t.Fatalf("second URLAuthKey differs: %x %x %v", k1, k2, err)
	}
	tg, ok, err := s.URLAuthLookup("alice", "INBOX")
	if err != nil || !ok || !bytes.Equal(tg.Key, k1) || tg.AccountID != id || tg.MailboxID != mb.ID {
		t.Fatalf("lookup: %+v %v %v", tg, ok, err)
	}
	kb, _, _, err := s.URLAuthKey("bob", 0, "INBOX")
	if err != nil || bytes.Equal(kb, k1) {
		t.Fatalf("bob's key: %x %v", kb, err)
	}
	if _, _, _, err := s.URLAuthKey("alice", id+100, "INBOX"); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("other account id: %v", err)
	}
	if _, _, _, err := s.URLAuthKey("alice", 0, "Nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing mailbox: %v", err)
	}
	if _, _, _, err := s.URLAuthKey("carol", 0, "INBOX"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
	// RESETKEY of one mailbox.
	ks, _, _, _ := s.URLAuthKey("alice", 0, "Sent")
	if err := s.ResetURLAuthKeys("alice", id, "INBOX"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.URLAuthLookup("alice", "INBOX"); ok {
		t.Fatal("INBOX key survived RESETKEY INBOX")
	}
	if tg, ok, _ := s.URLAuthLookup("alice", "Sent"); !ok || !bytes.Equal(tg.Key, ks) {
		t.Fatal("Sent key did not survive RESETKEY INBOX")
	}
	k3, _, _, _ := s.URLAuthKey("alice", 0, "INBOX")
	if bytes.Equal(k3, k1) {
		t.Fatal("new key equals the reset one")
	}
	if err := s.ResetURLAuthKeys("alice", 0, "Nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reset missing mailbox: %v", err)
	}
	// RESETKEY without a mailbox: all of alice's, none of bob's.
	if err := s.ResetURLAuthKeys("alice", 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.URLAuthLookup("alice", "Sent"); ok {
		t.Fatal("Sent key survived RESETKEY")
	}
	if _, ok, _ := s.URLAuthLookup("bob", "INBOX"); !ok {
		t.Fatal("bob's key went with alice's RESETKEY")
	}
	// A deleted mailbox takes its key.
	if _, err := s.CreateMailbox("alice", "Box", ""); err != nil {
		t.Fatal(err)
	}
	s.URLAuthKey("alice", 0, "Box")
	s.URLAuthKey("alice", 0, "INBOX")
	before := countURLAuthKeys(t, s)
	if err := s.DeleteMailbox("alice", "Box"); err != nil {
		t.Fatal(err)
	}
	if got := countURLAuthKeys(t, s); got != before-1 {
		t.Fatalf("keys after DeleteMailbox: %d, want %d", got, before-1)
	}
	// A deleted account takes its keys; the account created again under
	// the name has a new id and no key.
	if err := s.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	if got := countURLAuthKeys(t, s); got != 1 {
		t.Fatalf("keys after DeleteAccount: %d, want bob's 1", got)
	}
	mustAccount(t, s, "alice")
	if _, ok, _ := s.URLAuthLookup("alice", "INBOX"); ok {
		t.Fatal("re-created account found a key")
	}
	if _, _, _, err := s.URLAuthKey("alice", id, "INBOX"); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("old account id used on the new account: %v", err)
	}
	if err := s.ResetURLAuthKeys("alice", id, ""); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("RESETKEY with the old account id: %v", err)
	}
}
