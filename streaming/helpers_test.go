package streaming

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// quiet is the logger of tests (set LEMONVOX_TEST_LOG=1 to see logs).
var quiet = func() *slog.Logger {
	if os.Getenv("LEMONVOX_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}()

func openStore(t testing.TB) *vmstore.Store {
	t.Helper()
	s, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-" + u, PIN: "1234"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// voiceMessage is a voice message whose part 2 is the WAV file.
func voiceMessage(wav []byte) []byte {
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYou have a message.\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(wav); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(wav[i:min(i+57, len(wav))]))
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return []byte(b.String())
}

// depositVoice stores a voice message of d for user and returns its
// record and the WAV.
func depositVoice(t testing.TB, s *vmstore.Store, user string, d time.Duration) (*vmstore.Message, []byte) {
	t.Helper()
	wav, _, err := transcode.SampleVoice(d)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Deposit(vmstore.DepositReq{User: user, Body: bytes.NewReader(voiceMessage(wav)), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &res.Message, wav
}

func openPart(t testing.TB, s *vmstore.Store, user string, uid uint32) *Media {
	t.Helper()
	m, err := message.Lookup(s, user, "INBOX", uid)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := message.ParseBinary("2")
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Open(sec, message.DecodedLeaf)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	md, err := OpenMedia(p, MediaOptions{Key: m.CacheKey("2")})
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// decodePCM decodes a WAV file to 8 kHz PCM.
func decodePCM(t testing.TB, wav []byte) []int16 {
	t.Helper()
	st, err := transcode.Decode(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, transcode.Convert(st, 8000, 1))
}

func readAll(t testing.TB, src transcode.Source) []int16 {
	var out []int16
	buf := make([]int16, 4096)
	for {
		n, err := src.ReadPCM(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

// correlation is the normalized cross-correlation of a and b over their
// common length.
func correlation(a, b []int16) float64 {
	n := min(len(a), len(b))
	var ab, aa, bb float64
	for i := range n {
		x, y := float64(a[i]), float64(b[i])
		ab += x * y
		aa += x * x
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// captureSink records what a session sends.
type captureSink struct {
	mu   sync.Mutex
	rtp  [][]byte
	rtcp [][]byte
	got  chan struct{}
}

func newCapture() *captureSink { return &captureSink{got: make(chan struct{}, 1)} }

func (c *captureSink) Send(p []byte) error {
	c.mu.Lock()
	c.rtp = append(c.rtp, append([]byte(nil), p...))
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}

func (c *captureSink) SendRTCP(p []byte) error {
	c.mu.Lock()
	c.rtcp = append(c.rtcp, append([]byte(nil), p...))
	c.mu.Unlock()
	return nil
}

func (c *captureSink) Close() error { return nil }

func (c *captureSink) packets() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.rtp...)
}

// waitFor polls cond (no timing assertion: a generous deadline only
// against hangs).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
