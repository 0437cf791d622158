package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Sink receives journal events from the Dispatcher. Each sink type (webhook,
// SIP MWI, VVM SMS, event bus) implements it.
type Sink interface {
	// Name identifies the sink. It must be stable across restarts: the
	// sink's durable cursor and dead-letter list are kept under it.
	// Letters, digits and "_ . -" only.
	Name() string
	// Accept reports whether the sink wants the event. It must be cheap and
	// do no I/O: it runs in the journal reader.
	Accept(ev *vmstore.Event) bool
	// Deliver sends one event; attempt counts from 1. A nil error means
	// delivered. Errors wrapped with Permanent are dead-lettered at once,
	// ErrSinkDisabled stops the sink, anything else is retried with backoff.
	// Deliver must honour ctx.
	Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error
}

// Dispatcher tails the store's journal and hands every event to each sink
// that accepts it, at least once, in journal order per account.
type Dispatcher struct {
	// Store is the message store whose journal is dispatched. Required.
	Store *vmstore.Store
	// Sinks receive the events. Names must be unique.
	Sinks []Sink
	// DeadLetterDir holds one JSON-lines dead-letter file per sink and the
	// markers of disabled sinks. Required; created if missing.
	DeadLetterDir string
	// Logger; if nil, slog.Default is used.
	Logger *slog.Logger
	// MaxAttempts before an event is dead-lettered; 0 means 10.
	MaxAttempts int
	// BaseBackoff is the wait after the first failure; it doubles after each
	// further failure up to MaxBackoff, with jitter. 0 means 1 s and 1 h.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// AttemptTimeout bounds one Deliver call; 0 means 30 s.
	AttemptTimeout time.Duration
	// Concurrency is the number of accounts a sink delivers to at the same
	// time; 0 means 64.
	Concurrency int
	// Window bounds the events a sink has read but not finished; 0 means
	// 8192. A sink stuck on one account's retries keeps delivering other
	// accounts' events until the window is full.
	Window int
	// PollInterval is how often the journal is read when the hub is quiet;
	// 0 means 1 s.
	PollInterval time.Duration
	// CursorInterval is how often each sink's cursor is made durable; 0
	// means 20 ms. After a crash, events delivered since the last write are
	// delivered again (at-least-once).
	CursorInterval time.Duration
	// HoldPoll is how often a held event (ErrHeld) is offered again; 0
	// means 500 ms.
	HoldPoll time.Duration

	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sub     *vmstore.Subscription
	mu      sync.Mutex
	runners map[string]*sinkRunner
	order   []string
}

var sinkNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// CursorName is the store cursor key of a sink.
func CursorName(sink string) string { return "notify/" + sink }

// Initialize checks the configuration and starts delivering.
func (d *Dispatcher) Initialize() error {
	if d.Store == nil {
		return fmt.Errorf("%w: Dispatcher.Store is nil", ErrConfig)
	}
	if d.DeadLetterDir == "" {
		return fmt.Errorf("%w: Dispatcher.DeadLetterDir is empty", ErrConfig)
	}
	if err := os.MkdirAll(d.DeadLetterDir, 0o750); err != nil {
		return fmt.Errorf("notify: dead-letter dir: %w", err)
	}
	d.log = d.Logger
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("pkg", "notify")
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 10
	}
	if d.BaseBackoff <= 0 {
		d.BaseBackoff = time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = time.Hour
	}
	if d.MaxBackoff < d.BaseBackoff {
		d.MaxBackoff = d.BaseBackoff
	}
	if d.AttemptTimeout <= 0 {
		d.AttemptTimeout = 30 * time.Second
	}
	if d.Concurrency <= 0 {
		d.Concurrency = 64
	}
	if d.Window <= 0 {
		d.Window = 8192
	}
	if d.PollInterval <= 0 {
		d.PollInterval = time.Second
	}
	if d.CursorInterval <= 0 {
		d.CursorInterval = 20 * time.Millisecond
	}
	if d.HoldPoll <= 0 {
		d.HoldPoll = 500 * time.Millisecond
	}
	d.runners = map[string]*sinkRunner{}
	for _, s := range d.Sinks {
		name := s.Name()
		if !sinkNameRE.MatchString(name) {
			return fmt.Errorf("%w: sink name %q", ErrConfig, name)
		}
		if _, dup := d.runners[name]; dup {
			return fmt.Errorf("%w: duplicate sink name %q", ErrConfig, name)
		}
		d.runners[name] = &sinkRunner{d: d, sink: s, name: name,
			dl: &deadLetterFile{dir: d.DeadLetterDir, sink: name}, wake: make(chan struct{}, 1)}
		d.order = append(d.order, name)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.sub = d.Store.Hub().Subscribe("", 1)
	d.wg.Add(1)
	go d.wakeLoop()
	for _, name := range d.order {
		r := d.runners[name]
		if r.dl.disabled() {
			d.log.Warn("sink is disabled; not delivering until enabled", "sink", name)
			continue
		}
		if err := r.start(); err != nil {
			d.Close()
			return err
		}
	}
	return nil
}

// Close stops delivery and records every sink's cursor. Events in flight
// are delivered again after the next start.
func (d *Dispatcher) Close() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.mu.Lock()
	rs := make([]*sinkRunner, 0, len(d.runners))
	for _, r := range d.runners {
		rs = append(rs, r)
	}
	d.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
	d.sub.Close()
	d.wg.Wait()
}

