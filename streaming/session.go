package streaming

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Session states.
const (
	stateReady   = iota // set up, not sending (new, paused, or at the end)
	statePlaying        // in its shard's heap
	stateClosed         // stopped; nothing more is sent
)

// Session is one playback: one RTP stream of one media to one sink, paced
// by the engine's scheduler. Its methods are safe for concurrent use.
type Session struct {
	ID  string
	req PlayRequest
	e   *Engine
	sh  *shard
	log *slog.Logger

	conv   *conversion
	prot   *Protector
	frames int
	seenAt int // frame at which \Seen is set

	// Guarded by sh.mu.
	state     int
	frame     int   // next frame to send
	t0        int64 // engine time of frame f0
	f0        int
	next      int64 // deadline of the next packet (engine time)
	slot      int   // slot of the shard's wheel, -1 when not scheduled
	seq       uint16
	tsBase    uint32 // RTP timestamp of frame 0
	lastSR    int
	sentSeen  bool
	started   PlayInfo
	buf       []byte
	out       []byte
	rtcpBuf   []byte
	rtcpPlain []byte

	packets, octets atomic.Uint64
	late            atomic.Uint64
	ended           atomic.Bool
}

// PlayInfo tells where a Play starts: the first packet's sequence number
// and RTP timestamp (RTSP RTP-Info) and the media position.
type PlayInfo struct {
	Seq     uint16
	RTPTime uint32
	From    time.Duration
}

func random32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%X", b[:])
}

// SSRC is the session's RTP SSRC.
func (s *Session) SSRC() uint32 { return s.req.SSRC }

// Codec is the wire codec.
func (s *Session) Codec() Codec { return s.req.Codec }

// Media is the media played.
func (s *Session) Media() *Media { return s.req.Media }

// Started returns where the last Play (or Start) began.
func (s *Session) Started() PlayInfo {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	return s.started
}

// Position is the media position of the next packet.
func (s *Session) Position() time.Duration {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	return time.Duration(s.frame) * FrameTime
}

// Playing reports whether packets are being sent.
func (s *Session) Playing() bool {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	return s.state == statePlaying
}

// Stats returns packets and octets sent and packets sent late.
func (s *Session) Stats() (packets, octets, late uint64) {
	return s.packets.Load(), s.octets.Load(), s.late.Load()
}

// Play starts or resumes sending from media position from (from < 0:
// where it stands, i.e. resume after Pause). The first packet goes out
// within a few milliseconds (on the least busy of the next ticks). ErrRange when from is at or beyond the end.
func (s *Session) Play(from time.Duration) (PlayInfo, error) {
	return s.PlayWith(from, nil)
}

// PlayWith is Play calling before, once the start is known and before the
// first packet can go out (an RTSP server queues its PLAY response there,
// so that the response precedes the interleaved packets). before must not
// block or call the session's methods.
func (s *Session) PlayWith(from time.Duration, before func(PlayInfo)) (PlayInfo, error) {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	return s.playLocked(from, before)
}

func (s *Session) playLocked(from time.Duration, before func(PlayInfo)) (PlayInfo, error) {
	if s.state == stateClosed {
		return PlayInfo{}, ErrClosed
	}
	f := s.frame
	if from >= 0 {
		f = int(from / FrameTime)
		if from >= s.req.Media.Duration() {
			return PlayInfo{}, ErrRange
		}
	}
	if f >= s.frames {
		return PlayInfo{}, ErrRange
	}
	s.frame, s.f0 = f, f
	s.t0 = s.sh.startTick(s.e.now()) * tickDur
	s.state = statePlaying
	s.ended.Store(false)
	s.started = PlayInfo{Seq: s.seq, RTPTime: s.tsBase + uint32(f)*s.req.Codec.frameClock(), From: time.Duration(f) * FrameTime}
	if before != nil {
		before(s.started)
	}
	s.sh.unschedule(s) // a seek while playing
	s.sh.schedule(s, s.t0)
	return s.started, nil
}

// Pause stops sending and keeps the position (stored for the account).
func (s *Session) Pause() {
	s.sh.mu.Lock()
	if s.state != statePlaying {
		s.sh.mu.Unlock()
		return
	}
	s.sh.unschedule(s)
	s.state = stateReady
	pos := time.Duration(s.frame) * FrameTime
	s.sh.mu.Unlock()
	s.e.keepPosition(s, pos)
}

// Stop ends the session: an RTCP BYE is sent, the position kept (unless
// played to the end) and OnEnd called with reason "stop".
func (s *Session) Stop() { s.close("stop") }

// Expire ends the session as Stop does, with reason "timeout".
func (s *Session) Expire() { s.close("timeout") }

