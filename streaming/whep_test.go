package streaming

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func whepPost(t testing.TB, url, ctype, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func whepDo(t testing.TB, method, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// wantProblem checks an RFC 9457 answer: exact status, problem+json, the
// status repeated in the body.
func wantProblem(t testing.TB, what string, resp *http.Response, status int) WHEPProblem {
	t.Helper()
	defer resp.Body.Close()
	var p WHEPProblem
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d (%s)", what, resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: problem body %q: %v", what, b, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Type != "about:blank" || p.Detail == "" {
		t.Fatalf("%s: problem %+v", what, p)
	}
	return p
}

// TestWHEPPlaysToPionClient: a WebRTC client (pion, offering recvonly
// PCMU/PCMA) gets 201 with Location, ETag and a sendonly PCMU answer whose
// candidates are loopback only, receives every packet of the message over
// DTLS-SRTP, and the session ends by itself; DELETE of an ended session is
// 404.
func TestWHEPPlaysToPionClient(t *testing.T) {
	s, src, hs := newTestWHEP(t, WHEPConfig{Linger: 200 * time.Millisecond})
	pc := clientPC(t, "PCMA", "PCMU")
	offer := makeOffer(t, pc)
	type rx struct{ n, first, last int }
	got := make(chan rx, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Codec().MimeType != webrtc.MimeTypePCMU {
			t.Errorf("track codec %s, want PCMU (the media's cheapest)", tr.Codec().MimeType)
		}
		r := rx{first: -1}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				got <- r
				return
			}
			if len(p.Payload) != 160 {
				t.Errorf("payload %d bytes", len(p.Payload))
			}
			if r.first < 0 {
				r.first = int(p.SequenceNumber)
			}
			r.n, r.last = r.n+1, int(p.SequenceNumber)
		}
	})
	resp := whepPost(t, hs.URL+"/whep/tone-1000", "application/sdp", offer)
	ans, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, ans)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, WHEPResourcePrefix) || len(loc) < len(WHEPResourcePrefix)+20 {
		t.Fatalf("Location %q", loc)
	}
	if et := resp.Header.Get("ETag"); len(et) < 10 || et[0] != '"' {
		t.Fatalf("ETag %q", et)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("Content-Type %q", ct)
	}
	if d := resp.Header.Get("Lemonvox-Media-Duration"); d != "1.000" {
		t.Fatalf("duration header %q", d)
	}
	sa := string(ans)
	for _, want := range []string{"a=sendonly", "a=rtpmap:0 PCMU/8000", "a=candidate:", "a=fingerprint:", "a=end-of-candidates"} {
		if !strings.Contains(sa, want) {
			t.Fatalf("answer lacks %q:\n%s", want, sa)
		}
	}
	for _, l := range strings.Split(sa, "\n") {
		if strings.HasPrefix(l, "a=candidate:") && !strings.Contains(l, " 127.0.0.1 ") {
			t.Fatalf("non-loopback candidate: %s", l)
		}
		if strings.HasPrefix(l, "m=audio") && strings.TrimSpace(strings.Join(strings.Fields(l)[3:], " ")) != "0" {
			t.Fatalf("answer offers more than the chosen codec: %s", l)
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sa}); err != nil {
		t.Fatal(err)
	}
	// The server closes the session after the last packet and Linger;
	// the client's track then ends.
	var r rx
	select {
	case r = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("no end of track within 60 s")
	}
	// Loopback loses nothing: from the first packet the client could
	// decrypt (those sent before its own side of the DTLS handshake
	// completed may be discarded) every packet to the last (seq 49).
	if r.last != 49 || r.n != r.last-r.first+1 || r.first > 25 {
		t.Fatalf("received %d packets, seq %d to %d; want all of 0..49 from the first on", r.n, r.first, r.last)
	}
	n := r.n
	whepWait(t, func() bool { return s.Sessions() == 0 })
	whepWait(t, func() bool { o, c := src.counts(); return o == 1 && c == 1 })
	wantProblem(t, "DELETE ended session", whepDo(t, http.MethodDelete, hs.URL+loc), http.StatusNotFound)
	t.Logf("received %d packets", n)
}

// TestWHEPDeleteAndLimit: DELETE ends a session at once (200, then 404),
// and at MaxSessions a further offer is 503 with
// Retry-After, until a session ends.
func TestWHEPDeleteAndLimit(t *testing.T) {
	s, src, hs := newTestWHEP(t, WHEPConfig{MaxSessions: 1})
	offer := makeOffer(t, clientPC(t, "PCMU"))
	resp := whepPost(t, hs.URL+"/whep/tone-60000", "application/sdp", offer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	r2 := whepPost(t, hs.URL+"/whep/tone-1000", "application/sdp", makeOffer(t, clientPC(t, "PCMU")))
	if r2.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantProblem(t, "over the limit", r2, http.StatusServiceUnavailable)

	d := whepDo(t, http.MethodDelete, hs.URL+loc)
	d.Body.Close()
	if d.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", d.StatusCode)
	}
	if s.Sessions() != 0 {
		t.Fatalf("%d sessions after DELETE", s.Sessions())
	}
	if o, c := src.counts(); o != 1 || c != 1 {
		t.Fatalf("media opened %d closed %d", o, c)
	}
	wantProblem(t, "second DELETE", whepDo(t, http.MethodDelete, hs.URL+loc), http.StatusNotFound)
	r3 := whepPost(t, hs.URL+"/whep/tone-1000", "application/sdp", makeOffer(t, clientPC(t, "PCMU")))
	r3.Body.Close()
	if r3.StatusCode != http.StatusCreated {
		t.Fatalf("POST after DELETE: %d", r3.StatusCode)
	}
}

