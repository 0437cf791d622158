// Package imap is Lemonvox's IMAP server engine: IMAP4rev2 (RFC 9051) and
// IMAP4rev1 (RFC 3501) with the Lemonade extensions, over the vmstore store.
//
// The wire codec lives in imap/wire; go-imap/v2's imap package supplies the
// vocabulary types (sequence sets, search criteria) and its imapclient
// drives the tests.
//
// # Extensions
//
// STARTTLS/LOGINDISABLED, AUTH=PLAIN (RFC 4616), SASL-IR (RFC 4959),
// LITERAL+ (RFC 7888), ENABLE (RFC 5161), ID (RFC 2971), IDLE (RFC 2177),
// NAMESPACE (RFC 2342), UIDPLUS (RFC 4315), UNSELECT (RFC 3691), MOVE
// (RFC 6851), CHILDREN (RFC 3348), LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), BINARY
// (RFC 3516), MULTIAPPEND (RFC 3502), CATENATE (RFC 4469,
// cmd_catenate.go), APPENDLIMIT (RFC 7889), STATUS=SIZE
// (RFC 8438), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONDSTORE and
// QRESYNC (RFC 7162), COMPRESS=DEFLATE (RFC 4978), QUOTA (RFC 9208),
// METADATA (RFC 5464), NOTIFY (RFC 5465), SORT (RFC 5256), ESORT,
// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267), I18NLEVEL=1 (RFC 5255), and
// CONVERT (RFC 5259, cmd_convert.go), URLAUTH (RFC 4467), URLAUTH=BINARY
// (RFC 5524) and URL-PARTIAL (RFC 5550) with a URLResolver (cmd_urlauth.go).
//
// # Structure
//
//   - server.go: Server (exported config fields, Initialize/Close),
//     listeners (plaintext with STARTTLS, implicit TLS).
//   - conn.go: one goroutine per connection, the command loop and the
//     recover at the command boundary that maps the three error kinds of
//     errors.go to BAD/NO; the notifier goroutine that pushes changes
//     during IDLE and under NOTIFY.
//   - commands.go: the command table (name -> handler, allowed states) for
//     the base protocol in one place; capability.go: capabilities. Extension
//     files (cmd_compress.go, cmd_quota.go, cmd_metadata.go, cmd_notify.go,
//     cmd_sort.go, context.go, cmd_convert.go) register their commands,
//     capabilities and fetch items (registerFetch) in init functions.
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
//     IDLE or under NOTIFY), expunges only where RFC 9051 s7.5.1 allows (not
//     during FETCH, STORE or SEARCH by sequence number).
//   - SELECT subscribes to the hub, then reads a vmstore.Snapshot; hub events
//     with a journal sequence at or below the snapshot's are skipped. A
//     session that falls behind the hub's limit resynchronises by re-reading
//     the mailbox (and, under NOTIFY, reports NOTIFICATIONOVERFLOW).
//   - Changes a session makes itself are answered by the command that made
//     them; their hub events are recognised (by modseq, or because the UIDs
//     are gone from the view) and not reported twice.
//   - c.mu is held while a command runs; the notifier takes it to push, and
//     IDLE releases it while it waits for DONE. Nothing writes to the client
//     while the store holds a lock: handlers call the store, then write.
//   - Message content is served from the store's cached MIME structure
//     (vmstore.Part offsets) and streamed from the blob reader: BODY[] of a
//     voice message is copied from the store to the socket, never held whole.
//     BINARY decodes base64/quoted-printable on the fly (twice: once to
//     learn the size for the literal8 header).
//   - An idle session holds no read or write buffer (pooled, see
//     wire.Decoder.Park); what remains is its goroutines and session state.
//   - Limits: command line 64 KiB without literals, literals read into memory
//     1 MiB, APPEND literals AppendLimit (default 64 MiB; a command's
//     literals spooled to memory up to 1 MiB in all, else to files in
//     SpoolDir, at most AppendSpoolLimit), list nesting 32, ten
//     consecutive BAD replies end the connection, write deadline 5 minutes.
//   - Mailbox names are UTF-8 for IMAP4rev2 clients (ENABLE IMAP4rev2 or
//     UTF8=ACCEPT) and modified UTF-7 (RFC 3501 s5.1.3) otherwise.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Defaults of the Server fields.
const (
	DefaultIdleTimeout      = 30 * time.Minute // RFC 9051 s5.4 minimum for authenticated
	DefaultPreAuthTimeout   = 60 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAppendLimit      = 64 << 20
	maxBadCommands          = 10
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
	// 30 minutes. PreAuthTimeout is the time a connection has, from
	// connect, to authenticate, whatever it sends meanwhile (NOOPs do not
	// extend it); 0 means one minute.
	IdleTimeout    time.Duration
	PreAuthTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake (implicit TLS, STARTTLS);
	// 0 means 10 seconds.
	HandshakeTimeout time.Duration
	// MaxConns bounds each listener's connections and MaxConnsPerSource
	// those from one IP address (LimitExempt networks excepted); 0 means
	// no limit. Connections beyond get "* BYE [UNAVAILABLE]".
	MaxConns          int
	MaxConnsPerSource int
	LimitExempt       []netip.Prefix
	// Listeners, if set, reports the listeners' health and shares the
	// daemon's descriptor budget (netlimit).
	Listeners *netlimit.Registry
	// AuthLimiter slows down failed authentications (shared with the other
	// protocols); nil means a limiter of this server with the default
	// rules (authlimit.New).
	AuthLimiter *authlimit.Limiter
	// Logger receives the logs; nil means slog.Default.
	Logger *slog.Logger
	// SpoolDir holds APPEND literals beyond the first MiB of a command
	// until they are stored (spool.go); Initialize creates it and removes
	// what an earlier process left there. The daemon uses <data>/spool.
	// Empty means os.TempDir (nothing is removed there).
	SpoolDir string
	// AppendSpoolLimit bounds the octets of one APPEND command (all the
	// messages of a MULTIAPPEND); 0 means 4 x AppendLimit.
	AppendSpoolLimit int64
	// Hostname is used in the greeting; empty means "Lemonvox".
	Hostname string
	// Channel, if set, offers CHANNEL (cmd_channel.go): playback URLs.
	Channel *ChannelService
	// LiteralMinus advertises LITERAL- instead of LITERAL+:
	// non-synchronizing literals above 4096 octets are refused (RFC 7888
	// s5). The Lemonade profile (RFC 5550) asks for LITERAL+.
	LiteralMinus bool
	// URLResolver authorizes and resolves IMAP URLs: GENURLAUTH,
	// RESETKEY, URLFETCH (cmd_urlauth.go) and CATENATE URLs. Nil leaves
	// URLAUTH, URLAUTH=BINARY and URL-PARTIAL out.
	URLResolver *channel.Resolver
	// CatenateURLs, if set, opens the URLs of CATENATE parts instead of
	// ChannelURLs(URLResolver) (cmd_catenate.go); with neither, CATENATE
	// resolves absolute-path references in the session user's mailboxes
	// only.
	CatenateURLs URLOpener
	// AllowAnonymous offers SASL ANONYMOUS (RFC 4505) for URLFETCH of
	// "anonymous" URLs, as RFC 5616 media servers without an identity of
	// their own log in; such a session can do nothing else.
	AllowAnonymous bool

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	lns      []net.Listener
	conns    map[*conn]struct{}
	byAcct   map[uint64]map[*conn]struct{} // logged-in sessions by account ID
	unhook   func()                        // stops the account-deleted calls
	plainLn  net.Listener
	tlsLn    net.Listener
	nextConn atomic.Uint64
	// convCache keeps converted parts (CONVERT) for this server.
	convCache convLRU
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
		s.AuthLimiter = authlimit.New(authlimit.Config{})
	}
	if s.SpoolDir != "" {
		if err := clearSpool(s.SpoolDir); err != nil {
			return fmt.Errorf("imap: spool %s: %w", s.SpoolDir, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.conns = map[*conn]struct{}{}
	s.byAcct = map[uint64]map[*conn]struct{}{}
	s.unhook = s.Store.Hub().OnAccountDeleted(s.accountDeleted)
	if s.Addr != "" {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			s.unhook()
			return err
		}
		s.plainLn = s.limit(ln, "imap", false)
		s.lns = append(s.lns, s.plainLn)
	}
	if s.TLSAddr != "" {
		ln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			s.closeListeners()
			s.unhook()
			return err
		}
		s.tlsLn = s.limit(ln, "imaps", true)
		s.lns = append(s.lns, s.tlsLn)
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
	s.unhook()
	s.closeListeners()
	s.mu.Lock()
	// Sessions waiting for the client (between commands, in IDLE) are
	// told why (RFC 9051 s7.1.5); busy ones get a moment, then are closed.
	deadline := time.Now().Add(time.Second)
	for c := range s.conns {
		locked := c.mu.TryLock()
		for !locked && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			locked = c.mu.TryLock()
		}
		if locked {
			c.writeLine("* BYE server shutting down")
			c.flush()
			c.mu.Unlock()
		}
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
		s.wg.Add(1) // done by c.end, on whichever goroutine serves it then
		go c.serve()
	}
}

