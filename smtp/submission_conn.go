package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Line limits: a command line may be longer than RFC 5321's 512 octets
// because BURL carries a URL (URLAUTH tokens included); a data line is not
// limited (the message is streamed to the spool).
const (
	maxCommandLine = 4096
	maxBadCommands = 20
)

// reply is an SMTP reply with its enhanced status code.
type reply struct {
	code     int
	enhanced [3]int // zero: none
	msg      string
}

func rep(code, a, b, c int, msg string) reply { return reply{code, [3]int{a, b, c}, msg} }

func (r reply) String() string {
	if r.enhanced[0] == 0 {
		return fmt.Sprintf("%d %s", r.code, r.msg)
	}
	return fmt.Sprintf("%d %d.%d.%d %s", r.code, r.enhanced[0], r.enhanced[1], r.enhanced[2], r.msg)
}

func (r reply) Error() string { return r.String() }

// subConn is one submission session.
type subConn struct {
	s    *Submission
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	log  *slog.Logger
	tls  bool
	helo string
	user string // authenticated account

	// The transaction.
	inTx   bool
	from   string
	params mailParams
	rcpts  []rcpt
	sp     *spool
	chunks bool // BDAT or BURL started the content
	failed bool // a chunk failed: the rest of the content is discarded

	bad     int
	closeMu sync.Mutex
	closing bool
}

func newSubConn(s *Submission, nc net.Conn) *subConn {
	c := &subConn{s: s, nc: nc}
	if _, ok := nc.(*tls.Conn); ok {
		c.tls = true // implicit TLS (RFC 8314)
	}
	c.br = bufio.NewReaderSize(nc, 8192)
	c.bw = bufio.NewWriterSize(nc, 4096)
	c.log = s.Logger.With("service", "submission", "remote", nc.RemoteAddr().String())
	return c
}

// shutdown makes a blocked read fail so that serve ends.
func (c *subConn) shutdown() {
	c.closeMu.Lock()
	c.closing = true
	c.closeMu.Unlock()
	c.nc.SetReadDeadline(time.Now())
}

func (c *subConn) writeReply(r reply) {
	if r.enhanced[0] == 0 {
		fmt.Fprintf(c.bw, "%d %s\r\n", r.code, r.msg)
		return
	}
	fmt.Fprintf(c.bw, "%d %d.%d.%d %s\r\n", r.code, r.enhanced[0], r.enhanced[1], r.enhanced[2], r.msg)
}

// writeMulti writes a multi-line reply.
func (c *subConn) writeMulti(code int, lines []string) {
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(c.bw, "%d%s%s\r\n", code, sep, l)
	}
}

// flushIfIdle sends the replies gathered so far when the client has sent
// nothing more (PIPELINING, RFC 2920: replies of a pipelined group may be
// written together).
func (c *subConn) flushIfIdle() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	return c.bw.Flush()
}

func (c *subConn) setDeadline(first bool) {
	d := orDur(c.s.CommandTimeout, 5*time.Minute)
	if first {
		d = orDur(c.s.GreetingTimeout, time.Minute)
	}
	c.nc.SetDeadline(time.Now().Add(d))
}

var errLineTooLong = errors.New("line too long")

