package streaming

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

// plainAudio decodes received plain PCMU packets in sequence order (gaps
// as silence).
func plainAudio(t *testing.T, pkts [][]byte) []int16 {
	t.Helper()
	var rtpPkts [][]byte
	for _, p := range pkts {
		var h rtp.Packet
		if h.Unmarshal(p) == nil && h.PayloadType == 0 {
			rtpPkts = append(rtpPkts, p)
		}
	}
	if len(rtpPkts) == 0 {
		return nil
	}
	var first uint16
	var pcm []int16
	for i, p := range rtpPkts {
		var h rtp.Packet
		_ = h.Unmarshal(p)
		if i == 0 {
			first = h.SequenceNumber
		}
		at := int(h.SequenceNumber-first) * 160
		for len(pcm) < at+160 {
			pcm = append(pcm, 0)
		}
		for j, b := range h.Payload {
			pcm[at+j] = ulaw(b)
		}
	}
	return pcm
}

// The 200 to an INVITE and to a re-INVITE is retransmitted until the ACK
// comes (RFC 3261 s13.3.1.4); a re-INVITE to sendonly holds (answered
// inactive, nothing sent) and one back to sendrecv resumes where it was
// (sequence numbers and audio continue); the caller's BYE ends the call.
func TestSIPRetransmitHoldResumeAndCallerBye(t *testing.T) {
	ms := startMediaServer(t, 4*time.Second, nil)
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	u.Send(u.request(d, "INVITE", 1, plainOffer(rx.port(), "sendrecv"), false))
	ok1 := u.until("SIP/2.0 200")
	d.toTag = toTag(ok1)
	if !strings.Contains(ok1.Body, "a=sendonly") || !strings.Contains(ok1.Body, "RTP/AVP 0") {
		t.Fatalf("answer:\n%s", ok1.Body)
	}
	ok2 := u.until("SIP/2.0 200")
	if toTag(ok2) != d.toTag || ok2.Body != ok1.Body {
		t.Fatal("the retransmitted 200 differs")
	}
	if len(rx.packets()) != 0 {
		t.Fatal("media before the ACK")
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	waitFor(t, "media", func() bool { return len(rx.packets()) > 10 })

	reinvite := func(cseq int, dir, wantDir string) {
		t.Helper()
		u.Send(u.request(d, "INVITE", cseq, plainOffer(rx.port(), dir), false))
		r1 := u.until("SIP/2.0 200")
		if !strings.Contains(r1.Body, "a="+wantDir+"\r\n") {
			t.Fatalf("re-INVITE %s answered:\n%s", dir, r1.Body)
		}
		r2 := u.until("SIP/2.0 200") // not acknowledged yet: retransmitted
		if r2.Get("CSeq") != strconv.Itoa(cseq)+" INVITE" {
			t.Fatalf("retransmission of %q", r2.Get("CSeq"))
		}
		u.Send(u.request(d, "ACK", cseq, "", false))
	}
	reinvite(2, "sendonly", "inactive")
	waitFor(t, "the call held", func() bool {
		ms.srv.mu.Lock()
		defer ms.srv.mu.Unlock()
		for _, c := range ms.srv.calls {
			c.mu.Lock()
			paused := c.held && c.sess != nil && !c.sess.Playing()
			c.mu.Unlock()
			return paused
		}
		return false
	})
	rx.settle()
	held := len(rx.packets())
	rx.settle()
	if n := len(rx.packets()); n != held {
		t.Fatalf("%d packets sent while held", n-held)
	}
	reinvite(3, "sendrecv", "sendonly")
	waitFor(t, "media after resume", func() bool { return len(rx.packets()) > held+10 })
	u.Send(u.request(d, "BYE", 4, "", false))
	if r := u.until("SIP/2.0 200"); r.Get("CSeq") != "4 BYE" {
		t.Fatalf("BYE answered %q", r.Start)
	}
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	rx.settle()
	pcm := plainAudio(t, rx.packets())
	want := decodePCM(t, ms.wav)
	if len(pcm) >= len(want) {
		t.Fatalf("the whole message played (%d of %d samples) despite the BYE", len(pcm), len(want))
	}
	if c := correlation(pcm, want[:len(pcm)]); c < 0.95 {
		t.Fatalf("audio across hold and resume: correlation %.3f", c)
	}
}

// A caller that sends no offer gets ours in the 200 and answers in the
// ACK (RFC 3261 s13.2.1); the message plays and the media server sends
// BYE at its end.
func TestSIPDelayedOffer(t *testing.T) {
	ms := startMediaServer(t, time.Second, nil)
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	u.Send(u.request(d, "INVITE", 1, "", false))
	ok := u.until("SIP/2.0 200")
	d.toTag = toTag(ok)
	off, err := parseSDP([]byte(ok.Body))
	if err != nil || off.audio == nil || len(off.audio.codecs) < 3 || off.audio.direction != "sendonly" {
		t.Fatalf("our offer: %v\n%s", err, ok.Body)
	}
	u.Send(u.request(d, "ACK", 1, plainOffer(rx.port(), "recvonly"), false))
	bye := u.until("BYE ")
	u.answerTo(bye, 200)
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	rx.settle()
	pcm := plainAudio(t, rx.packets())
	want := decodePCM(t, ms.wav)
	if c := correlation(pcm, want); c < 0.95 || len(pcm) < len(want)-160 {
		t.Fatalf("delayed offer: %d of %d samples, correlation %.3f", len(pcm), len(want), c)
	}
}

// CANCEL while the call is being set up: 200 to the CANCEL, 487 to the
// INVITE, no call kept, no media sent.
func TestSIPCancel(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ms := startMediaServer(t, time.Second, func(s *SIPServer) {
		s.testHook = func(string) { entered <- struct{}{}; <-release }
	})
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	u.Send(u.request(d, "INVITE", 1, plainOffer(rx.port(), "sendrecv"), false))
	<-entered
	u.Send(u.request(d, "CANCEL", 1, "", true))
	got := map[string]bool{}
	for len(got) < 2 {
		m := u.read()
		switch {
		case m.Status() == 200 && strings.HasSuffix(m.Get("CSeq"), "CANCEL"):
			got["cancel"] = true
		case m.Status() == 487 && strings.HasSuffix(m.Get("CSeq"), "INVITE"):
			got["487"] = true
			d.toTag = toTag(m)
		case m.Status() == 100:
		default:
			t.Fatalf("unexpected %q %q", m.Start, m.Get("CSeq"))
		}
	}
	u.Send(u.request(d, "ACK", 1, "", true))
	close(release)
	waitFor(t, "no call", func() bool {
		ms.srv.mu.Lock()
		defer ms.srv.mu.Unlock()
		return ms.srv.pending == 0 && len(ms.srv.calls) == 0
	})
	rx.settle()
	if n := len(rx.packets()); n != 0 {
		t.Fatalf("%d packets for a canceled call", n)
	}
}

// Calls are bounded per untrusted source address (503 with Retry-After);
// another address still calls; beyond max_calls in all, 503 too.
func TestSIPCallLimitPerSource(t *testing.T) {
	ms := startMediaServer(t, time.Second, func(s *SIPServer) { s.MaxCallsPerSource, s.MaxCalls = 1, 2 })
	rx := newReceiver(t)
	call := func(u *uac) (*dialog, *siptest.Msg) {
		d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0) + ";repeat=forever")
		u.Send(u.request(d, "INVITE", 1, plainOffer(rx.port(), "sendrecv"), false))
		for {
			m := u.read()
			if m.Status() >= 200 {
				d.toTag = toTag(m)
				u.Send(u.request(d, "ACK", 1, "", m.Status() != 200))
				return d, m
			}
		}
	}
	a := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d1, r1 := call(a)
	if r1.Status() != 200 {
		t.Fatalf("first call: %q", r1.Start)
	}
	if _, r := call(a); r.Status() != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("second call from the address: %q Retry-After %q", r.Start, r.Get("Retry-After"))
	}
	b := newUAC(t, "127.0.0.2", ms.ep.Addr())
	d3, r3 := call(b)
	if r3.Status() != 200 {
		t.Fatalf("call from another address: %q", r3.Start)
	}
	if _, r := call(newUAC(t, "127.0.0.3", ms.ep.Addr())); r.Status() != 503 || !strings.Contains(r.Start, "too many calls") {
		t.Fatalf("third call in all (max_calls 2): %q", r.Start)
	}
	for _, x := range []struct {
		u *uac
		d *dialog
	}{{a, d1}, {b, d3}} {
		x.u.Send(x.u.request(x.d, "BYE", 2, "", false))
		if r := x.u.until("SIP/2.0 200"); r.Get("CSeq") != "2 BYE" {
			t.Fatalf("BYE: %q", r.Start)
		}
	}
	waitFor(t, "calls ended", func() bool { return ms.srv.Calls() == 0 })
}

