package streaming

// WHEP (draft-ietf-wish-whep, HTTP rules of RFC 9725): a browser POSTs an
// SDP offer to /whep/<grant> and receives the message over WebRTC
// (ICE + DTLS-SRTP, pion/webrtc). The answer carries every candidate of
// ours; the player may trickle its own by PATCH (whep_trickle.go). Packets come from the playback source, which
// paces them (one scheduler for all sessions) into a sink per session that
// hands them to the session's WebRTC track.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// WHEPSource opens what a WHEP grant grants.
type WHEPSource interface {
	// OpenWHEP checks grant and opens the message part it names. Errors
	// wrap ErrWHEPForbidden (bad, tampered or expired grant: 403),
	// ErrWHEPGone (the message no longer exists: 404), ErrWHEPNotAudio
	// (406) or anything else (500).
	OpenWHEP(ctx context.Context, grant string, src netip.Addr) (WHEPMedia, error)
}

// remoteAddrOf is the address of an HTTP client as the authentication
// limiter keys it (invalid when RemoteAddr does not parse).
func remoteAddrOf(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// WHEPMedia is one opened message part, played at most once.
type WHEPMedia interface {
	// WireCodecs lists the RTP encoding names (PCMU, PCMA, G722) the part
	// can be played in, cheapest conversion first.
	WireCodecs() []string
	Duration() time.Duration
	// Start is where playback starts (a kept position when resuming).
	Start() time.Duration
	// Play starts sending 20-ms RTP packets of codec with ssrc into sink,
	// paced in real time; end is called once when playback ends by itself
	// (reason "end") or fails. stop ends it early (end is not called).
	Play(codec string, ssrc uint32, sink WHEPSink, end func(reason string)) (stop func(), err error)
	Close() error
}

// WHEPSink receives marshalled RTP (and RTCP) packets; it never blocks.
type WHEPSink interface {
	Send(pkt []byte) error
	SendRTCP(pkt []byte) error
	Close() error
}

var (
	// ErrWHEPForbidden: the grant is not valid (403).
	ErrWHEPForbidden = errors.New("grant not valid")
	// ErrWHEPGone: the granted message no longer exists (404).
	ErrWHEPGone = errors.New("granted message not found")
)

// WHEPConfig configures the WHEP endpoint.
type WHEPConfig struct {
	// ICEAddresses are the local IP addresses offered as ICE host
	// candidates; nothing else is gathered. Default 127.0.0.1.
	ICEAddresses []netip.Addr
	// ICEPort is the one UDP port all sessions share on each address (ICE
	// UDP mux); 0 picks a free port at start.
	ICEPort int
	// RemoteNetworks, if set, are the only networks whose candidates are
	// tried (e.g. 127.0.0.0/8 in tests).
	RemoteNetworks []netip.Prefix
	// MaxSessions bounds concurrent sessions (503 beyond). Default 100.
	MaxSessions int
	// ConnectTimeout is how long a session may take from the answer to an
	// established DTLS-SRTP connection. Default 20 s.
	ConnectTimeout time.Duration
	// Linger keeps a session after its message ended, before closing the
	// peer connection. Default 2 s.
	Linger time.Duration
	// MaxDuration ends any session after this long. Default 2 h.
	MaxDuration time.Duration
	// GatherTimeout bounds ICE gathering before the answer. Default 5 s.
	GatherTimeout time.Duration
	Logger        *slog.Logger
}

// WHEPServer serves WHEP sessions; its Handler is mounted at /whep/.
type WHEPServer struct {
	cfg   WHEPConfig
	src   WHEPSource
	log   *slog.Logger
	se    webrtc.SettingEngine
	conns []net.PacketConn
	mux   ice.UDPMux

	mu       sync.Mutex
	sessions map[string]*whepSession
	pending  int
	closed   bool
}

// NewWHEPServer opens the ICE UDP port(s) and returns the server.
func NewWHEPServer(cfg WHEPConfig, src WHEPSource) (*WHEPServer, error) {
	if src == nil {
		return nil, errors.New("whep: no media source")
	}
	if len(cfg.ICEAddresses) == 0 {
		cfg.ICEAddresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 100
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Second
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 2 * time.Hour
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &WHEPServer{cfg: cfg, src: src, log: cfg.Logger, sessions: map[string]*whepSession{}}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	var muxes []ice.UDPMux
	v4, v6 := false, false
	for _, a := range cfg.ICEAddresses {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			s.closeConns()
			return nil, fmt.Errorf("whep: ICE address %v: give a unicast address of an interface", a)
		}
		a = a.Unmap()
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(cfg.ICEPort))))
		if err != nil {
			s.closeConns()
			return nil, fmt.Errorf("whep: ICE UDP port: %w", err)
		}
		_ = c.SetReadBuffer(1 << 20)
		_ = c.SetWriteBuffer(1 << 20)
		s.conns = append(s.conns, c)
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c, Logger: lf.NewLogger("ice-mux")}))
		if a.Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	s.mux = ice.NewMultiUDPMuxDefault(muxes...)
	se := webrtc.SettingEngine{LoggerFactory: lf}
	var nt []webrtc.NetworkType
	if v4 {
		nt = append(nt, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		nt = append(nt, webrtc.NetworkTypeUDP6)
	}
	se.SetNetworkTypes(nt)
	se.SetICEUDPMux(s.mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	allowed := slices.Clone(cfg.ICEAddresses)
	se.SetIPFilter(func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && slices.Contains(allowed, a.Unmap())
	})
	if len(cfg.RemoteNetworks) > 0 {
		nets := slices.Clone(cfg.RemoteNetworks)
		se.SetRemoteIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
		})
	}
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	s.se = se
	return s, nil
}

