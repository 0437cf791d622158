package streaming

// The SIP media server (RFC 5616 over RFC 4240): a caller sends
// INVITE sip:annc@host;play=<URLAUTH-authorized IMAP URL> with an SDP
// offer (or none: then our offer goes in the 200 and its answer comes in
// the ACK); the URL is resolved through channel exactly as URLFETCH
// resolves it, the offer answered (the codec that needs least conversion,
// SRTP with SDES when offered), the message played through the engine
// (repeat, delay, duration), and BYE sent at the end. CANCEL before the
// 200 ends the INVITE with 487 (the transaction layer answers it);
// re-INVITE to sendonly or inactive pauses, back to sendrecv resumes; the
// caller's BYE stops at once. 2xx responses (INVITE and re-INVITE) are
// retransmitted over UDP until the ACK comes, 64*T1 at most; then the
// call ends with a BYE.

import (
	"context"
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

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// Defaults of the media server's limits.
const (
	DefaultMaxCalls          = 500
	DefaultMaxCallsPerSource = 8
)

var (
	metricSIPCalls = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_sip_calls_total",
		Help: "INVITEs for a new call to the SIP media server, by final status code.",
	}, []string{"status"})
	metricSIPActive = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_streaming_sip_calls_active",
		Help: "Calls of the SIP media server in progress.",
	})
	metricSIPSetup = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_streaming_sip_setup_seconds",
		Help:    "Time from INVITE to the 200 OK of the SIP media server (URL resolved, media opened, offer answered).",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	})
)

// SIPServer is the media server's user agent (UAS). Set the fields, then
// Initialize before the endpoint starts.
type SIPServer struct {
	// Endpoint is the appliance's SIP endpoint; INVITE, ACK, BYE and
	// CANCEL are registered on it. Required.
	Endpoint *sipep.Endpoint
	// Store reads accounts (digest credentials of user+ URLs). Required.
	Store *vmstore.Store
	// Resolver checks and opens the play= URLs (as URLFETCH). Required.
	Resolver *channel.Resolver
	// Engine plays the media. Required.
	Engine *Engine
	// Cache shares converted media with other playbacks; nil: none.
	Cache *PartCache
	// Services are the Request-URI users served; default ["annc"].
	Services []string
	// RequireSRTP refuses plain RTP offers with 488.
	RequireSRTP bool
	// PlainSDES allows SDES keys in the SDP of calls signalled over UDP
	// or TCP from untrusted sources (where anyone on the path reads them);
	// by default keys travel only over TLS or from TrustedNetworks.
	PlainSDES bool
	// MaxCalls (503 beyond) and MaxCallsPerSource (per untrusted source
	// address, 503); 0 means the defaults, negative no limit.
	MaxCalls, MaxCallsPerSource int
	// MediaAddr is the address of the RTP sockets and of the SDP c= line;
	// "" means the endpoint's listen host (127.0.0.1 for a wildcard).
	MediaAddr string
	// AckTimeout ends a call whose 2xx is not acknowledged; 0 means
	// 64*T1 (32 s).
	AckTimeout time.Duration
	// SessionExpires is the RFC 4028 session interval given to a caller
	// that supports timers and names none, and the longest accepted (a
	// longer one is lowered, never below the request's Min-SE); 0 means
	// DefaultSessionExpires, negative: a timer only when the caller asks.
	// MinSE is the shortest accepted (422 below); at least 90 s.
	SessionExpires, MinSE time.Duration
	// MediaTimeout ends (BYE) a call whose caller sent RTP or RTCP and then
	// nothing for that long, unless held; 0 means DefaultMediaTimeout,
	// negative never.
	MediaTimeout time.Duration
	// Logger; nil means slog.Default.
	Logger *slog.Logger

	log       *slog.Logger
	ep        *sipep.Endpoint
	mediaAddr netip.Addr
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	testHook  func(stage string)  // tests: called at "setup"
	endHook   func(reason string) // tests: called when a call ends
	timerUnit time.Duration       // tests: the length of an RFC 4028 "second"

	mu       sync.Mutex
	calls    map[string]*call // by Call-ID + our tag
	bySource map[netip.Addr]int
	pending  int // calls being set up (counted in the limits)
}

