package smtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
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
// BINARYMIME is refused when the smarthost does not announce BINARYMIME
// (go-smtp's client has no BDAT; the content is never altered).
// It returns the recipients the smarthost refused (each with its reply)
// and an error for the whole message; with a whole-message error nothing
// was delivered.
func (r *Relay) Send(hello, from string, rcpts []string, body string, msg io.Reader, size int64) (refused []*RelayError, err error) {
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
	if body == "BINARYMIME" {
		if ok, _ := c.Extension("BINARYMIME"); !ok {
			return nil, &RelayError{Code: 554, Enhanced: [3]int{5, 6, 3}, Message: "Conversion required but not supported (the smarthost does not take BINARYMIME)"}
		}
		// go-smtp's client sends DATA only; binary content cannot go
		// through DATA unaltered.
		return nil, &RelayError{Code: 554, Enhanced: [3]int{5, 6, 3}, Message: "Conversion required but not supported (binary content to the smarthost)"}
	}
	if err := c.Mail(from, opts); err != nil {
		return nil, relayErr(err, "")
	}
	ok := 0
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
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