// limit wraps a listener with the connection limits (netlimit): retried
// accept errors, limits per listener and per source, and the refusal.
func (s *Server) limit(ln net.Listener, name string, implicitTLS bool) net.Listener {
	return netlimit.Wrap(ln, netlimit.Config{Name: name, MaxConns: s.MaxConns, MaxPerSource: s.MaxConnsPerSource,
		Exempt: s.LimitExempt, Registry: s.Listeners, Logger: s.Logger,
		Reject: func(nc net.Conn) {
			if implicitTLS {
				tc := tls.Server(nc, s.TLSConfig)
				if tc.Handshake() != nil {
					return
				}
				nc = tc
			}
			metricRefused.Inc()
			// RFC 9051 s7.1.5: BYE as greeting, the server will not serve.
			io.WriteString(nc, "* BYE [UNAVAILABLE] too many connections, try again later\r\n")
		}})
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
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

func (s *Server) spoolDir() string {
	if s.SpoolDir != "" {
		return s.SpoolDir
	}
	return os.TempDir()
}

func (s *Server) appendSpoolLimit() int64 {
	if s.AppendSpoolLimit > 0 {
		return s.AppendSpoolLimit
	}
	return 4 * s.appendLimit()
}

func (s *Server) appendLimit() int64 {
	if s.AppendLimit > 0 {
		return s.AppendLimit
	}
	return DefaultAppendLimit
}
