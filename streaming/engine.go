package streaming

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// ErrClosed: the session or engine is closed.
var ErrClosed = errors.New("streaming: closed")

// EngineConfig configures an Engine.
type EngineConfig struct {
	// Store receives \Seen and playback positions; nil: neither is kept.
	Store *vmstore.Store
	// Workers is the number of scheduler shards (default GOMAXPROCS).
	Workers int
	// SeenThreshold is the share of a message that, once played, sets
	// \Seen ([streaming] seen_threshold, default 0.9; negative: never).
	SeenThreshold float64
	// RealtimePriority > 0 runs each shard on a thread of its own
	// scheduled SCHED_FIFO at this priority (1-99; Linux, CAP_SYS_NICE),
	// woken directly by the kernel's timer: on a machine whose CPUs are
	// busy with other work the packets then leave on time, at the cost
	// of a thread per shard blocked between ticks. 0: normal priority,
	// shards wake through the Go runtime's poller.
	RealtimePriority int
	Logger           *slog.Logger
}

// Engine paces every playback session of the process on a few scheduler
// goroutines (one per shard) and keeps what playback changes in the store:
// \Seen once a message is heard to the threshold, the position where a
// listener stopped.
type Engine struct {
	cfg    EngineConfig
	log    *slog.Logger
	shards []*shard
	epoch  time.Time
	quit   chan struct{}
	wg     sync.WaitGroup
	rr     atomic.Uint32
	closed atomic.Bool
	clock  func() int64 // tests: engine time; nil: time since epoch

	mu       sync.Mutex
	sessions map[string]*Session
}

// NewEngine starts the scheduler.
func NewEngine(cfg EngineConfig) *Engine { return newEngine(cfg, true) }

// newEngine makes an engine; without run, nothing serves its shards
// (tests drive them with serveDue).
func newEngine(cfg EngineConfig, run bool) *Engine {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.SeenThreshold == 0 {
		cfg.SeenThreshold = 0.9
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger.With("component", "streaming"), epoch: time.Now(),
		quit: make(chan struct{}), sessions: map[string]*Session{}}
	for range cfg.Workers {
		sh := newShard(e)
		e.shards = append(e.shards, sh)
		if !run {
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			sh.run(e.quit)
		}()
	}
	return e
}

func (e *Engine) now() int64 {
	if e.clock != nil {
		return e.clock()
	}
	return int64(time.Since(e.epoch))
}

// PlayRequest describes a playback.
type PlayRequest struct {
	Media *Media
	Codec Codec // one of Media.Playable (payload type may be the peer's)
	// SSRC of the stream (0: random).
	SSRC uint32
	// Start is the media position of the first packet.
	Start time.Duration
	// Paused: set up without sending; Play starts it.
	Paused bool
	Sink   Sink
	// SRTP: the key the stream is protected with (nil: plain RTP).
	SRTP *SDESKey
	// SinkProtects: the sink encrypts what it is given (WHEP: DTLS-SRTP
	// in the peer connection), so SRTP is nil and the stream is still
	// protected on the wire.
	SinkProtects bool
	// Transport names the kind of sink in metrics (udp, tcp, whep, sip).
	Transport string

	// What is played, for \Seen and the kept position. Account is the
	// account's identity (vmstore Account.ID): nothing is written when the
	// name now belongs to another account. UIDValidity 0 is not checked.
	Account     uint64
	User        string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Section     string
	// NoSeen: do not set \Seen.
	NoSeen bool

	// OnEnd is called once when the media played to its end ("end"; the
	// session stays open, at the end) and when the session closes
	// ("stop", "timeout").
	OnEnd func(reason string)
}

// Start opens a session and, unless req.Paused, starts sending at
// req.Start.
func (e *Engine) Start(req PlayRequest) (*Session, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if req.Media == nil || req.Sink == nil {
		return nil, errors.New("streaming: PlayRequest needs Media and Sink")
	}
	conv, err := req.Media.conv(req.Codec)
	if err != nil {
		return nil, err
	}
	if req.Start < 0 || req.Start >= req.Media.Duration() {
		return nil, ErrRange
	}
	if req.SSRC == 0 {
		req.SSRC = random32() | 1
	}
	if req.Transport == "" {
		req.Transport = "other"
	}
	s := &Session{ID: newSessionID(), req: req, e: e, conv: conv, frames: req.Media.Frames(), slot: -1,
		seq: uint16(random32() & 0x7fff), tsBase: random32() | 1, buf: make([]byte, 12, 12+conv.frame),
		out: make([]byte, 0, 64+conv.frame)}
	s.frame = int(req.Start / FrameTime)
	s.seenAt = s.frames + 1
	if !req.NoSeen && e.cfg.SeenThreshold > 0 && e.cfg.SeenThreshold <= 1 {
		s.seenAt = max(int(float64(s.frames)*e.cfg.SeenThreshold+0.5), 1)
	}
	if req.SRTP != nil {
		if s.prot, err = NewProtector(req.SRTP); err != nil {
			return nil, err
		}
	}
	s.log = e.log.With("session", s.ID, "account", req.Account, "mailbox", req.Mailbox, "uid", req.UID,
		"section", req.Section, "codec", req.Codec.String(), "transport", req.Transport, "srtp", req.SRTP != nil || req.SinkProtects)
	s.sh = e.shards[int(e.rr.Add(1))%len(e.shards)]
	e.mu.Lock()
	e.sessions[s.ID] = s
	e.mu.Unlock()
	metricSessions.WithLabelValues(req.Transport).Inc()
	metricActive.Inc()
	s.log.Info("playback session opened", "duration", req.Media.Duration(), "start", req.Start)
	s.sh.mu.Lock()
	s.started = PlayInfo{Seq: s.seq, RTPTime: s.tsBase + uint32(s.frame)*req.Codec.frameClock(), From: time.Duration(s.frame) * FrameTime}
	if !req.Paused {
		_, err = s.playLocked(req.Start, nil)
	}
	s.sh.mu.Unlock()
	if err != nil {
		s.close("error")
		return nil, err
	}
	return s, nil
}