// [sip] require_srtp refuses a plain RTP offer with 488; SDES keys over
// unprotected signalling from an untrusted source are refused too.
func TestSIPRequireSRTP(t *testing.T) {
	ms := startMediaServer(t, time.Second, func(s *SIPServer) { s.RequireSRTP, s.PlainSDES = true, false })
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	k, _ := NewSDESKey(1, SuiteAES80)
	srtpOffer := strings.Replace(plainOffer(rx.port(), "sendrecv"), "RTP/AVP 0\r\n", "RTP/SAVP 0\r\na=crypto:"+k.Attribute()+"\r\n", 1)
	for _, offer := range []string{plainOffer(rx.port(), "sendrecv"), srtpOffer, ""} {
		d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
		u.Send(u.request(d, "INVITE", 1, offer, false))
		var m *siptest.Msg
		for m = u.read(); m.Status() < 200; m = u.read() {
		}
		if m.Status() != 488 {
			t.Fatalf("offer %q: %q, want 488", offer, m.Start)
		}
		d.toTag = toTag(m)
		u.Send(u.request(d, "ACK", 1, "", true))
	}
}

// The access identifier of the URL decides who the media server is: for
// "stream" (RFC 5616) the registered application entity, for "user+X" the
// caller authenticated by SIP digest as X (401 first, then 200); another
// identity's credentials get 403.
func TestSIPStreamAccessAndDigest(t *testing.T) {
	ms := startMediaServer(t, time.Second, nil)
	if _, err := ms.st.SetOptions("alice", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": sipep.HA1("alice", "vm.test", "secret")}}); err != nil {
		t.Fatal(err)
	}
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	final := func(d *dialog, extra string) *siptest.Msg {
		t.Helper()
		req := u.request(d, "INVITE", d.cseq, plainOffer(rx.port(), "sendrecv"), false)
		if extra != "" {
			req = strings.Replace(req, "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\n"+extra, 1)
		}
		u.Send(req)
		for {
			m := u.read()
			if m.Status() >= 200 {
				d.toTag = toTag(m)
				u.Send(u.request(d, "ACK", d.cseq, "", m.Status() != 200))
				return m
			}
		}
	}
	hangup := func(d *dialog) {
		t.Helper()
		d.cseq++
		u.Send(u.request(d, "BYE", d.cseq, "", false))
		u.until("SIP/2.0 200")
	}
	stream := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURLFor(t, 0, channel.Access{Kind: channel.AccessApplication, Application: "stream"}))
	stream.cseq = 1
	if r := final(stream, ""); r.Status() != 200 {
		t.Fatalf("stream access: %q", r.Start)
	}
	hangup(stream)

	ruri := "sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURLFor(t, 0, channel.Access{Kind: channel.AccessUser, User: "alice"})
	d := u.newDialog(ruri)
	d.cseq = 1
	r := final(d, "")
	nonce := siptest.Nonce(r.Get("WWW-Authenticate"))
	if r.Status() != 401 || nonce == "" {
		t.Fatalf("user+alice without credentials: %q %q", r.Start, r.Get("WWW-Authenticate"))
	}
	d.toTag, d.cseq = "", 2
	if r := final(d, "Authorization: "+siptest.Digest("alice", "vm.test", "secret", "INVITE", ruri, nonce, "auth", 1)+"\r\n"); r.Status() != 200 {
		t.Fatalf("user+alice with credentials: %q", r.Start)
	}
	hangup(d)
	d2 := u.newDialog(ruri)
	d2.cseq = 1
	r = final(d2, "")
	nonce = siptest.Nonce(r.Get("WWW-Authenticate"))
	d2.toTag, d2.cseq = "", 2
	if r := final(d2, "Authorization: "+siptest.Digest("alice", "vm.test", "wrong", "INVITE", ruri, nonce, "auth", 1)+"\r\n"); r.Status() != 403 {
		t.Fatalf("wrong credentials: %q", r.Start)
	}
	waitFor(t, "calls ended", func() bool { return ms.srv.Calls() == 0 })
}