// wakeLoop turns hub signals into wake-ups of every sink's reader.
func (d *Dispatcher) wakeLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case _, ok := <-d.sub.C():
			if !ok {
				return // store closed
			}
			d.sub.Drain() // the journal is the truth; the events are not needed
			d.mu.Lock()
			for _, r := range d.runners {
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
			d.mu.Unlock()
		}
	}
}

func (d *Dispatcher) runner(sink string) (*sinkRunner, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.runners[sink]
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSink, sink)
	}
	return r, nil
}

// SinkStatus is the state of one sink, for the admin API.
type SinkStatus struct {
	Name        string `json:"name"`
	Cursor      uint64 `json:"cursor"`  // every event up to here is handled
	Pending     int    `json:"pending"` // read and not yet handled
	Disabled    bool   `json:"disabled"`
	DeadLetters int    `json:"deadLetters"`
}

// Status reports every sink in configuration order.
func (d *Dispatcher) Status() ([]SinkStatus, error) {
	var out []SinkStatus
	for _, name := range d.order {
		r, _ := d.runner(name)
		st := SinkStatus{Name: name, Disabled: r.dl.disabled()}
		r.mu.Lock()
		st.Cursor, st.Pending = r.cursorLocked(), len(r.inflight)
		running := r.cancel != nil
		r.mu.Unlock()
		if !running {
			c, err := d.Store.Cursor(CursorName(name))
			if err != nil {
				return nil, err
			}
			st.Cursor = c
		}
		dls, err := r.dl.list()
		if err != nil {
			return nil, err
		}
		st.DeadLetters = len(dls)
		out = append(out, st)
	}
	return out, nil
}

// EnableSink resumes a sink that was disabled by its receiver (HTTP 410).
// Delivery continues from its durable cursor: nothing is lost meanwhile.
func (d *Dispatcher) EnableSink(sink string) error {
	r, err := d.runner(sink)
	if err != nil {
		return err
	}
	if err := r.dl.setDisabled(false, ""); err != nil {
		return err
	}
	if d.ctx.Err() != nil {
		return ErrClosed
	}
	r.stop() // no-op unless running
	return r.start()
}

// DeadLetters lists a sink's dead-lettered events, oldest first.
func (d *Dispatcher) DeadLetters(sink string) ([]DeadLetter, error) {
	r, err := d.runner(sink)
	if err != nil {
		return nil, err
	}
	return r.dl.list()
}

// Replay delivers dead-lettered events again (all of them when seqs is
// empty), one attempt each, in journal order. Delivered events leave the
// list; the others stay with their attempt count and error updated.
// It returns how many were delivered.
func (d *Dispatcher) Replay(ctx context.Context, sink string, seqs []uint64) (int, error) {
	r, err := d.runner(sink)
	if err != nil {
		return 0, err
	}
	want := map[uint64]bool{}
	for _, s := range seqs {
		want[s] = true
	}
	var firstErr error
	n := 0
	err = r.dl.rewrite(func(dls []DeadLetter) []DeadLetter {
		keep := dls[:0]
		for _, dl := range dls {
			if len(want) > 0 && !want[dl.Seq] {
				keep = append(keep, dl)
				continue
			}
			actx, cancel := context.WithTimeout(ctx, d.AttemptTimeout)
			ev := dl.Event
			err := r.sink.Deliver(actx, &ev, dl.Attempts+1)
			cancel()
			dl.Attempts++
			if err == nil {
				n++
				metricDelivered.WithLabelValues(sink, "ok").Inc()
				continue
			}
			if firstErr == nil {
				firstErr = err
			}
			dl.Error = err.Error()
			dl.Time = time.Now().UTC()
			keep = append(keep, dl)
		}
		return keep
	})
	if err != nil {
		return n, err
	}
	return n, firstErr
}

