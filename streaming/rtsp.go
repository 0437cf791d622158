package streaming

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The RTSP/1.0 server (RFC 2326) for CHANNEL URLs. A URL is
// rtsp(s)://host:port/<grant>; DESCRIBE answers an SDP keyed for this
// describe only (RTSPS: RTP/SAVP with one a=crypto line; plain RTSP: RTP/AVP)
// with Content-Base rtsp(s)://host:port/<grant>/d/<describe id>/, so that
// SETUP of .../track1 finds its key without a session; SETUP consumes the
// describe (a key never serves two sessions) and counts one use of the
// grant. Transports: UDP unicast to the client's own address, and
// interleaved on the connection. FFmpeg's habits are honoured: SETUP may
// say RTP/AVP for an SRTP stream (we decide from our DESCRIBE), its
// plaintext RTCP is only taken as a sign of life, RTP-Info echoes the SETUP
// URL byte for byte with a non-zero rtptime, and SR+BYE end the stream.
//
// SETUP straight on the grant URL (no DESCRIBE first) plays plain RTP
// where plain RTP is allowed (the plain listener; RTSPS with
// AllowPlainRTP); where SRTP is required it is refused with 461 and a
// reason phrase saying to DESCRIBE first, since the key only travels in
// DESCRIBE's SDP (keys are never derived from the grant: one key, one
// session). Out-of-state methods get 455 with Allow, unknown methods 501
// with Public, a missing or malformed CSeq 400, an unknown session or one
// of another grant 454, Require 551 with Unsupported, a Range other than
// npt 501 with Accept-Ranges: npt.

var (
	metricRTSPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_rtsp_requests_total",
		Help: "RTSP requests answered, by method and status code.",
	}, []string{"method", "code"})
	metricRTSPConns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_rtsp_connections_total",
		Help: "RTSP connections accepted, by listener (plain, tls).",
	}, []string{"listener"})
	metricRTSPOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_rtsp_connections_open",
		Help: "RTSP connections open.",
	})
	metricRTSPSessions = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_rtsp_sessions_open",
		Help: "RTSP sessions open (set up, not torn down or expired).",
	})
)

// RTSPConfig configures an RTSPServer.
type RTSPConfig struct {
	Engine *Engine
	Store  *vmstore.Store
	Grants *channel.Grants
	// TLS is the certificate configuration of the RTSPS listener.
	TLS *tls.Config
	// AllowPlainRTP lets an RTSPS client ask for RTP/AVP (URL query
	// "?profile=avp"); the plain listener always serves RTP/AVP.
	AllowPlainRTP bool
	// SessionTimeout (default 60 s) ends a session without requests or
	// RTCP; FirstRequestTimeout (default 10 s) bounds the time from accept
	// to the first request (TLS handshake included).
	SessionTimeout      time.Duration
	FirstRequestTimeout time.Duration
	// MaxConns (default 1000) and MaxPerSource (default 100) bound open
	// connections per listener.
	MaxConns, MaxPerSource int
	Registry               *netlimit.Registry
	Cache                  *PartCache
	Logger                 *slog.Logger
}

// RTSPServer serves CHANNEL URLs.
type RTSPServer struct {
	cfg RTSPConfig
	log *slog.Logger

	mu        sync.Mutex
	describes map[string]*describeEntry
	sessions  map[string]*rtspSession
	udp       map[string]*udpPair // by local IP
	listeners []net.Listener
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
}

type describeEntry struct {
	token   string
	grant   *channel.Grant
	media   *Media
	codec   Codec
	key     *SDESKey
	expires time.Time
}

type rtspSession struct {
	id       string
	token    string // the grant of the session's URLs
	conn     *rtspConn
	ilv      bool // interleaved, on channels
	channels [2]int
	grant    *channel.Grant
	media    *Media
	setupURL string
	start    time.Duration
	play     *Session
	rtcpFrom string // client RTCP address (UDP)
	active   atomic.Int64
	played   bool
	log      *slog.Logger
}