// From a trusted source (the PBX or its proxy) the route set is kept: our
// BYE goes through the Record-Route proxy to the caller's Contact.
func TestSIPByeFollowsRecordRoute(t *testing.T) {
	ms := startMediaServer(t, time.Second, func(s *SIPServer) {
		s.Endpoint.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	rx := newReceiver(t)
	proxy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	req := u.request(d, "INVITE", 1, plainOffer(rx.port(), "sendrecv"), false)
	req = strings.Replace(req, "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nRecord-Route: <sip:"+proxy.LocalAddr().String()+";lr>\r\n", 1)
	req = strings.Replace(req, "Contact: <sip:caller@"+u.Local+">", "Contact: <sip:caller@192.0.2.55:5062>", 1)
	u.Send(req)
	ok := u.until("SIP/2.0 200")
	d.toTag = toTag(ok)
	u.Send(u.request(d, "ACK", 1, "", false))
	_ = proxy.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 65536)
	n, from, err := proxy.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no BYE through the proxy: %v", err)
	}
	bye := string(buf[:n])
	if !strings.HasPrefix(bye, "BYE sip:caller@192.0.2.55:5062 SIP/2.0") || !strings.Contains(bye, "Route: <sip:"+proxy.LocalAddr().String()+";lr>") {
		t.Fatalf("BYE:\n%s", bye)
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, l := range strings.Split(bye, "\r\n") {
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				b.WriteString(l + "\r\n")
			}
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	_, _ = proxy.WriteToUDP([]byte(b.String()), from)
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
}

// repeat=2;delay=300 plays the message twice (each play a stream of its
// own: a new SSRC, whole), then BYE; repeat=forever;duration=1500 is ended
// by the duration with our BYE.
func TestSIPRepeatAndDuration(t *testing.T) {
	ms := startMediaServer(t, time.Second, nil)
	for _, tc := range []struct {
		params   string
		minPlays int
	}{{";repeat=2;delay=300", 2}, {";repeat=forever;duration=1500", 1}} {
		rx := newReceiver(t)
		u := newUAC(t, "127.0.0.1", ms.ep.Addr())
		d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0) + tc.params)
		u.Send(u.request(d, "INVITE", 1, plainOffer(rx.port(), "sendrecv"), false))
		ok := u.until("SIP/2.0 200")
		d.toTag = toTag(ok)
		u.Send(u.request(d, "ACK", 1, "", false))
		bye := u.until("BYE ")
		u.answerTo(bye, 200)
		waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
		rx.settle()
		per := map[uint32]int{}
		for _, p := range rx.packets() {
			var h rtp.Packet
			if h.Unmarshal(p) == nil && h.PayloadType == 0 {
				per[h.SSRC]++
			}
		}
		if len(per) < tc.minPlays {
			t.Fatalf("%s: %d plays, want at least %d", tc.params, len(per), tc.minPlays)
		}
		if tc.minPlays == 2 {
			if len(per) != 2 {
				t.Fatalf("%s: %d plays", tc.params, len(per))
			}
			for ssrc, n := range per {
				if n != 50 {
					t.Fatalf("%s: play %x sent %d packets, want 50", tc.params, ssrc, n)
				}
			}
		}
	}
}
