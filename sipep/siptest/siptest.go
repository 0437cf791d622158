// Package siptest is a raw SIP client for tests: it writes messages byte
// for byte (malformed ones included) over UDP or TCP, reads what comes
// back without a SIP library's help, builds requests and digest
// credentials. The tests of sipep, notify and streaming share it; it
// imports nothing of the module.
package siptest

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Conn is one client socket.
type Conn struct {
	T    testing.TB
	Conn net.Conn
	UDP  bool
	// Local is host:port of our socket, for Via and Contact.
	Local string
	r     *bufio.Reader
}

var seq atomic.Int64

// Next returns a number unique in the test binary (tags, branches).
func Next() int64 { return seq.Add(1) }

// Dial connects from 127.0.0.1 ("udp" or "tcp").
func Dial(t testing.TB, network, addr string) *Conn {
	t.Helper()
	return DialFrom(t, network, "127.0.0.1", addr)
}

// DialFrom connects from localIP (another loopback address, ::1...).
func DialFrom(t testing.TB, network, localIP, addr string) *Conn {
	t.Helper()
	var d net.Dialer
	if network == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(localIP)}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{T: t, Conn: c, UDP: network == "udp", r: bufio.NewReader(c), Local: c.LocalAddr().String()}
}

// Transport is the Via transport of the socket.
func (c *Conn) Transport() string {
	if c.UDP {
		return "UDP"
	}
	return "TCP"
}

// Send writes msg as is.
func (c *Conn) Send(msg string) {
	c.T.Helper()
	if _, err := io.WriteString(c.Conn, msg); err != nil {
		c.T.Fatal(err)
	}
}

// Msg is a received message: start line, headers (lower-case names, in
// order of arrival) and body.
type Msg struct {
	Start string
	Hdr   map[string][]string
	Body  string
}

// Get returns the first value of a header.
func (m *Msg) Get(name string) string {
	if v := m.Hdr[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Status is a response's code, 0 for a request.
func (m *Msg) Status() int {
	f := strings.Fields(m.Start)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Method is a request's method, "" for a response.
func (m *Msg) Method() string {
	if m.Status() != 0 {
		return ""
	}
	meth, _, _ := strings.Cut(m.Start, " ")
	return meth
}

// ToTag is the tag of the To header.
func (m *Msg) ToTag() string {
	_, tag, _ := strings.Cut(m.Get("To"), ";tag=")
	tag, _, _ = strings.Cut(tag, ";")
	return strings.TrimSpace(tag)
}

// Read returns the next message or fails after d.
func (c *Conn) Read(d time.Duration) *Msg {
	c.T.Helper()
	m, err := c.TryRead(d)
	if err != nil {
		c.T.Fatalf("reading SIP message: %v", err)
	}
	return m
}

// TryRead returns the next message or the error after d.
func (c *Conn) TryRead(d time.Duration) (*Msg, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	var r *bufio.Reader
	if c.UDP {
		buf := make([]byte, 65536)
		n, err := c.Conn.Read(buf)
		if err != nil {
			return nil, err
		}
		r = bufio.NewReader(strings.NewReader(string(buf[:n])))
	} else {
		r = c.r
	}
	m := &Msg{Hdr: map[string][]string{}}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if m.Start == "" {
			if l == "" {
				continue // keep-alive
			}
			m.Start = l
			continue
		}
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		m.Hdr[k] = append(m.Hdr[k], strings.TrimSpace(v))
	}
	if n, _ := strconv.Atoi(m.Get("content-length")); n > 0 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		m.Body = string(b)
	}
	return m, nil
}

// Response reads messages until a response within d (requests, NOTIFYs,
// are answered 200).
func (c *Conn) Response(d time.Duration) *Msg {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for {
		m := c.Read(time.Until(deadline))
		if m.Status() != 0 {
			return m
		}
		c.Answer(m, 200)
	}
}

// Until reads messages until one whose start line has the prefix within
// d; the others (100 Trying, retransmissions) are skipped.
func (c *Conn) Until(prefix string, d time.Duration) *Msg {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for {
		m := c.Read(time.Until(deadline))
		if strings.HasPrefix(m.Start, prefix) {
			return m
		}
	}
}

// Answer responds to a request received from the server, with extra
// header lines (each ending CRLF).
func (c *Conn) Answer(req *Msg, code int, extra ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason(code))
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range req.Hdr[strings.ToLower(h)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h, v)
		}
	}
	for _, e := range extra {
		b.WriteString(e)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	c.Send(b.String())
}

