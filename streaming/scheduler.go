package streaming

import (
	"sync"
	"time"
)

// The pacing scheduler: every session of an engine lives in one shard,
// served by one goroutine. A shard is a timer wheel of 20 slots of 1 ms:
// a playing session's deadlines are t0 + n x 20 ms with t0 on a 1-ms tick,
// so every deadline of a session falls in the same slot, and a session
// stays in its slot from one packet to the next (no reordering, no heap
// to fix per packet). At each tick the shard serves its slot: the due
// sessions, in the order they joined the slot, build and protect their
// packet; UDP packets are gathered into sendmmsg batches of at most
// serveChunk and flushed as each chunk is done, the shard's lock released
// between chunks so that Play, Pause and Stop never wait for a whole slot.
//
// A starting (or seeking, or resumed) session takes one of the next
// startSpread ticks: one whose slot already holds sessions but fewer than
// slotFill, else the least filled; so a light load shares a few wake-ups
// per period and a heavy one spreads over all 20 slots instead of
// bunching into bursts. Each stream's own spacing stays exactly 20 ms. Deadlines are absolute, so pacing does not drift with wake-up
// latency; a session more than resyncAfter behind is re-anchored instead
// of bursting to catch up.
//
// Waking up: Go's timers on Linux wake with up to a millisecond of delay
// (the runtime's poller sleeps in whole milliseconds), as much jitter as
// the whole budget. A shard waits for its next busy tick on a timerfd
// read through the poller instead (pace_linux.go): the goroutine parks,
// no thread is held, and the kernel's high-resolution timer wakes the
// poller within tens of microseconds. Scheduling a session before the
// tick the timer is set for sets it earlier. Elsewhere a Go timer.

const (
	tickDur  = int64(time.Millisecond)
	wheelLen = int(int64(FrameTime) / tickDur) // 20 slots: one period
	// serveChunk: sessions served between two flushes (and lock
	// releases); also the largest sendmmsg.
	serveChunk = 64
	// startSpread: a starting session takes one of this many next ticks
	// (at most 3 ms later than the earliest); slotFill: it joins a slot
	// with fewer sessions than this before opening an empty one.
	startSpread = 4
	slotFill    = 32
	// serveEarly: a tick is served when it is this close.
	serveEarly = int64(20 * time.Microsecond)
)

// lateAfter: a packet sent later than this after its deadline counts as
// late; resyncAfter: a session further behind is re-anchored at now
// instead of bursting to catch up.
const (
	lateAfter   = 10 * time.Millisecond
	resyncAfter = 200 * time.Millisecond
)

type shard struct {
	e     *Engine
	mu    sync.Mutex
	wheel [wheelLen][]*Session
	n     int   // sessions on the wheel
	tick  int64 // next tick to serve (engine time / tickDur)
	// The slot being served and the index of its next session (a
	// session leaving the slot meanwhile moves the cursor), -1: none.
	pass   int
	cursor int
	timer  shardTimer
	armed  int64 // tick the timer is set for, -1: none
	batch  sendBatch
	post   []func()
	// counted per chunk, added to the metrics outside the lock
	pkts, octets int
}

func newShard(e *Engine) *shard {
	return &shard{e: e, pass: -1, armed: -1, tick: e.now() / tickDur, timer: newShardTimer(e.cfg.RealtimePriority)}
}

// startTick picks the tick of a starting session's first packet among
// the next startSpread ticks not yet served: the fullest slot that still
// has room (fewer than slotFill sessions), so that a lightly loaded shard
// wakes a few times per period for a batch each time rather than every
// millisecond for one packet; when all are full, the least filled, so
// that a loaded shard spreads its sessions over the whole period. Ties go
// to the earliest. The caller holds sh.mu.
func (sh *shard) startTick(now int64) int64 {
	if sh.n == 0 {
		sh.tick = max(sh.tick, now/tickDur) // idle: skip the ticks not served
	}
	first := max((now+tickDur-1)/tickDur, sh.tick)
	fill, least := int64(-1), first
	for t := first; t < first+startSpread; t++ {
		l := len(sh.wheel[t%int64(wheelLen)])
		if l < slotFill && (fill < 0 || l > len(sh.wheel[fill%int64(wheelLen)])) {
			fill = t
		}
		if l < len(sh.wheel[least%int64(wheelLen)]) {
			least = t
		}
	}
	if fill >= 0 {
		return fill
	}
	return least
}

// schedule puts s on the wheel in the slot of its deadline next (a tick,
// at most one period ahead); the caller holds sh.mu and s is not on the
// wheel.
func (sh *shard) schedule(s *Session, next int64) {
	s.next = next
	s.slot = int((next / tickDur) % int64(wheelLen))
	sh.wheel[s.slot] = append(sh.wheel[s.slot], s)
	sh.n++
	// Wake earlier if need be (not during a pass: serveDue sets the
	// timer when the pass is over).
	if t := next / tickDur; sh.pass < 0 && (sh.armed < 0 || t < sh.armed) {
		sh.armed = t
		sh.timer.arm(time.Duration(next - sh.e.now()))
	}
}

