package streaming

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// uac is a SIP caller over UDP that writes messages byte for byte, for
// the cases sipp scenarios cannot express (withheld ACKs, CANCEL during
// set-up, calls from two addresses).
type uac struct {
	t     *testing.T
	conn  *net.UDPConn
	local string
	srv   string
	n     int
}

var uacSeq atomic.Int64

func newUAC(t *testing.T, localIP, srv string) *uac {
	t.Helper()
	ra, _ := net.ResolveUDPAddr("udp", srv)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)}, ra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &uac{t: t, conn: c, local: c.LocalAddr().String(), srv: srv}
}

type sipMessage struct {
	start string
	hdr   map[string][]string
	body  string
}

func (m *sipMessage) get(k string) string {
	if v := m.hdr[strings.ToLower(k)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m *sipMessage) status() int {
	f := strings.Fields(m.start)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func (u *uac) send(s string) {
	u.t.Helper()
	if _, err := u.conn.Write([]byte(s)); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next message (a generous deadline against hangs only).
func (u *uac) read() *sipMessage {
	u.t.Helper()
	buf := make([]byte, 65536)
	_ = u.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := u.conn.Read(buf)
	if err != nil {
		u.t.Fatalf("reading: %v", err)
	}
	r := bufio.NewReader(strings.NewReader(string(buf[:n])))
	m := &sipMessage{hdr: map[string][]string{}}
	for {
		l, err := r.ReadString('\n')
		l = strings.TrimRight(l, "\r\n")
		if m.start == "" {
			m.start = l
		} else if l == "" {
			break
		} else {
			k, v, _ := strings.Cut(l, ":")
			k = strings.ToLower(strings.TrimSpace(k))
			m.hdr[k] = append(m.hdr[k], strings.TrimSpace(v))
		}
		if err != nil {
			break
		}
	}
	rest := make([]byte, n)
	k, _ := r.Read(rest)
	m.body = string(rest[:k])
	return m
}

// until reads until a message whose start line has the prefix (others,
// e.g. 100 Trying, are skipped).
func (u *uac) until(prefix string) *sipMessage {
	u.t.Helper()
	for {
		m := u.read()
		if strings.HasPrefix(m.start, prefix) {
			return m
		}
	}
}

// dialog is one call's state on the caller's side.
type dialog struct {
	callID, fromTag, toTag, ruri, branch string
	cseq                                 int
}

func (u *uac) newDialog(ruri string) *dialog {
	n := uacSeq.Add(1)
	return &dialog{callID: fmt.Sprintf("uac-%d@test", n), fromTag: fmt.Sprintf("ft%d", n), ruri: ruri}
}

// request builds a request of the dialog; method ACK and CANCEL reuse the
// INVITE's branch when sameBranch.
func (u *uac) request(d *dialog, method string, cseq int, body string, sameBranch bool) string {
	if !sameBranch || d.branch == "" {
		d.branch = fmt.Sprintf("z9hG4bK-uac%d", uacSeq.Add(1))
	}
	to := "<sip:annc@" + u.srv + ">"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", method, d.ruri, u.local, d.branch)
	fmt.Fprintf(&b, "From: <sip:caller@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", u.local, d.fromTag, to, d.callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:caller@%s>\r\nMax-Forwards: 70\r\n", u.local)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// answerTo answers a request from the server.
func (u *uac) answerTo(req *sipMessage, code int) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d OK\r\n", code)
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range req.hdr[strings.ToLower(h)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h, v)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	u.send(b.String())
}

func toTag(m *sipMessage) string {
	_, tag, _ := strings.Cut(m.get("To"), ";tag=")
	tag, _, _ = strings.Cut(tag, ";")
	return tag
}

// plainOffer is an RTP/AVP PCMU offer for port, with a direction.
func plainOffer(port int, dir string) string {
	return fmt.Sprintf("v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n", port, dir)
}
