package streaming

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/sipep/siptest"
)

// endReasons collects the reasons calls end with.
func endReasons(s *SIPServer) chan string {
	ch := make(chan string, 16)
	s.endHook = func(r string) {
		select {
		case ch <- r:
		default:
		}
	}
	return ch
}

func waitReason(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case r := <-ch:
		if r != want {
			t.Fatalf("call ended with %q, want %q", r, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no call end (%s)", want)
	}
}

// invite sends an INVITE with a plain offer and extra headers and returns
// the final response (non-2xx are acknowledged).
func (u *uac) invite(d *dialog, port int, extra string) *siptest.Msg {
	u.T.Helper()
	d.extra = extra
	d.cseq = 1
	u.Send(u.request(d, "INVITE", 1, plainOffer(port, "sendrecv"), false))
	for {
		m := u.final(d, 1, "INVITE")
		{
			d.toTag = m.ToTag()
			if m.Status() >= 300 {
				u.Send(u.request(d, "ACK", 1, "", true))
			}
			d.extra = ""
			return m
		}
	}
}

// final reads until the final response to the dialog's request cseq
// method (retransmitted 200s of earlier requests, other calls' messages
// and provisional responses are skipped).
func (u *uac) final(d *dialog, cseq int, method string) *siptest.Msg {
	u.T.Helper()
	want := fmt.Sprintf("%d %s", cseq, method)
	for {
		m := u.read()
		if m.Status() >= 200 && m.Get("Call-ID") == d.callID && m.Get("CSeq") == want {
			return m
		}
	}
}

// onlyCall is the media server's one call.
func onlyCall(t *testing.T, s *SIPServer) *call {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		return c
	}
	t.Fatal("no call")
	return nil
}

