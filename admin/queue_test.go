package admin

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// The queue API lists held submissions (per user or all) and cancels one:
// its message leaves the sender's Outbox; an unknown id is 404.
func TestQueueAPI(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-123456"}); err != nil {
		t.Fatal(err)
	}
	e, err := st.Enqueue(vmstore.DepositReq{User: "alice", Body: strings.NewReader("Subject: later\r\n\r\nx\r\n")},
		vmstore.QueueEntry{From: "alice@x", Rcpts: []string{"bob@y"}, Release: time.Now().Add(time.Hour), Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer((&Server{Store: st, Token: "t"}).Handler())
	defer hs.Close()
	c := &Client{BaseURL: hs.URL, Token: "t", HTTP: hs.Client()}
	for _, user := range []string{"", "alice"} {
		l, err := c.Queue(user)
		if err != nil || len(l) != 1 || l[0].ID != e.ID || l[0].Mailbox != vmstore.OutboxMailbox || !l[0].Hold {
			t.Fatalf("queue(%q): %+v %v", user, l, err)
		}
	}
	if l, err := c.Queue("bob"); err != nil || len(l) != 0 {
		t.Fatalf("bob: %+v %v", l, err)
	}
	if err := c.CancelQueued(e.ID); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if err := c.CancelQueued(e.ID); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("second cancel: %v", err)
	}
	if mb, _ := st.Mailbox("alice", vmstore.OutboxMailbox); mb.Counts.Messages != 0 {
		t.Fatalf("Outbox holds %d", mb.Counts.Messages)
	}
}
