package streaming

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

// whepEnv is the daemon's WHEP path: a store with alice's voice message,
// CHANNEL grants, the playback engine and the WHEP endpoint and player on
// one origin.
type whepEnv struct {
	st     *vmstore.Store
	grants *channel.Grants
	engine *Engine
	srv    *WHEPServer
	hs     *httptest.Server
	msg    *vmstore.Message
}

func newWHEPEnv(t *testing.T, voice time.Duration) *whepEnv {
	t.Helper()
	env := &whepEnv{st: openStore(t)}
	var err error
	if env.grants, err = channel.NewGrants(env.st); err != nil {
		t.Fatal(err)
	}
	env.engine = NewEngine(EngineConfig{Store: env.st, Workers: 1})
	t.Cleanup(func() { env.engine.Close() })
	env.msg, _ = depositVoice(t, env.st, "alice", voice)
	env.srv, err = NewWHEPServer(WHEPConfig{Linger: 500 * time.Millisecond, RemoteNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		&WHEPGrantSource{Store: env.st, Grants: env.grants, Engine: env.engine, Cache: NewPartCache(16 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whep", env.srv.Handler())
	mux.Handle("/whep/", env.srv.Handler())
	mux.Handle("/player/", WHEPPlayer())
	env.hs = httptest.NewServer(mux)
	t.Cleanup(func() {
		env.hs.Close()
		env.srv.Close()
	})
	return env
}

// grant issues a grant for alice's message, section 2 unless changed by
// edit.
func (env *whepEnv) grant(t *testing.T, edit func(*channel.Grant)) string {
	t.Helper()
	mb, err := env.st.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := env.st.AccountID("alice")
	g := channel.Grant{AccountID: id, User: "alice", Mailbox: "INBOX", UIDValidity: mb.UIDValidity, UID: env.msg.UID, Section: "2"}
	if edit != nil {
		edit(&g)
	}
	tok, _, err := env.grants.Issue(g)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestWHEPGrants: the grant decides: expired, tampered, used-up and
// re-created-account grants are 403, a grant of an expunged message or a
// missing part 404, a grant of the text part 406; the answers never
// repeat the grant.
func TestWHEPGrants(t *testing.T) {
	env := newWHEPEnv(t, 2*time.Second)
	offer := makeOffer(t, clientPC(t, "PCMU"))
	postGrant := func(tok string) *http.Response {
		return whepPost(t, env.hs.URL+"/whep/"+tok, "application/sdp", offer)
	}
	// A good grant, used once: a second session with it is refused.
	good := env.grant(t, nil)
	r := postGrant(good)
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("good grant: %d", r.StatusCode)
	}
	wantProblem(t, "used-up grant", postGrant(good), http.StatusForbidden)
	whepDo(t, http.MethodDelete, env.hs.URL+r.Header.Get("Location")).Body.Close()

	tampered := []byte(env.grant(t, nil))
	tampered[len(tampered)/2] ^= 1
	wantProblem(t, "tampered grant", postGrant(string(tampered)), http.StatusForbidden)
	wantProblem(t, "not a grant", postGrant("AAAA"), http.StatusForbidden)

	expiring := env.grant(t, func(g *channel.Grant) { g.Expires = time.Now().Add(2 * time.Second) })
	env.grants.Now = func() time.Time { return time.Now().Add(time.Minute) }
	wantProblem(t, "expired grant", postGrant(expiring), http.StatusForbidden)
	env.grants.Now = time.Now

	wantProblem(t, "text part", postGrant(env.grant(t, func(g *channel.Grant) { g.Section = "1" })), http.StatusNotAcceptable)
	wantProblem(t, "no such part", postGrant(env.grant(t, func(g *channel.Grant) { g.Section = "7" })), http.StatusNotFound)

	// Expunged message: 404.
	gone := env.grant(t, nil)
	if _, err := env.st.StoreFlags(vmstore.StoreReq{User: "alice", MailboxID: env.msg.MailboxID, UIDs: []uint32{env.msg.UID}, Op: vmstore.FlagsAdd, Flags: []string{`\Deleted`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.st.Expunge("alice", env.msg.MailboxID, nil); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, "expunged message", postGrant(gone), http.StatusNotFound)

	// Deleted and re-created account: the old grant is another identity's.
	old := env.grant(t, func(g *channel.Grant) { g.UID = env.msg.UID })
	if err := env.st.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-2", PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	depositVoice(t, env.st, "alice", time.Second)
	wantProblem(t, "re-created account", postGrant(old), http.StatusForbidden)
}

// TestWHEPEngineToPion: a grant played by the engine reaches a WebRTC
// client whole: every packet of the 2-s message, PCMU payloads of 160
// bytes, consecutive sequence numbers and timestamps.
func TestWHEPEngineToPion(t *testing.T) {
	env := newWHEPEnv(t, 2*time.Second)
	pc := clientPC(t, "PCMU")
	offer := makeOffer(t, pc)
	type pkt struct {
		seq uint16
		ts  uint32
		at  time.Time
	}
	got := make(chan []pkt, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var ps []pkt
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				got <- ps
				return
			}
			if len(p.Payload) != 160 {
				t.Errorf("payload %d", len(p.Payload))
			}
			ps = append(ps, pkt{p.SequenceNumber, p.Timestamp, time.Now()})
		}
	})
	r := whepPost(t, env.hs.URL+"/whep/"+env.grant(t, nil), "application/sdp", offer)
	ans, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.StatusCode, ans)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(ans)}); err != nil {
		t.Fatal(err)
	}
	var ps []pkt
	select {
	case ps = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("track did not end")
	}
	// From the first packet the client could decrypt on, every packet
	// (checked below); at most the first half second may come before.
	if len(ps) < 75 || len(ps) > 100 {
		t.Fatalf("%d packets, want 100", len(ps))
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].seq != ps[i-1].seq+1 || ps[i].ts != ps[i-1].ts+160 {
			t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, ps[i].seq, ps[i].ts, ps[i-1].seq, ps[i-1].ts)
		}
	}
	t.Logf("%d packets over %v of wall time", len(ps), ps[len(ps)-1].at.Sub(ps[0].at))
	// The WHEP session and the engine's session both end.
	whepWait(t, func() bool { return env.srv.Sessions() == 0 && env.engine.Sessions() == 0 })
}

