package streaming

import (
	"net/http"
	"strings"
	"testing"
)

// TestWHEPTrickle: PATCH with a trickle-ice-sdpfrag adds the player's
// candidates (204); a wrong type is 415 with Accept-Patch, a stale
// If-Match 412, a malformed fragment 400, new ICE credentials (restart)
// 422; OPTIONS says Accept-Patch.
func TestWHEPTrickle(t *testing.T) {
	_, _, hs := newTestWHEP(t, WHEPConfig{})
	offer := makeOffer(t, clientPC(t, "PCMU"))
	resp := whepPost(t, hs.URL+"/whep/tone-60000", "application/sdp", offer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc, etag := hs.URL+resp.Header.Get("Location"), resp.Header.Get("ETag")
	ufrag, pwd := iceCredentials(offer)
	mid := "0"
	for l := range strings.SplitSeq(offer, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=mid:"); ok {
			mid = v
			break
		}
	}
	patch := func(ctype, ifMatch, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPatch, loc, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:" + mid +
		"\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"

	r := patch("application/sdp", etag, frag)
	if r.Header.Get("Accept-Patch") != sdpFragType {
		t.Errorf("415 Accept-Patch %q", r.Header.Get("Accept-Patch"))
	}
	wantProblem(t, "PATCH wrong type", r, http.StatusUnsupportedMediaType)
	wantProblem(t, "PATCH stale If-Match", patch(sdpFragType, `"stale"`, frag), http.StatusPreconditionFailed)
	wantProblem(t, "PATCH garbage", patch(sdpFragType, etag, "a=candidate:1\r\nnot sdp\r\n"), http.StatusBadRequest)
	wantProblem(t, "PATCH ICE restart", patch(sdpFragType, "*", "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpassword12\r\n"), http.StatusUnprocessableEntity)
	for _, im := range []string{etag, "*", ""} {
		r = patch(sdpFragType, im, frag)
		r.Body.Close()
		if r.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH trickle (If-Match %q): %d", im, r.StatusCode)
		}
	}
	o := whepDo(t, http.MethodOptions, loc)
	o.Body.Close()
	if o.StatusCode != http.StatusNoContent || o.Header.Get("Accept-Patch") != sdpFragType || o.Header.Get("Allow") != "DELETE, OPTIONS, PATCH" {
		t.Fatalf("OPTIONS: %d Accept-Patch %q Allow %q", o.StatusCode, o.Header.Get("Accept-Patch"), o.Header.Get("Allow"))
	}
}

// FuzzSDPFrag: trickle fragments never panic and stay bounded.
func FuzzSDPFrag(f *testing.F) {
	f.Add("a=ice-ufrag:ab\r\na=ice-pwd:cd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=candidate:1 1 udp 1 ::1 9 typ host\n")
	f.Add("m=\nm=\na=mid:\n")
	f.Fuzz(func(t *testing.T, s string) {
		fr, err := parseSDPFrag([]byte(s))
		if err == nil && len(fr.cands) > maxFragCands {
			t.Fatalf("%d candidates", len(fr.cands))
		}
	})
}