// unschedule takes s off the wheel, keeping the order of the others in
// its slot; the caller holds sh.mu.
func (sh *shard) unschedule(s *Session) {
	if s.slot < 0 {
		return
	}
	l := sh.wheel[s.slot]
	for i, x := range l {
		if x != s {
			continue
		}
		copy(l[i:], l[i+1:])
		l[len(l)-1] = nil
		sh.wheel[s.slot] = l[:len(l)-1]
		if s.slot == sh.pass && i < sh.cursor {
			sh.cursor--
		}
		break
	}
	s.slot = -1
	sh.n--
}

// nextBusy is the first tick from sh.tick on whose slot holds sessions;
// the caller holds sh.mu and sh.n > 0.
func (sh *shard) nextBusy() int64 {
	for t := sh.tick; t < sh.tick+int64(wheelLen); t++ {
		if len(sh.wheel[t%int64(wheelLen)]) > 0 {
			return t
		}
	}
	return sh.tick
}

func (sh *shard) run(quit <-chan struct{}) {
	if p := sh.e.cfg.RealtimePriority; p > 0 {
		if err := realtimeThread(p); err != nil {
			sh.e.log.Warn("pacing thread stays at normal priority", "priority", p, "err", err)
		}
	}
	for {
		sh.serveDue()
		if !sh.timer.wait(quit) {
			return
		}
	}
}

// kick wakes the shard's goroutine at once (Close).
func (sh *shard) kick() {
	sh.mu.Lock()
	sh.armed = sh.tick
	sh.timer.arm(0)
	sh.mu.Unlock()
}

// serveDue serves every tick that is due and sets the timer for the next
// busy tick (or clears it when the wheel is empty).
func (sh *shard) serveDue() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.e.now()
	for sh.n > 0 {
		next := sh.nextBusy()
		if next*tickDur > now+serveEarly {
			break
		}
		sh.tick = next + 1
		metricWakeLate.Observe(float64(now-next*tickDur) / 1e9)
		sh.serve(int(next%int64(wheelLen)), next*tickDur)
		now = sh.e.now()
	}
	if sh.n == 0 {
		sh.armed = -1
		sh.timer.disarm()
		return
	}
	sh.armed = sh.nextBusy()
	sh.timer.arm(time.Duration(sh.armed*tickDur - now))
}

// serve sends the packets due at time due of one slot, serveChunk
// sessions at a time; it is called and returns with sh.mu held and
// releases it while each chunk's packets are flushed.
func (sh *shard) serve(slot int, due int64) {
	sh.pass, sh.cursor = slot, 0
	for {
		now := sh.e.now()
		for k := 0; k < serveChunk && sh.cursor < len(sh.wheel[slot]); k++ {
			s := sh.wheel[slot][sh.cursor]
			sh.cursor++
			if s.next > due {
				continue // due a period later (re-anchored)
			}
			if !s.step(sh, now) {
				sh.unschedule(s)
				continue
			}
			if ns := int((s.next / tickDur) % int64(wheelLen)); ns != slot {
				sh.unschedule(s) // re-anchored to another tick
				sh.schedule(s, s.next)
			}
		}
		done := sh.cursor >= len(sh.wheel[slot])
		post := sh.post
		sh.post = nil
		pkts, octets := sh.pkts, sh.octets
		sh.pkts, sh.octets = 0, 0
		sh.mu.Unlock()
		if len(sh.batch.msgs) > 0 {
			sh.batch.flush()
		}
		if pkts > 0 {
			metricPackets.Add(float64(pkts))
			metricBytes.Add(float64(octets))
		}
		for _, f := range post {
			f()
		}
		sh.mu.Lock()
		if done || sh.cursor >= len(sh.wheel[slot]) {
			break
		}
	}
	sh.pass = -1
}

// shardTimer wakes a shard's goroutine. arm and disarm are called with
// the shard's lock held; wait returns false once quit is closed.
type shardTimer interface {
	arm(d time.Duration) // fire d from now (at once when d <= 0)
	disarm()
	wait(quit <-chan struct{}) bool
	close()
}

// goTimer is a shardTimer on a Go timer.
type goTimer struct {
	mu    sync.Mutex
	at    time.Time
	armed bool
	kick  chan struct{}
	t     *time.Timer
}

func newGoTimer() shardTimer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &goTimer{kick: make(chan struct{}, 1), t: t}
}

func (g *goTimer) arm(d time.Duration) {
	g.mu.Lock()
	g.at, g.armed = time.Now().Add(d), true
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *goTimer) disarm() {
	g.mu.Lock()
	g.armed = false
	g.mu.Unlock()
}

func (g *goTimer) wait(quit <-chan struct{}) bool {
	for {
		g.mu.Lock()
		armed, at := g.armed, g.at
		g.mu.Unlock()
		var fired <-chan time.Time
		if armed {
			d := time.Until(at)
			if d <= 0 {
				return true
			}
			g.t.Reset(d)
			fired = g.t.C
		}
		select {
		case <-fired:
			return true
		case <-g.kick:
			g.t.Stop()
		case <-quit:
			g.t.Stop()
			return false
		}
	}
}

func (g *goTimer) close() { g.t.Stop() }
