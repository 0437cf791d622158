// Package authlimit is the one authentication limiter of the appliance:
// IMAP LOGIN/AUTHENTICATE, the admin API's token, SIP digest and (later)
// submission all ask it before checking a credential and tell it the result.
//
// Rules:
//
//   - Failures are counted per source address and per (account, source).
//     Past a few free failures, the failure response is delayed, and the
//     next attempt from that source (or pair) waits, by a delay that doubles
//     with each further failure up to MaxDelay. A source that keeps failing
//     is slowed, never locked out: a sequential client always gets its next
//     attempt checked within MaxDelay.
//   - What other sources do never refuses or delays a correct credential:
//     there is no account-wide lockout, so guessing at an account from
//     elsewhere cannot lock its subscriber out. Failures counted against
//     the account from everywhere only show in the metrics and the log.
//   - Attempts from one offending source are serialised: once a source (or
//     pair) has failed, its attempts in flight count as failures to come,
//     parallel attempts queue one delay apart, and a source that queues
//     more than MaxQueue delays ahead is answered "try later" at once
//     (ErrThrottled), without its credential being checked. A source
//     without failures is not held back (many phones behind one NAT).
//   - Trusted networks are exempt.
//   - Memory is bounded: at most MaxEntries keys are tracked (least recently
//     used are forgotten first) and a key is forgotten Forget after its last
//     failure.
//
// The package imports nothing of ours; front ends create one Limiter (cmd
// wires a single one for every protocol) and call Begin, then Failed or
// Succeeded on the returned Attempt.
package authlimit

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrThrottled means the source has too many attempts queued: answer
// "try later" (IMAP NO [UNAVAILABLE], HTTP 429, SIP 503) without checking.
var ErrThrottled = errors.New("authlimit: too many attempts from this source; try later")

// Defaults of the Config fields.
const (
	DefaultFreeFailures = 3
	DefaultBaseDelay    = 500 * time.Millisecond
	DefaultMaxDelay     = 30 * time.Second
	DefaultMaxQueue     = 4
	DefaultForget       = 15 * time.Minute
	DefaultMaxEntries   = 100000
)

var (
	metricAttempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_auth_attempts_total",
		Help: "Authentication attempts by service and result (ok, fail, throttled, trusted_ok, trusted_fail).",
	}, []string{"service", "result"})
	metricDelay = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lemonvox_auth_delay_seconds",
		Help:    "Delay imposed on an authentication attempt or failure response, by service.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64},
	}, []string{"service"})
	metricTracked = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_auth_tracked_keys",
		Help: "Sources, (account, source) pairs and accounts the authentication limiter tracks.",
	})
	metricEvicted = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_auth_evicted_keys_total",
		Help: "Keys the authentication limiter forgot early because it reached MaxEntries.",
	})
)

// Config is the limiter's configuration; zero fields take the defaults.
type Config struct {
	// FreeFailures per source and per (account, source) before delays start;
	// default 3. A negative value means none.
	FreeFailures int
	// BaseDelay is the first delay; each further failure doubles it up to
	// MaxDelay. Defaults 500 ms and 30 s.
	BaseDelay, MaxDelay time.Duration
	// MaxQueue is how many delays ahead one source may queue attempts
	// before it is answered ErrThrottled; default 4.
	MaxQueue int
	// Forget drops a key this long after its last failure; default 15 min.
	Forget time.Duration
	// MaxEntries bounds the tracked keys; default 100,000.
	MaxEntries int
	// Trusted networks are never delayed (the operator's and PBX networks).
	Trusted []netip.Prefix
	// Now and Sleep are the clock; nil means the real one (tests set them).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Limiter is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu  sync.Mutex
	lru *list.List // of *entry, most recently used at the front
	m   map[string]*list.Element
}

type entry struct {
	key      string
	fails    int
	inflight int       // attempts begun and not yet reported
	last     time.Time // last failure
	until    time.Time // attempts from this key wait until then
}

