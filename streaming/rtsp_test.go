package streaming

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// rtspEnv is a store with a voice message, an engine and an RTSP server
// with an RTSPS and a plain listener on 127.0.0.1.
type rtspEnv struct {
	st           *vmstore.Store
	grants       *channel.Grants
	engine       *Engine
	srv          *RTSPServer
	tlsAddr      string
	plainAddr    string
	msg          *vmstore.Message
	wav          []byte
	acct         uint64
	uidvalidity  uint32
	sessionLimit time.Duration
}

func newRTSPEnv(t *testing.T, cfg RTSPConfig, d time.Duration) *rtspEnv {
	t.Helper()
	env := &rtspEnv{st: openStore(t)}
	env.msg, env.wav = depositVoice(t, env.st, "alice", d)
	var err error
	if env.grants, err = channel.NewGrants(env.st); err != nil {
		t.Fatal(err)
	}
	env.acct, _ = env.st.AccountID("alice")
	mb, _ := env.st.Mailbox("alice", "INBOX")
	env.uidvalidity = mb.UIDValidity
	env.engine = NewEngine(EngineConfig{Store: env.st, Workers: 2, Logger: quiet})
	cfg.Engine, cfg.Store, cfg.Grants, cfg.TLS = env.engine, env.st, env.grants, testTLS(t)
	cfg.Cache = NewPartCache(64 << 20)
	cfg.Logger = quiet
	env.srv = NewRTSPServer(cfg)
	lt, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.tlsAddr, env.plainAddr = lt.Addr().String(), lp.Addr().String()
	go env.srv.Serve(lt, true)
	go env.srv.Serve(lp, false)
	t.Cleanup(func() {
		env.srv.Close()
		env.srv.Wait()
		env.engine.Close()
	})
	return env
}

func (env *rtspEnv) grant(t *testing.T, g channel.Grant) string {
	t.Helper()
	if g.User == "" {
		g = channel.Grant{AccountID: env.acct, User: "alice", Mailbox: "INBOX", UIDValidity: env.uidvalidity,
			UID: env.msg.UID, Section: "2", MaxUses: g.MaxUses, Resume: g.Resume, Expires: g.Expires}
	}
	tok, _, err := env.grants.Issue(g)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func needFFmpeg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg is required in CI (Debian package ffmpeg)")
		}
		t.Skip("SKIPPING: ffmpeg not installed (Debian package ffmpeg); RTSP interop not tested")
	}
	return p
}

// record runs ffmpeg on url and returns the decoded 8 kHz PCM it wrote.
func record(t *testing.T, url string, args ...string) ([]int16, string) {
	t.Helper()
	bin := needFFmpeg(t)
	out := filepath.Join(t.TempDir(), "out.wav")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // hard kill deadline
	defer cancel()
	a := append([]string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-timeout", "20000000"}, args...)
	a = append(a, "-i", url, "-vn", "-acodec", "pcm_s16le", "-ar", "8000", "-ac", "1", "-f", "wav", "-y", out)
	cmd := exec.CommandContext(ctx, bin, a...)
	cmd.WaitDelay = 5 * time.Second
	logs, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, logs)
	}
	wav, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return decodePCM(t, wav), string(logs)
}

// bestCorrelation is the highest correlation of got against want over
// lags of up to 50 ms either way (the recorder may start a few samples
// off), and the lag.
func bestCorrelation(got, want []int16) (float64, int) {
	best, lag := -1.0, 0
	for l := -400; l <= 400; l++ {
		var c float64
		if l >= 0 {
			if l >= len(got) {
				continue
			}
			c = correlation(got[l:], want)
		} else {
			if -l >= len(want) {
				continue
			}
			c = correlation(got, want[-l:])
		}
		if c > best {
			best, lag = c, l
		}
	}
	return best, lag
}

func checkAudio(t *testing.T, what string, got, want []int16) {
	t.Helper()
	gd := time.Duration(len(got)) * time.Second / 8000
	wd := time.Duration(len(want)) * time.Second / 8000
	c, lag := bestCorrelation(got, want)
	t.Logf("%s: recorded %v, stored %v, correlation %.4f at lag %d samples", what, gd, wd, c, lag)
	if d := gd - wd; d > 40*time.Millisecond || d < -40*time.Millisecond {
		t.Errorf("%s: recorded %v, stored %v: more than 40 ms apart", what, gd, wd)
	}
	if c < 0.95 {
		t.Errorf("%s: correlation %.4f < 0.95 (undecrypted SRTP decodes as noise)", what, c)
	}
}