func reason(code int) string {
	switch code {
	case 200:
		return "OK"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 408:
		return "Request Timeout"
	}
	return "Status"
}

// Req describes a request to build (a SUBSCRIBE unless Method says
// otherwise); zero fields take sane values.
type Req struct {
	Method, Version, RURI, CSeqMethod string
	User, CallID, FromTag, ToTag      string
	Contact                           string
	// Event defaults to message-summary; "-" leaves the header out.
	Event         string
	CSeq, Expires int // Expires < 0: no Expires header
	Auth          string
	Extra         string // header lines, each ending CRLF
}

// Build returns the request text for a server at serverAddr.
func (c *Conn) Build(r Req, serverAddr string) string {
	n := Next()
	if r.Method == "" {
		r.Method = "SUBSCRIBE"
	}
	if r.Version == "" {
		r.Version = "SIP/2.0"
	}
	if r.RURI == "" {
		r.RURI = "sip:" + r.User + "@" + serverAddr
	}
	if r.CSeqMethod == "" {
		r.CSeqMethod = r.Method
	}
	if r.CallID == "" {
		r.CallID = fmt.Sprintf("call-%d@test", n)
	}
	if r.FromTag == "" {
		r.FromTag = fmt.Sprintf("ft%d", n)
	}
	if r.CSeq == 0 {
		r.CSeq = 1
	}
	if r.Contact == "" {
		r.Contact = "<sip:" + r.User + "@" + c.Local + ">"
	}
	if r.Event == "" {
		r.Event = "message-summary"
	}
	to := "<sip:" + r.User + "@" + serverAddr + ">"
	if r.ToTag != "" {
		to += ";tag=" + r.ToTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, r.RURI, r.Version)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK-raw%d;rport\r\n", c.Transport(), c.Local, n)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", r.User, c.Local, r.FromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.CallID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.CSeq, r.CSeqMethod)
	fmt.Fprintf(&b, "Contact: %s\r\n", r.Contact)
	b.WriteString("Max-Forwards: 70\r\n")
	if r.Event != "-" {
		fmt.Fprintf(&b, "Event: %s\r\n", r.Event)
	}
	if r.Expires >= 0 {
		fmt.Fprintf(&b, "Expires: %d\r\n", r.Expires)
	}
	if r.Auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", r.Auth)
	}
	b.WriteString(r.Extra)
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

var reNonce = regexp.MustCompile(`nonce="([^"]+)"`)

// MD5Hex is the hex MD5 of s.
func MD5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// Digest computes an Authorization value (RFC 2617 qop=auth; qop ""
// makes an RFC 2069 one).
func Digest(user, realm, pass, method, uri, nonce, qop string, nc int) string {
	ha1 := MD5Hex(user + ":" + realm + ":" + pass)
	ha2 := MD5Hex(method + ":" + uri)
	cnonce := "0a4f113b"
	if qop == "" {
		resp := MD5Hex(ha1 + ":" + nonce + ":" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`, user, realm, nonce, uri, resp)
	}
	resp := MD5Hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2))
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=%s, nc=%08x`,
		user, realm, nonce, uri, resp, cnonce, qop, nc)
}

// Nonce is the nonce of a WWW-Authenticate value, "" without one.
func Nonce(challenge string) string {
	if m := reNonce.FindStringSubmatch(challenge); m != nil {
		return m[1]
	}
	return ""
}

// ChallengeNonce sends r without credentials and returns the nonce of
// the 401.
func (c *Conn) ChallengeNonce(r Req, serverAddr string) string {
	c.T.Helper()
	c.Send(c.Build(r, serverAddr))
	res := c.Response(5 * time.Second)
	if res.Status() != 401 {
		c.T.Fatalf("want 401, got %q", res.Start)
	}
	n := Nonce(res.Get("WWW-Authenticate"))
	if n == "" {
		c.T.Fatalf("no nonce in %q", res.Get("WWW-Authenticate"))
	}
	return n
}
