package authlimit

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock advances when the limiter sleeps.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newTest(cfg Config) (*Limiter, *fakeClock) {
	c := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Now, cfg.Sleep = c.Now, c.Sleep
	return New(cfg), c
}

var (
	attacker = netip.MustParseAddr("198.51.100.66")
	phone    = netip.MustParseAddr("192.0.2.10")
	ctx      = context.Background()
)

func fail(t *testing.T, l *Limiter, src netip.Addr, acct string) time.Duration {
	t.Helper()
	a, err := l.Begin(ctx, "test", src, acct)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return a.Failed()
}

// Guessing at an account from elsewhere never delays nor refuses its
// subscriber's correct password.
func TestNoAccountLockout(t *testing.T) {
	l, c := newTest(Config{FreeFailures: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second})
	for i := 0; i < 50; i++ {
		fail(t, l, attacker, "alice")
	}
	_, _, acct := l.Failures(attacker, "alice")
	if acct != 50 {
		t.Fatalf("account-wide failures %d", acct)
	}
	before := len(c.slept)
	a, err := l.Begin(ctx, "test", phone, "alice")
	if err != nil {
		t.Fatalf("subscriber refused: %v", err)
	}
	a.Succeeded()
	if len(c.slept) != before {
		t.Fatalf("subscriber delayed: %v", c.slept[before:])
	}
	// Even a wrong password from the subscriber's address is not delayed
	// by the attack elsewhere.
	if d := fail(t, l, phone, "alice"); d != 0 {
		t.Fatalf("first failure from a clean source delayed %v", d)
	}
}

// Failures from one source back off exponentially, bounded, and the source
// is never locked out.
func TestBackoffGrowsAndIsBounded(t *testing.T) {
	l, _ := newTest(Config{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second})
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, fail(t, l, attacker, "bob"))
	}
	want := []time.Duration{0, 0, 1, 2, 4, 8, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v s", got, want)
		}
	}
	// Sequential attempts keep being checked: a correct one is accepted.
	a, err := l.Begin(ctx, "test", attacker, "bob")
	if err != nil {
		t.Fatal(err)
	}
	a.Succeeded()
	// The pair is forgiven, the source is not.
	src, pair, _ := l.Failures(attacker, "bob")
	if pair != 0 || src != 8 {
		t.Fatalf("after success: source %d pair %d", src, pair)
	}
}

// Per-source counting: many accounts from one source are slowed together.
func TestPerSourceAcrossAccounts(t *testing.T) {
	l, _ := newTest(Config{FreeFailures: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second})
	var last time.Duration
	for i, acct := range []string{"a", "b", "c", "d", "e"} {
		last = fail(t, l, attacker, acct)
		if i < 3 && last != 0 {
			t.Fatalf("failure %d delayed %v", i, last)
		}
	}
	if last != 2*time.Second {
		t.Fatalf("fifth failure from one source over five accounts: %v", last)
	}
}

// Parallel attempts from an offending source queue one delay apart, and
// beyond MaxQueue they are refused at once.
func TestParallelAttemptsQueue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var waits []time.Duration
	// Sleeping does not move the clock: the attempts are concurrent.
	l := New(Config{FreeFailures: -1, BaseDelay: time.Second, MaxDelay: time.Second, MaxQueue: 3,
		Now: func() time.Time { return now }, Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }})
	a, _ := l.Begin(ctx, "test", attacker, "x")
	a.Failed() // until = now + 1 s
	throttled := 0
	for i := 0; i < 6; i++ {
		if _, err := l.Begin(ctx, "test", attacker, "x"); errors.Is(err, ErrThrottled) {
			throttled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Waits: the failure's 1 s, then 1, 2, 3 s queued, then refusals.
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 3 * time.Second}
	if len(waits) != len(want) || throttled != 3 {
		t.Fatalf("waits %v throttled %d", waits, throttled)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestTrustedAndForget(t *testing.T) {
	l, c := newTest(Config{FreeFailures: 1, BaseDelay: time.Second, Forget: time.Minute,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	lo := netip.MustParseAddr("127.0.0.1")
	for i := 0; i < 10; i++ {
		if d := fail(t, l, lo, "op"); d != 0 {
			t.Fatalf("trusted source delayed %v", d)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("trusted source tracked: %d keys", l.Len())
	}
	fail(t, l, attacker, "z")
	fail(t, l, attacker, "z")
	c.advance(2 * time.Minute)
	if src, pair, _ := l.Failures(attacker, "z"); src != 0 || pair != 0 {
		t.Fatalf("not forgotten: %d %d", src, pair)
	}
}

func TestMemoryBounded(t *testing.T) {
	l, _ := newTest(Config{MaxEntries: 100})
	for i := 0; i < 1000; i++ {
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		a, err := l.Begin(ctx, "test", src, "acct")
		if err != nil {
			t.Fatal(err)
		}
		a.Failed()
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d keys tracked, cap 100", n)
	}
}

func TestAddrOf(t *testing.T) {
	for in, want := range map[string]string{"192.0.2.1:5060": "192.0.2.1", "[::ffff:192.0.2.1]:1": "192.0.2.1",
		"[2001:db8::1]:5": "2001:db8::1", "10.1.1.1": "10.1.1.1"} {
		if got := AddrOf(in); got.String() != want {
			t.Errorf("%s: %s", in, got)
		}
	}
	if AddrOf("garbage").IsValid() {
		t.Error("garbage parsed")
	}
}

// Parallel attempts from a source without failures (phones behind one NAT)
// all go through; once it has failed, attempts in flight count as failures
// to come and a burst queues.
func TestInFlightCountsOnlyAfterFailure(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Config{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: time.Second, MaxQueue: 2,
		Now: func() time.Time { return now }, Sleep: func(context.Context, time.Duration) error { return nil }})
	var held []*Attempt
	for i := 0; i < 10; i++ {
		a, err := l.Begin(ctx, "test", phone, "user")
		if err != nil {
			t.Fatalf("clean source, attempt %d: %v", i, err)
		}
		held = append(held, a)
	}
	for _, a := range held {
		a.Succeeded()
	}
	a, _ := l.Begin(ctx, "test", attacker, "x")
	a.Failed()
	throttled := 0
	for i := 0; i < 10; i++ {
		if _, err := l.Begin(ctx, "test", attacker, "x"); errors.Is(err, ErrThrottled) {
			throttled++
		}
	}
	// One failure + in flight: the 2nd and 3rd in flight pass the free
	// failures, then slots are reserved one second apart, two ahead at most.
	if throttled == 0 || throttled > 8 {
		t.Fatalf("burst after a failure: %d of 10 throttled", throttled)
	}
}