// DropDeadLetters removes dead-lettered events (all when seqs is empty)
// and returns how many were removed.
func (d *Dispatcher) DropDeadLetters(sink string, seqs []uint64) (int, error) {
	r, err := d.runner(sink)
	if err != nil {
		return 0, err
	}
	want := map[uint64]bool{}
	for _, s := range seqs {
		want[s] = true
	}
	n := 0
	err = r.dl.rewrite(func(dls []DeadLetter) []DeadLetter {
		keep := dls[:0]
		for _, dl := range dls {
			if len(want) == 0 || want[dl.Seq] {
				n++
				continue
			}
			keep = append(keep, dl)
		}
		return keep
	})
	return n, err
}

// backoff is the wait after the n-th failed attempt (n >= 1): exponential
// with "equal jitter" (half fixed, half random) so that receivers coming
// back are not hit by every sender at once.
func (d *Dispatcher) backoff(n int, err error) time.Duration {
	b := d.BaseBackoff
	for i := 1; i < n && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	w := b/2 + time.Duration(rand.Int64N(int64(b/2)+1))
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > w {
		w = min(ra.After, d.MaxBackoff)
	}
	return w
}

// sinkRunner delivers one sink's events.
//
// Invariants: inflight holds, in journal order, every accepted event that
// was read and is not yet finished (delivered or dead-lettered); the
// cursor written to the store never passes an unfinished event, so a crash
// re-delivers from the first unfinished one. Each account has at most one
// worker, which handles its events one after the other (order per account).
type sinkRunner struct {
	d    *Dispatcher
	sink Sink
	name string
	dl   *deadLetterFile
	wake chan struct{}

	mu       sync.Mutex
	cancel   context.CancelFunc
	stopped  chan struct{} // closed when the last run has fully stopped
	wg       sync.WaitGroup
	read     uint64 // last journal seq read
	inflight []*item
	queues   map[string]*acctQueue
	space    chan struct{} // signalled when inflight shrinks
	sem      chan struct{}
	saved    uint64
}

type item struct {
	ev   vmstore.Event
	done bool
}

type acctQueue struct {
	items []*item
}

func (r *sinkRunner) start() error {
	cur, err := r.d.Store.Cursor(CursorName(r.name))
	if err != nil {
		return fmt.Errorf("notify: cursor of %s: %w", r.name, err)
	}
	ctx, cancel := context.WithCancel(r.d.ctx)
	r.mu.Lock()
	r.cancel = cancel
	r.stopped = make(chan struct{})
	r.read, r.saved = cur, cur
	r.inflight = nil
	r.queues = map[string]*acctQueue{}
	r.space = make(chan struct{}, 1)
	r.sem = make(chan struct{}, r.d.Concurrency)
	r.mu.Unlock()
	metricCursor.WithLabelValues(r.name).Set(float64(cur))
	r.wg.Add(2)
	go r.readLoop(ctx)
	go r.cursorLoop(ctx)
	r.d.log.Debug("sink started", "sink", r.name, "cursor", cur)
	return nil
}

// stop cancels the runner, waits for its goroutines and saves the cursor.
func (r *sinkRunner) stop() {
	r.mu.Lock()
	cancel, stopped := r.cancel, r.stopped
	r.cancel = nil
	r.mu.Unlock()
	if cancel == nil {
		if stopped != nil {
			<-stopped // another caller is stopping this run
		}
		return
	}
	cancel()
	r.wg.Wait()
	r.saveCursor()
	close(stopped)
}

func (r *sinkRunner) cursorLocked() uint64 {
	if len(r.inflight) > 0 {
		return r.inflight[0].ev.Seq - 1
	}
	return r.read
}

func (r *sinkRunner) saveCursor() {
	r.mu.Lock()
	c := r.cursorLocked()
	saved := r.saved
	r.mu.Unlock()
	if c <= saved {
		return
	}
	if err := r.d.Store.SetCursor(CursorName(r.name), c); err != nil {
		r.d.log.Error("saving sink cursor", "sink", r.name, "err", err)
		return
	}
	r.mu.Lock()
	if c > r.saved {
		r.saved = c
	}
	r.mu.Unlock()
	metricCursor.WithLabelValues(r.name).Set(float64(c))
}

func (r *sinkRunner) cursorLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.d.CursorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.saveCursor()
		}
	}
}

