// Package sipep is the appliance's one SIP endpoint: the UDP, TCP and TLS
// listeners (UDP and TCP on one port), validation of every message before
// the SIP library parses it (validate.go), the per-source request rate
// (rate.go), the connection limits and deadlines (limits.go) and digest
// authentication (auth.go). Services register the methods they serve on
// it (message-waiting registers SUBSCRIBE, the media server INVITE, ACK,
// BYE and CANCEL) and send their requests through it; OPTIONS and
// unserved methods are answered here.
package sipep

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/netlimit"
)

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("sipep: configuration")

// ErrNotStarted: a request sent before Start (or after Close).
var ErrNotStarted = errors.New("sipep: endpoint not started")

// Handler serves one request (sipgo's handler type).
type Handler = sipgo.RequestHandler

// Endpoint is the SIP endpoint. Set the fields, register handlers with
// Handle, then Start.
type Endpoint struct {
	// Listen is the UDP and TCP address (same port for both). Required.
	Listen string
	// ListenTLS, if set, adds a TLS listener using TLSConfig.
	ListenTLS string
	TLSConfig *tls.Config
	// Domain is the host of the appliance's SIP URIs; default the host of
	// Listen ("localhost" for a wildcard address).
	Domain string
	// Realm is the digest realm; default Domain.
	Realm string
	// TrustedNetworks are not authenticated, not rate limited and not
	// limited per source (the PBX that has authenticated its phones).
	TrustedNetworks []netip.Prefix
	// AuthLimiter slows down wrong digest responses (shared with the other
	// protocols); nil means one of this endpoint with the default rules.
	AuthLimiter *authlimit.Limiter
	// NonceLifetime is how long a digest nonce may be used (stale=true
	// after); 0 means 5 minutes. MaxNonces bounds the nonces tracked for
	// replay protection; 0 means 65,536.
	NonceLifetime time.Duration
	MaxNonces     int
	// MaxConns and MaxConnsPerSource bound the TCP and TLS listeners'
	// connections (TrustedNetworks are not limited per source); 0 means
	// 12,000 and 200, negative no limit. Beyond, the first request gets
	// 503 with Retry-After.
	MaxConns, MaxConnsPerSource int
	// FirstMessageTimeout is the time a TCP or TLS connection has, from
	// accept, to complete its TLS handshake and send a valid message; 0
	// means 30 s. ConnIdleTimeout closes a connection silent that long
	// afterwards; 0 means the longest a service asked for (KeepIdle), at
	// least 2 minutes.
	FirstMessageTimeout, ConnIdleTimeout time.Duration
	// Listeners, if set, reports the listeners' health and shares the
	// daemon's descriptor budget (netlimit).
	Listeners *netlimit.Registry
	// MaxRequestRate is the requests per second (burst twice as many) an
	// untrusted source address may send; beyond it requests are answered
	// 503 with Retry-After before the SIP library keeps a transaction for
	// them (rate.go). 0 means DefaultMaxRequestRate, negative no limit.
	MaxRequestRate float64
	// Logger; nil means slog.Default.
	Logger *slog.Logger

	log       *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	udpConn   net.PacketConn
	tcpLn     net.Listener
	tlsLn     net.Listener
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	nonces    *nonceTable
	ownLim    *authlimit.Limiter
	udpHealth *netlimit.Health
	port      int
	tlsPort   int
	keepIdle  time.Duration

	ready atomic.Bool // Start completed: the client may send

	mu        sync.Mutex
	started   bool
	handlers  map[sip.RequestMethod]Handler
	events    []string
	supported []string
	accept    []string
	allow     string
}

// Handle registers the handler of a method; call it before Start. A
// method has one handler (the last registered).
func (e *Endpoint) Handle(method sip.RequestMethod, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		panic("sipep: Handle after Start")
	}
	if e.handlers == nil {
		e.handlers = map[sip.RequestMethod]Handler{}
	}
	e.handlers[method] = h
}

