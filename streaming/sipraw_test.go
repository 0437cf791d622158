package streaming

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/sipep/siptest"
)

// uac is a SIP caller over UDP (siptest's raw client) that writes messages
// byte for byte, for the cases sipp scenarios cannot express (withheld
// ACKs, CANCEL during set-up, calls from two addresses, session timers).
type uac struct {
	*siptest.Conn
	srv string
}

func newUAC(t *testing.T, localIP, srv string) *uac {
	t.Helper()
	return &uac{Conn: siptest.DialFrom(t, "udp", localIP, srv), srv: srv}
}

// read returns the next message (a generous deadline against hangs only).
func (u *uac) read() *siptest.Msg {
	u.T.Helper()
	return u.Read(30 * time.Second)
}

// until reads until a message whose start line has the prefix (others,
// e.g. 100 Trying, are skipped).
func (u *uac) until(prefix string) *siptest.Msg {
	u.T.Helper()
	return u.Until(prefix, 30*time.Second)
}

// dialog is one call's state on the caller's side.
type dialog struct {
	callID, fromTag, toTag, ruri, branch string
	cseq                                 int
	extra                                string // header lines added to every request
}

func (u *uac) newDialog(ruri string) *dialog {
	n := siptest.Next()
	return &dialog{callID: fmt.Sprintf("uac-%d@test", n), fromTag: fmt.Sprintf("ft%d", n), ruri: ruri}
}

// request builds a request of the dialog; method ACK and CANCEL reuse the
// INVITE's branch when sameBranch.
func (u *uac) request(d *dialog, method string, cseq int, body string, sameBranch bool) string {
	if !sameBranch || d.branch == "" {
		d.branch = fmt.Sprintf("z9hG4bK-uac%d", siptest.Next())
	}
	to := "<sip:annc@" + u.srv + ">"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", method, d.ruri, u.Local, d.branch)
	fmt.Fprintf(&b, "From: <sip:caller@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", u.Local, d.fromTag, to, d.callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:caller@%s>\r\nMax-Forwards: 70\r\n", u.Local)
	b.WriteString(d.extra)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// answerTo answers a request from the server.
func (u *uac) answerTo(req *siptest.Msg, code int, extra ...string) { u.Answer(req, code, extra...) }

func toTag(m *siptest.Msg) string { return m.ToTag() }

// plainOffer is an RTP/AVP PCMU offer for port, with a direction.
func plainOffer(port int, dir string) string {
	return fmt.Sprintf("v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n", port, dir)
}