func (s *WHEPServer) closeConns() {
	for _, c := range s.conns {
		c.Close()
	}
}

// ICEAddrs are the UDP addresses the sessions' media use.
func (s *WHEPServer) ICEAddrs() []net.Addr {
	var out []net.Addr
	for _, c := range s.conns {
		out = append(out, c.LocalAddr())
	}
	return out
}

// Sessions is the number of open sessions.
func (s *WHEPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session and closes the ICE port.
func (s *WHEPServer) Close() error {
	s.mu.Lock()
	s.closed = true
	all := make([]*whepSession, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.close("shutdown")
	}
	err := s.mux.Close()
	s.closeConns()
	return err
}

// WHEPResourcePrefix is the path of session resources (Location).
const WHEPResourcePrefix = "/whep/resource/"

// Handler serves POST /whep/<grant> (or POST /whep with
// "Authorization: Bearer <grant>") and the session resources
// /whep/resource/<id>.
func (s *WHEPServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep", func(w http.ResponseWriter, r *http.Request) {
		grant, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.post(w, r, strings.TrimSpace(grant))
	})
	mux.HandleFunc("POST /whep/{grant}", func(w http.ResponseWriter, r *http.Request) {
		s.post(w, r, r.PathValue("grant"))
	})
	endpoint := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Accept-Post", "application/sdp")
			w.Header().Set("Allow", "POST, OPTIONS")
			whepStatus(w, http.MethodOptions, http.StatusNoContent)
			return
		}
		w.Header().Set("Allow", "POST, OPTIONS")
		whepProblem(w, r.Method, http.StatusMethodNotAllowed, "a WHEP endpoint takes POST with an SDP offer")
	}
	mux.HandleFunc("/whep", endpoint)
	mux.HandleFunc("/whep/{grant}", endpoint)
	mux.HandleFunc(WHEPResourcePrefix+"{id}", s.resource)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		whepProblem(w, r.Method, http.StatusNotFound, "no such WHEP endpoint or resource")
	})
	return mux
}

func (s *WHEPServer) resource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		whepProblem(w, r.Method, http.StatusNotFound, "no such WHEP session (ended, expired or never created)")
		return
	}
	w.Header().Set("Allow", "DELETE, OPTIONS, PATCH")
	switch r.Method {
	case http.MethodDelete:
		ss.close("deleted")
		whepStatus(w, r.Method, http.StatusOK)
	case http.MethodOptions:
		w.Header().Set("Accept-Patch", sdpFragType)
		whepStatus(w, r.Method, http.StatusNoContent)
	case http.MethodPatch:
		// Trickle ICE from the player (whep_trickle.go); our answer
		// has every candidate of ours, ICE restart is 422.
		s.patch(w, r, ss)
	default:
		whepProblem(w, r.Method, http.StatusMethodNotAllowed, "a WHEP session resource takes DELETE")
	}
}

