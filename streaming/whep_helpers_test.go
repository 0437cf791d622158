package streaming

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// toneSource is a WHEP source for tests: grant "tone-<ms>" plays a 440 Hz
// tone of that many milliseconds (rounded down to 20-ms packets) in
// PCMU or PCMA; "expired" is refused, "gone" names a deleted message and
// "g722only" plays only in G.722.
type toneSource struct {
	mu     sync.Mutex
	opened int
	closed int
}

func (s *toneSource) OpenWHEP(_ context.Context, grant string, _ netip.Addr) (WHEPMedia, error) {
	switch grant {
	case "expired":
		return nil, ErrWHEPForbidden
	case "gone":
		return nil, ErrWHEPGone
	case "broken":
		return nil, errors.New("store unavailable")
	}
	m := &toneMedia{src: s, n: 100, codecs: []string{"PCMU", "PCMA"}}
	if grant == "g722only" {
		m.codecs = []string{"G722"}
	} else if ms, err := strconv.Atoi(strings.TrimPrefix(grant, "tone-")); err == nil && strings.HasPrefix(grant, "tone-") {
		m.n = ms / 20
	} else {
		return nil, ErrWHEPForbidden
	}
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
	return m, nil
}

func (s *toneSource) counts() (opened, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, s.closed
}

type toneMedia struct {
	src    *toneSource
	n      int // packets
	codecs []string
	once   sync.Once
}

func (m *toneMedia) WireCodecs() []string    { return m.codecs }
func (m *toneMedia) Duration() time.Duration { return time.Duration(m.n) * 20 * time.Millisecond }
func (m *toneMedia) Start() time.Duration    { return 0 }
func (m *toneMedia) Close() error {
	m.once.Do(func() {
		m.src.mu.Lock()
		m.src.closed++
		m.src.mu.Unlock()
	})
	return nil
}

// Play paces with a ticker of its own: the tests' stand-in for the
// playback engine.
func (m *toneMedia) Play(codec string, ssrc uint32, sink WHEPSink, end func(string)) (func(), error) {
	c, _ := whepCodecByName(codec)
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		pkt := make([]byte, 12+160)
		for i := 0; i < m.n; i++ {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			pkt[0] = 0x80
			pkt[1] = c.StaticPT
			binary.BigEndian.PutUint16(pkt[2:], uint16(i))
			binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
			binary.BigEndian.PutUint32(pkt[8:], ssrc)
			for j := range 160 {
				v := int16(8000 * math.Sin(2*math.Pi*440*float64(i*160+j)/8000))
				pkt[12+j] = linearToULaw(v)
			}
			_ = sink.Send(pkt)
		}
		end("end")
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }) }, nil
}

// linearToULaw is G.711 mu-law (the tests' own; content is not checked).
func linearToULaw(s int16) byte {
	const bias = 0x84
	sign := byte(0)
	x := int(s)
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > 32635 {
		x = 32635
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}

func newTestWHEP(t testing.TB, cfg WHEPConfig) (*WHEPServer, *toneSource, *httptest.Server) {
	t.Helper()
	src := &toneSource{}
	cfg.RemoteNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s, err := NewWHEPServer(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, src, hs
}

// clientPC is a pion peer connection acting as a WHEP player, loopback
// only.
func clientPC(t testing.TB, codecs ...string) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for i, name := range codecs {
		if name == "opus" {
			_ = me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}, webrtc.RTPCodecTypeAudio)
			continue
		}
		c, ok := whepCodecByName(name)
		if !ok {
			t.Fatalf("codec %s", name)
		}
		pt := webrtc.PayloadType(c.StaticPT)
		if i == 0 && name == "PCMA" {
			pt = 8
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: c.MimeType, ClockRate: c.ClockRate}, PayloadType: pt}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	return pc
}

// makeOffer returns pc's complete offer (all candidates).
func makeOffer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	off, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(off); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}