// TestSIPSessionTimerNegotiation: RFC 4028 s9 as the media server (UAS)
// applies it: 422 with Min-SE below our minimum (raised instead for a
// caller without timer support), the interval kept or
// lowered to ours, the refresher named or chosen, Require: timer when the
// caller refreshes, none without the caller's support; refreshes by
// UPDATE (RFC 3311) and re-INVITE renegotiate.
func TestSIPSessionTimerNegotiation(t *testing.T) {
	ms := startMediaServer(t, 10*time.Second, func(s *SIPServer) {
		s.MinSE, s.SessionExpires = 120*time.Second, 600*time.Second
	})
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	ruri := "sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0)
	call := func(extra string) (*dialog, *siptest.Msg) {
		t.Helper()
		d := u.newDialog(ruri)
		return d, u.invite(d, rx.port(), extra)
	}
	bye := func(d *dialog) {
		t.Helper()
		d.cseq++
		u.Send(u.request(d, "BYE", d.cseq, "", false))
		if r := u.final(d, d.cseq, "BYE"); r.Status() != 200 {
			t.Fatalf("BYE: %q", r.Start)
		}
		waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	}

	for _, tc := range []struct{ hdrs, line, minSE string }{
		{"Session-Expires: 100\r\nSupported: timer\r\n", "SIP/2.0 422 Session Interval Too Small", "120"},
		{"x: 90;refresher=uac\r\nk: timer\r\n", "SIP/2.0 422 Session Interval Too Small", "120"},
		{"Session-Expires: soon\r\n", "SIP/2.0 400 Bad Request (Session-Expires)", ""},
		{"Session-Expires: 200\r\nMin-SE: many\r\n", "SIP/2.0 400 Bad Request (Min-SE)", ""},
	} {
		_, r := call(tc.hdrs)
		if r.Start != tc.line || r.Get("Min-SE") != tc.minSE {
			t.Fatalf("%q: %q Min-SE %q, want %q %q", tc.hdrs, r.Start, r.Get("Min-SE"), tc.line, tc.minSE)
		}
	}
	for _, tc := range []struct{ hdrs, se, require string }{
		{"Session-Expires: 150;refresher=uac\r\nSupported: timer\r\n", "150;refresher=uac", "timer"},
		{"Session-Expires: 3600\r\nk: 100rel, timer\r\n", "600;refresher=uac", "timer"},
		{"Session-Expires: 3600\r\nMin-SE: 900\r\nSupported: timer\r\n", "900;refresher=uac", "timer"},
		{"Supported: timer\r\n", "600;refresher=uac", "timer"},
		{"Session-Expires: 150;refresher=uas\r\nSupported: timer\r\n", "150;refresher=uas", ""},
		{"Session-Expires: 150\r\n", "150;refresher=uas", ""},               // no timer support: we refresh
		{"Session-Expires: 150;refresher=uac\r\n", "150;refresher=uas", ""}, // nor is it made the refresher
		{"x: 90;refresher=uac\r\n", "120;refresher=uas", ""},                // too small, no support: raised (erratum 1687), not 422
		{"", "", ""},
	} {
		d, r := call(tc.hdrs)
		if r.Status() != 200 || r.Get("Session-Expires") != tc.se || r.Get("Require") != tc.require ||
			!strings.Contains(r.Get("Supported"), "timer") || !strings.Contains(r.Get("Allow"), "UPDATE") {
			t.Fatalf("%q: %q Session-Expires %q Require %q Supported %q Allow %q, want %q %q", tc.hdrs, r.Start,
				r.Get("Session-Expires"), r.Get("Require"), r.Get("Supported"), r.Get("Allow"), tc.se, tc.require)
		}
		u.Send(u.request(d, "ACK", 1, "", false))
		bye(d)
	}

	// Refreshes: UPDATE without a body, too small, and a re-INVITE.
	d, r := call("Session-Expires: 150;refresher=uac\r\nSupported: timer\r\n")
	u.Send(u.request(d, "ACK", 1, "", false))
	c := onlyCall(t, ms.srv)
	waitFor(t, "ACK", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.confirmed })
	d.extra = "Session-Expires: 300;refresher=uac\r\nSupported: timer\r\n"
	u.Send(u.request(d, "UPDATE", 2, "", false))
	r = u.final(d, 2, "UPDATE")
	if r.Start != "SIP/2.0 200 OK" || r.Get("Session-Expires") != "300;refresher=uac" || r.Get("Require") != "timer" || r.Body != "" {
		t.Fatalf("UPDATE refresh: %q Session-Expires %q body %q", r.Start, r.Get("Session-Expires"), r.Body)
	}
	c.mu.Lock()
	got := c.timer
	c.mu.Unlock()
	if got != (sessionTimer{interval: 300, refresher: "uac"}) {
		t.Fatalf("timer after UPDATE %+v", got)
	}
	d.extra = "Session-Expires: 60\r\nSupported: timer\r\n"
	u.Send(u.request(d, "UPDATE", 3, "", false))
	if r = u.final(d, 3, "UPDATE"); r.Start != "SIP/2.0 422 Session Interval Too Small" || r.Get("Min-SE") != "120" {
		t.Fatalf("small UPDATE: %q Min-SE %q", r.Start, r.Get("Min-SE"))
	}
	d.extra = "Session-Expires: 200\r\nSupported: timer\r\n"
	u.Send(u.request(d, "INVITE", 4, plainOffer(rx.port(), "sendrecv"), false))
	if r = u.final(d, 4, "INVITE"); r.Get("Session-Expires") != "200;refresher=uac" || !strings.Contains(r.Body, "m=audio") {
		t.Fatalf("re-INVITE refresh: Session-Expires %q\n%s", r.Get("Session-Expires"), r.Body)
	}
	d.extra = ""
	u.Send(u.request(d, "ACK", 4, "", false))
	d.cseq = 4
	bye(d)
	// UPDATE outside a dialog.
	d.toTag = "nosuchtag"
	u.Send(u.request(d, "UPDATE", 9, "", false))
	if r = u.final(d, 9, "UPDATE"); r.Start != "SIP/2.0 481 Call/Transaction Does Not Exist" {
		t.Fatalf("UPDATE outside a dialog: %q", r.Start)
	}
}

