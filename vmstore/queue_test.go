package vmstore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestQueue: Enqueue stores the message in the Outbox and the entry in one
// commit; Dequeue removes both; entries come soonest first.
func TestQueue(t *testing.T) {
	s, err := Open(Options{InMemory: true, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateAccount(AccountSpec{Name: "qa", Password: "pw-123456"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ids []string
	for i, d := range []time.Duration{2 * time.Hour, time.Hour} {
		e, err := s.Enqueue(DepositReq{User: "qa", Body: strings.NewReader("Subject: q\r\n\r\nbody " + string(rune('a'+i)) + "\r\n")},
			QueueEntry{From: "qa@x", Rcpts: []string{"b@y"}, Release: now.Add(d), Hold: true})
		if err != nil {
			t.Fatal(err)
		}
		if !ValidQueueID(e.ID) || e.UID == 0 {
			t.Fatalf("entry %+v", e)
		}
		ids = append(ids, e.ID)
	}
	es, err := s.QueueEntries("qa")
	if err != nil || len(es) != 2 || es[0].ID != ids[1] {
		t.Fatalf("entries %v %v", es, err)
	}
	mb, err := s.Mailbox("qa", OutboxMailbox)
	if err != nil || mb.Counts.Messages != 2 {
		t.Fatalf("outbox %+v %v", mb, err)
	}
	if err := s.Dequeue(ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Dequeue(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second dequeue: %v", err)
	}
	mb, _ = s.Mailbox("qa", OutboxMailbox)
	if mb.Counts.Messages != 1 {
		t.Fatalf("outbox holds %d", mb.Counts.Messages)
	}
	if _, err := s.QueueEntry("../A/qa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
	if es, _ := s.QueueEntries("other"); len(es) != 0 {
		t.Fatalf("other user's entries: %v", es)
	}
}
