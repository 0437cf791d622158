// Package netlimit wraps the appliance's stream listeners (IMAP, SIP TCP and
// TLS, and later the others) with what every listener needs and none should
// write itself:
//
//   - an Accept that survives temporary errors (EMFILE, ENFILE, ENOBUFS,
//     ENOMEM, ECONNABORTED): it backs off (5 ms doubling to 1 s) and retries
//     instead of returning, so a library's accept loop that stops on the
//     first error (sipgo's does) keeps running; while it fails the listener
//     reports itself as not accepting (Registry.Status, /healthz);
//   - connection limits per listener and per source address (networks in
//     Exempt are not limited per source), and a budget of descriptors
//     shared by every listener of a Registry so that a reserve stays free
//     for the store, /healthz and the admin API; a connection beyond a
//     limit gets the listener's refusal (Reject: IMAP "* BYE
//     [UNAVAILABLE]", SIP 503 with Retry-After) and is closed;
//   - deadlines: FirstDeadline bounds the time from accept until the
//     protocol calls Activate (a TLS handshake and a first valid message),
//     IdleTimeout bounds each read after it.
//
// The package imports nothing of ours.
package netlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricOpen = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lemonvox_listener_connections_open",
		Help: "Connections open, by listener.",
	}, []string{"listener"})
	metricRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_listener_refused_total",
		Help: "Connections refused, by listener and reason (listener, source, budget).",
	}, []string{"listener", "reason"})
	metricAcceptErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_listener_accept_errors_total",
		Help: "Temporary accept errors (EMFILE...) retried, by listener.",
	}, []string{"listener"})
	metricTimeouts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_listener_timeouts_total",
		Help: "Connections closed by a deadline, by listener and kind (first, idle).",
	}, []string{"listener", "kind"})
)

// Config configures one listener; zero values mean no limit.
type Config struct {
	// Name identifies the listener in /healthz, metrics and logs.
	Name string
	// MaxConns bounds the listener's open connections.
	MaxConns int
	// MaxPerSource bounds the open connections from one IP address, except
	// for addresses in Exempt.
	MaxPerSource int
	Exempt       []netip.Prefix
	// FirstDeadline is the time a connection has, from accept, until the
	// protocol calls Activate on it; IdleTimeout bounds each read after
	// Activate. A connection that misses either is closed (its reader sees
	// io.EOF).
	FirstDeadline, IdleTimeout time.Duration
	// Reject, if set, writes the refusal to a connection beyond a limit,
	// on its own goroutine, before the connection is closed; it has
	// RejectTimeout (default 2 s) to do so.
	Reject        func(net.Conn)
	RejectTimeout time.Duration
	// Registry, if set, lists the listener for health reports and applies
	// its descriptor budget.
	Registry *Registry
	Logger   *slog.Logger
}

// Listener is a net.Listener with limits; see the package doc.
type Listener struct {
	inner net.Listener
	cfg   Config

	closed  chan struct{}
	closeMu sync.Once

	mu        sync.Mutex
	open      int
	perSource map[netip.Addr]int
	accepting bool
	lastErr   error
	since     time.Time
	stopped   bool

	rejecting atomic.Int32
}

