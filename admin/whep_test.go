package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/streaming/browsertest"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type whepAdmin struct {
	hs  *httptest.Server
	log *syncBuffer
	uid uint32
}

// newWHEPAdmin is the admin HTTPS listener with WHEP mounted, over a store
// holding alice's 2-s voice message (audio in part 2).
func newWHEPAdmin(t *testing.T) *whepAdmin {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-alice", PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	wav, _, err := transcode.SampleVoice(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA message.\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(wav) + "\r\n--b1--\r\n")
	res, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(b.String()), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	grants, err := channel.NewGrants(st)
	if err != nil {
		t.Fatal(err)
	}
	eng := streaming.NewEngine(streaming.EngineConfig{Store: st, Workers: 1})
	t.Cleanup(func() { eng.Close() })
	wsrv, err := streaming.NewWHEPServer(streaming.WHEPConfig{Linger: 500 * time.Millisecond,
		RemoteNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		&streaming.WHEPGrantSource{Store: st, Grants: grants, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wsrv.Close() })
	logs := &syncBuffer{}
	adm := &Server{Store: st, Token: "admin-token", WHEP: wsrv.Handler(), Grants: grants,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	hs := httptest.NewTLSServer(adm.Handler())
	t.Cleanup(hs.Close)
	return &whepAdmin{hs: hs, log: logs, uid: res.Message.UID}
}

func (a *whepAdmin) do(t *testing.T, method, path, ctype, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, a.hs.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func pionOffer(t *testing.T) string {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	off, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(off); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// TestAdminWHEP: on the HTTPS admin listener the API issues a grant for a
// user's message (admin token required; the audio part found by itself),
// WHEP takes an offer with it (201, no admin token) and refuses a wrong
// content type with a problem, DELETE ends the session, the player page
// has its CSP, and the access log never shows a grant.
func TestAdminWHEP(t *testing.T) {
	a := newWHEPAdmin(t)
	body := `{"uid":` + strconv.Itoa(int(a.uid)) + `}`
	if r, _ := a.do(t, "POST", "/api/v1/accounts/alice/grants", "application/json", "", body); r.StatusCode != 401 {
		t.Fatalf("grant without admin token: %d", r.StatusCode)
	}
	if r, _ := a.do(t, "POST", "/api/v1/accounts/alice/grants", "application/json", "admin-token", `{"uid":999}`); r.StatusCode != 404 {
		t.Fatalf("grant for a missing message: %d", r.StatusCode)
	}
	if r, _ := a.do(t, "POST", "/api/v1/accounts/nobody/grants", "application/json", "admin-token", body); r.StatusCode != 404 {
		t.Fatalf("grant for a missing account: %d", r.StatusCode)
	}
	r, b := a.do(t, "POST", "/api/v1/accounts/alice/grants", "application/json", "admin-token", body)
	var g GrantResponse
	if err := json.Unmarshal(b, &g); err != nil || r.StatusCode != 201 || g.Grant == "" || g.Section != "2" || g.WHEP != "/whep/"+g.Grant {
		t.Fatalf("grant: %d %s", r.StatusCode, b)
	}
	r, b = a.do(t, "POST", g.WHEP, "text/plain", "", "v=0\r\n")
	if r.StatusCode != 415 || r.Header.Get("Content-Type") != "application/problem+json" || !bytes.Contains(b, []byte(`"status":415`)) {
		t.Fatalf("wrong content type: %d %s", r.StatusCode, b)
	}
	r, b = a.do(t, "POST", g.WHEP, "application/sdp", "", pionOffer(t))
	if r.StatusCode != 201 || !bytes.Contains(b, []byte("a=sendonly")) {
		t.Fatalf("offer: %d %s", r.StatusCode, b)
	}
	if r, _ := a.do(t, "DELETE", r.Header.Get("Location"), "", "", ""); r.StatusCode != 200 {
		t.Fatalf("DELETE: %d", r.StatusCode)
	}
	r, _ = a.do(t, "GET", "/player/", "", "", "")
	if r.StatusCode != 200 || r.Header.Get("Content-Security-Policy") != streaming.PlayerCSP {
		t.Fatalf("player: %d %v", r.StatusCode, r.Header)
	}
	logs := a.log.String()
	if strings.Contains(logs, g.Grant) {
		t.Fatalf("the log shows a grant:\n%s", logs)
	}
	if !strings.Contains(logs, "/whep/{grant "+channel.HashToken(g.Grant)+"}") {
		t.Fatalf("the access log does not name the grant by its hash:\n%s", logs)
	}
}

// TestAdminPlayerChromium: headless Chromium opens the player on the
// HTTPS admin listener, asks the admin API for a grant of alice's message
// and plays it over WHEP: packets received, 2 s of audio.
func TestAdminPlayerChromium(t *testing.T) {
	a := newWHEPAdmin(t)
	r := browsertest.Play(t, "../streaming/testdata/browser", a.hs.URL+"/player/", "--admin", "admin-token", "alice", strconv.Itoa(int(a.uid)))
	if r.Phase != "ended" || r.PacketsReceived <= 0 || math.Abs(r.DurationSeconds-2) > 0.02 || math.Abs(r.PlayedSeconds-r.DurationSeconds) > 0.1 {
		t.Fatalf("chromium: %+v", r)
	}
}