// readLine reads a command line without its CRLF (a bare LF is
// accepted). A longer line than maxCommandLine is consumed to its end and
// reported as errLineTooLong.
func (c *subConn) readLine() (string, error) {
	var buf []byte
	tooLong := false
	for {
		b, err := c.br.ReadSlice('\n')
		if len(buf)+len(b) > maxCommandLine+2 {
			tooLong = true
			buf = buf[:0]
		} else {
			buf = append(buf, b...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if tooLong {
		return "", errLineTooLong
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), nil
}

func (c *subConn) serve() {
	defer c.nc.Close()
	defer c.resetTx()
	c.setDeadline(true)
	fmt.Fprintf(c.bw, "220 %s ESMTP Lemonvox submission ready\r\n", c.s.Hostname)
	if c.bw.Flush() != nil {
		return
	}
	first := true
	for {
		if err := c.flushIfIdle(); err != nil {
			return
		}
		c.setDeadline(first)
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.writeReply(rep(500, 5, 5, 2, "Line too long"))
				if c.tooManyErrors() {
					return
				}
				continue
			}
			c.closeMu.Lock()
			closing := c.closing
			c.closeMu.Unlock()
			var ne net.Error
			if closing {
				c.writeReply(rep(421, 4, 3, 2, "Service shutting down"))
				c.bw.Flush()
			} else if errors.As(err, &ne) && ne.Timeout() {
				c.writeReply(rep(421, 4, 4, 2, "Timeout waiting for a command"))
				c.bw.Flush()
			}
			return
		}
		first = false
		if !c.handle(line) {
			c.bw.Flush()
			return
		}
	}
}

func (c *subConn) tooManyErrors() bool {
	c.bad++
	if c.bad > maxBadCommands {
		c.writeReply(rep(421, 4, 7, 0, "Too many errors, closing connection"))
		c.bw.Flush()
		return true
	}
	return false
}

// handle runs one command; false ends the session.
func (c *subConn) handle(line string) bool {
	cmd, err := parseCommand(line)
	if err != nil {
		c.writeReply(rep(500, 5, 5, 2, "Syntax error, command unrecognized"))
		return !c.tooManyErrors()
	}
	switch cmd.verb {
	case "EHLO", "HELO":
		c.cmdHello(cmd)
	case "STARTTLS":
		return c.cmdStartTLS(cmd)
	case "AUTH":
		c.cmdAuth(cmd)
	case "MAIL":
		c.cmdMail(cmd)
	case "RCPT":
		c.cmdRcpt(cmd)
	case "DATA":
		return c.cmdData(cmd)
	case "BDAT":
		return c.cmdBdat(cmd)
	case "BURL":
		c.cmdBurl(cmd)
	case "RSET":
		c.resetTx()
		c.writeReply(rep(250, 2, 0, 0, "Reset"))
	case "NOOP":
		c.writeReply(rep(250, 2, 0, 0, "OK"))
	case "VRFY":
		c.writeReply(rep(252, 2, 5, 0, "Cannot verify; send the message"))
	case "HELP":
		c.writeReply(rep(214, 2, 0, 0, "See RFC 6409, RFC 4468, RFC 3030 and RFC 4865"))
	case "QUIT":
		c.writeReply(rep(221, 2, 0, 0, "Bye"))
		return false
	default:
		c.writeReply(rep(502, 5, 5, 1, "Command not implemented"))
		return !c.tooManyErrors()
	}
	return true
}

func (c *subConn) authAllowed() bool { return c.tls || c.s.AllowInsecureAuth }

func (c *subConn) cmdHello(cmd command) {
	if cmd.arg == "" || strings.ContainsAny(cmd.arg, " \t") && cmd.verb == "HELO" {
		c.writeReply(rep(501, 5, 5, 4, "Domain name required"))
		return
	}
	c.helo, _, _ = strings.Cut(cmd.arg, " ")
	c.resetTx()
	if cmd.verb == "HELO" {
		c.writeReply(reply{code: 250, msg: c.s.Hostname})
		return
	}
	lines := []string{c.s.Hostname + " greets " + c.helo, "PIPELINING", "ENHANCEDSTATUSCODES",
		"8BITMIME", "BINARYMIME", "CHUNKING", "DSN", "SIZE " + strconv.FormatInt(c.s.maxBytes(), 10)}
	if c.s.TLSConfig != nil && !c.tls {
		lines = append(lines, "STARTTLS")
	}
	if c.authAllowed() && c.user == "" {
		lines = append(lines, "AUTH PLAIN")
	}
	if c.s.Fetcher != nil {
		// RFC 4468 s3: "imap" only once the session is authenticated
		// (the URLs are fetched for the authenticated user).
		if c.user != "" {
			lines = append(lines, "BURL imap")
		} else {
			lines = append(lines, "BURL")
		}
	}
	if mh := c.s.maxHold(); mh > 0 {
		// RFC 4865 s3: max-future-release-interval and -date-time.
		lines = append(lines, fmt.Sprintf("FUTURERELEASE %d %s", int64(mh/time.Second),
			time.Now().Add(mh).UTC().Format("2006-01-02T15:04:05Z")))
	}
	c.writeMulti(250, lines)
}

func (c *subConn) cmdStartTLS(cmd command) bool {
	if c.s.TLSConfig == nil {
		c.writeReply(rep(502, 5, 5, 1, "STARTTLS not offered"))
		return true
	}
	if c.tls {
		c.writeReply(rep(503, 5, 5, 1, "TLS already active"))
		return true
	}
	if cmd.arg != "" {
		c.writeReply(rep(501, 5, 5, 4, "STARTTLS takes no argument"))
		return true
	}
	if c.br.Buffered() > 0 {
		// Bytes pipelined after STARTTLS would be taken as protected.
		c.writeReply(rep(503, 5, 5, 1, "Nothing may follow STARTTLS in the same packet"))
		return false
	}
	c.writeReply(rep(220, 2, 0, 0, "Ready to start TLS"))
	if c.bw.Flush() != nil {
		return false
	}
	tc := tls.Server(c.nc, c.s.TLSConfig)
	c.setDeadline(true)
	if err := tc.HandshakeContext(c.s.ctx); err != nil {
		c.log.Debug("submission TLS handshake", "err", err)
		return false
	}
	c.nc, c.tls = tc, true
	c.br.Reset(tc)
	c.bw.Reset(tc)
	c.helo, c.user = "", ""
	c.resetTx()
	return true
}

var errAuthz = errors.New("authorization identity differs")

func (c *subConn) cmdAuth(cmd command) {
	switch {
	case c.user != "":
		c.writeReply(rep(503, 5, 5, 1, "Already authenticated"))
		return
	case c.inTx:
		c.writeReply(rep(503, 5, 5, 1, "AUTH not permitted during a mail transaction"))
		return
	case !c.authAllowed():
		c.writeReply(rep(538, 5, 7, 11, "Encryption required for requested authentication mechanism"))
		return
	}
	mech, initial, hasInitial := strings.Cut(cmd.arg, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		c.writeReply(rep(504, 5, 5, 4, "Unrecognized authentication type"))
		return
	}
	resp := initial
	if !hasInitial {
		c.bw.WriteString("334 \r\n")
		if c.bw.Flush() != nil {
			return
		}
		line, err := c.readLine()
		if err != nil {
			c.writeReply(rep(501, 5, 5, 2, "Bad response"))
			return
		}
		resp = line
	}
	if resp == "*" {
		c.writeReply(rep(501, 5, 0, 0, "Authentication cancelled"))
		return
	}
	if resp == "=" {
		resp = ""
	}
	data, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		c.writeReply(rep(501, 5, 5, 2, "Bad base64"))
		return
	}
	var user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errAuthz
		}
		user, pass = username, password
		return nil
	})
	if _, _, err := srv.Next(data); err != nil {
		if errors.Is(err, errAuthz) {
			c.writeReply(rep(535, 5, 7, 8, "Cannot act as another user"))
			return
		}
		c.writeReply(rep(501, 5, 5, 2, "Bad PLAIN response"))
		return
	}
	att, err := c.s.AuthLimiter.Begin(c.s.ctx, "submission", authlimit.AddrOf(c.nc.RemoteAddr()), user)
	if err != nil {
		c.writeReply(rep(454, 4, 7, 0, "Too many failed attempts from your address, try again later"))
		return
	}
	acct, err := c.s.Store.CheckPassword(user, pass)
	if err != nil {
		if errors.Is(err, vmstore.ErrAuth) || errors.Is(err, vmstore.ErrNotFound) || errors.Is(err, vmstore.ErrInvalidName) {
			att.Failed()
			c.log.Info("submission auth failed", "user", user)
			c.writeReply(rep(535, 5, 7, 8, "Authentication credentials invalid"))
			return
		}
		att.Failed()
		c.writeReply(rep(454, 4, 7, 0, "Temporary authentication failure"))
		return
	}
	att.Succeeded()
	c.user = acct.Name
	if err := c.s.Store.RecordSession(c.user, true, "submission", c.nc.RemoteAddr().String(), c.nc.LocalAddr().String()); err != nil {
		c.log.Debug("record login", "err", err)
	}
	c.writeReply(rep(235, 2, 7, 0, "Authentication successful"))
}

func (c *subConn) resetTx() {
	c.inTx, c.from, c.params, c.rcpts = false, "", mailParams{}, nil
	c.chunks, c.failed = false, false
	c.sp.close()
	c.sp = nil
}

func (c *subConn) cmdMail(cmd command) {
	switch {
	case c.helo == "":
		c.writeReply(rep(503, 5, 5, 1, "Say EHLO first"))
		return
	case c.user == "":
		c.writeReply(rep(530, 5, 7, 0, "Authentication required"))
		return
	case c.inTx:
		c.writeReply(rep(503, 5, 5, 1, "Nested MAIL command"))
		return
	}
	addr, params, err := pathArg(cmd.arg, "FROM:")
	if err != nil {
		c.writeReply(rep(501, 5, 5, 4, "Syntax: MAIL FROM:<address> [parameters]"))
		return
	}
	mp, perr := parseMailParams(params, time.Now(), c.s.maxHold())
	if perr != nil {
		c.writeReply(reply{perr.code, perr.enhanced, perr.msg})
		return
	}
	if mp.size > c.s.maxBytes() {
		c.writeReply(rep(552, 5, 3, 4, "Message size exceeds fixed maximum message size"))
		return
	}
	if ok, err := c.s.maySendAs(c.user, addr); err != nil {
		c.writeReply(rep(451, 4, 3, 0, "Temporary failure checking the sender"))
		return
	} else if !ok {
		c.log.Info("submission sender refused", "user", c.user, "from", addr)
		metricSubmissions.WithLabelValues("refused_sender").Inc()
		c.writeReply(rep(553, 5, 7, 1, "Sender address not owned by the authenticated user "+c.user))
		return
	}
	c.inTx, c.from, c.params = true, addr, mp
	c.writeReply(rep(250, 2, 1, 0, "Sender OK"))
}

func (c *subConn) cmdRcpt(cmd command) {
	if !c.inTx {
		c.writeReply(rep(503, 5, 5, 1, "Need MAIL before RCPT"))
		return
	}
	if c.chunks {
		c.writeReply(rep(503, 5, 5, 1, "RCPT after the content started"))
		return
	}
	addr, params, err := pathArg(cmd.arg, "TO:")
	if err != nil || addr == "" {
		c.writeReply(rep(501, 5, 1, 3, "Syntax: RCPT TO:<address>"))
		return
	}
	dsn, perr := parseRcptParams(params)
	if perr != nil {
		c.writeReply(reply{perr.code, perr.enhanced, perr.msg})
		return
	}
	if len(c.rcpts) >= c.s.maxRcpts() {
		c.writeReply(rep(452, 4, 5, 3, "Too many recipients"))
		return
	}
	for _, r := range c.rcpts {
		if strings.EqualFold(r.addr, addr) {
			c.writeReply(rep(250, 2, 1, 5, "Recipient OK (duplicate)"))
			return
		}
	}
	local, dom := splitAddress(addr)
	if c.s.isLocalDomain(dom) {
		name := vmstore.FoldUserName(local)
		acct, err := c.s.Store.GetAccount(name)
		if err != nil {
			if errors.Is(err, vmstore.ErrNotFound) || errors.Is(err, vmstore.ErrInvalidName) || errors.Is(err, vmstore.ErrBadName) {
				c.writeReply(rep(550, 5, 1, 1, "No such user here"))
				return
			}
			c.writeReply(rep(451, 4, 3, 0, "Temporary failure looking up the recipient"))
			return
		}
		for _, r := range c.rcpts {
			if r.user == acct.Name {
				c.writeReply(rep(250, 2, 1, 5, "Recipient OK (same mailbox as an earlier one)"))
				return
			}
		}
		c.rcpts = append(c.rcpts, rcpt{addr: addr, user: acct.Name})
		c.params.dsn.keep(addr, dsn)
		c.writeReply(rep(250, 2, 1, 5, "Recipient OK"))
		return
	}
	if c.s.Relay == nil {
		c.writeReply(rep(550, 5, 7, 1, "No smarthost is configured: this server delivers to local recipients only"))
		return
	}
	c.rcpts = append(c.rcpts, rcpt{addr: addr})
	c.params.dsn.keep(addr, dsn)
	c.writeReply(rep(250, 2, 1, 5, "Recipient OK (relayed)"))
}

// startContent opens the spool (with the Received: line) for the first
// chunk or the DATA content.
func (c *subConn) startContent() error {
	if c.sp != nil {
		return nil
	}
	sp, err := c.s.newSpool()
	if err != nil {
		return err
	}
	c.sp = sp
	with := "ESMTPA"
	if c.tls {
		with = "ESMTPSA"
	}
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	// "for" only with one recipient: others must not learn of Bcc ones.
	forClause := ""
	if len(c.rcpts) == 1 {
		forClause = "\r\n\tfor <" + sanitizeHeader(c.rcpts[0].addr) + ">"
	}
	fmt.Fprintf(sp, "Received: from %s ([%s])\r\n\tby %s (Lemonvox) with %s id %s%s;\r\n\t%s\r\n",
		sanitizeHeader(c.helo), host, c.s.Hostname, with, newID()[:16], forClause, time.Now().Format(time.RFC1123Z))
	return nil
}

func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *subConn) cmdData(cmd command) bool {
	switch {
	case !c.inTx:
		c.writeReply(rep(503, 5, 5, 1, "Need MAIL before DATA"))
		return true
	case len(c.rcpts) == 0:
		c.writeReply(rep(503, 5, 5, 1, "No valid recipients"))
		return true
	case c.chunks:
		c.writeReply(rep(503, 5, 5, 1, "DATA after BDAT or BURL"))
		return true
	case c.params.body == "BINARYMIME":
		c.writeReply(rep(503, 5, 5, 1, "BODY=BINARYMIME needs BDAT"))
		return true
	case cmd.arg != "":
		c.writeReply(rep(501, 5, 5, 4, "DATA takes no argument"))
		return true
	}
	if err := c.startContent(); err != nil {
		c.writeReply(rep(451, 4, 3, 0, "Cannot spool the message"))
		return true
	}
	c.writeReply(reply{code: 354, msg: "Start mail input; end with <CRLF>.<CRLF>"})
	if c.bw.Flush() != nil {
		return false
	}
	if err := c.readDotData(c.sp); err != nil {
		c.log.Debug("submission DATA", "err", err)
		return false
	}
	c.finish()
	return true
}