// Wrap returns ln with the limits of cfg.
func Wrap(ln net.Listener, cfg Config) *Listener {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RejectTimeout <= 0 {
		cfg.RejectTimeout = 2 * time.Second
	}
	l := &Listener{inner: ln, cfg: cfg, closed: make(chan struct{}), perSource: map[netip.Addr]int{},
		accepting: true, since: time.Now()}
	if cfg.Registry != nil {
		cfg.Registry.add(l)
	}
	metricOpen.WithLabelValues(cfg.Name).Set(0)
	return l
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close implements net.Listener.
func (l *Listener) Close() error {
	l.closeMu.Do(func() {
		close(l.closed)
		if l.cfg.Registry != nil {
			l.cfg.Registry.remove(l)
		}
	})
	return l.inner.Close()
}

// Temporary reports whether an accept error is worth retrying: the process
// or system is out of descriptors or buffers, or a client gave up during
// the handshake.
func Temporary(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED,
			syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Accept implements net.Listener: it returns the next connection within
// the limits, or an error only when the listener is closed or fails for
// good.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) || !Temporary(err) {
				l.setState(false, err, true)
				return nil, err
			}
			metricAcceptErrors.WithLabelValues(l.cfg.Name).Inc()
			if delay == 0 {
				delay = 5 * time.Millisecond
				l.cfg.Logger.Warn("accept failing; retrying with backoff", "listener", l.cfg.Name, "err", err)
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			l.setState(false, err, false)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		if delay != 0 {
			l.cfg.Logger.Info("accepting again", "listener", l.cfg.Name)
			delay = 0
		}
		l.setState(true, nil, false)
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

func (l *Listener) setState(ok bool, err error, stopped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok != l.accepting {
		l.since = time.Now()
	}
	l.accepting, l.lastErr, l.stopped = ok, err, stopped
}

// admit counts the connection in, or refuses it.
func (l *Listener) admit(c net.Conn) *Conn {
	src := addrOf(c.RemoteAddr())
	exempt := false
	for _, p := range l.cfg.Exempt {
		if p.Contains(src) {
			exempt = true
			break
		}
	}
	reason := ""
	l.mu.Lock()
	switch {
	case l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns:
		reason = "listener"
	case !exempt && l.cfg.MaxPerSource > 0 && l.perSource[src] >= l.cfg.MaxPerSource:
		reason = "source"
	case l.cfg.Registry != nil && !l.cfg.Registry.take():
		reason = "budget"
	}
	if reason == "" {
		l.open++
		l.perSource[src]++
	}
	l.mu.Unlock()
	if reason != "" {
		metricRefused.WithLabelValues(l.cfg.Name, reason).Inc()
		l.refuse(c)
		return nil
	}
	metricOpen.WithLabelValues(l.cfg.Name).Inc()
	lc := &Conn{Conn: c, l: l, src: src, accepted: time.Now()}
	if l.cfg.FirstDeadline > 0 {
		c.SetReadDeadline(lc.accepted.Add(l.cfg.FirstDeadline))
	}
	return lc
}

// refuse answers and closes a connection beyond a limit. Refusals run on
// their own goroutines, at most 64 at a time; beyond, the connection is
// just closed.
func (l *Listener) refuse(c net.Conn) {
	if l.cfg.Reject == nil || l.rejecting.Add(1) > 64 {
		if l.cfg.Reject != nil {
			l.rejecting.Add(-1)
		}
		c.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer c.Close()
		c.SetDeadline(time.Now().Add(l.cfg.RejectTimeout))
		l.cfg.Reject(c)
	}()
}

func (l *Listener) release(src netip.Addr) {
	l.mu.Lock()
	l.open--
	if n := l.perSource[src] - 1; n > 0 {
		l.perSource[src] = n
	} else {
		delete(l.perSource, src)
	}
	l.mu.Unlock()
	if l.cfg.Registry != nil {
		l.cfg.Registry.give()
	}
	metricOpen.WithLabelValues(l.cfg.Name).Dec()
}

// Open is the number of connections open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Status is a listener's health.
type Status struct {
	Name      string    `json:"name"`
	Addr      string    `json:"addr"`
	Accepting bool      `json:"accepting"`
	Error     string    `json:"error,omitempty"`
	Since     time.Time `json:"since"`
	Open      int       `json:"open"`
	Max       int       `json:"max,omitempty"`
	// Full: at MaxConns, new connections are refused (not a failure).
	Full bool `json:"full,omitempty"`
}

// Status reports the listener's health: Accepting is false while accepts
// fail (and for good after a permanent failure).
func (l *Listener) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Name: l.cfg.Name, Addr: l.inner.Addr().String(), Accepting: l.accepting, Since: l.since, Open: l.open, Max: l.cfg.MaxConns,
		Full: l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns}
	if l.lastErr != nil {
		st.Error = l.lastErr.Error()
	}
	return st
}

// Conn is an admitted connection.
type Conn struct {
	net.Conn
	l        *Listener
	src      netip.Addr
	accepted time.Time
	active   atomic.Bool
	once     sync.Once
}