type udpPair struct {
	rtp, rtcp *UDPTransport
}

// NewRTSPServer returns a server; Serve runs listeners on it.
func NewRTSPServer(cfg RTSPConfig) *RTSPServer {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 60 * time.Second
	}
	if cfg.FirstRequestTimeout <= 0 {
		cfg.FirstRequestTimeout = 10 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1000
	}
	if cfg.MaxPerSource <= 0 {
		cfg.MaxPerSource = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &RTSPServer{cfg: cfg, log: cfg.Logger.With("component", "rtsp"), describes: map[string]*describeEntry{},
		sessions: map[string]*rtspSession{}, udp: map[string]*udpPair{}, done: make(chan struct{})}
	s.wg.Add(1)
	go s.reap()
	return s
}

// Serve accepts connections on l until Close; secure: RTSPS (TLS).
func (s *RTSPServer) Serve(l net.Listener, secure bool) error {
	name := "rtsp"
	if secure {
		name = "rtsps"
		if s.cfg.TLS == nil {
			return errors.New("rtsp: RTSPS listener without TLS configuration")
		}
	}
	ll := netlimit.Wrap(l, netlimit.Config{Name: name, MaxConns: s.cfg.MaxConns, MaxPerSource: s.cfg.MaxPerSource,
		FirstDeadline: s.cfg.FirstRequestTimeout, IdleTimeout: 2*s.cfg.SessionTimeout + 10*time.Second,
		Registry: s.cfg.Registry, Logger: s.log,
		Reject: func(c net.Conn) {
			if !secure {
				c.Write([]byte("RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n"))
			}
		}})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ll)
	s.mu.Unlock()
	for {
		c, err := ll.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			return err
		}
		metricRTSPConns.WithLabelValues(name).Inc()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c, secure)
		}()
	}
}

// Close stops the listeners, every session and connection.
func (s *RTSPServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, l := range s.listeners {
		l.Close()
	}
	sess := make([]*rtspSession, 0, len(s.sessions))
	for _, rs := range s.sessions {
		sess = append(sess, rs)
	}
	s.mu.Unlock()
	for _, rs := range sess {
		s.endSession(rs, "stop")
	}
	s.mu.Lock()
	for _, p := range s.udp {
		p.rtp.Conn.Close()
		p.rtcp.Conn.Close()
	}
	s.mu.Unlock()
	return nil
}

// Wait waits for connections to end after Close.
func (s *RTSPServer) Wait() { s.wg.Wait() }

// Sessions is the number of open RTSP sessions.
func (s *RTSPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *RTSPServer) reap() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.SessionTimeout/8, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		var old []*rtspSession
		s.mu.Lock()
		for _, rs := range s.sessions {
			if now-rs.active.Load() > int64(s.cfg.SessionTimeout) {
				old = append(old, rs)
			}
		}
		for id, d := range s.describes {
			if time.Now().After(d.expires) {
				delete(s.describes, id)
			}
		}
		s.mu.Unlock()
		for _, rs := range old {
			rs.log.Info("rtsp session timed out")
			s.endSession(rs, "timeout")
		}
	}
}

func (s *RTSPServer) endSession(rs *rtspSession, reason string) {
	s.mu.Lock()
	_, ok := s.sessions[rs.id]
	delete(s.sessions, rs.id)
	s.mu.Unlock()
	if !ok {
		return
	}
	metricRTSPSessions.Dec()
	if rs.play != nil {
		if reason == "timeout" {
			rs.play.Expire()
		} else {
			rs.play.Stop()
		}
	}
}

type rtspConn struct {
	srv    *RTSPServer
	c      net.Conn
	w      *ConnWriter
	secure bool
	remote net.IP
	local  net.IP
	log    *slog.Logger
	mine   map[string]*rtspSession
}