// Initialize registers the media server's methods on the endpoint.
func (s *SIPServer) Initialize() error {
	if s.Endpoint == nil || s.Store == nil || s.Resolver == nil || s.Engine == nil {
		return errors.New("streaming: SIPServer needs Endpoint, Store, Resolver and Engine")
	}
	s.ep = s.Endpoint
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("pkg", "streaming", "svc", "sip")
	if len(s.Services) == 0 {
		s.Services = []string{"annc"}
	}
	if s.MaxCalls == 0 {
		s.MaxCalls = DefaultMaxCalls
	}
	if s.MaxCallsPerSource == 0 {
		s.MaxCallsPerSource = DefaultMaxCallsPerSource
	}
	if s.AckTimeout <= 0 {
		s.AckTimeout = 64 * sip.T1
	}
	if s.MediaAddr != "" {
		a, err := netip.ParseAddr(s.MediaAddr)
		if err != nil || a.IsUnspecified() {
			return fmt.Errorf("streaming: media address %q: want a unicast IP address", s.MediaAddr)
		}
		s.mediaAddr = a
	}
	s.calls = map[string]*call{}
	s.bySource = map[netip.Addr]int{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ep.Handle(sip.INVITE, s.onInvite)
	s.ep.Handle(sip.ACK, s.onAck)
	s.ep.Handle(sip.BYE, s.onBye)
	s.ep.Handle(sip.CANCEL, s.onCancel)
	s.ep.Handle(sip.UPDATE, s.onUpdate)
	s.ep.Supported("timer")
	s.ep.Accept("application/sdp")
	if s.SessionExpires == 0 {
		s.SessionExpires = DefaultSessionExpires
	}
	return nil
}

// Close ends every call with a BYE; close the endpoint afterwards.
func (s *SIPServer) Close() {
	if s.cancel == nil {
		return
	}
	s.mu.Lock()
	all := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		all = append(all, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.hangup("shutdown", true)
		}()
	}
	wg.Wait()
	s.cancel()
	s.wg.Wait()
}

// Calls is the number of calls in progress.
func (s *SIPServer) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *SIPServer) media() netip.Addr {
	if s.mediaAddr.IsValid() {
		return s.mediaAddr
	}
	host, _, _ := net.SplitHostPort(s.ep.Addr())
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		return a.Unmap()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// admit reserves a call slot for a source; release gives it back.
func (s *SIPServer) admit(src netip.Addr, trusted bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.MaxCalls > 0 && len(s.calls)+s.pending >= s.MaxCalls {
		return false
	}
	if !trusted && s.MaxCallsPerSource > 0 && s.bySource[src] >= s.MaxCallsPerSource {
		return false
	}
	s.pending++
	s.bySource[src]++
	return true
}

func (s *SIPServer) release(src netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.bySource[src] - 1; n > 0 {
		s.bySource[src] = n
	} else {
		delete(s.bySource, src)
	}
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

func (s *SIPServer) lookup(req *sip.Request) *call {
	to := req.To()
	if to == nil || req.CallID() == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[dialogKey(string(*req.CallID()), tag)]
	if c == nil {
		return nil
	}
	if from := req.From(); from == nil || func() bool { t, _ := from.Params.Get("tag"); return t != c.remoteTag }() {
		return nil
	}
	return c
}

// ---- new calls ----

// callError is a final response to an INVITE.
type callError struct {
	code   int
	reason string
	hdrs   []sip.Header
}

func (s *SIPServer) refuse(req *sip.Request, tx sip.ServerTransaction, e callError) {
	s.ep.Respond(req, tx, e.code, e.reason, e.hdrs...)
	metricSIPCalls.WithLabelValues(strconv.Itoa(e.code)).Inc()
}

func (s *SIPServer) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			s.onReinvite(req, tx)
			return
		}
	}
	start := time.Now()
	if !slices.Contains(s.Services, req.Recipient.User) {
		s.refuse(req, tx, callError{code: 404, reason: "Not Found (no such service)"})
		return
	}
	a, err := parseAnnc(req.Recipient.UriParams)
	if err != nil {
		s.refuse(req, tx, callError{code: 400, reason: "Bad Request (" + err.Error() + ")"})
		return
	}
	timer, terr := s.negotiateTimer(req)
	if terr != nil {
		s.refuse(req, tx, *terr)
		return
	}
	src := authlimit.AddrOf(req.Source())
	trusted := s.ep.Trusted(req.Source())
	if !s.admit(src, trusted) {
		s.refuse(req, tx, callError{code: 503, reason: "Service Unavailable (too many calls)",
			hdrs: []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(sipep.RetryAfterSeconds))}})
		return
	}
	// Until the call is in s.calls it holds a pending slot and its source's
	// count; once there, the call holds both and its end releases them.
	admitted := true
	defer func() {
		if admitted {
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
			s.release(src)
		}
	}()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	c, body, cerr := s.setup(req, tx, a, src, trusted)
	if cerr != nil {
		s.refuse(req, tx, *cerr)
		return
	}
	if c == nil {
		return // challenged (401)
	}
	c.timer = timer
	c.peerUpdate = hasOption(headerValues(req, "Allow"), "UPDATE")
	c.lastSDP = body
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	c.prepare2xx(res)
	for _, h := range timer.headers() {
		res.AppendHeader(h)
	}
	s.mu.Lock()
	s.calls[c.key] = c
	s.pending-- // in the same critical section: never counted twice
	s.mu.Unlock()
	admitted = false
	metricSIPActive.Inc()
	metricSIPSetup.Observe(time.Since(start).Seconds())
	c.log.Info("call answered", "codec", c.offerOrCodec(), "srtp", c.secure(), "repeat", a.repeat, "setup", time.Since(start))
	ack, err := c.send2xx(tx, res, req.CSeq().SeqNo)
	if err != nil {
		if errors.Is(err, errCanceled) {
			metricSIPCalls.WithLabelValues("487").Inc()
			c.hangup("canceled", false)
			return
		}
		c.log.Info("no ACK for the 200", "err", err)
		c.hangup("no ack", true)
		return
	}
	metricSIPCalls.WithLabelValues("200").Inc()
	if err := c.acked(ack); err != nil {
		c.log.Info("answer in ACK refused", "err", err)
		c.hangup("bad answer", true)
		return
	}
	c.play()
}

