package notify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestHoldWhileOnline(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "held", vmstore.AccountOptions{HoldWhileOnline: true})
	mustAccount(t, s, "free", vmstore.AccountOptions{})
	// A Login from before this process started must not count.
	if err := s.RecordSession("free", true, "imap", "192.0.2.1:1000", "127.0.0.1:143"); err != nil {
		t.Fatal(err)
	}
	p := &Presence{Store: s, Logger: testLogger(t)}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	sink := newFakeSink("hold")
	sink.accept = isNew
	h := &countingSink{Sink: &HoldWhileOnline{Sink: sink, Presence: p, Store: s}, calls: map[string]int{}}
	d := &Dispatcher{Store: s, Sinks: []Sink{h}, DeadLetterDir: t.TempDir(), Logger: testLogger(t), HoldPoll: 20 * time.Millisecond,
		MaxAttempts: 2, BaseBackoff: 5 * time.Millisecond}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)

	if err := s.RecordSession("held", true, "imap", "192.0.2.1:1000", "127.0.0.1:143"); err != nil {
		t.Fatal(err)
	}
	deposit(t, s, "held")
	deposit(t, s, "held")
	deposit(t, s, "free")
	waitFor(t, 5*time.Second, "free delivered", func() bool { return len(sink.events()) == 1 })
	// Several hold polls later: still held, not dead-lettered (MaxAttempts
	// is 2), and never handed to the sink.
	waitFor(t, 5*time.Second, "several hold polls", func() bool { return h.count("held") >= 5 })
	for _, ev := range sink.attempts() {
		if ev.User == "held" {
			t.Fatalf("held event handed to the sink: %+v", ev)
		}
	}
	if evs := sink.events(); len(evs) != 1 || evs[0].User != "free" {
		t.Fatalf("delivered while online: %+v", evs)
	}
	if dls, _ := d.DeadLetters("hold"); len(dls) != 0 {
		t.Fatalf("held events dead-lettered: %+v", dls)
	}
	if err := s.RecordSession("held", false, "imap", "192.0.2.1:1000", "127.0.0.1:143"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "released after Logout", func() bool { return len(sink.events()) == 3 })
	evs := sink.events()
	if evs[1].User != "held" || evs[1].UIDs[0] != 1 || evs[2].UIDs[0] != 2 {
		t.Fatalf("order after release: %+v", evs)
	}
}

// countingSink counts the deliveries the dispatcher asks of a sink, per
// account.
type countingSink struct {
	Sink
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingSink) Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error {
	c.mu.Lock()
	c.calls[ev.User]++
	c.mu.Unlock()
	return c.Sink.Deliver(ctx, ev, attempt)
}

func (c *countingSink) count(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[user]
}
