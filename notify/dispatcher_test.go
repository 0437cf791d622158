package notify

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func isNew(ev *vmstore.Event) bool { return ev.Type == vmstore.EventMessageNew }

func TestDispatcherDeliversInOrderPerAccount(t *testing.T) {
	s := openStore(t, "")
	users := []string{"a1", "a2", "a3"}
	for _, u := range users {
		mustAccount(t, s, u, vmstore.AccountOptions{})
	}
	sink := newFakeSink("fake")
	sink.accept = isNew
	// Fail every first attempt of every event of a2: a2 must stay in order
	// and a1/a3 must not wait for it.
	sink.fail = func(ev *vmstore.Event, attempt int) error {
		if ev.User == "a2" && attempt == 1 {
			return ErrDelivery
		}
		return nil
	}
	d := startDispatcher(t, s, t.TempDir(), sink)
	const per = 10
	for i := 0; i < per; i++ {
		for _, u := range users {
			deposit(t, s, u)
		}
	}
	waitFor(t, 10*time.Second, "all deliveries", func() bool { return len(sink.events()) == per*len(users) })
	last := map[string]uint32{}
	for _, ev := range sink.events() {
		if ev.UIDs[0] <= last[ev.User] {
			t.Fatalf("%s: uid %d after %d", ev.User, ev.UIDs[0], last[ev.User])
		}
		last[ev.User] = ev.UIDs[0]
	}
	waitFor(t, 5*time.Second, "cursor at end", func() bool {
		c, _ := s.Cursor(CursorName("fake"))
		return c == s.LastSeq()
	})
	st, err := d.Status()
	if err != nil || len(st) != 1 || st[0].Pending != 0 || st[0].Cursor != s.LastSeq() {
		t.Fatalf("status %+v %v", st, err)
	}
	if mc, err := d.MinCursor(); err != nil || mc != s.LastSeq() {
		t.Fatalf("MinCursor %d %v", mc, err)
	}
}

func TestDispatcherResumesFromDurableCursor(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir+"/db")
	mustAccount(t, s, "bob", vmstore.AccountOptions{})
	sink := newFakeSink("fake")
	sink.accept = isNew
	d := startDispatcher(t, s, dir+"/dl", sink)
	for i := 0; i < 5; i++ {
		deposit(t, s, "bob")
	}
	waitFor(t, 5*time.Second, "5 deliveries", func() bool { return len(sink.events()) == 5 })
	d.Close()
	// While stopped, more deposits; then a new dispatcher must deliver
	// exactly the new ones (the cursor was saved on Close).
	for i := 0; i < 3; i++ {
		deposit(t, s, "bob")
	}
	sink2 := newFakeSink("fake")
	sink2.accept = isNew
	startDispatcher(t, s, dir+"/dl", sink2)
	waitFor(t, 5*time.Second, "3 deliveries", func() bool { return len(sink2.events()) == 3 })
	waitSettled(t, s, "fake")
	evs := sink2.events()
	if len(evs) != 3 || evs[0].UIDs[0] != 6 || evs[2].UIDs[0] != 8 {
		t.Fatalf("after restart got %+v", evs)
	}
}

func TestDispatcherDeadLetterAndReplay(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "carol", vmstore.AccountOptions{})
	var broken atomic.Bool
	broken.Store(true)
	var attempts atomic.Int32
	sink := newFakeSink("fake")
	sink.accept = isNew
	sink.fail = func(ev *vmstore.Event, attempt int) error {
		if broken.Load() {
			attempts.Add(1)
			if ev.UIDs[0] == 2 {
				return Permanent(errors.New("bad request"))
			}
			return fmt.Errorf("%w: down", ErrDelivery)
		}
		return nil
	}
	d := startDispatcher(t, s, t.TempDir(), sink)
	deposit(t, s, "carol") // uid 1: 3 attempts then dead letter
	deposit(t, s, "carol") // uid 2: permanent: 1 attempt
	waitFor(t, 5*time.Second, "two dead letters", func() bool {
		dls, _ := d.DeadLetters("fake")
		return len(dls) == 2
	})
	if n := attempts.Load(); n != 4 {
		t.Fatalf("attempts = %d, want 3+1", n)
	}
	dls, _ := d.DeadLetters("fake")
	if dls[0].Attempts != 3 || dls[0].Event.UIDs[0] != 1 || dls[1].Attempts != 1 {
		t.Fatalf("dead letters %+v", dls)
	}
	waitFor(t, 5*time.Second, "cursor past dead letters", func() bool {
		c, _ := s.Cursor(CursorName("fake"))
		return c == s.LastSeq()
	})
	// Replay of one while still broken: stays.
	if n, err := d.Replay(context.Background(), "fake", []uint64{dls[0].Seq}); n != 0 || err == nil {
		t.Fatalf("replay while broken: %d %v", n, err)
	}
	broken.Store(false)
	n, err := d.Replay(context.Background(), "fake", nil)
	if n != 2 || err != nil {
		t.Fatalf("replay: %d %v", n, err)
	}
	if dls, _ := d.DeadLetters("fake"); len(dls) != 0 {
		t.Fatalf("left %+v", dls)
	}
	if got := sink.events(); len(got) != 2 || got[0].Seq != dls[0].Seq {
		t.Fatalf("replayed %+v", got)
	}
	deposit(t, s, "carol")
	deposit(t, s, "carol")
	waitFor(t, 5*time.Second, "new deliveries", func() bool { return len(sink.events()) == 4 })
	deposit(t, s, "carol")
	broken.Store(true)
	if _, err := d.DropDeadLetters("fake", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeadLetters("nope"); !errors.Is(err, ErrUnknownSink) {
		t.Fatal(err)
	}
}