var (
	errCanceled = errors.New("streaming: INVITE canceled")
	errNoAck    = errors.New("streaming: no ACK")
	errEnded    = errors.New("streaming: call ended")
)

// setup resolves the URL, opens the media and answers (or makes) the
// offer; it returns the call and the 200's SDP.
func (s *SIPServer) setup(req *sip.Request, tx sip.ServerTransaction, a *annc, src netip.Addr, trusted bool) (*call, []byte, *callError) {
	if s.testHook != nil {
		s.testHook("setup")
	}
	var off *sdpDesc
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			return nil, nil, &callError{code: 415, reason: "Unsupported Media Type", hdrs: []sip.Header{sip.NewHeader("Accept", "application/sdp")}}
		}
		var err error
		if off, err = parseSDP(body); err != nil {
			return nil, nil, &callError{code: 400, reason: "Bad Request (malformed SDP)"}
		}
		if off.audio == nil {
			return nil, nil, &callError{code: 488, reason: "Not Acceptable Here (no audio stream)", hdrs: warning304()}
		}
	}
	u, err := channel.Parse(a.play)
	if err != nil {
		return nil, nil, &callError{code: 400, reason: "Bad Request (play URL)"}
	}
	rq, cerr := s.requester(req, tx, u)
	if cerr != nil {
		return nil, nil, cerr
	}
	if rq == nil {
		return nil, nil, nil // answered by the digest challenge
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	res, err := s.Resolver.Resolve(ctx, u, *rq)
	if err != nil {
		return nil, nil, resolveError(err, s.log)
	}
	defer res.Close()
	part, err := res.Open(message.DecodedLeaf)
	if err != nil {
		return nil, nil, resolveError(channelGone(err), s.log)
	}
	md, err := OpenMedia(part, MediaOptions{Key: res.Msg.CacheKey(res.Section.String()), Cache: s.Cache})
	part.Close()
	if err != nil {
		return nil, nil, &callError{code: 488, reason: "Not Acceptable Here (the part is not playable audio)", hdrs: warning304()}
	}
	pol := sdpPolicy{requireSRTP: s.RequireSRTP,
		allowSDES: strings.EqualFold(req.Transport(), "TLS") || trusted || s.PlainSDES}
	c := &call{s: s, a: a, media: md, pol: pol, source: src, trusted: trusted, transport: req.Transport(),
		res: resolvedRef{account: res.AccountID, user: res.User, mailbox: res.Mailbox, uidValidity: res.UIDValidity,
			uid: res.UID, section: res.Section.String()},
		origin: sdpOrigin{id: uint64(random32())<<16 | uint64(random32()&0xffff)}, done: make(chan struct{})}
	c.initDialog(req)
	if err := c.openSockets(off); err != nil {
		s.log.Error("media sockets", "err", err)
		return nil, nil, &callError{code: 500, reason: "Server Internal Error"}
	}
	var body []byte
	if off != nil {
		n, err := negotiate(off.audio, md.Choose, pol)
		if err != nil {
			c.closeSockets()
			return nil, nil, &callError{code: 488, reason: "Not Acceptable Here (" + strings.TrimPrefix(err.Error(), "streaming: ") + ")", hdrs: warning304()}
		}
		c.neg = n
		c.setPeer(off.audio)
		c.held = off.audio.held()
		body = writeAnswer(off, n, &c.origin, c.localAddr, c.rtpPort(), c.rtcpPort(), answerDirection(off.audio.direction))
	} else {
		// Delayed offer: ours goes in the 200.
		if pol.requireSRTP && !pol.allowSDES {
			c.closeSockets()
			return nil, nil, &callError{code: 488, reason: "Not Acceptable Here (SRTP keys need TLS signalling)", hdrs: warning304()}
		}
		c.offered = md.Playable()
		if pol.allowSDES && (pol.requireSRTP || strings.EqualFold(req.Transport(), "TLS")) {
			k1, err1 := NewSDESKey(1, SuiteAES80)
			k2, err2 := NewSDESKey(2, SuiteAES32)
			if err1 != nil || err2 != nil {
				c.closeSockets()
				return nil, nil, &callError{code: 500, reason: "Server Internal Error"}
			}
			c.offerKeys = []*SDESKey{k1, k2}
		}
		c.pendingOffer = true
		body = writeOffer(c.offered, c.offerKeys, &c.origin, c.localAddr, c.rtpPort(), c.rtcpPort(), "sendonly")
	}
	return c, body, nil
}