// TestFFmpegRTSPS: ffmpeg records a message through a CHANNEL URL over
// RTSPS (interleaved TCP, forced by rtsps://) decrypting SRTP with the key
// of the DESCRIBE's a=crypto line; the audio matches the stored audio.
// Played to the end, the message is \Seen and the session is gone.
func TestFFmpegRTSPS(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	url := "rtsps://" + env.tlsAddr + "/" + env.grant(t, channel.Grant{})
	got, logs := record(t, url)
	checkAudio(t, "rtsps+srtp", got, decodePCM(t, env.wav))
	if strings.Contains(logs, "SRTP") || strings.Contains(logs, "auth") {
		t.Logf("ffmpeg said: %s", logs)
	}
	waitFor(t, `\Seen`, func() bool {
		m, err := env.st.Message(env.msg.MailboxID, env.msg.UID)
		return err == nil && m.Has(`\Seen`)
	})
	waitFor(t, "sessions closed", func() bool { return env.srv.Sessions() == 0 && env.engine.Sessions() == 0 })
}

// TestFFmpegRTSPUDP: ffmpeg records over plain RTSP with RTP over UDP.
func TestFFmpegRTSPUDP(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	url := "rtsp://" + env.plainAddr + "/" + env.grant(t, channel.Grant{})
	got, _ := record(t, url, "-rtsp_transport", "udp")
	checkAudio(t, "rtsp+udp", got, decodePCM(t, env.wav))
}

// TestFFmpegResume: a grant with Resume starts where the account's last
// playback stopped; the recording is the stored audio from there.
func TestFFmpegResume(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 4*time.Second)
	mb, _ := env.st.Mailbox("alice", "INBOX")
	pos := 2 * time.Second
	if err := env.st.SetPlaybackPosition("alice", env.acct, mb.ID, env.msg.UID, pos); err != nil {
		t.Fatal(err)
	}
	url := "rtsps://" + env.tlsAddr + "/" + env.grant(t, channel.Grant{Resume: true})
	got, _ := record(t, url)
	want := decodePCM(t, env.wav)[16000:]
	// The first packets carry the audio at pos.
	c, lag := bestCorrelation(got[:min(len(got), 4000)], want[:4000])
	t.Logf("first 0.5 s after resume: correlation %.4f lag %d", c, lag)
	if c < 0.95 || lag != 0 {
		t.Fatalf("resumed audio is not the audio at %v (correlation %.4f, lag %d)", pos, c, lag)
	}
	checkAudio(t, "resumed", got, want)
}

// rtspClient is a raw RTSP client for the negative cases.
type rtspClient struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	cseq int
	last string // status line of the last response read
}