func (s *WHEPServer) post(w http.ResponseWriter, r *http.Request, grant string) {
	const m = http.MethodPost
	started := time.Now()
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		w.Header().Set("Accept-Post", "application/sdp")
		whepProblem(w, m, http.StatusUnsupportedMediaType, "the offer must be sent as application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, whepMaxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			whepProblem(w, m, http.StatusRequestEntityTooLarge, "SDP offer too large")
			return
		}
		whepProblem(w, m, http.StatusBadRequest, "reading the offer: "+err.Error())
		return
	}
	offer, err := parseWHEPOffer(body)
	if err != nil {
		st := http.StatusBadRequest
		if errors.Is(err, errOfferCodec) {
			st = http.StatusNotAcceptable
		}
		whepProblem(w, m, st, err.Error())
		return
	}
	if grant == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lemonvox"`)
		whepProblem(w, m, http.StatusUnauthorized, "no grant: POST to /whep/<grant> or send Authorization: Bearer <grant>")
		return
	}
	s.mu.Lock()
	if s.closed || len(s.sessions)+s.pending >= s.cfg.MaxSessions {
		closed := s.closed
		s.mu.Unlock()
		w.Header().Set("Retry-After", "10")
		if closed {
			whepProblem(w, m, http.StatusServiceUnavailable, "shutting down")
		} else {
			whepProblem(w, m, http.StatusServiceUnavailable, "too many playback sessions")
		}
		metricWHEPRefused.Inc()
		return
	}
	s.pending++
	s.mu.Unlock()
	// The reservation passes to the session when newSession registers it
	// (in the same critical section, so it is never counted twice).
	placed := false
	defer func() {
		if !placed {
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
		}
	}()

	media, err := s.src.OpenWHEP(r.Context(), grant, remoteAddrOf(r))
	if err != nil {
		switch {
		case errors.Is(err, ErrWHEPForbidden):
			whepProblem(w, m, http.StatusForbidden, "the grant is not valid: "+err.Error())
		case errors.Is(err, ErrWHEPGone):
			whepProblem(w, m, http.StatusNotFound, "the granted message no longer exists")
		case errors.Is(err, ErrWHEPNotAudio):
			whepProblem(w, m, http.StatusNotAcceptable, "the granted part is not playable audio")
		default:
			s.log.Error("whep: opening the granted message", "err", err)
			whepProblem(w, m, http.StatusInternalServerError, "opening the message failed")
		}
		return
	}
	codec := ""
	for _, c := range media.WireCodecs() {
		if _, ok := offer.PT[c]; ok {
			codec = c
			break
		}
	}
	if codec == "" {
		media.Close()
		whepProblem(w, m, http.StatusNotAcceptable, fmt.Sprintf("the message plays in %s; the offer has %s",
			strings.Join(media.WireCodecs(), ", "), strings.Join(offer.Order, ", ")))
		return
	}
	ss, answer, err := s.newSession(r.Context(), media, codec, offer.PT[codec], string(body))
	placed = err == nil
	if err != nil {
		media.Close()
		var bad *whepBadOffer
		if errors.As(err, &bad) {
			whepProblem(w, m, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Error("whep: session setup", "err", err)
		whepProblem(w, m, http.StatusInternalServerError, "session setup failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", WHEPResourcePrefix+ss.id)
	h.Set("ETag", `"`+ss.etag+`"`)
	h.Set("Lemonvox-Media-Duration", strconv.FormatFloat(media.Duration().Seconds(), 'f', 3, 64))
	h.Set("Lemonvox-Media-Start", strconv.FormatFloat(media.Start().Seconds(), 'f', 3, 64))
	h.Set("Cache-Control", "no-store")
	whepStatus(w, m, http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	metricWHEPSetup.Observe(time.Since(started).Seconds())
	// WebRTC media is always SRTP keyed by DTLS (RFC 8827, RFC 5764): the
	// answer's profile is UDP/TLS/RTP/SAVPF with our a=fingerprint.
	s.log.Info("whep session created", "session", ss.id, "codec", codec, "remote", r.RemoteAddr,
		"duration", media.Duration().Round(time.Millisecond), "srtp", true, "keying", "dtls")
}

// whepBadOffer is an offer the WebRTC stack refused (400).
type whepBadOffer struct{ err error }

func (e *whepBadOffer) Error() string { return "the offer was refused: " + e.err.Error() }

func (s *WHEPServer) newSession(ctx context.Context, media WHEPMedia, codec string, pt uint8, offer string) (*whepSession, string, error) {
	wc, _ := whepCodecByName(codec)
	me := &webrtc.MediaEngine{}
	capab := webrtc.RTPCodecCapability{MimeType: wc.MimeType, ClockRate: wc.ClockRate}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: capab, PayloadType: webrtc.PayloadType(pt)}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, "", err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, "", err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(s.se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire})
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*whepSession, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(capab, "audio", "lemonvox")
	if err != nil {
		return fail(err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fail(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(&whepBadOffer{err})
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(&whepBadOffer{err})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(err)
	}
	t := time.NewTimer(s.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(errors.New("ICE gathering timed out"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	var ssrc uint32
	if enc := tr.Sender().GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	ss := &whepSession{srv: s, id: randomID(16), etag: randomID(12), pc: pc, track: track, media: media,
		codec: codec, ssrc: ssrc, created: time.Now()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(errors.New("shutting down"))
	}
	s.sessions[ss.id] = ss
	s.pending-- // the handler's reservation is now this session
	s.mu.Unlock()
	metricWHEPActive.Inc()
	metricWHEPSessions.WithLabelValues(codec).Inc()
	ss.mu.Lock()
	ss.deadline = time.AfterFunc(s.cfg.ConnectTimeout, func() { ss.close("connect-timeout") })
	ss.mu.Unlock()
	sender := tr.Sender()
	go func() { // RTCP from the browser feeds the interceptors
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.play()
		case webrtc.PeerConnectionStateFailed:
			ss.close("ice-failed")
		case webrtc.PeerConnectionStateClosed:
			ss.close("closed")
		}
	})
	return ss, pc.LocalDescription().SDP, nil
}

// whepSession is one WHEP resource: a peer connection playing one message.
type whepSession struct {
	srv     *WHEPServer
	id      string
	etag    string
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	media   WHEPMedia
	codec   string
	ssrc    uint32
	created time.Time

	mu       sync.Mutex
	stop     func()
	playing  bool
	done     bool
	deadline *time.Timer
	linger   *time.Timer
	sent     atomic.Uint64
	dropped  atomic.Uint64
}

func (ss *whepSession) play() {
	ss.mu.Lock()
	if ss.playing || ss.done {
		ss.mu.Unlock()
		return
	}
	ss.playing = true
	ss.deadline.Reset(ss.srv.cfg.MaxDuration)
	ss.mu.Unlock()
	metricWHEPConnect.Observe(time.Since(ss.created).Seconds())
	// Connected means ICE and the DTLS handshake are done: what is sent
	// from now on is SRTP under the DTLS-exported keys.
	dtlsUp := ss.pc.SCTP() != nil && ss.pc.SCTP().Transport() != nil &&
		ss.pc.SCTP().Transport().State() == webrtc.DTLSTransportStateConnected
	ss.srv.log.Info("whep session connected", "session", ss.id, "codec", ss.codec, "srtp", dtlsUp, "keying", "dtls",
		"setup", time.Since(ss.created).Round(time.Millisecond))
	stop, err := ss.media.Play(ss.codec, ss.ssrc, (*whepSink)(ss), ss.ended)
	if err != nil {
		ss.srv.log.Warn("whep: playback failed to start", "session", ss.id, "err", err)
		ss.close("play-error")
		return
	}
	ss.mu.Lock()
	if ss.done {
		ss.mu.Unlock()
		stop()
		return
	}
	ss.stop = stop
	ss.mu.Unlock()
}

// ended is the source's end-of-playback call: the connection stays for
// Linger so the last packets are received, then closes.
func (ss *whepSession) ended(reason string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.done || ss.linger != nil {
		return
	}
	ss.linger = time.AfterFunc(ss.srv.cfg.Linger, func() { ss.close(reason) })
}

func (ss *whepSession) close(reason string) {
	ss.mu.Lock()
	if ss.done {
		ss.mu.Unlock()
		return
	}
	ss.done = true
	stop := ss.stop
	ss.stop = nil
	if ss.deadline != nil {
		ss.deadline.Stop()
	}
	if ss.linger != nil {
		ss.linger.Stop()
	}
	ss.mu.Unlock()
	s := ss.srv
	s.mu.Lock()
	delete(s.sessions, ss.id)
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	_ = ss.pc.Close()
	_ = ss.media.Close()
	metricWHEPActive.Dec()
	metricWHEPEnded.WithLabelValues(reason).Inc()
	s.log.Info("whep session ended", "session", ss.id, "reason", reason, "codec", ss.codec, "srtp", true,
		"packets", ss.sent.Load(), "dropped", ss.dropped.Load(), "age", time.Since(ss.created).Round(time.Millisecond))
}

// whepSink hands the source's packets to the session's track, which
// rewrites SSRC and payload type to the negotiated ones and protects them
// (DTLS-SRTP). RTCP sender reports come from the WebRTC stack's own
// report interceptor, so the source's RTCP is not forwarded.
type whepSink whepSession

func (k *whepSink) Send(pkt []byte) error {
	ss := (*whepSession)(k)
	if _, err := ss.track.Write(pkt); err != nil {
		ss.dropped.Add(1)
		metricWHEPDropped.Inc()
		return err
	}
	ss.sent.Add(1)
	metricWHEPPackets.Inc()
	return nil
}

func (k *whepSink) SendRTCP([]byte) error { return nil }

func (k *whepSink) Close() error { return nil }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// WHEPProblem is an RFC 9457 problem details body.
type WHEPProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func whepProblem(w http.ResponseWriter, method string, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	whepStatus(w, method, status)
	_ = json.NewEncoder(w).Encode(WHEPProblem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

func whepStatus(w http.ResponseWriter, method string, status int) {
	switch method {
	case http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodOptions, http.MethodGet, http.MethodHead:
	default:
		method = "other" // any token is a method: keep the label set small
	}
	metricWHEPRequests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	w.WriteHeader(status)
}