func warning304() []sip.Header {
	return []sip.Header{sip.NewHeader("Warning", `304 lemonvox "Media type not available"`)}
}

// channelGone maps the part API's "no such part" to channel.ErrGone.
func channelGone(err error) error {
	if errors.Is(err, message.ErrNoSuchPart) || errors.Is(err, vmstore.ErrNotFound) {
		return fmt.Errorf("%w: %w", channel.ErrGone, err)
	}
	return err
}

// resolveError maps the resolver's errors to responses, as URLFETCH
// would tell them apart: a bad or unusable URL 400, a token, expiry or
// access failure 403, a message or part no longer there (or another
// server's URL) 404.
func resolveError(err error, log *slog.Logger) *callError {
	switch {
	case errors.Is(err, channel.ErrBadToken), errors.Is(err, channel.ErrExpired),
		errors.Is(err, channel.ErrNotPermitted), errors.Is(err, channel.ErrMechanism):
		return &callError{code: 403, reason: "Forbidden (play URL not authorized)"}
	case errors.Is(err, channel.ErrGone), errors.Is(err, channel.ErrNotOurs):
		return &callError{code: 404, reason: "Not Found (message gone)"}
	case errors.Is(err, channel.ErrBadURL), errors.Is(err, channel.ErrNotPart):
		return &callError{code: 400, reason: "Bad Request (play URL)"}
	}
	log.Error("resolving play URL", "err", err)
	return &callError{code: 500, reason: "Server Internal Error"}
}

// requester is who the media server is for the URL's access identifier:
// an anonymous requester for "anonymous" (and for the identifiers that
// admit none, so the resolver refuses them), the "stream" application
// entity (RFC 5616) for "stream", and for "user+X" or "stream+X" the
// caller authenticated by SIP digest as X (or a trusted source). nil with
// no error: the request was answered (401).
func (s *SIPServer) requester(req *sip.Request, tx sip.ServerTransaction, u *channel.URL) (*channel.Requester, *callError) {
	acc := u.Access
	switch {
	case acc.Kind == channel.AccessApplication && strings.EqualFold(acc.Application, "stream"):
		r := &channel.Requester{Authenticated: true, Applications: []string{"stream"}}
		if acc.User == "" {
			return r, nil
		}
		if !s.authenticate(req, tx, acc.User) {
			return nil, nil
		}
		r.User = acc.User
		return r, nil
	case acc.Kind == channel.AccessUser:
		if !s.authenticate(req, tx, acc.User) {
			return nil, nil
		}
		return &channel.Requester{User: acc.User, Authenticated: true}, nil
	}
	return &channel.Requester{}, nil
}

// authenticate checks the caller's digest credentials as user (the
// account's notify.sip_ha1 preference, as for MWI); false: answered.
func (s *SIPServer) authenticate(req *sip.Request, tx sip.ServerTransaction, user string) bool {
	ha1 := ""
	if acct, err := s.Store.GetAccount(user); err == nil {
		ha1 = acct.Options.Notify["sip_ha1"]
	}
	ok := s.ep.Authenticate(req, tx, user, ha1)
	if !ok {
		metricSIPCalls.WithLabelValues("auth").Inc()
	}
	return ok
}

// ---- in-dialog requests ----

func (s *SIPServer) onAck(req *sip.Request, _ sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		return
	}
	c.mu.Lock()
	ch, cseq := c.acks, c.ackCSeq
	c.mu.Unlock()
	if ch == nil || req.CSeq() == nil || req.CSeq().SeqNo != cseq {
		return
	}
	select {
	case ch <- req:
	default:
	}
}

func (s *SIPServer) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.ep.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.ep.Respond(req, tx, 200, "OK")
	c.hangup("caller bye", false)
}

// onCancel sees only CANCELs that matched no INVITE transaction (the
// transaction layer answers the others: 200, then 487 to the INVITE).
func (s *SIPServer) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.ep.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// beginModify admits a re-INVITE or UPDATE of a confirmed dialog (one at
// a time, CSeq in order); nil when it has been answered already. The
// caller ends it with endModify.
func (s *SIPServer) beginModify(req *sip.Request, tx sip.ServerTransaction) *call {
	c := s.lookup(req)
	if c == nil {
		s.ep.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return nil
	}
	c.mu.Lock()
	busy, stale := c.ended || c.inReinvite || !c.confirmed, req.CSeq().SeqNo <= c.remoteCSeq
	if !busy && !stale {
		c.remoteCSeq = req.CSeq().SeqNo
		c.inReinvite = true
	}
	c.mu.Unlock()
	switch {
	case busy:
		// RFC 3261 s14.2 (RFC 3311 s5.2 for UPDATE): one offer at a time.
		s.ep.Respond(req, tx, 491, "Request Pending", sip.NewHeader("Retry-After", "1"))
		return nil
	case stale:
		s.ep.Respond(req, tx, 500, "Server Internal Error (CSeq out of order)", sip.NewHeader("Retry-After", "1"))
		return nil
	}
	return c
}

