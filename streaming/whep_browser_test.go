package streaming

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BrowserResult is what testdata/browser/play.js prints: the web player's
// window.lemonvoxPlayer.result.
type BrowserResult struct {
	Phase           string  `json:"phase"`
	Error           string  `json:"error"`
	Codec           string  `json:"codec"`
	PacketsReceived int     `json:"packetsReceived"`
	BytesReceived   int     `json:"bytesReceived"`
	PlayedSeconds   float64 `json:"playedSeconds"`
	DurationSeconds float64 `json:"durationSeconds"`
	WallSeconds     float64 `json:"wallSeconds"`
}

// RunBrowserPlayer plays grant in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core, installed with npm ci in
// testdata/browser when missing) through the player page at pageURL. It
// skips the test when chromium or node is missing, unless CI=true.
func RunBrowserPlayer(t *testing.T, dir, pageURL, grant string) BrowserResult {
	t.Helper()
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	need := func(what string, err error) {
		if err == nil {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", what, err)
		}
		t.Skipf("SKIPPING the browser test: %s not available (%v); install Debian's chromium and nodejs/npm", what, err)
	}
	_, err := os.Stat(chromium)
	need("chromium ("+chromium+")", err)
	node, err := exec.LookPath("node")
	need("node", err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		npm, err := exec.LookPath("npm")
		need("npm", err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			need("playwright-core (npm ci in "+dir+")", err)
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "play.js"), pageURL, grant)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium player: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var r BrowserResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("player result %q: %v\nstderr: %s", out, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Content Security Policy") {
		t.Errorf("the page broke its CSP:\n%s", stderr.String())
	}
	t.Logf("chromium: %+v", r)
	return r
}

// TestWHEPChromium: headless Chromium loads the web player, which plays
// a deposited 3-s voice message through its CHANNEL URL over WHEP
// (DTLS-SRTP on loopback, paced by the playback engine): it reports
// inbound-rtp packetsReceived > 0, PCMU, and 3 s of audio; played to the
// end, the message is \Seen.
func TestWHEPChromium(t *testing.T) {
	env := newWHEPEnv(t, 3*time.Second)
	tok := env.grant(t, nil)
	r := RunBrowserPlayer(t, "testdata/browser", env.hs.URL+"/player/", "rtsps://lemonvox.test/"+tok)
	if r.Phase != "ended" || r.PacketsReceived <= 0 {
		t.Fatalf("chromium did not play: %+v", r)
	}
	if r.Codec != "PCMU" {
		t.Errorf("codec %q", r.Codec)
	}
	if math.Abs(r.DurationSeconds-3) > 0.02 || math.Abs(r.PlayedSeconds-r.DurationSeconds) > 0.1 {
		t.Fatalf("played %.2f s of %.2f s (%d packets), want 3 s", r.PlayedSeconds, r.DurationSeconds, r.PacketsReceived)
	}
	whepWait(t, func() bool { return env.srv.Sessions() == 0 })
	whepWait(t, func() bool {
		m, err := env.st.Message(env.msg.MailboxID, env.msg.UID)
		return err == nil && m.Has(`\Seen`)
	})
}

// TestWHEPPlayerPage: the page and its script are served with the strict
// CSP, and /player redirects to /player/.
func TestWHEPPlayerPage(t *testing.T) {
	hs := httptest.NewServer(WHEPPlayer())
	defer hs.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(hs.URL + "/player")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/player/" {
		t.Fatalf("/player: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, ctype := range map[string]string{"/player/": "text/html", "/player/player.js": "text/javascript", "/player/player.css": "text/css"} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) ||
			resp.Header.Get("Content-Security-Policy") != PlayerCSP || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	resp, err = http.Post(hs.URL+"/player/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /player/: %d", resp.StatusCode)
	}
}
