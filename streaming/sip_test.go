package streaming

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

func sippBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp (Debian sip-tester) is required in CI")
		}
		t.Skip("SKIPPING: sipp (Debian package sip-tester) not installed")
	}
	return bin
}

func testLog() *slog.Logger {
	if os.Getenv("STREAMING_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mediaServer is a store with one voice message for alice, an endpoint on
// 127.0.0.1 and the media server on it.
type mediaServer struct {
	st   *vmstore.Store
	res  *channel.Resolver
	ep   *sipep.Endpoint
	srv  *SIPServer
	msg  *vmstore.Message
	wav  []byte
	uidv uint32
}

func startMediaServer(t *testing.T, d time.Duration, tweak func(*SIPServer)) *mediaServer {
	t.Helper()
	return startMediaServerOn(t, "127.0.0.1:0", d, tweak)
}

// startMediaServerOn is startMediaServer with the endpoint on listen.
func startMediaServerOn(t *testing.T, listen string, d time.Duration, tweak func(*SIPServer)) *mediaServer {
	t.Helper()
	st := openStore(t)
	msg, wav := depositVoice(t, st, "alice", d)
	mb, err := st.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(EngineConfig{Store: st, Logger: testLog()})
	t.Cleanup(func() { eng.Close() })
	ep := &sipep.Endpoint{Listen: listen, Logger: testLog(), Realm: "vm.test"}
	ms := &mediaServer{st: st, res: channel.NewResolver(st, ""), ep: ep, msg: msg, wav: wav, uidv: mb.UIDValidity}
	ms.srv = &SIPServer{Endpoint: ep, Store: st, Resolver: ms.res, Engine: eng, PlainSDES: true, Logger: testLog(),
		Cache: NewPartCache(16 << 20)} // blob numbers repeat across the tests' stores
	if tweak != nil {
		tweak(ms.srv)
	}
	if err := ms.srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.srv.Close(); ep.Close() })
	return ms
}

// playURL is an anonymous URLAUTH URL of part 2 of alice's message (uid
// 0: the stored one), escaped for the Request-URI.
func (ms *mediaServer) playURL(t *testing.T, uid uint32) string {
	t.Helper()
	return ms.playURLFor(t, uid, channel.Access{Kind: channel.AccessAnonymous})
}

func (ms *mediaServer) playURLFor(t *testing.T, uid uint32, access channel.Access) string {
	t.Helper()
	if uid == 0 {
		uid = ms.msg.UID
	}
	u, err := ms.res.AuthorizeMessage("alice", "INBOX", ms.uidv, uid, "2", access, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return escapeParam(u)
}

// escapeParam escapes a URL for a SIP URI parameter value (RFC 3261
// paramchar: unreserved, "[]/:&+$", escaped).
func escapeParam(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()[]/:&+$", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		}
	}
	return b.String()
}

// runSipp runs a scenario against the media server; it returns sipp's
// directory (message trace) once sipp has ended.
func runSipp(t *testing.T, ms *mediaServer, scenario string, args ...string) (string, error) {
	t.Helper()
	return runSippOn(t, ms, "127.0.0.1", scenario, args...)
}

// runSippOn runs sipp from the local address ip (127.0.0.1, ::1).
func runSippOn(t *testing.T, ms *mediaServer, ip, scenario string, args ...string) (string, error) {
	t.Helper()
	bin := sippBin(t)
	dir := t.TempDir()
	sf := filepath.Join(dir, "scenario.xml")
	if err := os.WriteFile(sf, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"-sf", sf, "-i", ip, "-p", "0", "-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
		"-trace_msg", "-trace_err", "-error_file", filepath.Join(dir, "err.log"), "-message_file", filepath.Join(dir, "msg.log")}, args...)
	all = append(all, ms.ep.Addr())
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		el, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		ml, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return dir, errors.New(err.Error() + "\n" + string(el) + "\n" + tail + "\n" + string(ml))
	}
	return dir, nil
}

func scenarioFile(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rtpReceiver is the caller's media socket: the test owns it, sipp only
// signals.
type rtpReceiver struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts [][]byte
	done chan struct{}
}

func newReceiver(t *testing.T) *rtpReceiver {
	t.Helper()
	return newReceiverOn(t, net.IPv4(127, 0, 0, 1))
}

func newReceiverOn(t *testing.T, ip net.IP) *rtpReceiver {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	r := &rtpReceiver{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.pkts = append(r.pkts, append([]byte(nil), buf[:n]...))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

func (r *rtpReceiver) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

// settle waits until nothing more arrives for a while (the socket buffer
// is read out); not an assertion.
func (r *rtpReceiver) settle() {
	last := -1
	for i := 0; i < 200; i++ {
		r.mu.Lock()
		n := len(r.pkts)
		r.mu.Unlock()
		if n == last {
			return
		}
		last = n
		time.Sleep(300 * time.Millisecond)
	}
}

func (r *rtpReceiver) packets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.pkts...)
}

var reAnswerKey = regexp.MustCompile(`(?s)SIP/2\.0 200 OK.*?a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]{40})`)