func (c *call) endModify() {
	c.mu.Lock()
	c.inReinvite = false
	c.mu.Unlock()
}

func (s *SIPServer) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.beginModify(req, tx)
	if c == nil {
		return
	}
	defer c.endModify()
	timer, terr := s.negotiateTimer(req)
	if terr != nil {
		s.ep.Respond(req, tx, terr.code, terr.reason, terr.hdrs...)
		return
	}
	var body []byte
	var held, pending bool
	if b := req.Body(); len(b) > 0 {
		var cerr *callError
		if body, held, cerr = c.answerOffer(b); cerr != nil {
			s.ep.Respond(req, tx, cerr.code, cerr.reason, cerr.hdrs...)
			return
		}
	} else {
		// Offer in the 200 (our current codec and key), answer in the ACK.
		pending = true
		var keys []*SDESKey
		if c.neg.key != nil {
			keys = []*SDESKey{c.neg.key}
		}
		body = writeOffer([]Codec{c.neg.codec}, keys, &c.origin, c.localAddr, c.rtpPort(), c.rtcpPort(), "sendonly")
	}
	c.mu.Lock()
	c.timer, c.lastSDP = timer, body
	c.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	c.prepare2xx(res)
	for _, h := range timer.headers() {
		res.AppendHeader(h)
	}
	ack, err := c.send2xx(tx, res, req.CSeq().SeqNo)
	if err != nil {
		if !errors.Is(err, errEnded) {
			c.log.Info("no ACK for the re-INVITE's 200", "err", err)
			c.hangup("no ack", true)
		}
		return
	}
	if pending {
		b := ack.Body()
		ans, err := parseSDP(b)
		if err != nil || ans.audio == nil {
			c.hangup("bad answer", true)
			return
		}
		held = ans.audio.held()
		c.setPeer(ans.audio)
	}
	c.hold(held)
	c.mu.Lock()
	c.startTimerLocked() // a re-INVITE refreshes the session (RFC 4028 s10)
	c.mu.Unlock()
}

// answerOffer answers an offer of the caller's in the dialog (re-INVITE or
// UPDATE): the answer, and whether it holds the call.
func (c *call) answerOffer(b []byte) ([]byte, bool, *callError) {
	off, err := parseSDP(b)
	if err != nil {
		return nil, false, &callError{code: 400, reason: "Bad Request (malformed SDP)"}
	}
	if off.audio == nil {
		return nil, false, &callError{code: 488, reason: "Not Acceptable Here (no audio stream)", hdrs: warning304()}
	}
	n, err := c.renegotiate(off.audio)
	if err != nil {
		return nil, false, &callError{code: 488, reason: "Not Acceptable Here (" + strings.TrimPrefix(err.Error(), "streaming: ") + ")", hdrs: warning304()}
	}
	c.setPeer(off.audio)
	return writeAnswer(off, n, &c.origin, c.localAddr, c.rtpPort(), c.rtcpPort(), answerDirection(off.audio.direction)), off.audio.held(), nil
}

