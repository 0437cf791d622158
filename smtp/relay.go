package smtp

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Relay is the smarthost non-local recipients are handed to.
type Relay struct {
	// Addr is host:port.
	Addr string
	// StartTLS: STARTTLS before AUTH and MAIL (required when set);
	// TLSConfig verifies the smarthost (nil: system roots, ServerName
	// from Addr).
	StartTLS  bool
	TLSConfig *tls.Config
	// Username and Password: AUTH PLAIN when Username is set.
	Username, Password string
	// HelloName is the EHLO name (the submission Hostname by default).
	HelloName string
	// Timeout bounds the connection and each command (0: 2 minutes).
	Timeout time.Duration
}

// RelayError is the smarthost's refusal (or a connection failure, then
// Temporary with code 451).
type RelayError struct {
	Code      int
	Enhanced  [3]int
	Message   string
	Temporary bool
	// Rcpt is the refused recipient ("" for the whole message).
	Rcpt string
}

func (e *RelayError) Error() string {
	return fmt.Sprintf("smarthost: %d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

func relayErr(err error, rcpt string) *RelayError {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		re := &RelayError{Code: se.Code, Message: se.Message, Temporary: se.Temporary(), Rcpt: rcpt}
		re.Enhanced = [3]int(se.EnhancedCode)
		if re.Enhanced[0] == 0 || re.Enhanced[0] == -1 {
			re.Enhanced = [3]int{se.Code / 100, 0, 0}
		}
		return re
	}
	return &RelayError{Code: 451, Enhanced: [3]int{4, 4, 1}, Message: "smarthost unavailable: " + err.Error(), Temporary: true, Rcpt: rcpt}
}

// Send hands the message to the smarthost for rcpts. A message with body
// BINARYMIME goes with BDAT, and is refused (554 5.6.3) when the
// smarthost does not announce CHUNKING and BINARYMIME: the content is
// never altered.
// It returns the recipients the smarthost refused (each with its reply)
// and an error for the whole message; with a whole-message error nothing
// was delivered.
func (r *Relay) Send(hello, from string, rcpts []string, body string, msg io.Reader, size int64) (refused []*RelayError, err error) {
	return r.SendDSN(hello, from, rcpts, body, msg, size, nil)
}

// SendDSN is Send with the transaction's RFC 3461 parameters, which go to
// the smarthost when it announces DSN (and are dropped otherwise: RFC
// 3461 s4 leaves the reporting to this server then).
func (r *Relay) SendDSN(hello, from string, rcpts []string, body string, msg io.Reader, size int64, dsn *dsnParams) (refused []*RelayError, err error) {
	if body == "BINARYMIME" {
		// go-smtp's client has DATA only, which cannot carry binary
		// content unaltered.
		return r.sendBinary(hello, from, rcpts, msg, size, dsn)
	}
	timeout := orDur(r.Timeout, 2*time.Minute)
	conn, err := net.DialTimeout("tcp", r.Addr, timeout)
	if err != nil {
		return nil, relayErr(err, "")
	}
	conn.SetDeadline(time.Now().Add(timeout + time.Duration(size/(16<<10))*time.Second))
	var c *gosmtp.Client
	if r.StartTLS {
		cfg := r.TLSConfig
		if cfg == nil {
			host, _, _ := net.SplitHostPort(r.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if c, err = gosmtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return nil, relayErr(err, "")
		}
	} else {
		c = gosmtp.NewClient(conn)
		if err := c.Hello(orStr(r.HelloName, hello)); err != nil {
			c.Close()
			return nil, relayErr(err, "")
		}
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if r.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return nil, relayErr(err, "")
		}
	}
	opts := &gosmtp.MailOptions{Size: size}
	dsn.mailOptions(opts)
	if err := c.Mail(from, opts); err != nil {
		return nil, relayErr(err, "")
	}
	ok := 0
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, dsn.rcptOptions(rc)); err != nil {
			refused = append(refused, relayErr(err, rc))
			continue
		}
		ok++
	}
	if ok == 0 {
		c.Reset()
		return refused, nil
	}
	w, err := c.Data()
	if err != nil {
		return refused, relayErr(err, "")
	}
	if _, err := io.Copy(w, msg); err != nil {
		return refused, relayErr(err, "")
	}
	if err := w.Close(); err != nil {
		return refused, relayErr(err, "")
	}
	c.Quit()
	return refused, nil
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sendBinary relays a BINARYMIME message with BDAT (RFC 3030) over a
// connection of its own: the smarthost must announce CHUNKING and
// BINARYMIME, else the message is refused (554 5.6.3) rather than altered.
func (r *Relay) sendBinary(hello, from string, rcpts []string, msg io.Reader, size int64, dsn *dsnParams) (refused []*RelayError, err error) {
	timeout := orDur(r.Timeout, 2*time.Minute)
	nc, err := net.DialTimeout("tcp", r.Addr, timeout)
	if err != nil {
		return nil, relayErr(err, "")
	}
	defer func() { nc.Close() }()
	rc := &rawSMTP{nc: nc, timeout: timeout}
	rc.br = bufio.NewReader(nc)
	if code, text, err := rc.read(); err != nil || code != 220 {
		return nil, rc.fail(code, text, err, "")
	}
	ext, err := rc.ehlo(orStr(r.HelloName, hello))
	if err != nil {
		return nil, err
	}
	if r.StartTLS {
		if _, ok := ext["STARTTLS"]; !ok {
			return nil, &RelayError{Code: 451, Enhanced: [3]int{4, 7, 0}, Message: "smarthost does not offer STARTTLS", Temporary: true}
		}
		if code, text, err := rc.cmd("STARTTLS"); err != nil || code != 220 {
			return nil, rc.fail(code, text, err, "")
		}
		cfg := r.TLSConfig
		if cfg == nil {
			host, _, _ := net.SplitHostPort(r.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(nc, cfg)
		nc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			return nil, relayErr(err, "")
		}
		nc = tc
		rc.nc, rc.br = tc, bufio.NewReader(tc)
		if ext, err = rc.ehlo(orStr(r.HelloName, hello)); err != nil {
			return nil, err
		}
	}
	_, chunking := ext["CHUNKING"]
	_, binary := ext["BINARYMIME"]
	if !chunking || !binary {
		return nil, &RelayError{Code: 554, Enhanced: [3]int{5, 6, 3}, Message: "Conversion required but not supported (the smarthost takes no BINARYMIME)"}
	}
	if r.Username != "" {
		resp := base64.StdEncoding.EncodeToString([]byte("\x00" + r.Username + "\x00" + r.Password))
		if code, text, err := rc.cmd("AUTH PLAIN " + resp); err != nil || code != 235 {
			return nil, rc.fail(code, text, err, "")
		}
	}
	_, hasDSN := ext["DSN"]
	if !hasDSN {
		dsn = nil
	}
	if code, text, err := rc.cmd(fmt.Sprintf("MAIL FROM:<%s> BODY=BINARYMIME SIZE=%d%s", from, size, dsn.mailSuffix())); err != nil || code != 250 {
		return nil, rc.fail(code, text, err, "")
	}
	ok := 0
	for _, a := range rcpts {
		code, text, err := rc.cmd("RCPT TO:<" + a + ">" + dsn.rcptSuffix(a))
		if err != nil {
			return nil, relayErr(err, "")
		}
		if code/100 != 2 {
			refused = append(refused, rc.fail(code, text, nil, a))
			continue
		}
		ok++
	}
	if ok == 0 {
		rc.cmd("QUIT")
		return refused, nil
	}
	nc.SetDeadline(time.Now().Add(timeout + time.Duration(size/(16<<10))*time.Second))
	if _, err := fmt.Fprintf(nc, "BDAT %d LAST\r\n", size); err != nil {
		return refused, relayErr(err, "")
	}
	if _, err := io.CopyN(nc, msg, size); err != nil {
		return refused, relayErr(err, "")
	}
	if code, text, err := rc.read(); err != nil || code != 250 {
		return refused, rc.fail(code, text, err, "")
	}
	rc.cmd("QUIT")
	return refused, nil
}

// rawSMTP is the little SMTP client sendBinary needs.
type rawSMTP struct {
	nc      net.Conn
	br      *bufio.Reader
	timeout time.Duration
}

// read reads one (possibly multi-line) reply; text keeps every line.
func (c *rawSMTP) read() (int, []string, error) {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return 0, lines, err
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 3 || len(lines) > 1000 {
			return 0, lines, fmt.Errorf("smarthost: bad reply %q", l)
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return 0, lines, fmt.Errorf("smarthost: bad reply %q", l)
		}
		lines = append(lines, strings.TrimSpace(l[min(4, len(l)):]))
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
	}
}

func (c *rawSMTP) cmd(line string) (int, []string, error) {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		return 0, nil, err
	}
	return c.read()
}

func (c *rawSMTP) ehlo(name string) (map[string]string, error) {
	code, lines, err := c.cmd("EHLO " + name)
	if err != nil || code != 250 {
		return nil, c.fail(code, lines, err, "")
	}
	ext := map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, nil
}

// fail turns a reply (or an error) into a RelayError.
func (c *rawSMTP) fail(code int, lines []string, err error, rcpt string) *RelayError {
	if err != nil || code == 0 {
		if err == nil {
			err = errors.New("no reply")
		}
		return relayErr(err, rcpt)
	}
	text := strings.Join(lines, " ")
	re := &RelayError{Code: code, Message: text, Temporary: code/100 == 4, Rcpt: rcpt}
	re.Enhanced = [3]int{code / 100, 0, 0}
	var a, b, d int
	if n, _ := fmt.Sscanf(text, "%d.%d.%d", &a, &b, &d); n == 3 {
		re.Enhanced = [3]int{a, b, d}
		if _, rest, ok := strings.Cut(text, " "); ok {
			re.Message = rest
		}
	}
	return re
}
