package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
)

func pcmOf(t *testing.T, wav []byte) []int16 {
	t.Helper()
	st, err := transcode.Decode(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	src := transcode.Convert(st, 8000, 1)
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

func corr(a, b []int16) float64 {
	n := min(len(a), len(b))
	var ab, aa, bb float64
	for i := range n {
		x, y := float64(a[i]), float64(b[i])
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// TestChannelToFFmpeg runs the daemon with its demo subscriber, asks IMAP
// CHANNEL for the voice part's URL and lets ffmpeg record it over RTSPS
// with SRTP: the recording is the demo message's audio, and the message
// is \Seen afterwards.
func TestChannelToFFmpeg(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg is required in CI (Debian package ffmpeg)")
		}
		t.Skip("SKIPPING: ffmpeg not installed (Debian package ffmpeg)")
	}
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Admin.Listen, cfg.SIP.Listen, cfg.SIP.ListenTLS, cfg.IMAP.ListenTLS = "", "", "", ""
	cfg.IMAP.Listen, cfg.RTSP.ListenTLS = freePort(t), freePort(t)
	cfg.LMTP.Listen, cfg.Submission.Listen = "", "" // not under test; their default ports may be taken
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var c net.Conn
	for range 300 {
		if c, err = net.Dial("tcp", cfg.IMAP.Listen); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReader(c)
	n := 0
	cmd := func(s string) []string {
		n++
		tag := fmt.Sprintf("a%d", n)
		fmt.Fprintf(c, "%s %s\r\n", tag, s)
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %q", s, lines)
				}
				return lines
			}
		}
	}
	br.ReadString('\n')
	if caps := cmd("CAPABILITY"); strings.Contains(caps[0], "CHANNEL") {
		t.Fatalf("CHANNEL announced before login: %s", caps[0])
	}
	cmd("LOGIN demo demo")
	if caps := cmd("CAPABILITY"); !strings.Contains(caps[0], "CHANNEL=RTSPS") || strings.Contains(caps[0], "CHANNEL=RTSP ") {
		t.Fatalf("capabilities %s", caps[0])
	}
	cmd("SELECT INBOX")
	lines := cmd("UID CHANNEL 1 ([1] [2]) RTSPS")
	url := regexp.MustCompile(`"(rtsps://[^"]+)"`).FindStringSubmatch(strings.Join(lines, "\n"))
	if url == nil {
		t.Fatalf("no URL: %q", lines)
	}
	out := filepath.Join(t.TempDir(), "rec.wav")
	fctx, fcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer fcancel()
	ff := exec.CommandContext(fctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning", "-timeout", "20000000",
		"-i", url[1], "-acodec", "pcm_s16le", "-ar", "8000", "-ac", "1", "-f", "wav", "-y", out)
	ff.WaitDelay = 5 * time.Second
	if logs, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, logs)
	}
	rec, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wav, _, _ := transcode.SampleVoice(4 * time.Second)
	got, want := pcmOf(t, rec), pcmOf(t, wav)
	d := time.Duration(len(got)-len(want)) * time.Second / 8000
	cc := corr(got, want)
	t.Logf("recorded %d samples, stored %d, correlation %.4f", len(got), len(want), cc)
	if d > 40*time.Millisecond || d < -40*time.Millisecond || cc < 0.95 {
		t.Fatalf("recording differs: %v longer, correlation %.4f", d, cc)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		f := cmd("UID FETCH 1 FLAGS")
		if strings.Contains(f[0], `\Seen`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not seen: %q", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