func (s *Session) close(reason string) {
	s.sh.mu.Lock()
	if s.state == stateClosed {
		s.sh.mu.Unlock()
		return
	}
	s.sh.unschedule(s)
	wasEnded := s.ended.Load()
	if !wasEnded {
		s.sendBye()
	}
	s.state = stateClosed
	pos := time.Duration(s.frame) * FrameTime
	s.sh.mu.Unlock()
	if !wasEnded {
		s.e.keepPosition(s, pos)
	}
	s.e.finish(s, reason)
}

// step sends the packet that is due; it returns false when the session
// leaves the heap. The caller holds sh.mu.
func (s *Session) step(sh *shard, now int64) bool {
	if s.state != statePlaying {
		return false
	}
	if s.frame >= s.frames {
		s.endOfMedia(sh)
		return false
	}
	payload := s.conv.frameAt(s.frame)
	if payload == nil {
		s.endOfMedia(sh)
		return false
	}
	if lag := now - s.next; lag > int64(lateAfter) {
		s.late.Add(1)
		metricLate.Inc()
		if lag > int64(resyncAfter) {
			s.t0, s.f0 = sh.startTick(now)*tickDur, s.frame
		}
	}
	c := s.req.Codec
	ts := s.tsBase + uint32(s.frame)*c.frameClock()
	b := s.buf[:12]
	b[0] = 0x80
	b[1] = c.PT
	if s.frame == s.f0 {
		b[1] |= 0x80 // marker: first packet of a talkspurt (after start, seek, resume)
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], s.req.SSRC)
	b = append(b, payload...)
	pkt := b
	if s.prot != nil {
		var err error
		if s.out, err = s.prot.RTP(s.out, b); err != nil {
			s.log.Warn("srtp protect failed", "err", err)
			return false
		}
		pkt = s.out
	}
	if bs, ok := s.req.Sink.(batchSink); ok {
		bs.queue(&sh.batch, pkt)
	} else if err := s.req.Sink.Send(pkt); err != nil && err != ErrDropped {
		s.log.Debug("sink send failed", "err", err)
	}
	s.seq++
	s.frame++
	s.packets.Add(1)
	s.octets.Add(uint64(len(payload)))
	sh.pkts++
	sh.octets += len(pkt)
	if s.frame-s.lastSR >= 5*framesPerSecond || s.packets.Load() == 1 {
		s.lastSR = s.frame
		s.sendRTCP(false)
	}
	if !s.sentSeen && s.frame >= s.seenAt {
		s.sentSeen = true
		sh.post = append(sh.post, func() { s.e.markSeen(s) })
	}
	s.next = s.t0 + int64(s.frame-s.f0)*int64(FrameTime)
	return true
}

// endOfMedia sends SR+BYE and returns the session to the ready state at
// the end; the caller holds sh.mu.
func (s *Session) endOfMedia(sh *shard) {
	s.sendBye()
	s.state = stateReady
	s.ended.Store(true)
	s.frame = s.frames
	sh.post = append(sh.post, func() {
		go s.e.keepPosition(s, 0)
		if s.req.OnEnd != nil {
			s.req.OnEnd("end")
		}
	})
}

// The RTCP counters by kind, resolved once.
var (
	metricRTCPSR  = metricRTCP.WithLabelValues("sr")
	metricRTCPBye = metricRTCP.WithLabelValues("bye")
)

// sendRTCP sends a sender report (RFC 3550 s6.4.1), with a BYE when bye
// is set, built in the session's buffer without allocating.
func (s *Session) sendRTCP(bye bool) {
	now := time.Now()
	secs := uint64(now.Unix()) + 2208988800
	frac := uint64(now.Nanosecond()) << 32 / 1e9
	b := append(s.rtcpPlain[:0], 0x80, 200, 0, 6) // V=2, no reports, 7 words
	b = binary.BigEndian.AppendUint32(b, s.req.SSRC)
	b = binary.BigEndian.AppendUint64(b, secs<<32|frac)
	b = binary.BigEndian.AppendUint32(b, s.tsBase+uint32(s.frame)*s.req.Codec.frameClock())
	b = binary.BigEndian.AppendUint32(b, uint32(s.packets.Load()))
	b = binary.BigEndian.AppendUint32(b, uint32(s.octets.Load()))
	if bye {
		b = append(b, 0x81, 203, 0, 1) // V=2, one source, 2 words
		b = binary.BigEndian.AppendUint32(b, s.req.SSRC)
		metricRTCPBye.Inc()
	}
	s.rtcpPlain = b
	metricRTCPSR.Inc()
	if s.prot != nil {
		var err error
		if b, err = s.prot.RTCP(s.rtcpBuf, b); err != nil {
			return
		}
		s.rtcpBuf = b
	}
	_ = s.req.Sink.SendRTCP(b)
}

func (s *Session) sendBye() {
	if s.packets.Load() > 0 {
		s.sendRTCP(true)
	}
}
