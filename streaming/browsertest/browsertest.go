// Package browsertest plays messages in headless Chromium through the
// web player, for tests: Debian's /usr/bin/chromium driven by
// playwright-core (npm), from streaming/testdata/browser.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Result is what testdata/browser/play.js prints: the web player's
// window.lemonvoxPlayer.result.
type Result struct {
	Phase           string  `json:"phase"`
	Error           string  `json:"error"`
	Codec           string  `json:"codec"`
	PacketsReceived int     `json:"packetsReceived"`
	BytesReceived   int     `json:"bytesReceived"`
	PlayedSeconds   float64 `json:"playedSeconds"`
	DurationSeconds float64 `json:"durationSeconds"`
	WallSeconds     float64 `json:"wallSeconds"`
}

// Play plays a message in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core, installed with npm ci in dir, the
// streaming/testdata/browser directory, when missing) through the player
// page at pageURL. args is a grant or CHANNEL URL, or "--admin", token,
// user, uid: the page asks the admin API for a grant of the user's
// message. It skips the test when chromium or node is missing, unless
// CI=true.
func Play(t *testing.T, dir, pageURL string, args ...string) Result {
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
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "play.js"), pageURL}, args...)...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium player: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("player result %q: %v\nstderr: %s", out, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Content Security Policy") {
		t.Errorf("the page broke its CSP:\n%s", stderr.String())
	}
	t.Logf("chromium: %+v", r)
	return r
}