// TestSIPSessionExpiry: a caller that is the refresher and does not
// refresh gets BYE before the interval ends (RFC 4028 s10). Intervals run
// in 20 ms "seconds" here.
func TestSIPSessionExpiry(t *testing.T) {
	var ends chan string
	ms := startMediaServer(t, 20*time.Second, func(s *SIPServer) { s.timerUnit = 20 * time.Millisecond; ends = endReasons(s) })
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	if r := u.invite(d, rx.port(), "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n"); r.Status() != 200 {
		t.Fatalf("INVITE: %q", r.Start)
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	bye := u.until("BYE ")
	u.answerTo(bye, 200)
	waitReason(t, ends, "session expired")
}

// TestSIPSessionRefreshByUs: as the refresher the media server sends an
// UPDATE at half the interval when the caller allows UPDATE, a re-INVITE
// with its last session description (acknowledged) otherwise; a refused
// refresh ends the call with BYE.
func TestSIPSessionRefreshByUs(t *testing.T) {
	var ends chan string
	ms := startMediaServer(t, 30*time.Second, func(s *SIPServer) { s.timerUnit = 20 * time.Millisecond; ends = endReasons(s) })
	rx := newReceiver(t)
	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	ruri := "sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0)

	d := u.newDialog(ruri)
	if r := u.invite(d, rx.port(), "Session-Expires: 90;refresher=uas\r\nSupported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n"); r.Status() != 200 {
		t.Fatalf("INVITE: %q", r.Start)
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	for i := range 2 {
		up := u.until("UPDATE ")
		if up.Get("Session-Expires") != "90;refresher=uas" || up.Body != "" || up.ToTag() != d.fromTag {
			t.Fatalf("refresh %d: Session-Expires %q To %q body %q", i, up.Get("Session-Expires"), up.Get("To"), up.Body)
		}
		u.answerTo(up, 200, "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\n")
	}
	up := u.until("UPDATE ")
	u.answerTo(up, 481)
	u.answerTo(u.until("BYE "), 200)
	waitReason(t, ends, "session refresh failed")

	// Without UPDATE in Allow: a re-INVITE with the same SDP, and our ACK.
	d = u.newDialog(ruri)
	ok := u.invite(d, rx.port(), "Session-Expires: 90\r\n")
	if ok.Get("Session-Expires") != "90;refresher=uas" {
		t.Fatalf("INVITE: %q Session-Expires %q", ok.Start, ok.Get("Session-Expires"))
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	re := u.until("INVITE ")
	if re.Body != ok.Body || re.Get("Session-Expires") != "90;refresher=uas" {
		t.Fatalf("refresh re-INVITE: Session-Expires %q\n%s\nwant the 200's SDP\n%s", re.Get("Session-Expires"), re.Body, ok.Body)
	}
	ans := plainOffer(rx.port(), "recvonly")
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range re.Hdr[strings.ToLower(h)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h, v)
		}
	}
	fmt.Fprintf(&b, "Contact: <sip:caller@%s>\r\nSession-Expires: 90;refresher=uas\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", u.Local, len(ans), ans)
	u.Send(b.String())
	ack := u.until("ACK ")
	if ack.Get("CSeq") != strings.Replace(re.Get("CSeq"), "INVITE", "ACK", 1) || ack.Get("Call-ID") != d.callID {
		t.Fatalf("ACK of the refresh: CSeq %q Call-ID %q (INVITE CSeq %q)", ack.Get("CSeq"), ack.Get("Call-ID"), re.Get("CSeq"))
	}
	d.cseq = 2
	u.Send(u.request(d, "BYE", 2, "", false))
	u.final(d, 2, "BYE")
	waitReason(t, ends, "caller bye")
}

// TestSIPMediaTimeout: a caller that sent RTCP and went silent gets BYE
// after the media timeout; a caller that never sends media is not ended
// for it.
func TestSIPMediaTimeout(t *testing.T) {
	var ends chan string
	ms := startMediaServer(t, 30*time.Second, func(s *SIPServer) { s.MediaTimeout = 300 * time.Millisecond; ends = endReasons(s) })
	rx := newReceiver(t)
	ruri := "sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0)

	quiet := newUAC(t, "127.0.0.1", ms.ep.Addr())
	dq := quiet.newDialog(ruri)
	if r := quiet.invite(dq, rx.port(), ""); r.Status() != 200 {
		t.Fatalf("INVITE: %q", r.Start)
	}
	quiet.Send(quiet.request(dq, "ACK", 1, "", false))

	u := newUAC(t, "127.0.0.1", ms.ep.Addr())
	d := u.newDialog(ruri)
	ok := u.invite(d, rx.port(), "")
	ans, err := parseSDP([]byte(ok.Body))
	if err != nil || ans.audio == nil {
		t.Fatalf("answer: %v\n%s", err, ok.Body)
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	// A few receiver reports from the caller's media address.
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ans.audio.rtcpPort}
	for range 3 {
		if _, err := rx.conn.WriteToUDP(rr, to); err != nil {
			t.Fatal(err)
		}
	}
	u.answerTo(u.until("BYE "), 200)
	waitReason(t, ends, "media timeout")
	if n := ms.srv.Calls(); n != 1 {
		t.Fatalf("%d calls left, want the quiet caller's", n)
	}
	quiet.Send(quiet.request(dq, "BYE", 2, "", false))
	quiet.final(dq, 2, "BYE")
	waitReason(t, ends, "caller bye")
}

// TestSIPOptionsCapabilities: OPTIONS (RFC 3261 s11.2) says what the
// media server takes: Allow with UPDATE, Supported: timer, Accept:
// application/sdp.
func TestSIPOptionsCapabilities(t *testing.T) {
	ms := startMediaServer(t, time.Second, nil)
	for _, network := range []string{"udp", "tcp"} {
		c := siptest.Dial(t, network, ms.ep.Addr())
		c.Send(c.Build(siptest.Req{Method: "OPTIONS", User: "annc", Event: "-", Expires: -1}, ms.ep.Addr()))
		r := c.Response(30 * time.Second)
		if r.Start != "SIP/2.0 200 OK" || r.Get("Allow") != "ACK, BYE, CANCEL, INVITE, OPTIONS, UPDATE" ||
			r.Get("Supported") != "timer" || r.Get("Accept") != "application/sdp" {
			t.Fatalf("%s OPTIONS: %q Allow %q Supported %q Accept %q", network, r.Start, r.Get("Allow"), r.Get("Supported"), r.Get("Accept"))
		}
	}
}

// TestSIPSippSessionTimer: sipp negotiates a session timer (422 with
// Min-SE, the retry answered with Session-Expires and Require: timer),
// refreshes with UPDATE and hangs up.
func TestSIPSippSessionTimer(t *testing.T) {
	for _, transport := range []string{"u1", "t1"} {
		t.Run(transport, func(t *testing.T) {
			ms := startMediaServer(t, 10*time.Second, func(s *SIPServer) { s.MinSE = 120 * time.Second })
			rx := newReceiver(t)
			if _, err := runSipp(t, ms, scenarioFile(t, "timer.xml"), "-t", transport, "-key", "play", ms.playURL(t, 0),
				"-key", "rtpport", strconv.Itoa(rx.port())); err != nil {
				t.Fatalf("sipp: %v", err)
			}
			waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
		})
	}
}

// FuzzParseDelta: Session-Expires and Min-SE values never panic and never
// give a negative interval or a refresher other than uac, uas or "".
func FuzzParseDelta(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", " 150 ; Refresher = UAS ;x=y", "-5", "99999999999", "", ";refresher=uac", "90;refresher"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, ref, ok := parseDelta(v)
		if ok && n < 0 {
			t.Fatalf("%q: %d", v, n)
		}
		_ = ref
	})
}
