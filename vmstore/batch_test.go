package vmstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestLargeOperationsInParts runs STORE, COPY, MOVE, EXPUNGE, \Recent
// clearing, mailbox and account deletion on more messages than one Badger
// transaction takes (the memtable is made small so that a few thousand
// messages are enough): each completes, in parts, and leaves a consistent
// store.
func TestLargeOperationsInParts(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1, memTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const user, n = "bulk", 2000
	mustAccount(t, s, user)
	var reqs []DepositReq
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("From: Caller %d <c%d@example.net>\r\nSubject: message number %d\r\n\r\nx\r\n", i, i, i)
		reqs = append(reqs, DepositReq{User: user, Body: bytes.NewReader([]byte(body))})
		if len(reqs) == 50 {
			if _, err := s.DepositMany(reqs); err != nil {
				t.Fatal(err)
			}
			reqs = nil
		}
	}
	inbox, _ := s.Mailbox(user, "INBOX")
	uids, _ := s.UIDs(inbox.ID)
	check := func(step string) {
		t.Helper()
		problems, err := s.Verify(context.Background(), false)
		if err != nil || len(problems) > 0 {
			t.Fatalf("%s: verify: %v %q", step, err, problems)
		}
	}
	// The limit is real: one transaction cannot take them all.
	if _, err := s.storeFlags(StoreReq{User: user, MailboxID: inbox.ID, UIDs: uids, Op: FlagsAdd, Flags: []string{FlagSeen}}); err == nil {
		t.Fatal("one transaction took every message; the test proves nothing")
	}
	seq0 := s.LastSeq()
	res, err := s.StoreFlags(StoreReq{User: user, MailboxID: inbox.ID, UIDs: uids, Op: FlagsAdd, Flags: []string{FlagSeen, "$Forwarded"}})
	if err != nil {
		t.Fatalf("STORE: %v", err)
	}
	if len(res.Changed) != n {
		t.Fatalf("STORE: %d changed", len(res.Changed))
	}
	evs, _ := s.ReadJournal(seq0, 1000)
	if len(evs) < 2 {
		t.Fatalf("STORE in one transaction? %d events", len(evs))
	}
	check("store")
	arch, _ := s.CreateMailbox(user, "Archive", "")
	cres, err := s.Copy(CopyReq{User: user, From: inbox.ID, To: arch.ID, UIDs: uids})
	if err != nil || len(cres.SrcUIDs) != n || len(cres.DstUIDs) != n {
		t.Fatalf("COPY: %v, %d/%d", err, len(cres.SrcUIDs), len(cres.DstUIDs))
	}
	check("copy")
	old, _ := s.CreateMailbox(user, "Old", "")
	auids, _ := s.UIDs(arch.ID)
	if mres, err := s.Copy(CopyReq{User: user, From: arch.ID, To: old.ID, UIDs: auids, Move: true}); err != nil || len(mres.DstUIDs) != n {
		t.Fatalf("MOVE: %v", err)
	}
	if left, _ := s.UIDs(arch.ID); len(left) != 0 {
		t.Fatalf("MOVE left %d messages", len(left))
	}
	check("move")
	if r, err := s.ClearRecent(user, old.ID); err != nil || len(r) != n {
		t.Fatalf("clear recent: %v, %d", err, len(r))
	}
	if mb, _ := s.MailboxByID(old.ID); mb.Counts.Recent != 0 {
		t.Fatalf("recent count %d", mb.Counts.Recent)
	}
	check("recent")
	if _, err := s.StoreFlags(StoreReq{User: user, MailboxID: inbox.ID, UIDs: uids, Op: FlagsAdd, Flags: []string{FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	gone, err := s.Expunge(user, inbox.ID, nil)
	if err != nil || len(gone) != n {
		t.Fatalf("EXPUNGE: %v, %d", err, len(gone))
	}
	check("expunge")
	if err := s.RenameMailbox(user, "Old", "Older"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(user, "Older"); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	check("delete")
	// INBOX renamed while large: its messages move in parts.
	for i := 0; i < n; i += 50 {
		var batch []DepositReq
		for j := i; j < i+50; j++ {
			batch = append(batch, DepositReq{User: user, Body: bytes.NewReader([]byte(fmt.Sprintf("Subject: again %d\r\n\r\ny\r\n", j)))})
		}
		if _, err := s.DepositMany(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RenameMailbox(user, "INBOX", "Saved"); err != nil {
		t.Fatalf("RENAME INBOX: %v", err)
	}
	if saved, err := s.Mailbox(user, "Saved"); err != nil || saved.Counts.Messages != n {
		t.Fatalf("RENAME INBOX: %v %+v", err, saved)
	}
	check("rename inbox")
	if err := s.DeleteAccount(user); err != nil {
		t.Fatalf("delete account: %v", err)
	}
	check("delete account")
}
