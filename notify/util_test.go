package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("NOTIFY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openStore(t testing.TB, dir string) *vmstore.Store {
	t.Helper()
	s, err := vmstore.Open(vmstore.Options{Dir: dir, InMemory: dir == "", Logger: testLogger(t),
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAccount(t testing.TB, s *vmstore.Store, name string, opts vmstore.AccountOptions) {
	t.Helper()
	if _, err := s.CreateAccount(vmstore.AccountSpec{Name: name, Password: "pw-" + name, PIN: "1234", Options: opts}); err != nil {
		t.Fatal(err)
	}
}

func voiceMail(from string, seconds int) []byte {
	var b bytes.Buffer
	vm := vmstore.VoiceMessage{From: from, Subject: "Voice message from " + from, MediaType: "audio/wav",
		Date:     time.Date(2026, 8, 2, 12, 53, 0, 0, time.FixedZone("", 2*3600)),
		Duration: time.Duration(seconds) * time.Second, Media: bytes.NewReader(make([]byte, 800))}
	_, _ = io.Copy(&b, vm.Compose())
	return b.Bytes()
}

func deposit(t testing.TB, s *vmstore.Store, user string) *vmstore.DepositRes {
	t.Helper()
	res, err := s.Deposit(vmstore.DepositReq{User: user, Body: bytes.NewReader(voiceMail("+15557654321@example.net", 27)), Service: "lmtp"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// fakeSink records deliveries (successful ones in got, every attempt in
// tries); fail decides per attempt.
type fakeSink struct {
	name   string
	accept func(*vmstore.Event) bool
	fail   func(ev *vmstore.Event, attempt int) error

	mu    sync.Mutex
	got   []vmstore.Event
	tries []vmstore.Event
	seen  map[uint64]int
	wake  chan struct{}
}

func newFakeSink(name string) *fakeSink {
	return &fakeSink{name: name, seen: map[uint64]int{}, wake: make(chan struct{}, 1)}
}

func (f *fakeSink) Name() string { return f.name }
func (f *fakeSink) Accept(ev *vmstore.Event) bool {
	return f.accept == nil || f.accept(ev)
}
func (f *fakeSink) Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error {
	f.mu.Lock()
	f.tries = append(f.tries, *ev)
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(ev, attempt); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.got = append(f.got, *ev)
	f.seen[ev.Seq]++
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return nil
}

// attempts returns every event Deliver was called with, failed or not.
func (f *fakeSink) attempts() []vmstore.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vmstore.Event(nil), f.tries...)
}

// waitSettled waits until the sink's cursor reaches the end of the journal:
// every event up to then is finished (delivered, dead-lettered or not
// accepted), so a check that something did not happen can follow.
func waitSettled(t testing.TB, s *vmstore.Store, sink string) {
	t.Helper()
	waitFor(t, 10*time.Second, "cursor of "+sink+" at the end of the journal", func() bool {
		c, err := s.Cursor(CursorName(sink))
		return err == nil && c == s.LastSeq()
	})
}

func (f *fakeSink) events() []vmstore.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vmstore.Event(nil), f.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startDispatcher(t testing.TB, s *vmstore.Store, dir string, sinks ...Sink) *Dispatcher {
	t.Helper()
	d := &Dispatcher{Store: s, Sinks: sinks, DeadLetterDir: dir, Logger: testLogger(t),
		BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 3,
		PollInterval: 50 * time.Millisecond, CursorInterval: 5 * time.Millisecond}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

var _ = fmt.Sprint

func tlsWithRoots(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }
