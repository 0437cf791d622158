package sipep

// Validation of SIP messages before they reach the SIP library: sipgo's
// parser upper-cases the method (RFC 3261 s7.1: methods are
// case-sensitive), accepts any version, does not compare the CSeq method
// with the request's and takes almost any Request-URI. Every datagram and
// every message of a stream passes the check first; a malformed request is
// answered here (400, 416, 501 or 505, RFC 3261 s8.2) and dropped.
//
// The wrappers (sipPacketConn for UDP, sipStreamConn for TCP and TLS) put
// the check between the sockets and the library.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
)

// Limits of one SIP message.
const (
	maxSIPHeader = 16 << 10
	maxSIPBody   = 64 << 10
)

// Methods this endpoint recognises (RFC 3261 and extensions): others are
// answered 501 Not Implemented; recognised ones no service registered get
// 405 from the router.
var knownMethods = map[string]bool{
	"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true, "REGISTER": true,
	"PRACK": true, "SUBSCRIBE": true, "NOTIFY": true, "PUBLISH": true, "INFO": true, "REFER": true,
	"MESSAGE": true, "UPDATE": true,
}

// checker validates messages for an endpoint; allow is the Allow header
// value of its 501 answers (the methods it serves).
type checker struct{ allow string }

// sipVerdict is what the check decided about one message.
type sipVerdict struct {
	ok     bool   // pass it on
	reply  []byte // else, the response to send (nil: drop silently)
	reason string // for the log
}

// check validates one complete message (start line, headers, body).
func (k *checker) check(msg []byte) sipVerdict {
	if len(bytes.Trim(msg, "\r\n")) == 0 {
		return sipVerdict{ok: true} // keep-alive
	}
	eol := bytes.Index(msg, []byte("\r\n"))
	if eol < 0 {
		return sipVerdict{reason: "no CRLF"}
	}
	line := string(msg[:eol])
	parts := strings.Split(line, " ")
	if strings.HasPrefix(line, "SIP/") {
		// A response: the transaction layer matches it; only the version
		// is ours to check.
		if parts[0] != "SIP/2.0" {
			return sipVerdict{reason: "response version " + parts[0]}
		}
		return sipVerdict{ok: true}
	}
	if len(parts) != 3 {
		return reject(msg, 400, "Bad Request (malformed request line)", "request line")
	}
	method, ruri, version := parts[0], parts[1], parts[2]
	if !isToken(method) {
		return reject(msg, 400, "Bad Request (malformed method)", "method")
	}
	if !isSIPVersion(version) {
		return reject(msg, 400, "Bad Request (malformed SIP version)", "version")
	}
	if version != "SIP/2.0" {
		return reject(msg, 505, "Version Not Supported", "version "+version)
	}
	cseq, ok := rawHeader(msg, "cseq")
	if !ok {
		return reject(msg, 400, "Bad Request (missing CSeq)", "no cseq")
	}
	num, cm, _ := strings.Cut(strings.TrimSpace(cseq), " ")
	if _, err := strconv.ParseUint(num, 10, 31); err != nil || strings.TrimSpace(cm) != method {
		// RFC 3261 s8.1.1.5: the CSeq method matches the request's.
		return reject(msg, 400, "Bad Request (CSeq does not match the request)", "cseq")
	}
	if code := checkRequestURI(ruri); code != 0 {
		reason := "Bad Request (malformed Request-URI)"
		if code == 416 {
			reason = "Unsupported URI Scheme"
		}
		return reject(msg, code, reason, "request-uri")
	}
	for _, h := range []string{"via", "from", "to", "call-id"} {
		if _, ok := rawHeader(msg, h); !ok {
			return reject(msg, 400, "Bad Request (missing "+h+")", "no "+h)
		}
	}
	if !knownMethods[method] {
		if method == "ACK" {
			return sipVerdict{reason: "ack"}
		}
		return reject(msg, 501, "Not Implemented", "method "+method, "Allow: "+k.allow)
	}
	return sipVerdict{ok: true}
}

// reject builds the response to a malformed request from its raw header
// lines (Via, From, To, Call-ID, CSeq copied, RFC 3261 s8.2.6), so that
// even a request the SIP library cannot parse is answered. A request
// without them is dropped; ACK is never answered.
func reject(msg []byte, code int, reason, why string, hdrs ...string) sipVerdict {
	return statelessReply(msg, code, reason, why, "malformed", hdrs...)
}