// onUpdate serves UPDATE in a confirmed dialog (RFC 3311): a session
// refresh (RFC 4028), with or without an offer; the answer is in the 200.
func (s *SIPServer) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := s.beginModify(req, tx)
	if c == nil {
		return
	}
	defer c.endModify()
	timer, terr := s.negotiateTimer(req)
	if terr != nil {
		s.ep.Respond(req, tx, terr.code, terr.reason, terr.hdrs...)
		return
	}
	var body []byte
	held, offer := false, len(req.Body()) > 0
	if offer {
		var cerr *callError
		if body, held, cerr = c.answerOffer(req.Body()); cerr != nil {
			s.ep.Respond(req, tx, cerr.code, cerr.reason, cerr.hdrs...)
			return
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(&sip.ContactHeader{Address: s.ep.ContactURI(c.transport)})
	res.AppendHeader(sip.NewHeader("Allow", sipAllow))
	if offer {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	for _, h := range timer.headers() {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		c.log.Debug("answering UPDATE", "err", err)
	}
	c.mu.Lock()
	c.timer = timer
	if offer {
		c.lastSDP = body
	}
	c.startTimerLocked()
	c.mu.Unlock()
	if offer {
		c.hold(held)
	}
}

// ---- one call ----

// resolvedRef is what the engine needs to know of the played message.
type resolvedRef struct {
	account          uint64
	user, mailbox    string
	uidValidity, uid uint32
	section          string
}

// call is one dialog of the media server (we are the UAS; our tag is the
// To tag of the INVITE).
type call struct {
	s       *SIPServer
	log     *slog.Logger
	key     string
	a       *annc
	media   *Media
	res     resolvedRef
	pol     sdpPolicy
	source  netip.Addr
	trusted bool

	callID, localTag, remoteTag string
	localURI, remoteURI         sip.Uri
	target                      sip.Uri
	routes                      []sip.Uri
	transport                   string

	origin       sdpOrigin
	neg          *negotiated
	offered      []Codec    // our offer (delayed offer)
	offerKeys    []*SDESKey // keys in our offer
	pendingOffer bool

	localAddr netip.Addr
	rtp, rtcp *net.UDPConn
	sink      *callSink

	done chan struct{}

	lastRx atomic.Int64 // when the caller last sent RTP or RTCP (Unix ns; 0: never)

	mu         sync.Mutex
	timer      sessionTimer
	seTimer    *time.Timer
	mediaTimer *time.Timer
	peerUpdate bool   // the caller's Allow lists UPDATE
	lastSDP    []byte // our last session description
	acks       chan *sip.Request
	ackCSeq    uint32
	remoteCSeq uint32
	localCSeq  uint32
	confirmed  bool
	inReinvite bool
	ended      bool
	held       bool
	sess       *Session
	plays      int // plays started
	between    *time.Timer
	limit      *time.Timer
}

func (c *call) initDialog(req *sip.Request) {
	c.callID = string(*req.CallID())
	c.localTag = sipep.RandomToken(8)
	c.remoteTag, _ = req.From().Params.Get("tag")
	c.localURI = req.To().Address
	c.remoteURI = req.From().Address
	c.remoteCSeq = req.CSeq().SeqNo
	c.key = dialogKey(c.callID, c.localTag)
	c.log = c.s.log.With("call-id", c.callID, "source", c.source)
	// The remote target: a trusted source (a proxy, the PBX) may name any
	// Contact and route set; an untrusted caller gets its BYE at the
	// address it called from (RFC 3581), whatever Contact it wrote.
	if ct := req.Contact(); ct != nil && c.trusted {
		c.target = ct.Address
		for _, h := range req.GetHeaders("Record-Route") {
			if rr, ok := h.(*sip.RecordRouteHeader); ok {
				c.routes = append(c.routes, rr.Address)
			}
		}
	} else if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		host := ap.Addr().Unmap().String()
		if ap.Addr().Unmap().Is6() {
			host = "[" + host + "]"
		}
		c.target = sip.Uri{Scheme: "sip", Host: host, Port: int(ap.Port())}
		if ct := req.Contact(); ct != nil {
			c.target.User = ct.Address.User
		}
	}
	if !strings.EqualFold(c.transport, "UDP") && c.transport != "" {
		c.target.UriParams = sip.NewParams()
		c.target.UriParams.Add("transport", strings.ToLower(c.transport))
	}
}

// sipAllow is the Allow of the media server's dialogs.
const sipAllow = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"

// prepare2xx puts our tag, Contact and Allow on a 2xx with SDP.
func (c *call) prepare2xx(res *sip.Response) {
	if t := res.To(); t != nil {
		t.Params.Remove("tag")
		t.Params.Add("tag", c.localTag)
	}
	res.AppendHeader(&sip.ContactHeader{Address: c.s.ep.ContactURI(c.transport)})
	res.AppendHeader(sip.NewHeader("Allow", sipAllow))
	ct := sip.ContentTypeHeader("application/sdp")
	res.AppendHeader(&ct)
}

// send2xx sends a 2xx to an INVITE and, over UDP, retransmits it (T1
// doubling to T2, RFC 3261 s13.3.1.4) until its ACK arrives; AckTimeout
// without one is errNoAck.
func (c *call) send2xx(tx sip.ServerTransaction, res *sip.Response, cseq uint32) (*sip.Request, error) {
	ch := make(chan *sip.Request, 1)
	c.mu.Lock()
	c.acks, c.ackCSeq = ch, cseq
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.acks == ch {
			c.acks = nil
		}
		c.mu.Unlock()
	}()
	if err := tx.Respond(res); err != nil {
		return nil, errCanceled
	}
	reliable := !strings.EqualFold(c.transport, "UDP") && c.transport != ""
	interval := sip.T1
	retrans := time.NewTimer(interval)
	defer retrans.Stop()
	deadline := time.NewTimer(c.s.AckTimeout)
	defer deadline.Stop()
	for {
		select {
		case ack := <-ch:
			return ack, nil
		case <-retrans.C:
			if !reliable {
				_ = tx.Respond(res)
			}
			interval = min(2*interval, sip.T2)
			retrans.Reset(interval)
		case <-deadline.C:
			return nil, errNoAck
		case <-c.done:
			return nil, errEnded
		case <-c.s.ctx.Done():
			return nil, errEnded
		}
	}
}