// TestWHEPClientGoesAway: a grant with the CHANNEL SEEN option marks the
// message \Seen once playback starts (long before the end of its 30 s);
// a player that closes its peer connection without DELETE loses its
// session (and the engine's) all the same.
func TestWHEPClientGoesAway(t *testing.T) {
	env := newWHEPEnv(t, 30*time.Second)
	pc := clientPC(t, "PCMU")
	offer := makeOffer(t, pc)
	first := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if _, _, err := tr.ReadRTP(); err == nil {
			close(first)
		}
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	})
	r := whepPost(t, env.hs.URL+"/whep/"+env.grant(t, func(g *channel.Grant) { g.Seen = true }), "application/sdp", offer)
	ans, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.StatusCode, ans)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(ans)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first:
	case <-time.After(60 * time.Second):
		t.Fatal("no packet")
	}
	whepWait(t, func() bool {
		m, err := env.st.Message(env.msg.MailboxID, env.msg.UID)
		return err == nil && m.Has(`\Seen`)
	})
	if env.srv.Sessions() != 1 || env.engine.Sessions() != 1 {
		t.Fatalf("sessions: whep %d engine %d", env.srv.Sessions(), env.engine.Sessions())
	}
	pc.Close()
	whepWait(t, func() bool { return env.srv.Sessions() == 0 && env.engine.Sessions() == 0 })
}

// TestWHEPResume: a grant with Resume starts at the position kept for the
// account (announced in Lemonvox-Media-Start) and sends only the rest.
func TestWHEPResume(t *testing.T) {
	env := newWHEPEnv(t, 2*time.Second)
	id, _ := env.st.AccountID("alice")
	if err := env.st.SetPlaybackPosition("alice", id, env.msg.MailboxID, env.msg.UID, 1200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	pc := clientPC(t, "PCMU")
	offer := makeOffer(t, pc)
	got := make(chan int, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := 0
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				got <- n
				return
			}
			n++
		}
	})
	r := whepPost(t, env.hs.URL+"/whep/"+env.grant(t, func(g *channel.Grant) { g.Resume = true }), "application/sdp", offer)
	ans, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusCreated || r.Header.Get("Lemonvox-Media-Start") != "1.200" || r.Header.Get("Lemonvox-Media-Duration") != "2.000" {
		t.Fatalf("POST: %d %v", r.StatusCode, r.Header)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(ans)}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n < 25 || n > 40 {
			t.Fatalf("%d packets after resuming at 1.2 s of 2 s, want 40", n)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("track did not end")
	}
}