// AllowEvents adds event packages to the Allow-Events of OPTIONS answers
// and of unserved-method answers.
func (e *Endpoint) AllowEvents(pkgs ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range pkgs {
		if !slices.Contains(e.events, p) {
			e.events = append(e.events, p)
		}
	}
}

// Supported adds option tags (RFC 3261 s20.37: "timer" of RFC 4028...)
// to the Supported header of OPTIONS answers.
func (e *Endpoint) Supported(tags ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range tags {
		if !slices.Contains(e.supported, t) {
			e.supported = append(e.supported, t)
		}
	}
}

// Accept adds body types a service takes (application/sdp...) to the
// Accept header of OPTIONS answers (RFC 3261 s11.2).
func (e *Endpoint) Accept(types ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range types {
		if !slices.Contains(e.accept, t) {
			e.accept = append(e.accept, t)
		}
	}
}

// KeepIdle asks that idle TCP and TLS connections be kept at least d (a
// service whose peers refresh their state every d); call before Start.
func (e *Endpoint) KeepIdle(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keepIdle = max(e.keepIdle, d)
}

// Start opens the listeners and starts serving.
func (e *Endpoint) Start() error {
	if e.Listen == "" {
		return fmt.Errorf("%w: Endpoint needs Listen", ErrConfig)
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("%w: started twice", ErrConfig)
	}
	e.started = true
	methods := []string{"OPTIONS"}
	for m := range e.handlers {
		if m != sip.ACK && m != sip.CANCEL && m != sip.OPTIONS {
			methods = append(methods, string(m))
		}
		if m == sip.INVITE {
			methods = append(methods, "ACK", "CANCEL")
		}
	}
	slices.Sort(methods)
	methods = slices.Compact(methods)
	e.allow = strings.Join(methods, ", ")
	e.mu.Unlock()

	e.log = e.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("pkg", "sipep")
	if e.NonceLifetime <= 0 {
		e.NonceLifetime = DefaultNonceLifetime
	}
	if e.MaxNonces <= 0 {
		e.MaxNonces = DefaultMaxNonces
	}
	nonceKey := make([]byte, 32)
	_, _ = rand.Read(nonceKey)
	e.nonces = newNonceTable(nonceKey, e.NonceLifetime, e.MaxNonces)
	if e.AuthLimiter == nil {
		e.ownLim = authlimit.New(authlimit.Config{Trusted: e.TrustedNetworks})
	}
	e.limitDefaults()

	host, portS, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return fmt.Errorf("%w: Listen %q: %v", ErrConfig, e.Listen, err)
	}
	// UDP and TCP on one port; with port 0 the kernel picks a TCP port that
	// may be taken for UDP, so try a few.
	for try := 0; ; try++ {
		e.tcpLn, err = net.Listen("tcp", e.Listen)
		if err != nil {
			return fmt.Errorf("sipep: listen tcp: %w", err)
		}
		e.port = e.tcpLn.Addr().(*net.TCPAddr).Port
		e.udpConn, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(e.port)))
		if err == nil {
			break
		}
		e.tcpLn.Close()
		e.tcpLn = nil
		if portS != "0" || try >= 20 {
			return fmt.Errorf("sipep: listen udp: %w", err)
		}
	}
	if e.ListenTLS != "" {
		if e.TLSConfig == nil {
			e.closeListeners()
			return fmt.Errorf("%w: ListenTLS without TLSConfig", ErrConfig)
		}
		raw, err := net.Listen("tcp", e.ListenTLS)
		if err != nil {
			e.closeListeners()
			return fmt.Errorf("sipep: listen tls: %w", err)
		}
		e.tlsPort = raw.Addr().(*net.TCPAddr).Port
		e.tlsLn = tls.NewListener(e.limitListener(raw, "sip-tls", e.TLSConfig), e.TLSConfig)
	}
	if e.Domain == "" {
		e.Domain = host
		if e.Domain == "" || e.Domain == "0.0.0.0" || e.Domain == "::" {
			e.Domain = "localhost"
		}
	}
	if e.Realm == "" {
		e.Realm = e.Domain
	}
	sipLog := e.log.With("layer", "sip")
	e.ua, err = sipgo.NewUA(sipgo.WithUserAgent("lemonvox"), sipgo.WithUserAgentHostname(e.Domain),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipLog),
			// A 2xx retransmission arrives after the transaction completed:
			// expected, not worth a log line.
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				sipLog.Debug("response outside a transaction", "msg", r.Short())
			})),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)))
	if err != nil {
		e.closeListeners()
		return err
	}
	e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(e.log))
	if err != nil {
		e.closeListeners()
		return err
	}
	e.cli, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(e.log), sipgo.WithClientHostname(e.Domain))
	if err != nil {
		e.closeListeners()
		return err
	}
	for m, h := range e.handlers {
		e.srv.OnRequest(m, h)
	}
	if e.handlers[sip.OPTIONS] == nil {
		e.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			e.capabilities(res)
			e.mu.Lock()
			acc, sup := strings.Join(e.accept, ", "), strings.Join(e.supported, ", ")
			e.mu.Unlock()
			if acc != "" {
				res.AppendHeader(sip.NewHeader("Accept", acc))
			}
			// Supported is sent even when empty: we support no extension.
			res.AppendHeader(sip.NewHeader("Supported", sup))
			_ = tx.Respond(res)
		})
	}
	if e.handlers[sip.ACK] == nil {
		e.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {}) // never answered
	}
	e.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		e.capabilities(res)
		_ = tx.Respond(res)
		countResponse("routed", 405)
	})
	e.ctx, e.cancel = context.WithCancel(context.Background())
	serve := func(f func() error) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := f(); err != nil && e.ctx.Err() == nil {
				e.log.Error("sip listener stopped", "err", err)
			}
		}()
	}
	// Every message is validated before sipgo parses it (validate.go).
	e.udpHealth = e.Listeners.Watch("sip-udp", e.udpConn.LocalAddr().String())
	rate := newSourceRate(e.MaxRequestRate, e.TrustedAddr)
	chk := &checker{allow: e.allow}
	serve(func() error {
		return e.srv.ServeUDP(&sipPacketConn{PacketConn: e.udpConn, check: chk, onBad: e.badSIP, rate: rate, health: e.udpHealth, closed: e.ctx.Done()})
	})
	e.tcpLn = e.limitListener(e.tcpLn, "sip-tcp", nil)
	serve(func() error {
		return e.srv.ServeTCP(&sipListener{Listener: e.tcpLn, check: chk, onBad: e.badSIP, rate: rate})
	})
	if e.tlsLn != nil {
		serve(func() error {
			return e.srv.ServeTLS(&sipListener{Listener: e.tlsLn, check: chk, onBad: e.badSIP, rate: rate})
		})
	}
	e.ready.Store(true)
	e.log.Info("SIP endpoint listening", "udp+tcp", e.Addr(), "tls", e.TLSAddr(), "methods", e.allow)
	return nil
}