// Session finds an open session by ID.
func (e *Engine) Session(id string) *Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sessions[id]
}

// Sessions is the number of open sessions.
func (e *Engine) Sessions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

// Close stops every session and the scheduler.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.mu.Lock()
	all := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		s.Stop()
	}
	close(e.quit)
	for _, sh := range e.shards {
		sh.kick()
	}
	e.wg.Wait()
	for _, sh := range e.shards {
		sh.timer.close()
	}
	return nil
}

func (e *Engine) finish(s *Session, reason string) {
	e.mu.Lock()
	delete(e.sessions, s.ID)
	e.mu.Unlock()
	metricActive.Dec()
	metricSessionsEnded.WithLabelValues(reason).Inc()
	p, o, late := s.Stats()
	s.log.Info("playback session closed", "reason", reason, "packets", p, "octets", o, "late", late)
	if s.req.OnEnd != nil {
		s.req.OnEnd(reason)
	}
}

// mailbox finds the played message's mailbox if it still belongs to the
// account identity of the request.
func (e *Engine) mailbox(r *PlayRequest) (*vmstore.Mailbox, error) {
	st := e.cfg.Store
	if st == nil || r.User == "" || r.UID == 0 {
		return nil, errors.New("no store")
	}
	id, err := st.AccountID(r.User)
	if err != nil {
		return nil, err
	}
	if id != r.Account {
		return nil, fmt.Errorf("%w: account %s is another identity", vmstore.ErrNotFound, r.User)
	}
	mb, err := st.Mailbox(r.User, r.Mailbox)
	if err != nil {
		return nil, err
	}
	if r.UIDValidity != 0 && mb.UIDValidity != r.UIDValidity {
		return nil, fmt.Errorf("%w: UIDVALIDITY changed", vmstore.ErrNotFound)
	}
	return mb, nil
}

// markSeen sets \Seen on the played message (off the scheduler).
func (e *Engine) markSeen(s *Session) {
	if e.cfg.Store == nil || s.req.User == "" {
		return
	}
	go func() {
		mb, err := e.mailbox(&s.req)
		if err == nil {
			_, err = e.cfg.Store.StoreFlags(vmstore.StoreReq{User: s.req.User, MailboxID: mb.ID,
				UIDs: []uint32{s.req.UID}, Op: vmstore.FlagsAdd, Flags: []string{`\Seen`}})
		}
		if err != nil {
			metricSeen.WithLabelValues("error").Inc()
			s.log.Warn("could not mark message seen", "err", err)
			return
		}
		metricSeen.WithLabelValues("ok").Inc()
		s.log.Info("message marked seen by playback")
	}()
}

// keepPosition stores where the listener stopped (0: forget). It writes
// to the store: never call it on a scheduler goroutine.
func (e *Engine) keepPosition(s *Session, pos time.Duration) {
	if e.cfg.Store == nil || s.req.User == "" {
		return
	}
	mb, err := e.mailbox(&s.req)
	if err == nil {
		err = e.cfg.Store.SetPlaybackPosition(s.req.User, s.req.Account, mb.ID, s.req.UID, pos)
	}
	if err != nil {
		s.log.Debug("could not keep playback position", "err", err)
	}
}

// ResumePosition returns the position kept for the account's playback of
// a message (0 when none, or when the account identity does not match).
func (e *Engine) ResumePosition(account uint64, user, mailbox string, uid uint32) time.Duration {
	r := PlayRequest{Account: account, User: user, Mailbox: mailbox, UID: uid}
	mb, err := e.mailbox(&r)
	if err != nil {
		return 0
	}
	pos, err := e.cfg.Store.PlaybackPosition(account, mb.ID, uid)
	if err != nil {
		return 0
	}
	return pos
}
