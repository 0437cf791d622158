package streaming

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/streaming/browsertest"
)

// TestWHEPChromium: headless Chromium loads the web player, which plays
// a deposited 3-s voice message through its CHANNEL URL over WHEP
// (DTLS-SRTP on loopback, paced by the playback engine): it reports
// inbound-rtp packetsReceived > 0, PCMU, and 3 s of audio; played to the
// end, the message is \Seen.
func TestWHEPChromium(t *testing.T) {
	env := newWHEPEnv(t, 3*time.Second)
	tok := env.grant(t, nil)
	r := browsertest.Play(t, "testdata/browser", env.hs.URL+"/player/", "rtsps://lemonvox.test/"+tok)
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
