package streaming

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// logRecorder keeps the records of a logger.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// attrs returns the attributes of the first record with msg (nil: none).
func (l *logRecorder) attrs(msg string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message == msg {
			m := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
			return m
		}
	}
	return nil
}

// TestWHEPLogSaysSRTP: WHEP's session log lines say srtp=true (DTLS-SRTP),
// the connected one once the DTLS transport is up.
func TestWHEPLogSaysSRTP(t *testing.T) {
	rec := &logRecorder{}
	_, _, hs := newTestWHEP(t, WHEPConfig{Linger: 100 * time.Millisecond, Logger: slog.New(rec)})
	pc := clientPC(t, "PCMU")
	offer := makeOffer(t, pc)
	done := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		defer close(done)
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	})
	resp := whepPost(t, hs.URL+"/whep/tone-100", "application/sdp", offer)
	ans, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, ans)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(ans)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no end of track")
	}
	whepWait(t, func() bool { return rec.attrs("whep session ended") != nil })
	for _, msg := range []string{"whep session created", "whep session connected", "whep session ended"} {
		a := rec.attrs(msg)
		if a == nil || a["srtp"] != "true" {
			t.Fatalf("%q: %v, want srtp=true", msg, a)
		}
	}
	if a := rec.attrs("whep session connected"); a["keying"] != "dtls" {
		t.Fatalf("connected: %v", a)
	}
}