// capabilities adds Allow and Allow-Events.
func (e *Endpoint) capabilities(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Allow", e.allow))
	e.mu.Lock()
	ev := strings.Join(e.events, ", ")
	e.mu.Unlock()
	if ev != "" {
		res.AppendHeader(sip.NewHeader("Allow-Events", ev))
	}
}

func (e *Endpoint) badSIP(from net.Addr, why string) {
	e.log.Debug("malformed SIP message refused", "from", from, "why", why)
}

func (e *Endpoint) closeListeners() {
	if e.udpHealth != nil {
		e.udpHealth.Close()
	}
	if e.udpConn != nil {
		e.udpConn.Close()
	}
	if e.tcpLn != nil {
		e.tcpLn.Close()
	}
	if e.tlsLn != nil {
		e.tlsLn.Close()
	}
}

// Close stops the listeners and the SIP stack. Services end their dialogs
// (final NOTIFYs, BYEs) before.
func (e *Endpoint) Close() {
	if e.cancel == nil {
		return
	}
	e.ready.Store(false)
	e.cancel()
	e.srv.Close()
	e.ua.Close()
	e.closeListeners()
	e.wg.Wait()
}

// Context is cancelled when the endpoint closes.
func (e *Endpoint) Context() context.Context { return e.ctx }

