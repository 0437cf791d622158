package streaming

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// orderSink records the SSRC and RTP header of every packet of every
// session that shares it, in sending order.
type orderSink struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (o *orderSink) Send(p []byte) error {
	o.mu.Lock()
	o.pkts = append(o.pkts, append([]byte(nil), p[:12]...))
	o.mu.Unlock()
	return nil
}
func (o *orderSink) SendRTCP([]byte) error { return nil }
func (o *orderSink) Close() error          { return nil }

// take returns the SSRCs of the packets sent since the last take.
func (o *orderSink) take() []uint32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []uint32
	for _, p := range o.pkts {
		out = append(out, binary.BigEndian.Uint32(p[8:]))
	}
	o.pkts = nil
	return out
}

// fakeClock is engine time moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  int64
}

func (c *fakeClock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t int64) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// pcmuMedia is d of headerless PCMU.
func pcmuMedia(t *testing.T, d time.Duration) *Media {
	t.Helper()
	md, err := OpenMediaBytes("audio/basic", nil, bytes.Repeat([]byte{0xff}, int(d/time.Millisecond)*8), MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// wheelOf lists, for every session on the shard's wheel, how many times
// it is there, and checks the shard's count and each session's slot.
func wheelOf(t *testing.T, sh *shard) map[*Session]int {
	t.Helper()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	on := map[*Session]int{}
	n := 0
	for slot, l := range sh.wheel {
		for _, s := range l {
			on[s]++
			n++
			if s.slot != slot {
				t.Fatalf("session in slot %d says slot %d", slot, s.slot)
			}
			if int((s.next/tickDur)%int64(wheelLen)) != slot {
				t.Fatalf("session in slot %d has its deadline %d in another slot", slot, s.next)
			}
		}
	}
	if n != sh.n {
		t.Fatalf("wheel holds %d, shard counts %d", n, sh.n)
	}
	for s, k := range on {
		if k != 1 {
			t.Fatalf("session %s is %d times on the wheel", s.ID, k)
		}
	}
	return on
}

func equalSSRCs(t *testing.T, what string, got []uint32, want ...*Session) {
	t.Helper()
	ok := len(got) == len(want)
	for i := range want {
		if ok && got[i] != want[i].SSRC() {
			ok = false
		}
	}
	if !ok {
		var w []uint32
		for _, s := range want {
			w = append(w, s.SSRC())
		}
		t.Fatalf("%s: sent %x, want %x", what, got, w)
	}
}

// TestWheelOrderPauseSeekStop drives one shard by hand on a fake clock:
// sessions that start together share a slot and are served in the order
// they joined, every 20 ms; Pause takes a session off the wheel and keeps
// the others' order; Play after Pause, a seek while playing, a session
// reaching its end and Stop each leave every session on the wheel at most
// once, in the slot of its deadline; Close leaves nothing.
func TestWheelOrderPauseSeekStop(t *testing.T) {
	clk := &fakeClock{t: 1000*tickDur + 300*int64(time.Microsecond)}
	e := newEngine(EngineConfig{Workers: 1, Logger: quiet}, false)
	e.clock = clk.now
	defer e.Close()
	sh := e.shards[0]
	sink := &orderSink{}
	start := func(d time.Duration) *Session {
		s, err := e.Start(PlayRequest{Media: pcmuMedia(t, d), Codec: PCMU, Sink: sink, NoSeen: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := start(2*time.Second), start(2*time.Second), start(2*time.Second)
	short := start(60 * time.Millisecond) // 3 packets
	if on := wheelOf(t, sh); len(on) != 4 || a.slot != b.slot || b.slot != c.slot || c.slot != short.slot {
		t.Fatalf("sessions started together are not in one slot: %d %d %d %d", a.slot, b.slot, c.slot, short.slot)
	}
	tick := int64(1001) // the first tick after the start
	serveAt := func(ms int64) []uint32 {
		clk.set(ms * tickDur)
		sh.serveDue()
		if (sh.armed < 0) != (sh.n == 0) {
			t.Fatalf("timer set for tick %d with %d sessions", sh.armed, sh.n)
		}
		return sink.take()
	}
	if got := serveAt(tick - 1); len(got) != 0 {
		t.Fatalf("sent before the deadline: %x", got)
	}
	for i := range 3 {
		equalSSRCs(t, "period", serveAt(tick+int64(20*i)), a, b, c, short)
	}
	tick += 60
	// short has played its 3 packets: it leaves the wheel at its next turn.
	equalSSRCs(t, "after the end of one", serveAt(tick), a, b, c)
	if _, ok := wheelOf(t, sh)[short]; ok || !short.ended.Load() {
		t.Fatal("ended session still on the wheel")
	}
	tick += 20
	b.Pause()
	equalSSRCs(t, "paused", serveAt(tick), a, c)
	if _, ok := wheelOf(t, sh)[b]; ok {
		t.Fatal("paused session on the wheel")
	}
	// Resume b: it takes one of the next ticks, and keeps its place in
	// the sequence numbers.
	clk.set(tick*tickDur + 100*int64(time.Microsecond))
	if _, err := b.Play(-1); err != nil {
		t.Fatal(err)
	}
	wheelOf(t, sh)
	var sent []uint32
	for ms := tick + 1; ms <= tick+20; ms++ {
		sent = append(sent, serveAt(ms)...)
	}
	equalSSRCs(t, "resumed", sent, b, a, c)
	tick += 20
	// Seek a while playing: still once on the wheel; its next packet is
	// frame 50 with the marker bit.
	clk.set(tick*tickDur + 100*int64(time.Microsecond))
	info, err := a.Play(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wheelOf(t, sh)
	var first []byte
	for ms := tick + 1; ms <= tick+4 && first == nil; ms++ {
		clk.set(ms * tickDur)
		sh.serveDue()
		sink.mu.Lock()
		for _, p := range sink.pkts {
			if binary.BigEndian.Uint32(p[8:]) == a.SSRC() {
				first = p
			}
		}
		sink.pkts = nil
		sink.mu.Unlock()
	}
	if first == nil || first[1]&0x80 == 0 || binary.BigEndian.Uint32(first[4:]) != info.RTPTime || binary.BigEndian.Uint16(first[2:]) != info.Seq {
		t.Fatalf("first packet after the seek %x, want marker, seq %d, ts %d", first, info.Seq, info.RTPTime)
	}
	c.Stop()
	if on := wheelOf(t, sh); len(on) != 2 {
		t.Fatalf("%d sessions on the wheel after Stop, want 2", len(on))
	}
	e.Close()
	if on := wheelOf(t, sh); len(on) != 0 || e.Sessions() != 0 {
		t.Fatalf("after Close: %d on the wheel, %d open", len(on), e.Sessions())
	}
}

// TestWheelSpread: sessions starting at one instant fill a slot up to
// slotFill before the next tick's slot is used, and once the next
// startSpread ticks are full they go to the least filled.
func TestWheelSpread(t *testing.T) {
	clk := &fakeClock{t: 5000 * tickDur}
	e := newEngine(EngineConfig{Workers: 1, Logger: quiet}, false)
	e.clock = clk.now
	defer e.Close()
	md := pcmuMedia(t, time.Second)
	for range startSpread*slotFill + 2*startSpread + 1 {
		if _, err := e.Start(PlayRequest{Media: md, Codec: PCMU, Sink: &orderSink{}, NoSeen: true}); err != nil {
			t.Fatal(err)
		}
	}
	sh := e.shards[0]
	wheelOf(t, sh)
	for k := range int64(startSpread) {
		want := slotFill + 2
		if k == 0 {
			want++ // ties go to the earliest
		}
		if l := len(sh.wheel[(5000+k)%int64(wheelLen)]); l != want {
			t.Fatalf("tick +%d holds %d sessions, want %d", k, l, want)
		}
	}
	if sh.n != startSpread*slotFill+2*startSpread+1 {
		t.Fatalf("shard counts %d", sh.n)
	}
}

// TestWheelResync: a session far behind its deadline (the process was
// stopped) is re-anchored at the present instead of bursting, counted
// late, and stays once on the wheel in the slot of its new deadline.
func TestWheelResync(t *testing.T) {
	clk := &fakeClock{t: 100 * tickDur}
	e := newEngine(EngineConfig{Workers: 1, Logger: quiet}, false)
	e.clock = clk.now
	defer e.Close()
	sink := &orderSink{}
	s, err := e.Start(PlayRequest{Media: pcmuMedia(t, 2*time.Second), Codec: PCMU, Sink: sink, NoSeen: true})
	if err != nil {
		t.Fatal(err)
	}
	sh := e.shards[0]
	clk.set(100 * tickDur)
	sh.serveDue()
	if got := sink.take(); len(got) != 1 {
		t.Fatalf("%d packets at the start", len(got))
	}
	clk.set(457*tickDur + 500*int64(time.Microsecond)) // 357 ms later
	sh.serveDue()
	if got := sink.take(); len(got) != 1 {
		t.Fatalf("%d packets after the stall, want 1 (no burst)", len(got))
	}
	wheelOf(t, sh)
	if _, _, late := s.Stats(); late != 1 {
		t.Fatalf("late %d", late)
	}
	if s.next <= clk.now() || s.next > clk.now()+int64(FrameTime)+startSpread*tickDur {
		t.Fatalf("next deadline %d not re-anchored near %d", s.next, clk.now())
	}
	clk.set(s.next)
	sh.serveDue()
	if got := sink.take(); len(got) != 1 {
		t.Fatalf("%d packets at the new deadline", len(got))
	}
}

// TestEngineChurnNoLeak: many sessions on a running engine, paused,
// resumed, sought and stopped from several goroutines while the shards
// serve them; afterwards no session is open and every wheel is empty.
func TestEngineChurnNoLeak(t *testing.T) {
	e := NewEngine(EngineConfig{Workers: 2, Logger: quiet})
	defer e.Close()
	md := pcmuMedia(t, 3*time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var mine []*Session
			for i := range 60 {
				s, err := e.Start(PlayRequest{Media: md, Codec: PCMU, Sink: &orderSink{}, NoSeen: true, Paused: i%5 == 0})
				if err != nil {
					t.Error(err)
					return
				}
				mine = append(mine, s)
				x := mine[rng.IntN(len(mine))]
				switch rng.IntN(5) {
				case 0:
					x.Pause()
				case 1:
					_, _ = x.Play(-1)
				case 2:
					_, _ = x.Play(time.Duration(rng.IntN(2900)) * time.Millisecond)
				case 3:
					x.Stop()
				}
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			for _, s := range mine {
				s.Stop()
			}
		}()
	}
	wg.Wait()
	if n := e.Sessions(); n != 0 {
		t.Fatalf("%d sessions open", n)
	}
	for _, sh := range e.shards {
		if on := wheelOf(t, sh); len(on) != 0 {
			t.Fatalf("%d sessions left on a wheel", len(on))
		}
	}
}

// TestSenderReportForm: the sender report built by hand parses as one
// (pion/rtcp) with the session's SSRC, counts and RTP time, and the BYE
// at Stop follows it in the same compound packet.
func TestSenderReportForm(t *testing.T) {
	clk := &fakeClock{t: 10 * tickDur}
	e := newEngine(EngineConfig{Workers: 1, Logger: quiet}, false)
	e.clock = clk.now
	defer e.Close()
	sink := newCapture()
	s, err := e.Start(PlayRequest{Media: pcmuMedia(t, time.Second), Codec: PCMU, Sink: sink, NoSeen: true})
	if err != nil {
		t.Fatal(err)
	}
	e.shards[0].serveDue() // first packet, and a report after it
	s.Stop()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.rtcp) != 2 {
		t.Fatalf("%d RTCP packets, want a report and a report+BYE", len(sink.rtcp))
	}
	for i, raw := range sink.rtcp {
		pk, err := rtcp.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		sr, ok := pk[0].(*rtcp.SenderReport)
		if !ok || sr.SSRC != s.SSRC() || sr.PacketCount != 1 || sr.OctetCount != 160 || sr.RTPTime != s.Started().RTPTime+160 || sr.NTPTime == 0 {
			t.Fatalf("report %d: %+v", i, pk[0])
		}
		if i == 1 {
			bye, ok := pk[len(pk)-1].(*rtcp.Goodbye)
			if len(pk) != 2 || !ok || len(bye.Sources) != 1 || bye.Sources[0] != s.SSRC() {
				t.Fatalf("stop: %v", pk)
			}
		}
	}
}