func (s *RTSPServer) serveConn(raw net.Conn, secure bool) {
	metricRTSPOpen.Inc()
	defer metricRTSPOpen.Dec()
	var conn net.Conn = raw
	if secure {
		conn = tls.Server(raw, s.cfg.TLS)
	}
	c := &rtspConn{srv: s, c: conn, secure: secure, mine: map[string]*rtspSession{}}
	if a, ok := raw.RemoteAddr().(*net.TCPAddr); ok {
		c.remote = a.IP
	}
	if a, ok := raw.LocalAddr().(*net.TCPAddr); ok {
		c.local = a.IP
	}
	c.log = s.log.With("remote", raw.RemoteAddr().String())
	c.w = NewConnWriter(conn)
	defer func() {
		// A bug in a handler ends its connection, not the daemon.
		if r := recover(); r != nil {
			c.log.Error("rtsp connection failed", "panic", r)
		}
	}()
	defer func() {
		for _, rs := range c.mine {
			s.endSession(rs, "stop")
		}
		// The queue first (a last 400 or 505 reaches the client), then
		// the connection; a client that does not read gets 2 s.
		cut := time.AfterFunc(2*time.Second, func() { conn.Close() })
		c.w.Close()
		cut.Stop()
		conn.Close()
	}()
	// Close the connection when the server closes.
	stop := context.AfterFunc(doneCtx{s.done}, func() { raw.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 4096)
	activated := false
	for {
		req, frame, err := ReadMessage(br)
		if frame != nil {
			// Client RTCP (plain even with SRTP, FFmpeg) on a session's
			// channel: a sign of life of that session only. Frames on
			// other channels (none set up, or RTP a player should not
			// send) are read and dropped.
			for _, rs := range c.mine {
				if rs.ilv && (int(frame.Channel) == rs.channels[0] || int(frame.Channel) == rs.channels[1]) {
					rs.active.Store(time.Now().UnixNano())
				}
			}
			continue
		}
		if err != nil {
			if req != nil || errors.Is(err, ErrRTSPSyntax) || errors.Is(err, ErrRTSPTooBig) {
				code := 400
				if errors.Is(err, ErrRTSPVersion) {
					code = 505
				} else if errors.Is(err, ErrRTSPTooBig) {
					code = 413
				}
				cseq := ""
				if req != nil {
					cseq = req.Get("CSeq")
				}
				c.w.Message((&Response{Code: code}).Bytes(cseq))
			}
			return
		}
		if !activated {
			activated = true
			if nc, ok := raw.(*netlimit.Conn); ok {
				nc.Activate()
			}
		}
		c.handle(req)
		if c.w.Closed() {
			return
		}
	}
}

type doneCtx struct{ done chan struct{} }

func (d doneCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d doneCtx) Done() <-chan struct{}       { return d.done }
func (d doneCtx) Err() error {
	select {
	case <-d.done:
		return context.Canceled
	default:
		return nil
	}
}
func (d doneCtx) Value(any) any { return nil }

// ctx ends with the server (a limiter delay does not outlive it).
func (c *rtspConn) ctx() context.Context { return doneCtx{c.srv.done} }

// remoteAddr is the client's address as the authentication limiter keys it.
func (c *rtspConn) remoteAddr() netip.Addr {
	a, _ := netip.AddrFromSlice(c.remote)
	return a.Unmap()
}

const publicMethods = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"

// target is a request URL split into our parts.
type target struct {
	token, describe, track string
	base                   string // URL up to and including the token
	query                  url.Values
}

func parseTarget(raw string) (target, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") {
		return target{}, false
	}
	p := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	t := target{token: p[0], query: u.Query()}
	if t.token == "" {
		return target{}, false
	}
	switch {
	case len(p) == 1, len(p) == 2 && p[1] == "":
	case len(p) >= 3 && p[1] == "d" && len(p) <= 4:
		t.describe = p[2]
		if len(p) == 4 {
			t.track = p[3]
		}
	case len(p) == 2:
		t.track = p[1]
	default:
		return target{}, false
	}
	i := strings.Index(raw, t.token)
	t.base = raw[:i+len(t.token)]
	return t, true
}

