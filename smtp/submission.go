package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Submission is the message submission listener (RFC 6409): STARTTLS,
// AUTH PLAIN, SIZE, 8BITMIME, PIPELINING, ENHANCEDSTATUSCODES, CHUNKING
// and BINARYMIME (RFC 3030), BURL (RFC 4468) and FUTURERELEASE (RFC 4865).
// It runs its own command loop: BURL is a command go-smtp's server cannot
// be taught.
//
// Recipients in LocalDomains (or without a domain) are accounts of the
// store and get the message through the deposit path; others go to the
// smarthost (Relay), and without one they are refused at RCPT. The sender
// gets a copy in its Sent mailbox. A held message (HOLDFOR/HOLDUNTIL)
// waits in the store's queue, visible in the sender's Outbox, until the
// scheduler (queue.go) releases it.
//
// Set the exported fields, then call Start (the queue scheduler) and Serve.
type Submission struct {
	Store *vmstore.Store
	// Hostname is the name in the greeting and in Received: fields.
	Hostname string
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth offers AUTH without TLS (tests, loopback only).
	AllowInsecureAuth bool
	// MaxMessageBytes bounds a message (SIZE); 0 means 64 MiB.
	MaxMessageBytes int64
	// MaxRecipients per transaction; 0 means 100.
	MaxRecipients int
	// MaxHold is the longest FUTURERELEASE hold; 0 means 7 days, < 0
	// switches FUTURERELEASE off.
	MaxHold time.Duration
	// LocalDomains are the domains whose recipients are local accounts
	// (compared case-insensitively). Hostname is always one.
	LocalDomains []string
	// SendAs lists, per account name, the further addresses it may use
	// in MAIL FROM besides its own (see maySendAs); "@domain" admits
	// every address of the domain.
	SendAs map[string][]string
	// AuthLimiter is the shared authentication limiter (nil: a private one).
	AuthLimiter *authlimit.Limiter
	// Fetcher fetches BURL URLs; nil switches BURL off.
	Fetcher URLFetcher
	// Relay is the smarthost for non-local recipients; nil refuses them.
	Relay *Relay
	// Deliver stores a message for local users (nil: the store's deposit
	// path, one user after the other). It returns a result per user.
	Deliver func(users []string, body io.ReaderAt, size int64) ([]error, error)
	// SentMailbox gets the sender's copy ("" means "Sent"; "-" none).
	SentMailbox string
	// SpoolDir holds messages while they arrive ("" means os.TempDir()).
	SpoolDir string
	// CommandTimeout bounds the wait for a command line and DATA/BDAT
	// bytes (0 means 5 minutes); GreetingTimeout the first command
	// (0: 1 minute).
	CommandTimeout, GreetingTimeout time.Duration
	// RetryInterval is the wait before another smarthost attempt (0: 5
	// minutes); MaxRetryAge ends the attempts with a bounce (0: 2 days).
	RetryInterval, MaxRetryAge time.Duration
	Logger                     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[*subConn]struct{}
	wg     sync.WaitGroup
	queue  *scheduler
	closed bool
}

const listenerName = "submission"

var (
	metricSubmissions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_submission_messages_total",
		Help: "Messages submitted, by outcome (delivered, held, refused, refused_sender).",
	}, []string{"outcome"})
	metricBURL = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_submission_burl_total",
		Help: "BURL fetches, by source (local, remote, any) and result (ok, error, badtoken, throttled).",
	}, []string{"source", "result"})
	metricBURLBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_submission_burl_bytes_total",
		Help: "Bytes fetched by BURL into submitted messages.",
	})
	metricQueue = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_submission_queue_total",
		Help: "Queue events: held, released, cancelled, retried, bounced.",
	}, []string{"event"})
)