func (r *sinkRunner) readLoop(ctx context.Context) {
	defer r.wg.Done()
	poll := time.NewTimer(r.d.PollInterval)
	defer poll.Stop()
	for ctx.Err() == nil {
		r.mu.Lock()
		room := r.d.Window - len(r.inflight)
		after := r.read
		r.mu.Unlock()
		if room <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.space:
			}
			continue
		}
		evs, err := r.d.Store.ReadJournal(after, min(room, 512))
		if err != nil {
			r.d.log.Error("reading journal", "sink", r.name, "err", err)
		}
		if len(evs) == 0 {
			poll.Reset(r.d.PollInterval)
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-poll.C:
			}
			continue
		}
		r.mu.Lock()
		for i := range evs {
			ev := evs[i]
			r.read = ev.Seq
			if !r.sink.Accept(&ev) {
				continue
			}
			it := &item{ev: ev}
			r.inflight = append(r.inflight, it)
			q := r.queues[ev.User]
			if q == nil {
				q = &acctQueue{}
				r.queues[ev.User] = q
				r.wg.Add(1)
				go r.accountLoop(ctx, ev.User, q)
			}
			q.items = append(q.items, it)
		}
		metricPending.WithLabelValues(r.name).Set(float64(len(r.inflight)))
		r.mu.Unlock()
	}
}

// accountLoop delivers one account's events in order and exits when the
// account's queue is empty.
func (r *sinkRunner) accountLoop(ctx context.Context, user string, q *acctQueue) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(q.items) == 0 {
			delete(r.queues, user)
			r.mu.Unlock()
			return
		}
		it := q.items[0]
		r.mu.Unlock()
		if !r.deliver(ctx, it) {
			return // stopping; the event stays unfinished
		}
		r.mu.Lock()
		q.items = q.items[1:]
		it.done = true
		n := 0
		for n < len(r.inflight) && r.inflight[n].done {
			n++
		}
		if n > 0 {
			r.inflight = r.inflight[n:]
			select {
			case r.space <- struct{}{}:
			default:
			}
		}
		metricPending.WithLabelValues(r.name).Set(float64(len(r.inflight)))
		r.mu.Unlock()
	}
}

// deliver tries an event until it is delivered or dead-lettered (true),
// or the runner stops (false).
func (r *sinkRunner) deliver(ctx context.Context, it *item) bool {
	ev := &it.ev
	log := r.d.log.With("sink", r.name, "seq", ev.Seq, "user", ev.User, "event", ev.Type)
	for attempt := 1; ; attempt++ {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		actx, cancel := context.WithTimeout(ctx, r.d.AttemptTimeout)
		start := time.Now()
		err := r.sink.Deliver(actx, ev, attempt)
		cancel()
		<-r.sem
		metricDeliverSeconds.WithLabelValues(r.name).Observe(time.Since(start).Seconds())
		if err == nil {
			metricDelivered.WithLabelValues(r.name, "ok").Inc()
			metricLagSeconds.WithLabelValues(r.name).Observe(time.Since(ev.Time).Seconds())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrHeld) {
			attempt-- // not a failure
			metricDelivered.WithLabelValues(r.name, "held").Inc()
			t := time.NewTimer(r.d.HoldPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			continue
		}
		if errors.Is(err, ErrSinkDisabled) {
			metricDelivered.WithLabelValues(r.name, "disabled").Inc()
			log.Warn("receiver disabled the sink; delivery stops until it is enabled", "err", err)
			if derr := r.dl.setDisabled(true, err.Error()); derr != nil {
				log.Error("recording disabled sink", "err", derr)
			}
			go r.stop()
			return false
		}
		var perm *PermanentError
		if errors.As(err, &perm) || attempt >= r.d.MaxAttempts {
			metricDelivered.WithLabelValues(r.name, "deadletter").Inc()
			dl := DeadLetter{Seq: ev.Seq, User: ev.User, Type: string(ev.Type), Attempts: attempt,
				Error: err.Error(), Time: time.Now().UTC(), Event: *ev}
			for {
				derr := r.dl.append(dl)
				if derr == nil {
					break
				}
				// Never advance past an event that is neither delivered nor
				// recorded: keep trying to record it.
				log.Error("writing dead letter", "err", derr)
				select {
				case <-ctx.Done():
					return false
				case <-time.After(r.d.BaseBackoff):
				}
			}
			metricDeadLetters.WithLabelValues(r.name).Inc()
			log.Warn("event dead-lettered", "attempts", attempt, "err", err)
			return true
		}
		metricDelivered.WithLabelValues(r.name, "retry").Inc()
		wait := r.d.backoff(attempt, err)
		log.Info("delivery failed; will retry", "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// MinCursor is the lowest durable cursor of the dispatcher's sinks (disabled
// ones included): cmd may trim the journal up to it (Store.TrimJournal)
// once other consumers agree.
func (d *Dispatcher) MinCursor() (uint64, error) {
	var lowest uint64
	for i, name := range d.order {
		c, err := d.Store.Cursor(CursorName(name))
		if err != nil {
			return 0, err
		}
		if i == 0 || c < lowest {
			lowest = c
		}
	}
	return lowest, nil
}