func dialRTSP(t *testing.T, addr string, secure bool) *rtspClient {
	t.Helper()
	var c net.Conn
	var err error
	if secure {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rtspClient{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a request and returns the status code, headers and body,
// skipping interleaved frames.
func (r *rtspClient) do(method, url string, hdr ...string) (int, map[string]string, string) {
	r.t.Helper()
	r.cseq++
	req := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, url, r.cseq)
	for _, h := range hdr {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(r.c, req+"\r\n"); err != nil {
		r.t.Fatal(err)
	}
	code, h, body := r.read()
	if h["cseq"] != fmt.Sprint(r.cseq) {
		r.t.Fatalf("%s: CSeq %q, want %d", method, h["cseq"], r.cseq)
	}
	return code, h, body
}

// read reads one response (skipping interleaved frames): status code,
// headers by lower-case name, body; the status line is in r.last.
func (r *rtspClient) read() (int, map[string]string, string) {
	r.t.Helper()
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			r.t.Fatal(err)
		}
		if b[0] != '$' {
			break
		}
		if _, err := readFrame(r.br); err != nil {
			r.t.Fatal(err)
		}
	}
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatal(err)
	}
	r.last = strings.TrimRight(line, "\r\n")
	var code int
	fmt.Sscanf(line, "RTSP/1.0 %d", &code)
	h := map[string]string{}
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatal(err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		h[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	var body []byte
	if n := h["content-length"]; n != "" {
		var k int
		fmt.Sscanf(n, "%d", &k)
		body = make([]byte, k)
		io.ReadFull(r.br, body)
	}
	return code, h, string(body)
}

// TestRTSPRefusals: grants that must not open, and requests out of order
// or out of range, get their status codes.
func TestRTSPRefusals(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	c := dialRTSP(t, env.tlsAddr, true)
	base := "rtsps://" + env.tlsAddr + "/"
	tok := env.grant(t, channel.Grant{})

	if code, h, _ := c.do("OPTIONS", "*"); code != 200 || !strings.Contains(h["public"], "GET_PARAMETER") {
		t.Fatalf("OPTIONS %d %v", code, h)
	}
	// Tampered URL.
	bad := []byte(tok)
	bad[10] ^= 2
	if code, _, _ := c.do("DESCRIBE", base+string(bad), "Accept: application/sdp"); code != 403 {
		t.Fatalf("tampered grant: %d", code)
	}
	// Expired grant.
	now := time.Now()
	env.grants.Now = func() time.Time { return now.Add(-time.Hour) }
	old := env.grant(t, channel.Grant{Expires: now.Add(-59 * time.Minute)})
	env.grants.Now = time.Now
	if code, _, _ := c.do("DESCRIBE", base+old, "Accept: application/sdp"); code != 403 {
		t.Fatalf("expired grant: %d", code)
	}
	// Another account's grant: bob's message, then bob deleted and
	// created again (same name, another identity).
	bm, _ := depositVoice(t, env.st, "bob", time.Second)
	bid, _ := env.st.AccountID("bob")
	bmb, _ := env.st.Mailbox("bob", "INBOX")
	btok := env.grant(t, channel.Grant{AccountID: bid, User: "bob", Mailbox: "INBOX", UIDValidity: bmb.UIDValidity, UID: bm.UID, Section: "2"})
	if code, _, body := c.do("DESCRIBE", base+btok, "Accept: application/sdp"); code != 200 || !strings.Contains(body, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Fatalf("bob's grant before: %d\n%s", code, body)
	}
	env.st.DeleteAccount("bob")
	env.st.CreateAccount(vmstore.AccountSpec{Name: "bob", Password: "pw", PIN: "1234"})
	depositVoice(t, env.st, "bob", time.Second)
	if code, _, _ := c.do("DESCRIBE", base+btok, "Accept: application/sdp"); code != 403 {
		t.Fatalf("re-created account's grant: %d", code)
	}
	// PLAY before SETUP; unknown session.
	if code, _, _ := c.do("PLAY", base+tok); code != 455 {
		t.Fatalf("PLAY before SETUP: %d", code)
	}
	if code, _, _ := c.do("PLAY", base+tok, "Session: 0123456789ABCDEF"); code != 454 {
		t.Fatalf("unknown session: %d", code)
	}
	// DESCRIBE: exactly one crypto line, SAVP, range.
	code, h, body := c.do("DESCRIBE", base+tok, "Accept: application/sdp")
	if code != 200 || strings.Count(body, "a=crypto") != 1 || !strings.Contains(body, "RTP/SAVP") || !strings.Contains(body, "a=range:npt=0-2.000") {
		t.Fatalf("DESCRIBE %d\n%s", code, body)
	}
	cb := h["content-base"]
	// RTP/AVP over RTSPS only when the configuration allows it.
	if _, _, body := c.do("DESCRIBE", base+tok+"?profile=avp", "Accept: application/sdp"); !strings.Contains(body, "RTP/SAVP") {
		t.Fatalf("plain RTP over RTSPS without allow_plain:\n%s", body)
	}
	// Multicast and record refused.
	if code, _, _ := c.do("SETUP", cb+"track1", "Transport: RTP/AVP;multicast"); code != 461 {
		t.Fatalf("multicast: %d", code)
	}
	code, h, _ = c.do("SETUP", cb+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if code != 200 || !strings.Contains(h["transport"], "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=") {
		t.Fatalf("SETUP %d %v", code, h)
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	// The describe key is single use; the grant too (MaxUses 1).
	if code, _, _ := c.do("SETUP", cb+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=2-3"); code != 454 {
		t.Fatalf("second SETUP of one DESCRIBE: %d", code)
	}
	_, h2, _ := c.do("DESCRIBE", base+tok, "Accept: application/sdp")
	if code, _, _ := c.do("SETUP", h2["content-base"]+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=2-3"); code != 403 {
		t.Fatalf("grant used twice: %d", code)
	}
	// Seek past the end.
	if code, _, _ := c.do("PLAY", cb, "Session: "+sess, "Range: npt=2.5-"); code != 457 {
		t.Fatalf("seek past end: %d", code)
	}
	code, h, _ = c.do("PLAY", cb, "Session: "+sess, "Range: npt=1.000-")
	if code != 200 || !strings.HasPrefix(h["range"], "npt=1.000-2.000") || !strings.Contains(h["rtp-info"], "url="+cb+"track1;seq=") {
		t.Fatalf("PLAY %d %v", code, h)
	}
	if code, _, _ := c.do("GET_PARAMETER", cb, "Session: "+sess); code != 200 {
		t.Fatalf("keep-alive %d", code)
	}
	if code, _, _ := c.do("PAUSE", cb, "Session: "+sess); code != 200 {
		t.Fatalf("PAUSE %d", code)
	}
	if code, _, _ := c.do("TEARDOWN", cb, "Session: "+sess); code != 200 {
		t.Fatalf("TEARDOWN %d", code)
	}
	if code, _, _ := c.do("PLAY", cb, "Session: "+sess); code != 454 {
		t.Fatalf("PLAY after TEARDOWN %d", code)
	}
	if code, _, _ := c.do("RECORD", cb); code != 405 {
		t.Fatalf("RECORD %d", code)
	}
	// Plain RTSP: RTP/AVP, no key.
	p := dialRTSP(t, env.plainAddr, false)
	if code, _, body := p.do("DESCRIBE", "rtsp://"+env.plainAddr+"/"+env.grant(t, channel.Grant{}), "Accept: application/sdp"); code != 200 || strings.Contains(body, "crypto") || !strings.Contains(body, "RTP/AVP") {
		t.Fatalf("plain DESCRIBE %d\n%s", code, body)
	}
	// No CSeq -> 400.
	io.WriteString(p.c, "OPTIONS * RTSP/1.0\r\n\r\n")
	line, _ := p.br.ReadString('\n')
	if !strings.HasPrefix(line, "RTSP/1.0 400") {
		t.Fatalf("no CSeq: %q", line)
	}
}

// TestRTSPSessionTimeout: a session without requests expires.
func TestRTSPSessionTimeout(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{SessionTimeout: time.Second}, 2*time.Second)
	c := dialRTSP(t, env.plainAddr, false)
	_, h, _ := c.do("DESCRIBE", "rtsp://"+env.plainAddr+"/"+env.grant(t, channel.Grant{}), "Accept: application/sdp")
	code, _, _ := c.do("SETUP", h["content-base"]+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if code != 200 || env.srv.Sessions() != 1 {
		t.Fatalf("SETUP %d", code)
	}
	waitFor(t, "session expiry", func() bool { return env.srv.Sessions() == 0 && env.engine.Sessions() == 0 })
}

// TestRTSPHalfOpen: 1000 connections that never send a request are
// bounded (beyond MaxConns refused at once), closed at the first-request
// deadline, and leave no goroutine behind; the server still serves.
func TestRTSPHalfOpen(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{FirstRequestTimeout: 3 * time.Second, MaxConns: 600, MaxPerSource: 1000}, time.Second)
	waitFor(t, "settle", func() bool { return true })
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, 1000)
	for i := range 1000 {
		addr := env.plainAddr
		if i%2 == 0 {
			addr = env.tlsAddr
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Every connection is closed by the server: refused at once or
	// timed out at the first-request deadline (a generous bound only
	// against hangs).
	var wg sync.WaitGroup
	closed := make([]bool, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(90 * time.Second))
			_, err := io.Copy(io.Discard, c)
			closed[i] = err == nil
			c.Close()
		}()
	}
	wg.Wait()
	for i, ok := range closed {
		if !ok {
			t.Fatalf("connection %d not closed by the server", i)
		}
	}
	waitFor(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+5 })
	c := dialRTSP(t, env.tlsAddr, true)
	if code, _, _ := c.do("OPTIONS", "*"); code != 200 {
		t.Fatalf("server not serving after the flood: %d", code)
	}
}