func TestDispatcherDisabledSinkKeepsEvents(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, "")
	mustAccount(t, s, "dave", vmstore.AccountOptions{})
	var gone atomic.Bool
	gone.Store(true)
	sink := newFakeSink("fake")
	sink.accept = isNew
	sink.fail = func(*vmstore.Event, int) error {
		if gone.Load() {
			return fmt.Errorf("%w: 410", ErrSinkDisabled)
		}
		return nil
	}
	// A sink beside it that works: once it has the second event, the
	// dispatcher has read it too.
	control := newFakeSink("control")
	control.accept = isNew
	d := startDispatcher(t, s, dir, sink, control)
	deposit(t, s, "dave")
	waitFor(t, 5*time.Second, "disabled", func() bool {
		st, _ := d.Status()
		return st[0].Disabled
	})
	tried := len(sink.attempts())
	second := deposit(t, s, "dave")
	waitSettled(t, s, "control")
	if n := len(control.events()); n != 2 {
		t.Fatalf("control sink got %d events", n)
	}
	// Every attempt counts, failed ones too: a disabled sink is not tried.
	for _, ev := range sink.attempts()[tried:] {
		t.Fatalf("delivery attempted while disabled: uid %d", ev.UIDs[0])
	}
	if len(sink.events()) != 0 {
		t.Fatal("delivered while disabled")
	}
	// The state survives a restart.
	d.Close()
	d = startDispatcher(t, s, dir, sink)
	if st, _ := d.Status(); !st[0].Disabled {
		t.Fatal("disabled state lost")
	}
	gone.Store(false)
	if err := d.EnableSink("fake"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both events", func() bool { return len(sink.events()) == 2 })
	if got := sink.events(); got[1].UIDs[0] != second.Message.UID {
		t.Fatalf("after enabling: %+v", got)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	d := &Dispatcher{BaseBackoff: time.Second, MaxBackoff: time.Minute}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: time.Minute} {
		for i := 0; i < 20; i++ {
			got := d.backoff(n, ErrDelivery)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want in [%v,%v]", n, got, want/2, want)
			}
		}
	}
	// And it is jittered: retries of many sinks do not fall in step.
	for n, want := range map[int]time.Duration{1: time.Second, 4: 8 * time.Second} {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		seen := map[time.Duration]bool{}
		for i := 0; i < 100; i++ {
			got := d.backoff(n, ErrDelivery)
			lo, hi = min(lo, got), max(hi, got)
			seen[got] = true
		}
		if len(seen) < 50 || hi-lo < want/4 {
			t.Fatalf("backoff(%d): %d distinct values in [%v,%v]: no jitter", n, len(seen), lo, hi)
		}
	}
	if got := d.backoff(1, &RetryAfterError{Err: ErrDelivery, After: 30 * time.Second}); got != 30*time.Second {
		t.Fatalf("retry-after: %v", got)
	}
}

func TestDispatcherConfigErrors(t *testing.T) {
	s := openStore(t, "")
	for _, d := range []*Dispatcher{
		{},
		{Store: s},
		{Store: s, DeadLetterDir: t.TempDir(), Sinks: []Sink{newFakeSink("a b")}},
		{Store: s, DeadLetterDir: t.TempDir(), Sinks: []Sink{newFakeSink("x"), newFakeSink("x")}},
	} {
		if err := d.Initialize(); !errors.Is(err, ErrConfig) {
			t.Fatalf("%+v: %v", d, err)
		}
	}
}