// Logger is the endpoint's logger.
func (e *Endpoint) Log() *slog.Logger { return e.log }

// Addr is the bound UDP/TCP address (useful with port 0).
func (e *Endpoint) Addr() string {
	host, _, _ := net.SplitHostPort(e.Listen)
	return net.JoinHostPort(host, strconv.Itoa(e.port))
}

// TLSAddr is the bound TLS address, "" without TLS.
func (e *Endpoint) TLSAddr() string {
	if e.tlsLn == nil {
		return ""
	}
	return e.tlsLn.Addr().String()
}

// Client sends requests (outside dialogs use Do).
func (e *Endpoint) Client() *sipgo.Client { return e.cli }

// UA is the endpoint's sipgo user agent.
func (e *Endpoint) UA() *sipgo.UserAgent { return e.ua }

// ContactURI is the endpoint's Contact for a transport (UDP, TCP, TLS).
func (e *Endpoint) ContactURI(transport string) sip.Uri {
	host, _, _ := net.SplitHostPort(e.Addr())
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]"
	}
	u := sip.Uri{Scheme: "sip", Host: host, Port: e.port}
	switch {
	case strings.EqualFold(transport, "TCP"):
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	case strings.EqualFold(transport, "TLS") && e.tlsLn != nil:
		u.Port = e.tlsPort
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tls")
	}
	return u
}

// Do runs a client transaction and returns its final response; UDP
// requests leave from the listening socket so that NATs and PBXs see the
// address they talk to.
func (e *Endpoint) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if !e.ready.Load() {
		return nil, ErrNotStarted
	}
	e.setLaddr(req)
	return e.cli.Do(ctx, req)
}

// Transaction starts a client transaction (for callers that follow its
// responses themselves).
func (e *Endpoint) Transaction(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if !e.ready.Load() {
		return nil, ErrNotStarted
	}
	e.setLaddr(req)
	return e.cli.TransactionRequest(ctx, req)
}

// WriteRequest sends a request outside any transaction (ACK to a 2xx).
func (e *Endpoint) WriteRequest(req *sip.Request) error {
	if !e.ready.Load() {
		return ErrNotStarted
	}
	e.setLaddr(req)
	return e.cli.WriteRequest(req)
}

func (e *Endpoint) setLaddr(req *sip.Request) {
	if t := req.Transport(); strings.EqualFold(t, "UDP") || t == "" {
		if a, ok := e.udpConn.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
			req.Laddr = sip.Addr{IP: a.IP, Port: a.Port}
		}
	}
}

// Respond answers a request with a status and extra headers; it counts
// the answer in lemonvox_sip_responses_total.
func (e *Endpoint) Respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		e.log.Debug("responding", "err", err)
	}
	countResponse(string(req.Method), code)
}

// Trusted tells whether a source (host:port) is in TrustedNetworks.
func (e *Endpoint) Trusted(src string) bool { return e.TrustedAddr(authlimit.AddrOf(src)) }

// TrustedAddr tells whether an address is in TrustedNetworks.
func (e *Endpoint) TrustedAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range e.TrustedNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RetryAfterSeconds is the Retry-After of the endpoint's 503 answers;
// services use it for theirs.
const RetryAfterSeconds = retryAfterSeconds

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// RandomToken returns n random octets in hex (tags, Call-IDs).
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