func (s *Submission) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lns = map[net.Listener]struct{}{}
	s.conns = map[*subConn]struct{}{}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Hostname == "" {
		s.Hostname = "localhost"
	}
	if s.AuthLimiter == nil {
		s.AuthLimiter = authlimit.New(authlimit.Config{})
	}
	s.queue = &scheduler{s: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *Submission) maxBytes() int64 {
	if s.MaxMessageBytes > 0 {
		return s.MaxMessageBytes
	}
	return 64 << 20
}

func (s *Submission) maxRcpts() int {
	if s.MaxRecipients > 0 {
		return s.MaxRecipients
	}
	return 100
}

func (s *Submission) maxHold() time.Duration {
	switch {
	case s.MaxHold < 0:
		return 0
	case s.MaxHold == 0:
		return 7 * 24 * time.Hour
	}
	return s.MaxHold
}

func (s *Submission) sentMailbox() string {
	if s.SentMailbox == "" {
		return "Sent"
	}
	return s.SentMailbox
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// isLocalDomain reports whether recipients of dom are local accounts.
func (s *Submission) isLocalDomain(dom string) bool {
	if dom == "" || strings.EqualFold(dom, s.Hostname) {
		return true
	}
	return slices.ContainsFunc(s.LocalDomains, func(d string) bool { return strings.EqualFold(d, dom) })
}

// maySendAs reports whether the authenticated account user may submit
// with reverse-path from (RFC 6409 s6.1: the submission server checks
// that the sender is one the authenticated identity may use; refused
// with 553 5.7.1). Allowed: the null reverse-path (nothing can be sent
// back, so nobody is impersonated), the account's name in a local domain
// (or without a domain), the account's e-mail address (its Email option)
// and what SendAs lists for it.
func (s *Submission) maySendAs(user, from string) (bool, error) {
	if from == "" {
		return true, nil
	}
	local, dom := splitAddress(from)
	if s.isLocalDomain(dom) && vmstore.FoldUserName(local) == user {
		return true, nil
	}
	for _, a := range s.SendAs[user] {
		if strings.EqualFold(a, from) || strings.HasPrefix(a, "@") && strings.EqualFold(a[1:], dom) {
			return true, nil
		}
	}
	acct, err := s.Store.GetAccount(user)
	if err != nil {
		if errors.Is(err, vmstore.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return acct.Options.Email != "" && strings.EqualFold(acct.Options.Email, from), nil
}

// Start starts the queue scheduler: held messages are released at their
// time, including those held before a restart.
func (s *Submission) Start() {
	s.init()
	go s.queue.run(s.ctx)
}

// ListenAndServe listens on addr and serves in the background; it returns
// the listener (its address when addr has port 0).
func (s *Submission) ListenAndServe(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: submission: %w", err)
	}
	go s.Serve(ln)
	return ln, nil
}

// Serve accepts connections on ln until Close.
func (s *Submission) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		delay = 0
		c := newSubConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listeners, the scheduler and every connection (each
// gets 421 first when idle).
func (s *Submission) Close() error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.queue.wait()
	return nil
}

// spool is a message being received, kept in a temporary file.
type spool struct {
	f    *os.File
	size int64
	max  int64
	over bool // more than max arrived; the rest was discarded
}

func (s *Submission) newSpool() (*spool, error) {
	f, err := os.CreateTemp(s.SpoolDir, "submission-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // unlinked: gone with the process
	return &spool{f: f, max: s.maxBytes()}, nil
}

// Write appends; beyond max it counts but discards.
func (sp *spool) Write(b []byte) (int, error) {
	if sp.over || sp.size+int64(len(b)) > sp.max {
		sp.over = true
		sp.size += int64(len(b))
		return len(b), nil
	}
	n, err := sp.f.Write(b)
	sp.size += int64(n)
	return n, err
}

func (sp *spool) ReadAt(b []byte, off int64) (int, error) { return sp.f.ReadAt(b, off) }

func (sp *spool) reader() *io.SectionReader { return io.NewSectionReader(sp.f, 0, sp.size) }

func (sp *spool) close() {
	if sp != nil && sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
}