// acked completes the dialog: with our offer in the 200 the ACK carries
// the answer.
func (c *call) acked(ack *sip.Request) error {
	if c.pendingOffer {
		ans, err := parseSDP(ack.Body())
		if err != nil {
			return err
		}
		n, err := readAnswer(ans, c.offered, c.offerKeys, c.pol)
		if err != nil {
			return err
		}
		c.neg = n
		c.setPeer(ans.audio)
		c.held = ans.audio.held()
		c.pendingOffer = false
	}
	c.mu.Lock()
	c.confirmed = true
	c.mu.Unlock()
	return nil
}

// renegotiate answers a re-INVITE's offer: the codec and key stay (the
// offer must still list the codec; a peer key change does not concern a
// sender).
func (c *call) renegotiate(m *sdpMedia) (*negotiated, error) {
	if c.neg.key != nil && !m.secure() {
		return nil, errSDPNoCrypto
	}
	if c.neg.key == nil && m.secure() && len(m.crypto) > 0 {
		return nil, errSDPNoCrypto // no switch to SRTP mid-call
	}
	for _, cd := range m.codecs {
		if cd.Same(c.neg.codec) {
			n := *c.neg
			n.codec.PT = cd.PT
			if c.neg.key != nil {
				// Answer with our key under the tag and suite the new
				// offer uses for it.
				found := false
				for _, k := range m.crypto {
					if k.Suite == c.neg.key.Suite {
						kk := *c.neg.key
						kk.Tag = k.Tag
						n.key = &kk
						found = true
						break
					}
				}
				if !found {
					return nil, errSDPNoCrypto
				}
			}
			n.dtmf = m.dtmf
			return &n, nil
		}
	}
	return nil, errSDPNoCodec
}

func (c *call) secure() bool {
	return (c.neg != nil && c.neg.key != nil) || len(c.offerKeys) > 0
}

func (c *call) offerOrCodec() string {
	if c.neg != nil {
		return c.neg.codec.String()
	}
	return "offered"
}

// ---- media ----

// openSockets binds the RTP socket (and RTCP on the next port, or on
// another when that is taken) on the media address.
func (c *call) openSockets(off *sdpDesc) error {
	c.localAddr = c.s.media()
	var err error
	for try := 0; try < 8; try++ {
		c.rtp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.localAddr, 0)))
		if err != nil {
			return err
		}
		if off != nil && off.audio != nil && off.audio.rtcpMux {
			c.rtcp = c.rtp
			break
		}
		p := c.rtp.LocalAddr().(*net.UDPAddr).Port
		if p < 65535 {
			if c.rtcp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.localAddr, uint16(p+1)))); err == nil {
				break
			}
		}
		if try == 7 {
			c.rtcp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.localAddr, 0)))
			if err != nil {
				c.rtp.Close()
				return err
			}
			break
		}
		c.rtp.Close()
	}
	c.sink = &callSink{rtp: NewUDPTransport(c.rtp)}
	c.sink.rtcp = c.sink.rtp
	if c.rtcp != c.rtp {
		c.sink.rtcp = NewUDPTransport(c.rtcp)
	}
	// Whatever the peer sends (RTCP reports, RTP it should not send) is
	// read and dropped, so that the socket buffers do not fill.
	for _, pc := range slices.Compact([]*net.UDPConn{c.rtp, c.rtcp}) {
		go c.drain(pc)
	}
	return nil
}

// drain reads what the caller sends; a packet from the caller's media
// address (any port: RTP or RTCP) is a sign of life for the media timeout.
func (c *call) drain(pc *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if to := c.sink.to.Load(); to != nil && to.AddrPort().Addr().Unmap() == from.Addr().Unmap() {
			c.lastRx.Store(time.Now().UnixNano())
		}
	}
}

func (c *call) rtpPort() int  { return c.rtp.LocalAddr().(*net.UDPAddr).Port }
func (c *call) rtcpPort() int { return c.rtcp.LocalAddr().(*net.UDPAddr).Port }

func (c *call) closeSockets() {
	if c.rtp != nil {
		c.rtp.Close()
	}
	if c.rtcp != nil && c.rtcp != c.rtp {
		c.rtcp.Close()
	}
}

// setPeer points the sink at the peer's media address (it may change on
// re-INVITE). A hold address (0.0.0.0) keeps the old one.
func (c *call) setPeer(m *sdpMedia) {
	if m.addr.IsUnspecified() {
		return
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(m.addr, uint16(m.port)))
	rtcpPort := m.rtcpPort
	if m.rtcpMux {
		rtcpPort = m.port
	}
	toRTCP := net.UDPAddrFromAddrPort(netip.AddrPortFrom(m.addr, uint16(rtcpPort)))
	c.sink.to.Store(to)
	c.sink.toRTCP.Store(toRTCP)
}