func (c *rtspConn) handle(req *Request) {
	cseq := req.Get("CSeq")
	res := &Response{Code: 200}
	send := true
	switch {
	case cseq == "" || !validCSeq(cseq):
		// RFC 2326 s12.17: every request carries a CSeq; one that is
		// missing or not a number cannot be echoed.
		res.Code, res.Reason, cseq = 400, "Bad Request (CSeq missing or malformed)", ""
	case req.Get("Require") != "":
		// RFC 2326 s12.32: we support no option tags.
		res.Code = 551
		res.Set("Unsupported", tagList(req.Get("Require")))
	default:
		switch req.Method {
		case "OPTIONS":
			c.options(req, res)
		case "DESCRIBE":
			c.describe(req, res)
		case "SETUP":
			c.setup(req, res)
		case "PLAY":
			send = c.play(req, res, cseq)
		case "PAUSE":
			c.pause(req, res)
		case "TEARDOWN":
			c.teardown(req, res)
		case "GET_PARAMETER":
			c.session(req, res, true)
		case "SET_PARAMETER":
			if rs := c.session(req, res, true); rs != nil || res.Code == 200 {
				if len(req.Body) > 0 {
					res.Code = 451
				}
			}
		case "ANNOUNCE", "RECORD", "REDIRECT":
			// Methods of RFC 2326 we know and do not serve.
			res.Code = 405
			res.Set("Allow", publicMethods)
		default:
			// RFC 2326 s11.1 / RFC 7826 s17.5.2: 501 with what we do.
			res.Code = 501
			res.Set("Public", publicMethods)
		}
	}
	if send {
		c.w.Message(res.Bytes(cseq))
	}
	metricRTSPRequests.WithLabelValues(methodLabel(req.Method), strconv.Itoa(res.Code)).Inc()
	if res.Code >= 400 {
		c.log.Debug("rtsp request refused", "method", req.Method, "code", res.Code)
	}
}