// readDotData copies dot-stuffed DATA content to w up to the terminating
// line, removing the stuffing and keeping every other byte as sent.
func (c *subConn) readDotData(w io.Writer) error {
	atStart := true
	for {
		c.setDeadline(false)
		b, err := c.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		full := err == nil
		if atStart && full && (bytes.Equal(b, []byte(".\r\n")) || bytes.Equal(b, []byte(".\n"))) {
			return nil
		}
		if atStart && len(b) > 0 && b[0] == '.' {
			b = b[1:]
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		atStart = full
	}
}

func (c *subConn) cmdBdat(cmd command) bool {
	size, last, err := bdatArg(cmd.arg)
	if err != nil {
		// The size is unknown: the chunk cannot be skipped.
		c.writeReply(rep(501, 5, 5, 4, "Syntax: BDAT <size> [LAST]; closing"))
		return false
	}
	var rej *reply
	switch {
	case !c.inTx:
		rej = &reply{503, [3]int{5, 5, 1}, "Need MAIL before BDAT"}
	case len(c.rcpts) == 0:
		rej = &reply{503, [3]int{5, 5, 1}, "No valid recipients"}
	case c.failed:
		rej = &reply{503, [3]int{5, 5, 1}, "An earlier chunk failed; RSET and start again"}
	}
	if rej == nil {
		if err := c.startContent(); err != nil {
			r := rep(451, 4, 3, 0, "Cannot spool the message")
			rej = &r
		}
	}
	var dst io.Writer = io.Discard
	if rej == nil {
		dst = c.sp
	}
	c.setDeadline(false)
	if _, err := io.CopyN(dst, &deadlineReader{c}, size); err != nil {
		return false
	}
	if rej != nil {
		c.writeReply(*rej)
		return true
	}
	c.chunks = true
	if c.sp.over {
		c.resetTx()
		c.writeReply(rep(552, 5, 3, 4, "Message too big for system"))
		return true
	}
	if !last {
		c.writeReply(rep(250, 2, 0, 0, fmt.Sprintf("%d octets received", size)))
		return true
	}
	c.finish()
	return true
}

// deadlineReader renews the read deadline as chunk bytes arrive.
type deadlineReader struct{ c *subConn }

func (d *deadlineReader) Read(b []byte) (int, error) {
	d.c.setDeadline(false)
	return d.c.br.Read(b)
}

func (c *subConn) cmdBurl(cmd command) {
	if c.s.Fetcher == nil {
		c.writeReply(rep(502, 5, 5, 1, "BURL not offered"))
		return
	}
	url, last, err := burlArg(cmd.arg)
	switch {
	case err != nil:
		c.writeReply(rep(501, 5, 5, 4, "Syntax: BURL <url> [LAST]"))
		return
	case c.user == "":
		c.writeReply(rep(530, 5, 7, 0, "Authentication required"))
		return
	case !c.inTx || len(c.rcpts) == 0:
		c.writeReply(rep(503, 5, 5, 0, "Valid RCPT TO required before BURL"))
		return
	case c.failed:
		c.writeReply(rep(503, 5, 5, 1, "An earlier chunk failed; RSET and start again"))
		return
	}
	if err := c.startContent(); err != nil {
		c.writeReply(rep(451, 4, 3, 0, "Cannot spool the message"))
		return
	}
	c.chunks = true
	ctx, cancel := context.WithTimeout(c.s.ctx, orDur(c.s.CommandTimeout, 5*time.Minute))
	defer cancel()
	if r := c.s.fetchInto(ctx, c.sp, url, c.user, c.params.body, authlimit.AddrOf(c.nc.RemoteAddr()), c.log); r != nil {
		// A failed BURL fails the whole transaction (RFC 4468 s3.3,
		// as a failed BDAT does, RFC 3030 s3).
		c.resetTx()
		c.writeReply(*r)
		return
	}
	if c.sp.over {
		c.resetTx()
		c.writeReply(rep(554, 5, 3, 4, "Message too big for system"))
		return
	}
	if !last {
		c.writeReply(rep(250, 2, 5, 0, "Waiting for additional BURL or BDAT commands"))
		return
	}
	c.finish()
}

// finish delivers or holds the received message and ends the transaction.
func (c *subConn) finish() {
	defer c.resetTx()
	if c.sp.over {
		metricSubmissions.WithLabelValues("refused").Inc()
		c.writeReply(rep(552, 5, 3, 4, "Message too big for system"))
		return
	}
	env := envelope{user: c.user, from: c.from, rcpts: c.rcpts, body: c.params.body}
	if !c.params.dsn.empty() {
		d := c.params.dsn
		env.dsn = &d
	}
	if c.params.hold {
		env.release = c.params.releaseTime(time.Now())
	}
	// Replies already gathered go out first: delivery can take a while.
	c.bw.Flush()
	c.writeReply(c.s.submit(env, c.sp))
}