// play starts the first play (or, held, waits for a resume) and the
// duration limit.
func (c *call) play() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	if c.a.duration > 0 {
		c.limit = time.AfterFunc(c.a.duration, func() { c.hangup("duration", true) })
	}
	c.startTimerLocked()
	c.watchMediaLocked()
	c.startPlayLocked()
}

// startPlayLocked starts one play of the message: a new session (a new
// SSRC, so timestamps and sequence numbers never go back on one stream).
func (c *call) startPlayLocked() {
	if c.ended {
		return
	}
	c.plays++
	sess, err := c.s.Engine.Start(PlayRequest{Media: c.media, Codec: c.neg.codec, Sink: c.sink, SRTP: c.neg.key,
		Paused: c.held, Transport: "sip", Account: c.res.account, User: c.res.user, Mailbox: c.res.mailbox,
		UIDValidity: c.res.uidValidity, UID: c.res.uid, Section: c.res.section,
		OnEnd: func(reason string) {
			if reason == "end" {
				go c.playEnded()
			}
		}})
	if err != nil {
		c.log.Error("starting playback", "err", err)
		go c.hangup("playback error", true)
		return
	}
	c.sess = sess
}

// playEnded runs when a play reached the end of the media: the next
// repetition after the delay, or BYE.
func (c *call) playEnded() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if c.sess != nil {
		go c.sess.Stop()
		c.sess = nil
	}
	if c.a.repeat != 0 && c.plays >= c.a.repeat {
		c.mu.Unlock()
		c.hangup("played", true)
		return
	}
	if c.a.delay > 0 {
		c.between = time.AfterFunc(c.a.delay, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.between = nil
			c.startPlayLocked()
		})
	} else {
		c.startPlayLocked()
	}
	c.mu.Unlock()
}

// hold pauses (held) or resumes the play.
func (c *call) hold(held bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || held == c.held {
		return
	}
	c.held = held
	if c.sess == nil {
		return
	}
	if held {
		c.sess.Pause()
		c.log.Info("call held")
		return
	}
	if _, err := c.sess.Play(-1); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("resuming", "err", err)
	}
	c.log.Info("call resumed")
}

// hangup ends the call once: stops the media, sends BYE when asked (our
// end of the dialog), frees the sockets and the slot.
func (c *call) hangup(reason string, bye bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	close(c.done)
	sess := c.sess
	c.sess = nil
	if c.between != nil {
		c.between.Stop()
	}
	if c.limit != nil {
		c.limit.Stop()
	}
	if c.seTimer != nil {
		c.seTimer.Stop()
	}
	if c.mediaTimer != nil {
		c.mediaTimer.Stop()
	}
	c.localCSeq++
	cseq := c.localCSeq
	c.mu.Unlock()
	if sess != nil {
		sess.Stop()
	}
	if bye {
		c.sendBye(cseq)
	}
	c.closeSockets()
	s := c.s
	s.mu.Lock()
	if s.calls[c.key] == c {
		delete(s.calls, c.key)
		metricSIPActive.Dec()
	}
	s.mu.Unlock()
	s.release(c.source)
	c.log.Info("call ended", "reason", reason, "plays", c.plays)
	if s.endHook != nil {
		s.endHook(reason)
	}
}

// sendBye sends our in-dialog BYE (RFC 3261 s15.1.1).
func (c *call) sendBye(cseq uint32) {
	req := c.dialogRequest(sip.BYE, cseq)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := c.s.ep.Do(ctx, req)
	switch {
	case err != nil:
		c.log.Info("BYE failed", "err", err)
	case !res.IsSuccess():
		c.log.Info("BYE refused", "status", res.StatusCode)
	}
}

// callSink sends a call's RTP and RTCP from its sockets through the
// engine's non-blocking batched UDP path (a full socket buffer drops a
// packet, never stalls the scheduler); the peer's address may change
// (re-INVITE).
type callSink struct {
	rtp, rtcp  *UDPTransport
	to, toRTCP atomic.Pointer[net.UDPAddr]
}

func (k *callSink) queue(b *sendBatch, pkt []byte) {
	if to := k.to.Load(); to != nil {
		b.add(k.rtp, to, pkt)
	}
}

func (k *callSink) Send(pkt []byte) error {
	to := k.to.Load()
	if to == nil {
		return nil
	}
	return k.rtp.writeOne(pkt, to)
}

func (k *callSink) SendRTCP(pkt []byte) error {
	to := k.toRTCP.Load()
	if to == nil {
		return nil
	}
	return k.rtcp.writeOne(pkt, to)
}

func (k *callSink) Close() error { return nil }