// statelessReply answers a request from its raw header lines; kind labels
// the metric (malformed, throttled).
func statelessReply(msg []byte, code int, reason, why, kind string, hdrs ...string) sipVerdict {
	v := sipVerdict{reason: why}
	if bytes.HasPrefix(msg, []byte("ACK ")) {
		return v
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(code) + " " + reason + "\r\n")
	for _, name := range []string{"via", "from", "to", "call-id", "cseq"} {
		vals := rawHeaders(msg, name)
		if len(vals) == 0 {
			return v
		}
		for _, val := range vals {
			if name == "to" && !strings.Contains(strings.ToLower(val), ";tag=") {
				val += ";tag=" + RandomToken(8)
			}
			b.WriteString(canonicalHeader[name] + ": " + val + "\r\n")
		}
	}
	for _, h := range hdrs {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Server: lemonvox\r\nContent-Length: 0\r\n\r\n")
	v.reply = []byte(b.String())
	countResponse(kind, code)
	return v
}

var canonicalHeader = map[string]string{"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}

// rawHeader returns the first value of a header (by its full or compact
// name), as written.
func rawHeader(msg []byte, name string) (string, bool) {
	vals := rawHeaders(msg, name)
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// rawHeaders returns every value of a header, as written (a Via line with
// several values counts as one).
func rawHeaders(msg []byte, name string) []string {
	var out []string
	compact := map[string]string{"via": "v", "from": "f", "to": "t", "call-id": "i", "content-length": "l"}[name]
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	lines := strings.Split(string(msg[:end]), "\r\n")
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == name || (compact != "" && k == compact) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isSIPVersion(s string) bool {
	rest, ok := strings.CutPrefix(s, "SIP/")
	if !ok {
		return false
	}
	a, b, ok := strings.Cut(rest, ".")
	return ok && isDigits(a) && isDigits(b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkRequestURI returns 0 for a well-formed sip/sips URI (RFC 3261
// s19.1.1), 416 for another well-formed scheme, 400 otherwise.
func checkRequestURI(s string) int {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || !(scheme[0] >= 'a' && scheme[0] <= 'z' || scheme[0] >= 'A' && scheme[0] <= 'Z') {
		return 400
	}
	for i := 0; i < len(scheme); i++ {
		if !isAlnum(scheme[i]) && strings.IndexByte("+-.", scheme[i]) < 0 {
			return 400
		}
	}
	if !strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips") {
		if rest == "" {
			return 400
		}
		return 416
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] <= ' ' || rest[i] >= 0x7f || strings.IndexByte(`<>"{}|\^`+"`", rest[i]) >= 0 {
			return 400
		}
	}
	hostport := rest
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		hostport = rest[at+1:]
		user, _, _ := strings.Cut(userinfo, ":")
		if user == "" || !validEscapes(userinfo) {
			return 400
		}
	}
	if i := strings.IndexAny(hostport, ";?"); i >= 0 {
		if !validEscapes(hostport[i:]) {
			return 400
		}
		hostport = hostport[:i]
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return 400
		}
		a, err := netip.ParseAddr(hostport[1:end])
		if err != nil || !a.Is6() {
			return 400
		}
		host, port = "", hostport[end+1:]
		if port != "" && port[0] != ':' {
			return 400
		}
		port = strings.TrimPrefix(port, ":")
	} else if h, p, ok := strings.Cut(hostport, ":"); ok {
		host, port = h, p
		if port == "" {
			return 400
		}
	}
	if host != "" || !strings.HasPrefix(hostport, "[") {
		if !validHostname(host) {
			return 400
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || !isDigits(port) || n < 1 || n > 65535 {
			return 400
		}
	}
	return 0
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	h = strings.TrimSuffix(h, ".")
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// frameSIP returns the length of the first message in a stream buffer
// (leading CRLF keep-alives count as a message of their own), 0 when more
// data is needed, or an error when the stream cannot be framed.
func frameSIP(b []byte) (int, error) {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	if n > 0 {
		return n, nil
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxSIPHeader {
			return 0, errSIPFraming
		}
		return 0, nil
	}
	if end > maxSIPHeader {
		return 0, errSIPFraming
	}
	cl := 0
	if v, ok := rawHeader(b[:end+4], "content-length"); ok {
		var err error
		cl, err = strconv.Atoi(v)
		if err != nil || cl < 0 || cl > maxSIPBody {
			return 0, errSIPFraming
		}
	}
	total := end + 4 + cl
	if len(b) < total {
		return 0, nil
	}
	return total, nil
}

var errSIPFraming = errors.New("sip: stream cannot be framed")

// sipPacketConn validates each datagram before the SIP library reads it.
// A read error other than a closed socket is retried with a backoff
// (sipgo's UDP loop would end for good) and reported to health.
type sipPacketConn struct {
	net.PacketConn
	check  *checker
	onBad  func(from net.Addr, why string)
	rate   *sourceRate // requests beyond a source's rate are answered here
	health *netlimit.Health
	closed <-chan struct{}
}

func (c *sipPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var delay time.Duration
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || c.closed == nil {
				return n, addr, err
			}
			select {
			case <-c.closed:
				return n, addr, err
			default:
			}
			c.health.Set(err)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		if delay != 0 {
			delay = 0
			c.health.Set(nil)
		}
		v := c.check.check(b[:n])
		if v.ok && isRequest(b[:n]) && !c.rate.allow(addr) {
			v = throttled(b[:n])
		}
		if v.ok {
			return n, addr, nil
		}
		if v.reply != nil {
			_, _ = c.PacketConn.WriteTo(v.reply, addr)
		}
		if c.onBad != nil {
			c.onBad(addr, v.reason)
		}
	}
}

// sipListener wraps accepted stream connections in sipStreamConn.
type sipListener struct {
	net.Listener
	check *checker
	onBad func(from net.Addr, why string)
	rate  *sourceRate
}

func (l *sipListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sipStreamConn{Conn: c, check: l.check, onBad: l.onBad, rate: l.rate}, nil
}

// sipStreamConn frames the stream into messages, validates each, passes
// the good ones on and answers the bad ones itself. A stream that cannot
// be framed is closed (there is no boundary to resynchronise on).
type sipStreamConn struct {
	net.Conn
	check *checker
	onBad func(from net.Addr, why string)
	rate  *sourceRate

	in, out []byte
	rerr    error
	active  bool
}

func (c *sipStreamConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		for {
			n, err := frameSIP(c.in)
			if err != nil {
				if c.onBad != nil {
					c.onBad(c.RemoteAddr(), err.Error())
				}
				c.Conn.Close()
				return 0, io.EOF
			}
			if n == 0 {
				break
			}
			msg := c.in[:n]
			v := c.check.check(msg)
			if v.ok && isRequest(msg) && !c.rate.allow(c.RemoteAddr()) {
				v = throttled(msg)
			}
			if v.ok {
				c.out = append(c.out, msg...)
				if !c.active && len(bytes.Trim(msg, "\r\n")) > 0 {
					c.active = true
					activate(c.Conn)
				}
			} else {
				if v.reply != nil {
					_, _ = c.Conn.Write(v.reply)
				}
				if c.onBad != nil {
					c.onBad(c.RemoteAddr(), v.reason)
				}
			}
			c.in = c.in[n:]
		}
		if len(c.out) > 0 {
			break
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(c.in) == 0 {
			c.in = nil // release
		}
		// Read into the caller's buffer (no buffer of ours while idle),
		// keep what is not yet a whole message.
		n, err := c.Conn.Read(p)
		c.in = append(c.in, p[:n]...)
		if err != nil {
			c.rerr = err
			if len(c.in) == 0 {
				return 0, err
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, nil
}

// activate tells the connection limiter below (netlimit) that the peer
// spoke SIP, so that the first-message deadline gives way to the idle
// timeout.
func activate(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if a, ok := c.(interface{ Activate() }); ok {
		a.Activate()
	}
}

// isRequest tells a request from a response or a keep-alive.
func isRequest(msg []byte) bool {
	return len(bytes.Trim(msg, "\r\n")) > 0 && !bytes.HasPrefix(msg, []byte("SIP/"))
}