// decodeCall decrypts the received SRTP with the answer's key and decodes
// the PCMU audio in sequence order.
func decodeCall(t *testing.T, pkts [][]byte, inline string) ([]int16, int) {
	t.Helper()
	k, err := ParseCrypto("1 " + SuiteAES80 + " inline:" + inline)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewUnprotector(k)
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		seq     uint16
		payload []byte
	}
	var frames []frame
	for _, p := range pkts {
		if len(p) < 12 || p[1]&0x7f >= 72 && p[1]&0x7f <= 76 {
			continue // RTCP
		}
		plain, err := dec.DecryptRTP(nil, p, nil)
		if err != nil {
			t.Fatalf("SRTP packet does not decrypt with the answer's key: %v", err)
		}
		var h rtp.Packet
		if err := h.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		if h.PayloadType != 0 {
			t.Fatalf("payload type %d, want 0 (PCMU)", h.PayloadType)
		}
		frames = append(frames, frame{h.SequenceNumber, append([]byte(nil), h.Payload...)})
	}
	if len(frames) == 0 {
		return nil, 0
	}
	sort.Slice(frames, func(i, j int) bool { return int16(frames[i].seq-frames[0].seq) < int16(frames[j].seq-frames[0].seq) })
	// Each payload at its sequence number's place (a lost packet leaves
	// silence, not a shift).
	first := frames[0].seq
	var pcm []int16
	for _, f := range frames {
		at := int(f.seq-first) * 160
		for len(pcm) < at {
			pcm = append(pcm, 0)
		}
		for _, b := range f.payload {
			pcm = append(pcm, ulaw(b))
		}
	}
	return pcm, len(frames)
}

// ulaw decodes one G.711 mu-law octet.
func ulaw(b byte) int16 {
	b = ^b
	t := (int(b&0x0f) << 3) + 0x84
	t <<= (b & 0x70) >> 4
	if b&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// The RFC 5616 call placed by sipp (SRTP offer with SDES, UDP and TCP
// signalling): the answer carries our key, the audio that arrives
// decrypts with it and matches the stored message, and the media server
// sends BYE at the end.
func TestSIPSippSRTPCall(t *testing.T) {
	for _, transport := range []string{"u1", "t1"} {
		t.Run(transport, func(t *testing.T) {
			ms := startMediaServer(t, 2*time.Second, nil)
			rx := newReceiver(t)
			offerKey, _ := NewSDESKey(1, SuiteAES80)
			inline := strings.TrimPrefix(offerKey.Attribute(), "1 "+SuiteAES80+" inline:")
			dir, err := runSipp(t, ms, scenarioFile(t, "call.xml"), "-t", transport, "-key", "play", ms.playURL(t, 0),
				"-key", "rtpport", strconv.Itoa(rx.port()), "-key", "offerkey", inline)
			if err != nil {
				t.Fatalf("sipp: %v", err)
			}
			ml, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
			m := reAnswerKey.FindSubmatch(ml)
			if m == nil {
				t.Fatalf("no SDES key in the 200:\n%s", ml)
			}
			if strings.Contains(string(ml), inline) && strings.Count(string(ml), inline) > 1 {
				t.Fatal("the answer reuses the offer's key")
			}
			waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
			rx.settle()
			pcm, n := decodeCall(t, rx.packets(), string(m[1]))
			want := decodePCM(t, ms.wav)
			if n < len(want)/160-1 {
				t.Fatalf("%d packets for %d samples", n, len(want))
			}
			if c := correlation(pcm, want); c < 0.95 {
				t.Fatalf("decoded audio correlation %.3f < 0.95", c)
			}
			if d := len(pcm) - len(want); d < -160 || d > 160 {
				t.Fatalf("received %d samples, stored %d", len(pcm), len(want))
			}
		})
	}
}

// Refusals: a tampered token 403, a message that is gone 404, no codec we
// send 488, a service other than annc 404, a missing play parameter 400.
func TestSIPSippRefused(t *testing.T) {
	ms := startMediaServer(t, time.Second, nil)
	rx := newReceiver(t)
	key, _ := NewSDESKey(1, SuiteAES80)
	inline := strings.TrimPrefix(key.Attribute(), "1 "+SuiteAES80+" inline:")
	good := ms.playURL(t, 0)
	tampered := good[:len(good)-4] + "0000"
	if tampered == good {
		tampered = good[:len(good)-4] + "1111"
	}
	cases := []struct {
		name, service, play, proto, codecs string
		code                               int
	}{
		{"tampered token", "annc", tampered, "RTP/SAVP", "0", 403},
		{"message gone", "annc", ms.playURL(t, ms.msg.UID+50), "RTP/SAVP", "0", 404},
		{"no acceptable codec", "annc", good, "RTP/SAVP", "111", 488},
		{"not the annc service", "voicemail", good, "RTP/SAVP", "0", 404},
		{"malformed play URL", "annc", escapeParam("imap://nothing"), "RTP/SAVP", "0", 400},
	}
	for _, tc := range cases {
		sc := strings.Replace(scenarioFile(t, "refused.xml"), `response="CODE"`, `response="`+strconv.Itoa(tc.code)+`"`, 1)
		if _, err := runSipp(t, ms, sc, "-s", tc.service, "-key", "play", tc.play, "-key", "rtpport", strconv.Itoa(rx.port()),
			"-key", "proto", tc.proto, "-key", "codecs", tc.codecs, "-key", "offerkey", inline); err != nil {
			t.Errorf("%s: want %d: %v", tc.name, tc.code, err)
		}
	}
	if n := len(rx.packets()); n != 0 {
		t.Fatalf("%d packets sent for refused calls", n)
	}
	if ms.srv.Calls() != 0 {
		t.Fatal("refused calls kept")
	}
}