// Activate ends the first-message deadline: the peer proved it speaks the
// protocol. From then on IdleTimeout applies to each read.
func (c *Conn) Activate() {
	if c.active.Swap(true) {
		return
	}
	if c.l.cfg.IdleTimeout <= 0 {
		c.Conn.SetReadDeadline(time.Time{})
	}
}

// Unwrap returns the underlying connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Read implements net.Conn, applying the deadlines of the listener.
func (c *Conn) Read(b []byte) (int, error) {
	idle := c.l.cfg.IdleTimeout
	if idle > 0 && c.active.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	n, err := c.Conn.Read(b)
	if err != nil && (c.l.cfg.FirstDeadline > 0 || idle > 0) && errors.Is(err, os.ErrDeadlineExceeded) {
		kind := "idle"
		if !c.active.Load() {
			kind = "first"
		}
		metricTimeouts.WithLabelValues(c.l.cfg.Name, kind).Inc()
		c.Close()
		return n, io.EOF
	}
	return n, err
}

// Close implements net.Conn; the connection leaves the counts once.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Registry lists listeners for health reports and shares a descriptor
// budget among them.
type Registry struct {
	// MaxOpen bounds the connections of all listeners together; 0 means
	// no bound. Set it before the listeners are wrapped.
	MaxOpen int

	mu   sync.Mutex
	open int
	ls   map[*Listener]struct{}
	hs   map[*Health]struct{}
}

func (r *Registry) add(l *Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ls == nil {
		r.ls = map[*Listener]struct{}{}
	}
	r.ls[l] = struct{}{}
}

func (r *Registry) remove(l *Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ls, l)
}

func (r *Registry) take() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.MaxOpen > 0 && r.open >= r.MaxOpen {
		return false
	}
	r.open++
	return true
}

func (r *Registry) give() {
	r.mu.Lock()
	r.open--
	r.mu.Unlock()
}

// Status reports every listener.
func (r *Registry) Status() []Status {
	r.mu.Lock()
	ls := make([]*Listener, 0, len(r.ls))
	for l := range r.ls {
		ls = append(ls, l)
	}
	hs := make([]*Health, 0, len(r.hs))
	for h := range r.hs {
		hs = append(hs, h)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(ls)+len(hs))
	for _, l := range ls {
		out = append(out, l.Status())
	}
	for _, h := range hs {
		out = append(out, h.status())
	}
	return out
}

// NotAccepting reports the listeners whose accepts fail.
func (r *Registry) NotAccepting() []Status {
	var out []Status
	for _, s := range r.Status() {
		if !s.Accepting {
			out = append(out, s)
		}
	}
	return out
}

// Health is the state of a listener that has no accept loop (a UDP socket):
// its reader reports failures and recoveries; the Registry shows it with
// the stream listeners.
type Health struct {
	r    *Registry
	name string
	addr string

	mu    sync.Mutex
	ok    bool
	err   error
	since time.Time
}

// Watch adds a listener without accept loop to the registry (nil-safe:
// without a registry it only tracks itself).
func (r *Registry) Watch(name, addr string) *Health {
	h := &Health{r: r, name: name, addr: addr, ok: true, since: time.Now()}
	if r != nil {
		r.mu.Lock()
		if r.hs == nil {
			r.hs = map[*Health]struct{}{}
		}
		r.hs[h] = struct{}{}
		r.mu.Unlock()
	}
	return h
}

// Set records whether the listener works (err nil) or fails.
func (h *Health) Set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok := err == nil; ok != h.ok {
		h.ok, h.since = ok, time.Now()
	}
	h.err = err
}

// Close removes it from the registry.
func (h *Health) Close() {
	if h.r == nil {
		return
	}
	h.r.mu.Lock()
	delete(h.r.hs, h)
	h.r.mu.Unlock()
}

func (h *Health) status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Status{Name: h.name, Addr: h.addr, Accepting: h.ok, Since: h.since}
	if h.err != nil {
		st.Error = h.err.Error()
	}
	return st
}