// validCSeq: 1*9DIGIT (RFC 7826 s18.20; RFC 2326 has 1*DIGIT).
func validCSeq(v string) bool {
	if len(v) == 0 || len(v) > 9 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// tagList normalizes a comma-separated option tag list.
func tagList(v string) string {
	var out []string
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return strings.Join(out, ", ")
}

// options answers OPTIONS; with a Session header it keeps the session
// alive (FFmpeg's keep-alive when GET_PARAMETER is not public), 454 for an
// unknown one.
func (c *rtspConn) options(req *Request, res *Response) {
	res.Set("Public", publicMethods)
	if sessionID(req) != "" {
		c.session(req, res, true)
	}
}

func methodLabel(m string) string {
	switch m {
	case "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER":
		return m
	}
	return "other"
}

// grantStatus maps a grant error to a status code.
func grantStatus(err error) int {
	switch {
	case errors.Is(err, channel.ErrGrantGone):
		return 404
	case errors.Is(err, channel.ErrGrantInvalid), errors.Is(err, channel.ErrGrantExpired),
		errors.Is(err, channel.ErrGrantRevoked), errors.Is(err, channel.ErrGrantUsed):
		return 403
	}
	return 500
}

func (c *rtspConn) describe(req *Request, res *Response) {
	if a := req.Get("Accept"); a != "" && !strings.Contains(strings.ToLower(a), "application/sdp") && !strings.Contains(a, "*/*") {
		res.Code = 406
		return
	}
	t, ok := parseTarget(req.URL)
	if !ok || t.describe != "" || t.track != "" {
		res.Code = 404
		return
	}
	s := c.srv
	g, md, ok := c.openGrant(res, t.token)
	if !ok {
		return
	}
	codec := md.Playable()[0]
	var key *SDESKey
	if c.secure && !(s.cfg.AllowPlainRTP && strings.EqualFold(t.query.Get("profile"), "avp")) {
		var err error
		if key, err = NewSDESKey(1, SuiteAES80); err != nil {
			res.Code = 500
			return
		}
	}
	host := "0.0.0.0"
	if c.local != nil {
		host = c.local.String()
	}
	body, err := DescribeSDP(host, codec, md.Duration(), key)
	if err != nil {
		res.Code = 500
		return
	}
	var idb [12]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	s.mu.Lock()
	if len(s.describes) > 10*s.cfg.MaxConns {
		s.mu.Unlock()
		res.Code = 503
		return
	}
	s.describes[id] = &describeEntry{token: t.token, grant: g, media: md, codec: codec, key: key, expires: time.Now().Add(60 * time.Second)}
	s.mu.Unlock()
	res.Set("Content-Base", t.base+"/d/"+id+"/")
	res.Set("Content-Type", "application/sdp")
	res.Body = body
}

func (s *RTSPServer) openMedia(g *channel.Grant) (*Media, error) {
	m, err := message.Lookup(s.cfg.Store, g.User, g.Mailbox, g.UID)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	sec, err := message.ParseBinary(g.Section)
	if err != nil {
		return nil, err
	}
	p, err := m.Open(sec, message.DecodedLeaf)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return OpenMedia(p, MediaOptions{Key: m.CacheKey(g.Section), Cache: s.cfg.Cache})
}

// chooseTransport picks the first spec we can serve.
func chooseTransport(specs []TransportSpec) (TransportSpec, bool) {
	for _, t := range specs {
		if t.Unknown || t.Multicast || t.Record {
			continue
		}
		if t.TCP || t.HasIlv {
			if !t.HasIlv {
				t.Interleave, t.HasIlv = [2]int{0, 1}, true
			}
			t.TCP = true
			return t, true
		}
		if t.HasPorts && t.ClientPort[0] > 0 {
			return t, true
		}
	}
	return TransportSpec{}, false
}

// Methods valid without a session (RFC 2326 Appendix A, Init state) and
// within one (Ready and Playing: one stream per session, so a second
// SETUP is refused, RFC 7826 s13.3).
const (
	allowInit    = "OPTIONS, DESCRIBE, SETUP, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
	allowSession = "OPTIONS, DESCRIBE, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
)

// SETUP without DESCRIBE (RFC 2326 s10.4 and RFC 7826 s13.3 allow it: the
// client knows the description otherwise) is served where plain RTP is:
// on the plain listener, and on RTSPS with AllowPlainRTP. An SRTP key
// travels only in DESCRIBE's SDP, so on RTSPS without AllowPlainRTP such a
// SETUP, and one asking for RTP/SAVP anywhere, gets 461 saying to
// DESCRIBE first: nothing of the grant is used.
const reasonDescribeFirst = "Unsupported Transport (SRTP keys are given by DESCRIBE: DESCRIBE first, SETUP its Content-Base)"

func (c *rtspConn) setup(req *Request, res *Response) {
	s := c.srv
	if id := sessionID(req); id != "" {
		// One stream per session: nothing to add; a transport change is
		// not offered (RFC 7826 s13.3: 455).
		if rs := s.lookup(id); rs == nil {
			res.Code = 454
		} else {
			res.Code = 455
			res.Set("Allow", allowSession)
		}
		return
	}
	t, ok := parseTarget(req.URL)
	if !ok || (t.track != "track1" && t.track != "") {
		res.Code = 404
		return
	}
	specs, err := ParseTransport(req.Get("Transport"))
	if err != nil {
		res.Code = 461
		return
	}
	var d *describeEntry
	if t.describe != "" {
		spec, ok := chooseTransport(specs)
		if !ok {
			res.Code = 461
			return
		}
		s.mu.Lock()
		d = s.describes[t.describe]
		if d != nil && d.token == t.token {
			delete(s.describes, t.describe)
		}
		s.mu.Unlock()
		if d == nil || d.token != t.token || time.Now().After(d.expires) {
			res.Code = 454
			return
		}
		c.startSession(req, res, t, d, spec)
		return
	}
	// SETUP without DESCRIBE: plain RTP only.
	if c.secure && !s.cfg.AllowPlainRTP {
		res.Code, res.Reason = 461, reasonDescribeFirst
		return
	}
	var plain []TransportSpec
	for _, sp := range specs {
		if !sp.Secure {
			plain = append(plain, sp)
		}
	}
	spec, ok := chooseTransport(plain)
	if !ok {
		res.Code = 461
		if len(plain) < len(specs) {
			res.Reason = reasonDescribeFirst
		}
		return
	}
	g, md, ok := c.openGrant(res, t.token)
	if !ok {
		return
	}
	d = &describeEntry{token: t.token, grant: g, media: md, codec: md.Playable()[0]}
	c.startSession(req, res, t, d, spec)
}

// openGrant checks a grant presented on this connection (an invalid token
// is a failed credential of the client's address, under the shared
// limiter) and opens the part it names; on refusal res has the status.
func (c *rtspConn) openGrant(res *Response, token string) (*channel.Grant, *Media, bool) {
	g, err := c.srv.cfg.Grants.OpenFrom(c.ctx(), token, c.remoteAddr())
	if err != nil {
		res.Code = grantStatus(err)
		c.log.Info("rtsp grant refused", "grant", channel.HashToken(token), "err", err)
		return nil, nil, false
	}
	md, err := c.srv.openMedia(g)
	if err != nil {
		res.Code = 415
		if errors.Is(err, message.ErrNoSuchPart) || errors.Is(err, vmstore.ErrNotFound) {
			res.Code = 404
		}
		c.log.Info("rtsp media refused", "grant", channel.HashToken(token), "err", err)
		return nil, nil, false
	}
	return g, md, true
}

// freeChannels returns the interleaved pair to use: the one asked for
// when no other session of the connection has it, else the lowest free
// even pair (RFC 2326 s12.39: the server may choose other channels and
// says so in its reply); ok false when none is left.
func (c *rtspConn) freeChannels(want [2]int) ([2]int, bool) {
	used := map[int]bool{}
	for id, rs := range c.mine {
		if c.srv.lookup(id) == nil {
			delete(c.mine, id) // ended (timed out): its channels are free
			continue
		}
		if rs.ilv {
			used[rs.channels[0]], used[rs.channels[1]] = true, true
		}
	}
	if !used[want[0]] && !used[want[1]] && want[0] != want[1] {
		return want, true
	}
	for ch := 0; ch+1 <= 255; ch += 2 {
		if !used[ch] && !used[ch+1] {
			return [2]int{ch, ch + 1}, true
		}
	}
	return [2]int{}, false
}

// startSession uses the grant once and opens the playback session of a
// SETUP (d: the describe's or the grant's media and key).
func (c *rtspConn) startSession(req *Request, res *Response, t target, d *describeEntry, spec TransportSpec) {
	s := c.srv
	if spec.TCP {
		ch, ok := c.freeChannels(spec.Interleave)
		if !ok {
			res.Code = 461
			return
		}
		spec.Interleave = ch
	}
	// The grant may have been revoked since DESCRIBE.
	g, err := s.cfg.Grants.OpenFrom(c.ctx(), t.token, c.remoteAddr())
	if err == nil {
		err = s.cfg.Grants.Use(g)
	}
	if err != nil {
		res.Code = grantStatus(err)
		c.log.Info("rtsp grant refused at SETUP", "grant", channel.HashToken(t.token), "err", err)
		return
	}
	rs := &rtspSession{id: newSessionID()[:16], conn: c, token: t.token, grant: g, media: d.media, setupURL: req.URL}
	rs.active.Store(time.Now().UnixNano())
	rs.log = c.log.With("rtsp_session", rs.id, "grant", channel.HashToken(t.token))
	if g.Resume && s.cfg.Engine != nil {
		rs.start = s.cfg.Engine.ResumePosition(g.AccountID, g.User, g.Mailbox, g.UID)
		if rs.start >= d.media.Duration() {
			rs.start = 0
		}
	}
	var sink Sink
	reply := spec.Profile + ";unicast"
	kind := "tcp"
	if spec.TCP {
		sink = &InterleavedSink{W: c.w, RTP: byte(spec.Interleave[0]), RTCP: byte(spec.Interleave[1])}
		rs.ilv, rs.channels = true, spec.Interleave
		reply += fmt.Sprintf(";interleaved=%d-%d", spec.Interleave[0], spec.Interleave[1])
	} else {
		kind = "udp"
		pair, err := s.udpPair(c.local)
		if err != nil || c.remote == nil {
			res.Code = 500
			return
		}
		to := &net.UDPAddr{IP: c.remote, Port: spec.ClientPort[0]}
		toRTCP := &net.UDPAddr{IP: c.remote, Port: spec.ClientPort[1]}
		sink = &UDPSink{RTP: pair.rtp, RTCP: pair.rtcp, To: to, ToRTCP: toRTCP}
		rs.rtcpFrom = toRTCP.String()
		reply += fmt.Sprintf(";client_port=%d-%d;server_port=%d-%d", spec.ClientPort[0], spec.ClientPort[1],
			pair.rtp.Conn.LocalAddr().(*net.UDPAddr).Port, pair.rtcp.Conn.LocalAddr().(*net.UDPAddr).Port)
	}
	sess, err := s.cfg.Engine.Start(PlayRequest{Media: d.media, Codec: d.codec, Start: rs.start, Paused: true, Sink: sink,
		SRTP: d.key, Transport: kind, Account: g.AccountID, User: g.User, Mailbox: g.Mailbox,
		UIDValidity: g.UIDValidity, UID: g.UID, Section: g.Section})
	if err != nil {
		res.Code = 500
		return
	}
	rs.play = sess
	reply += fmt.Sprintf(";ssrc=%08X", sess.SSRC())
	s.mu.Lock()
	s.sessions[rs.id] = rs
	s.mu.Unlock()
	c.mine[rs.id] = rs
	metricRTSPSessions.Inc()
	rs.log.Info("rtsp session set up", "transport", kind, "srtp", d.key != nil, "codec", d.codec.String(), "start", rs.start,
		"described", t.describe != "")
	res.Set("Session", fmt.Sprintf("%s;timeout=%d", rs.id, int(s.cfg.SessionTimeout/time.Second)))
	res.Set("Transport", reply)
}

func sessionID(req *Request) string {
	v := req.Get("Session")
	id, _, _ := strings.Cut(v, ";")
	return strings.TrimSpace(id)
}

func (s *RTSPServer) lookup(id string) *rtspSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// session finds the request's session: without a Session header 455
// (with the methods of the Init state in Allow) unless optional (PLAY or
// PAUSE before SETUP); 454 for an unknown session or one of another
// grant than the request URL's (RFC 2326 s12.37).
func (c *rtspConn) session(req *Request, res *Response, optional bool) *rtspSession {
	id := sessionID(req)
	if id == "" {
		if !optional {
			res.Code = 455
			res.Set("Allow", allowInit)
		}
		return nil
	}
	rs := c.srv.lookup(id)
	if rs == nil {
		res.Code = 454
		return nil
	}
	if t, ok := parseTarget(req.URL); ok && t.token != rs.token {
		res.Code, res.Reason = 454, "Session Not Found (not a session of this URL)"
		return nil
	}
	rs.active.Store(time.Now().UnixNano())
	res.Set("Session", rs.id)
	return rs
}

func (c *rtspConn) play(req *Request, res *Response, cseq string) bool {
	rs := c.session(req, res, false)
	if rs == nil {
		return true
	}
	rg, err := ParseRangeSpec(req.Get("Range"))
	switch {
	case errors.Is(err, ErrRangeUnit):
		// RFC 2326 s12.29: a range format not understood is 501.
		res.Code = 501
		res.Set("Accept-Ranges", "npt")
		return true
	case err != nil:
		res.Code = 400
		return true
	}
	from, hasRange := rg.Start, rg.HasStart
	dur := rs.media.Duration()
	if hasRange && from >= dur || rg.HasEnd && (rg.End <= from || rg.HasStart && rg.End < rg.Start) {
		res.Code = 457
		return true
	}
	switch {
	case !rs.played && (!hasRange || from == 0):
		// The first PLAY from the beginning (FFmpeg always sends
		// npt=0.000-) starts where the grant says: the kept position when
		// it asks to resume. The reply's Range tells the client.
		from = rs.start
	case !hasRange:
		from = -1
	}
	_, err = rs.play.PlayWith(from, func(pi PlayInfo) {
		res.Set("Range", "npt="+FormatNPT(pi.From)+"-"+FormatNPT(dur))
		res.Set("RTP-Info", fmt.Sprintf("url=%s;seq=%d;rtptime=%d", rs.setupURL, pi.Seq, pi.RTPTime))
		c.w.Message(res.Bytes(cseq))
	})
	if err != nil {
		res.Code = 457
		if errors.Is(err, ErrClosed) {
			res.Code = 454
		}
		return true
	}
	if !rs.played && rs.grant.Seen {
		c.srv.markSeenNow(rs)
	}
	rs.played = true
	return false
}

// markSeenNow sets \Seen at PLAY for a grant with the SEEN option.
func (s *RTSPServer) markSeenNow(rs *rtspSession) {
	if err := markGrantSeen(s.cfg.Store, rs.grant); err != nil {
		rs.log.Warn("could not mark seen at PLAY", "err", err)
	}
}

// markGrantSeen sets \Seen on the granted message if the account and
// mailbox are still the grant's (CHANNEL SEEN option: heard once playback
// starts).
func markGrantSeen(st *vmstore.Store, g *channel.Grant) error {
	if id, err := st.AccountID(g.User); err != nil || id != g.AccountID {
		return nil
	}
	mb, err := st.Mailbox(g.User, g.Mailbox)
	if err != nil || mb.UIDValidity != g.UIDValidity {
		return nil
	}
	_, err = st.StoreFlags(vmstore.StoreReq{User: g.User, MailboxID: mb.ID, UIDs: []uint32{g.UID},
		Op: vmstore.FlagsAdd, Flags: []string{`\Seen`}})
	return err
}

func (c *rtspConn) pause(req *Request, res *Response) {
	rs := c.session(req, res, false)
	if rs == nil {
		return
	}
	rs.play.Pause()
	res.Set("Range", "npt="+FormatNPT(rs.play.Position())+"-"+FormatNPT(rs.media.Duration()))
}

func (c *rtspConn) teardown(req *Request, res *Response) {
	rs := c.session(req, res, true)
	if rs == nil {
		return // Init: nothing to tear down (200); or 454
	}
	if rs.conn == c {
		delete(c.mine, rs.id)
	}
	c.srv.endSession(rs, "stop")
	rs.log.Info("rtsp session torn down")
}

// udpPair returns the server's RTP/RTCP sockets on the local address (an
// even port and the next one), opening them on first use.
func (s *RTSPServer) udpPair(ip net.IP) (*udpPair, error) {
	key := ip.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.udp[key]; p != nil {
		return p, nil
	}
	for range 64 {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, err
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port + 1})
		if err != nil {
			a.Close()
			continue
		}
		p := &udpPair{rtp: NewUDPTransport(a), rtcp: NewUDPTransport(b)}
		s.udp[key] = p
		s.wg.Add(2)
		go s.drainUDP(a, false)
		go s.drainUDP(b, true)
		return p, nil
	}
	return nil, errors.New("rtsp: no UDP port pair")
}

// drainUDP reads what clients send to our ports: punch packets and RTCP
// (plain or not, never decrypted); RTCP from a session's client address
// keeps the session alive.
func (s *RTSPServer) drainUDP(c *net.UDPConn, rtcp bool) {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		_, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !rtcp {
			continue
		}
		a := from.String()
		now := time.Now().UnixNano()
		s.mu.Lock()
		for _, rs := range s.sessions {
			if rs.rtcpFrom == a {
				rs.active.Store(now)
			}
		}
		s.mu.Unlock()
	}
}
