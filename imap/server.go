// Package imap is Lemonvox's IMAP server engine: IMAP4rev2 (RFC 9051) and
// IMAP4rev1 (RFC 3501) with the Lemonade extensions, over the vmstore store.
//
// The wire codec lives in imap/wire; go-imap/v2's imap package supplies the
// vocabulary types (sequence sets) and its imapclient drives the tests.
//
// # Structure
//
//   - server.go: Server (exported config fields, Initialize/Close),
//     listeners (plaintext with STARTTLS, implicit TLS).
//   - conn.go: one goroutine per connection, the command loop and the
//     recover at the command boundary that maps the three error kinds of
//     errors.go to BAD/NO.
//   - commands.go: the command table (name -> handler, allowed states) in one
//     place; capability.go: capabilities, each registered by the file that
//     implements it.
//   - cmd_<name>.go: one file per command or command family.
//   - view.go: the selected mailbox as this session sees it, and the
//     processing of store hub events into EXISTS/EXPUNGE/VANISHED/FETCH.
//
// # Implementation notes
//
//   - A session's view of the selected mailbox is a sorted slice of UIDs
//     (sequence number = index + 1). Changes by others arrive from the store's
//     hub after each commit; they are queued and applied to the view only when
//     they are sent, so sequence numbers never change under the client: new
//     messages and flag changes at every command end (and at once during
//     IDLE), expunges only where RFC 9051 s7.5.1 allows (not during FETCH,
//     STORE or SEARCH by sequence number).
//   - The session subscribes to the hub before it reads a mailbox, so no
//     change is missed; events whose effect is already in what was read are
//     recognised and dropped (UIDs at or below the highest known UID, expunges
//     of unknown UIDs). A session that falls behind the hub's limit
//     resynchronises by re-reading the mailbox.
//   - Changes a session makes itself are answered by the command that made
//     them; their hub events are recognised by modseq and not reported twice.
//   - Message content is served from the store's cached MIME structure
//     (vmstore.Part offsets) and streamed from the blob reader: BODY[] of a
//     voice message is copied from the store to the socket, never held whole.
//   - The connection never writes while the store holds a lock: handlers call
//     the store, get results, then write.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Defaults of the Server fields.
const (
	DefaultIdleTimeout    = 30 * time.Minute // RFC 9051 s5.4 minimum for authenticated
	DefaultPreAuthTimeout = 60 * time.Second
	DefaultAppendLimit    = 64 << 20
	maxBadCommands        = 10
)

// Server is the IMAP service. Set the fields, call Initialize, and Close to
// stop. Addresses may use port 0; the bound addresses are then reported by
// PlainAddr and TLSAddrBound.
type Server struct {
	// Store is the message store. Required.
	Store *vmstore.Store
	// Addr is the plaintext listener (STARTTLS offered when TLSConfig is
	// set), e.g. "127.0.0.1:1143". Empty disables it.
	Addr string
	// TLSAddr is the implicit-TLS listener (RFC 8314), e.g. ":993". Empty
	// disables it.
	TLSAddr string
	// TLSConfig is the certificate configuration for STARTTLS and TLSAddr.
	TLSConfig *tls.Config
	// AllowInsecureAuth permits LOGIN and AUTHENTICATE PLAIN without TLS
	// from non-loopback addresses. Loopback clients may always use them.
	AllowInsecureAuth bool
	// AppendLimit bounds one APPEND literal (RFC 7889); 0 means 64 MiB.
	AppendLimit int64
	// IdleTimeout ends authenticated connections silent that long; 0 means
	// 30 minutes. PreAuthTimeout is the same before authentication; 0 means
	// one minute.
	IdleTimeout    time.Duration
	PreAuthTimeout time.Duration
	// AuthLimiter limits failed authentications; nil means the default
	// limits (see NewAuthLimiter).
	AuthLimiter *AuthLimiter
	// Logger receives the logs; nil means slog.Default.
	Logger *slog.Logger
	// SpoolDir holds APPEND literals above 1 MiB until they are stored;
	// empty means os.TempDir.
	SpoolDir string
	// Hostname is used in the greeting; empty means "Lemonvox".
	Hostname string

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	lns      []net.Listener
	conns    map[*conn]struct{}
	plainLn  net.Listener
	tlsLn    net.Listener
	nextConn atomic.Uint64
}

// Initialize validates the configuration, opens the listeners and starts
// accepting connections.
func (s *Server) Initialize() error {
	if s.Store == nil {
		return ErrNoStore
	}
	if s.Addr == "" && s.TLSAddr == "" {
		return ErrNoListener
	}
	if s.TLSAddr != "" && s.TLSConfig == nil {
		return ErrTLSConfig
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.AuthLimiter == nil {
		s.AuthLimiter = NewAuthLimiter()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.conns = map[*conn]struct{}{}
	if s.Addr != "" {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return err
		}
		s.plainLn = ln
		s.lns = append(s.lns, ln)
	}
	if s.TLSAddr != "" {
		ln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.tlsLn = ln
		s.lns = append(s.lns, ln)
	}
	if s.plainLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.plainLn, false)
	}
	if s.tlsLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.tlsLn, true)
	}
	s.Logger.Info("imap listening", "addr", s.PlainAddr(), "tlsaddr", s.TLSAddrBound())
	return nil
}

// PlainAddr returns the bound plaintext address, or "".
func (s *Server) PlainAddr() string {
	if s.plainLn == nil {
		return ""
	}
	return s.plainLn.Addr().String()
}

// TLSAddrBound returns the bound implicit-TLS address, or "".
func (s *Server) TLSAddrBound() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Close stops accepting, ends every connection and waits for them.
func (s *Server) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.netConn().Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop(ln net.Listener, implicitTLS bool) {
	defer s.wg.Done()
	label := "plain"
	if implicitTLS {
		label = "tls"
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off, as net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.Logger.Warn("imap accept", "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		metricConnections.WithLabelValues(label).Inc()
		if implicitTLS {
			nc = tls.Server(nc, s.TLSConfig)
		}
		c := newConn(s, nc, implicitTLS)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Server) preAuthTimeout() time.Duration {
	if s.PreAuthTimeout > 0 {
		return s.PreAuthTimeout
	}
	return DefaultPreAuthTimeout
}

func (s *Server) appendLimit() int64 {
	if s.AppendLimit > 0 {
		return s.AppendLimit
	}
	return DefaultAppendLimit
}