// TestWHEPErrors: every refusal is an RFC 9457 problem with the exact
// status: 415 wrong content type, 400 bad SDP, 406 no common codec, 403
// bad or expired grant, 404 deleted message or unknown resource, 401 no
// grant, 413 oversized offer, 405 wrong method.
func TestWHEPErrors(t *testing.T) {
	s, src, hs := newTestWHEP(t, WHEPConfig{})
	good := makeOffer(t, clientPC(t, "PCMU", "PCMA"))
	opusOnly := makeOffer(t, clientPC(t, "opus"))
	sendonly := strings.Replace(good, "a=recvonly", "a=sendonly", 1)
	noAudio := strings.Replace(good, "m=audio", "m=video", 1)
	noFingerprint := removeLines(good, "a=fingerprint:")
	cases := []struct {
		name, path, ctype, body string
		status                  int
	}{
		{"wrong content type", "/whep/tone-1000", "application/json", good, 415},
		{"no content type", "/whep/tone-1000", "", good, 415},
		{"sdp as text", "/whep/tone-1000", "text/plain", good, 415},
		{"empty offer", "/whep/tone-1000", "application/sdp", "", 400},
		{"garbage", "/whep/tone-1000", "application/sdp", "hello world\r\n", 400},
		{"truncated", "/whep/tone-1000", "application/sdp", good[:len(good)/3], 400},
		{"no audio", "/whep/tone-1000", "application/sdp", noAudio, 400},
		{"sendonly offer", "/whep/tone-1000", "application/sdp", sendonly, 400},
		{"no fingerprint", "/whep/tone-1000", "application/sdp", noFingerprint, 400},
		{"opus only", "/whep/tone-1000", "application/sdp", opusOnly, 406},
		{"message only in G.722", "/whep/g722only", "application/sdp", good, 406},
		{"expired grant", "/whep/expired", "application/sdp", good, 403},
		{"tampered grant", "/whep/tone-10x", "application/sdp", good, 403},
		{"deleted message", "/whep/gone", "application/sdp", good, 404},
		{"no grant", "/whep", "application/sdp", good, 401},
		{"store failure", "/whep/broken", "application/sdp", good, 500},
		{"oversized", "/whep/tone-1000", "application/sdp", good + strings.Repeat("a=x:"+strings.Repeat("y", 200)+"\r\n", 400), 413},
	}
	for _, c := range cases {
		p := wantProblem(t, c.name, whepPost(t, hs.URL+c.path, c.ctype, c.body), c.status)
		if strings.Contains(p.Detail, "tone-") {
			t.Errorf("%s: detail repeats the grant: %q", c.name, p.Detail)
		}
	}
	wantProblem(t, "DELETE unknown", whepDo(t, http.MethodDelete, hs.URL+WHEPResourcePrefix+"AAAAAAAAAAAAAAAAAAAAAA"), 404)
	wantProblem(t, "PATCH unknown", whepDo(t, http.MethodPatch, hs.URL+WHEPResourcePrefix+"nope"), 404)
	wantProblem(t, "GET endpoint", whepDo(t, http.MethodGet, hs.URL+"/whep/tone-1000"), 405)
	wantProblem(t, "DELETE endpoint", whepDo(t, http.MethodDelete, hs.URL+"/whep/tone-1000"), 405)
	wantProblem(t, "elsewhere", whepDo(t, http.MethodGet, hs.URL+"/whep/a/b/c"), 404)
	o := whepDo(t, http.MethodOptions, hs.URL+"/whep/tone-1000")
	o.Body.Close()
	if o.StatusCode != 204 || o.Header.Get("Accept-Post") != "application/sdp" {
		t.Fatalf("OPTIONS: %d %v", o.StatusCode, o.Header)
	}
	if s.Sessions() != 0 {
		t.Fatalf("%d sessions after refusals", s.Sessions())
	}
	if o, c := src.counts(); o != c {
		t.Fatalf("media opened %d closed %d: a refused offer leaked an open message", o, c)
	}
}

// TestWHEPConnectTimeout: a client that never connects loses its session
// after ConnectTimeout.
func TestWHEPConnectTimeout(t *testing.T) {
	s, src, hs := newTestWHEP(t, WHEPConfig{ConnectTimeout: 300 * time.Millisecond})
	resp := whepPost(t, hs.URL+"/whep/tone-1000", "application/sdp", makeOffer(t, clientPC(t, "PCMU")))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	whepWait(t, func() bool { return s.Sessions() == 0 })
	whepWait(t, func() bool { o, c := src.counts(); return o == 1 && c == 1 })
}

func removeLines(sdp, prefix string) string {
	var out []string
	for _, l := range strings.SplitAfter(sdp, "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// waitFor polls cond (no timing assertion: the deadline only keeps a
// broken build from hanging).
func whepWait(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 60 s")
}
