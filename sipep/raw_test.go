package sipep

import (
	"bufio"
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

// rawSIP is a SIP client that writes messages byte for byte (malformed
// ones included) over UDP or TCP and reads what comes back.
type rawSIP struct {
	t    *testing.T
	conn net.Conn
	udp  bool
	r    *bufio.Reader
	// host:port of our socket, for Via and Contact.
	local string
}

var rawSeq atomic.Int64

func dialSIP(t *testing.T, network, addr string) *rawSIP {
	t.Helper()
	return dialSIPFrom(t, network, "127.0.0.1", addr)
}

func dialSIPFrom(t *testing.T, network, localIP, addr string) *rawSIP {
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
	return &rawSIP{t: t, conn: c, udp: network == "udp", r: bufio.NewReader(c), local: c.LocalAddr().String()}
}

func (c *rawSIP) transport() string {
	if c.udp {
		return "UDP"
	}
	return "TCP"
}

func (c *rawSIP) send(msg string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, msg); err != nil {
		c.t.Fatal(err)
	}
}

// sipMsg is a received message: start line, headers (lower-case names,
// first value) and body.
type sipMsg struct {
	start string
	hdr   map[string][]string
	body  string
}

func (m *sipMsg) get(name string) string {
	if v := m.hdr[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m *sipMsg) status() int {
	f := strings.Fields(m.start)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// read returns the next message or fails after d.
func (c *rawSIP) read(d time.Duration) *sipMsg {
	c.t.Helper()
	m, err := c.tryRead(d)
	if err != nil {
		c.t.Fatalf("reading SIP message: %v", err)
	}
	return m
}

func (c *rawSIP) tryRead(d time.Duration) (*sipMsg, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	var r *bufio.Reader
	if c.udp {
		buf := make([]byte, 65536)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		r = bufio.NewReader(strings.NewReader(string(buf[:n])))
	} else {
		r = c.r
	}
	m := &sipMsg{hdr: map[string][]string{}}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if m.start == "" {
			if l == "" {
				continue // keep-alive
			}
			m.start = l
			continue
		}
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		m.hdr[k] = append(m.hdr[k], strings.TrimSpace(v))
	}
	if n, _ := strconv.Atoi(m.get("content-length")); n > 0 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		m.body = string(b)
	}
	return m, nil
}

// response reads messages until a response (NOTIFYs are answered 200).
func (c *rawSIP) response(d time.Duration) *sipMsg {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := c.read(time.Until(deadline))
		if m.status() != 0 {
			return m
		}
		c.answer(m, 200)
	}
}

// answer responds to a request received from the server.
func (c *rawSIP) answer(req *sipMsg, code int) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d OK\r\n", code)
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range req.hdr[strings.ToLower(h)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h, v)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	c.send(b.String())
}

// subReq describes a SUBSCRIBE to build.
type subReq struct {
	method, version, ruri, cseqMethod string
	user, callID, fromTag, toTag      string
	contact                           string
	cseq, expires                     int
	auth                              string
	extra                             string
}

// build returns the request text; zero fields take sane values.
func (c *rawSIP) build(r subReq, serverAddr string) string {
	n := rawSeq.Add(1)
	if r.method == "" {
		r.method = "SUBSCRIBE"
	}
	if r.version == "" {
		r.version = "SIP/2.0"
	}
	if r.ruri == "" {
		r.ruri = "sip:" + r.user + "@" + serverAddr
	}
	if r.cseqMethod == "" {
		r.cseqMethod = r.method
	}
	if r.callID == "" {
		r.callID = fmt.Sprintf("call-%d@test", n)
	}
	if r.fromTag == "" {
		r.fromTag = fmt.Sprintf("ft%d", n)
	}
	if r.cseq == 0 {
		r.cseq = 1
	}
	if r.contact == "" {
		r.contact = "<sip:" + r.user + "@" + c.local + ">"
	}
	to := "<sip:" + r.user + "@" + serverAddr + ">"
	if r.toTag != "" {
		to += ";tag=" + r.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, r.ruri, r.version)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK-raw%d;rport\r\n", c.transport(), c.local, n)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", r.user, c.local, r.fromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.cseq, r.cseqMethod)
	fmt.Fprintf(&b, "Contact: %s\r\n", r.contact)
	b.WriteString("Max-Forwards: 70\r\nEvent: message-summary\r\n")
	if r.expires >= 0 {
		fmt.Fprintf(&b, "Expires: %d\r\n", r.expires)
	}
	if r.auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", r.auth)
	}
	b.WriteString(r.extra)
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

var reNonce = regexp.MustCompile(`nonce="([^"]+)"`)

// digestHeader computes an Authorization value (RFC 2617 qop=auth; qop ""
// makes an RFC 2069 one).
func digestHeader(user, realm, pass, method, uri, nonce, qop string, nc int) string {
	ha1 := md5hex(user + ":" + realm + ":" + pass)
	ha2 := md5hex(method + ":" + uri)
	cnonce := "0a4f113b"
	if qop == "" {
		resp := md5hex(ha1 + ":" + nonce + ":" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`, user, realm, nonce, uri, resp)
	}
	resp := md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2))
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=%s, nc=%08x`,
		user, realm, nonce, uri, resp, cnonce, qop, nc)
}

// challengeNonce sends r without credentials and returns the nonce of the
// 401.
func (c *rawSIP) challengeNonce(r subReq, serverAddr string) string {
	c.t.Helper()
	c.send(c.build(r, serverAddr))
	res := c.response(5 * time.Second)
	if res.status() != 401 {
		c.t.Fatalf("want 401, got %q", res.start)
	}
	m := reNonce.FindStringSubmatch(res.get("WWW-Authenticate"))
	if m == nil {
		c.t.Fatalf("no nonce in %q", res.get("WWW-Authenticate"))
	}
	return m[1]
}