// New returns a limiter; zero Config fields take the defaults.
func New(cfg Config) *Limiter {
	if cfg.FreeFailures == 0 {
		cfg.FreeFailures = DefaultFreeFailures
	} else if cfg.FreeFailures < 0 {
		cfg.FreeFailures = 0
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		cfg.MaxDelay = cfg.BaseDelay
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.Forget <= 0 {
		cfg.Forget = DefaultForget
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Limiter{cfg: cfg, lru: list.New(), m: map[string]*list.Element{}}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Trusted reports whether the address is in a trusted network.
func (l *Limiter) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Attempt is one authentication in progress; report its outcome once.
type Attempt struct {
	l       *Limiter
	ctx     context.Context
	service string
	src     netip.Addr
	account string
	trusted bool
	done    bool
	entries []*entry // the keys it holds in flight
}

func srcKey(a netip.Addr) string               { return "s\x00" + a.String() }
func pairKey(acct string, a netip.Addr) string { return "p\x00" + acct + "\x00" + a.String() }
func acctKey(acct string) string               { return "a\x00" + acct }

// Begin admits an attempt from src for account ("" when there is no account,
// as for the admin token), waiting first if that source or pair is being
// slowed down. It returns ErrThrottled when the source has too many
// attempts queued, or the context's error if it ends while waiting.
func (l *Limiter) Begin(ctx context.Context, service string, src netip.Addr, account string) (*Attempt, error) {
	a := &Attempt{l: l, ctx: ctx, service: service, src: src.Unmap(), account: account}
	if l.Trusted(a.src) {
		a.trusted = true
		return a, nil
	}
	now := l.cfg.Now()
	l.mu.Lock()
	// The attempt's slot is after any slot already reserved on its keys.
	// Attempts in flight from a key that has failed count as failures
	// to come, so that a burst of parallel attempts from an offending
	// source queues instead of all being checked at once. (A source
	// without failures is not held back: many phones behind one NAT may
	// log in together.)
	n := 0
	start := now
	for _, k := range a.keys(false) {
		e := l.get(k, now, true)
		a.entries = append(a.entries, e)
		pending := e.fails
		if e.fails > 0 {
			pending += e.inflight
		}
		n = max(n, pending)
		if e.until.After(start) {
			start = e.until
		}
	}
	wait := start.Sub(now)
	if n >= l.cfg.FreeFailures {
		step := l.delay(n + 1)
		if wait > time.Duration(l.cfg.MaxQueue)*step {
			a.entries = nil
			l.mu.Unlock()
			metricAttempts.WithLabelValues(service, "throttled").Inc()
			return nil, ErrThrottled
		}
		for _, e := range a.entries {
			e.until = start.Add(step)
		}
	}
	for _, e := range a.entries {
		e.inflight++
	}
	l.mu.Unlock()
	if wait > 0 {
		metricDelay.WithLabelValues(service).Observe(wait.Seconds())
		if err := l.cfg.Sleep(ctx, wait); err != nil {
			a.release()
			a.done = true
			return nil, err
		}
	}
	return a, nil
}

// release ends the attempt's time in flight.
func (a *Attempt) release() {
	a.l.mu.Lock()
	for _, e := range a.entries {
		if e.inflight > 0 {
			e.inflight--
		}
	}
	a.entries = nil
	a.l.mu.Unlock()
}

// keys are the limited keys of the attempt; withAccount adds the
// account-wide key (counted, never enforced).
func (a *Attempt) keys(withAccount bool) []string {
	ks := []string{srcKey(a.src)}
	if a.account != "" {
		ks = append(ks, pairKey(a.account, a.src))
		if withAccount {
			ks = append(ks, acctKey(a.account))
		}
	}
	return ks
}

// delay is the delay after n failures of a key.
func (l *Limiter) delay(n int) time.Duration {
	over := n - l.cfg.FreeFailures
	if over <= 0 {
		return 0
	}
	d := l.cfg.BaseDelay
	for i := 1; i < over && d < l.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxDelay)
}

// Failed records a failed attempt and then waits out the failure delay
// before returning, so the caller's failure response goes out late. It
// returns the delay it imposed.
func (a *Attempt) Failed() time.Duration {
	if a == nil || a.done {
		return 0
	}
	a.done = true
	if a.trusted {
		metricAttempts.WithLabelValues(a.service, "trusted_fail").Inc()
		return 0
	}
	metricAttempts.WithLabelValues(a.service, "fail").Inc()
	a.release()
	l := a.l
	now := l.cfg.Now()
	l.mu.Lock()
	var d time.Duration
	for _, k := range a.keys(true) {
		e := l.get(k, now, true)
		e.fails++
		e.last = now
		if k[0] == 'a' {
			continue // account-wide: counted only
		}
		kd := l.delay(e.fails)
		if t := now.Add(kd); t.After(e.until) {
			e.until = t
		}
		d = max(d, kd)
	}
	l.mu.Unlock()
	if d > 0 {
		metricDelay.WithLabelValues(a.service).Observe(d.Seconds())
		_ = l.cfg.Sleep(a.ctx, d)
	}
	return d
}

// Succeeded records a correct credential: the (account, source) pair is
// forgiven. The source's own count stays (one valid account must not
// unlock guessing at others from the same address), and so does the
// account-wide count.
func (a *Attempt) Succeeded() {
	if a == nil || a.done {
		return
	}
	a.done = true
	if a.trusted {
		metricAttempts.WithLabelValues(a.service, "trusted_ok").Inc()
		return
	}
	metricAttempts.WithLabelValues(a.service, "ok").Inc()
	a.release()
	if a.account == "" {
		return
	}
	l := a.l
	l.mu.Lock()
	if el := l.m[pairKey(a.account, a.src)]; el != nil {
		l.remove(el)
	}
	l.mu.Unlock()
}

// Abandon ends an attempt that neither proved nor disproved a credential
// (a URLAUTH URL refused as expired or for the wrong role before its
// token was looked at): it counts as neither a failure nor a success.
func (a *Attempt) Abandon() {
	if a == nil || a.done {
		return
	}
	a.done = true
	if !a.trusted {
		a.release()
	}
}

// Failures reports the failures counted for a source, an (account, source)
// pair and an account from everywhere (metrics, tests, the admin API).
func (l *Limiter) Failures(src netip.Addr, account string) (source, pair, acct int) {
	now := l.cfg.Now()
	src = src.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(srcKey(src), now, false); e != nil {
		source = e.fails
	}
	if account != "" {
		if e := l.get(pairKey(account, src), now, false); e != nil {
			pair = e.fails
		}
		if e := l.get(acctKey(account), now, false); e != nil {
			acct = e.fails
		}
	}
	return
}

// Len is the number of tracked keys.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// get returns the live entry of key, creating it if create; expired
// entries are dropped. Called with l.mu held.
func (l *Limiter) get(key string, now time.Time, create bool) *entry {
	if el := l.m[key]; el != nil {
		e := el.Value.(*entry)
		if now.Sub(e.last) < l.cfg.Forget || e.until.After(now) {
			l.lru.MoveToFront(el)
			return e
		}
		l.remove(el)
	}
	if !create {
		return nil
	}
	// Drop expired entries from the back, then the least recently used
	// if still full.
	for l.lru.Len() > 0 {
		back := l.lru.Back()
		e := back.Value.(*entry)
		if now.Sub(e.last) >= l.cfg.Forget && !e.until.After(now) {
			l.remove(back)
			continue
		}
		if l.lru.Len() >= l.cfg.MaxEntries {
			l.remove(back)
			metricEvicted.Inc()
			continue
		}
		break
	}
	e := &entry{key: key, last: now}
	l.m[key] = l.lru.PushFront(e)
	metricTracked.Inc()
	return e
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.m, el.Value.(*entry).key)
	l.lru.Remove(el)
	metricTracked.Dec()
}

// AddrOf extracts the IP address of a net.Addr or a "host:port" string
// (the zero Addr when there is none).
func AddrOf(remote any) netip.Addr {
	switch r := remote.(type) {
	case *net.TCPAddr:
		a, _ := netip.AddrFromSlice(r.IP)
		return a.Unmap()
	case *net.UDPAddr:
		a, _ := netip.AddrFromSlice(r.IP)
		return a.Unmap()
	case netip.AddrPort:
		return r.Addr().Unmap()
	case net.Addr:
		return AddrOf(r.String())
	case string:
		if ap, err := netip.ParseAddrPort(r); err == nil {
			return ap.Addr().Unmap()
		}
		if a, err := netip.ParseAddr(r); err == nil {
			return a.Unmap()
		}
		if h, _, err := net.SplitHostPort(r); err == nil {
			if a, err := netip.ParseAddr(h); err == nil {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}
