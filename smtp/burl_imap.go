package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

// IMAPFetcher fetches other servers' URLs with URLFETCH (RFC 4467) over
// an IMAP connection of its own, logged in as this submission server's
// identity on that server (one registered there for the submit role). It
// checks first that the URL is authorized for submit+<the SMTP client>
// (RFC 4468 s3.4): the remote server cannot know who the client is.
type IMAPFetcher struct {
	// Username and Password log in to the remote IMAP server.
	Username, Password string
	// TLSConfig verifies the server (nil: system roots, the URL's host).
	// Port 993 is implicit TLS; other ports use STARTTLS.
	TLSConfig *tls.Config
	// AllowPlaintext permits LOGIN without TLS (loopback tests only).
	AllowPlaintext bool
	// Timeout bounds the connection and each response (0: 1 minute).
	Timeout time.Duration
	// MaxBytes bounds the fetched content (0: 64 MiB).
	MaxBytes int64
}

// errRemoteNIL: the other server answered the URL NIL, for a reason it
// does not tell (a wrong token among them).
var errRemoteNIL = fmt.Errorf("%w: the IMAP server answered NIL", ErrURLRefused)

// FetchURL implements URLFetcher. The returned reader streams the
// URLFETCH literal; Close ends the session.
func (f *IMAPFetcher) FetchURL(ctx context.Context, u *channel.URL, user string) (io.ReadCloser, error) {
	if u.Access.Kind != channel.AccessSubmit || u.Access.User != user {
		if u.Access.Kind != channel.AccessAnonymous {
			return nil, fmt.Errorf("%w: not authorized for submit+%s", ErrURLRefused, user)
		}
	}
	timeout := orDur(f.Timeout, time.Minute)
	port := u.Port
	if port == 0 {
		port = channel.DefaultPort
	}
	addr := net.JoinHostPort(u.Host, strconv.Itoa(port))
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrURLUnavailable, err)
	}
	cfg := f.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{ServerName: u.Host, MinVersion: tls.VersionTLS12}
	}
	ic := &imapConn{nc: nc, timeout: timeout}
	if port == 993 {
		tc := tls.Client(nc, cfg)
		nc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%w: %w", ErrURLUnavailable, err)
		}
		ic.nc, ic.tls = tc, true
	}
	ic.br = bufio.NewReaderSize(ic.nc, 16<<10)
	rc, err := f.session(ctx, ic, cfg, u)
	if err != nil {
		ic.nc.Close()
		return nil, err
	}
	return rc, nil
}

type imapConn struct {
	nc      net.Conn
	br      *bufio.Reader
	tls     bool
	timeout time.Duration
	tag     int
}

func (c *imapConn) line() (string, error) {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	var b []byte
	for {
		part, err := c.br.ReadSlice('\n')
		b = append(b, part...)
		if len(b) > 64<<10 {
			return "", errors.New("imap: response line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// cmd sends a command and reads to its tagged response; untagged lines
// go to each (which may take the connection over to read a literal:
// then cmd returns with stop).
func (c *imapConn) cmd(text string, each func(line string) (stop bool, err error)) (string, error) {
	c.tag++
	tag := "s" + strconv.Itoa(c.tag)
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.nc, tag+" "+text+"\r\n"); err != nil {
		return "", err
	}
	for {
		l, err := c.line()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return l[len(tag)+1:], nil
		}
		if each != nil && strings.HasPrefix(l, "* ") {
			stop, err := each(l)
			if err != nil || stop {
				return "", err
			}
		}
	}
}

func quoteIMAP(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", errors.New("imap: CR, LF or NUL in a string")
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

func (f *IMAPFetcher) session(ctx context.Context, c *imapConn, cfg *tls.Config, u *channel.URL) (io.ReadCloser, error) {
	unavailable := func(err error) error { return fmt.Errorf("%w: %w", ErrURLUnavailable, err) }
	greet, err := c.line()
	if err != nil {
		return nil, unavailable(err)
	}
	if !strings.HasPrefix(greet, "* OK") {
		return nil, unavailable(fmt.Errorf("imap greeting %q", greet))
	}
	if !c.tls {
		r, err := c.cmd("STARTTLS", nil)
		switch {
		case err != nil:
			return nil, unavailable(err)
		case strings.HasPrefix(r, "OK"):
			tc := tls.Client(c.nc, cfg)
			c.nc.SetDeadline(time.Now().Add(c.timeout))
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, unavailable(err)
			}
			c.nc, c.tls = tc, true
			c.br = bufio.NewReaderSize(tc, 16<<10)
		case !f.AllowPlaintext:
			return nil, unavailable(fmt.Errorf("imap server refuses STARTTLS: %s", r))
		}
	}
	qu, err := quoteIMAP(f.Username)
	if err != nil {
		return nil, unavailable(err)
	}
	qp, err := quoteIMAP(f.Password)
	if err != nil {
		return nil, unavailable(err)
	}
	r, err := c.cmd("LOGIN "+qu+" "+qp, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	if !strings.HasPrefix(r, "OK") {
		return nil, unavailable(fmt.Errorf("imap LOGIN: %s", r))
	}
	qurl, err := quoteIMAP(u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrURLRefused, err)
	}
	var body io.ReadCloser
	var nilAnswer bool
	r, err = c.cmd("URLFETCH "+qurl, func(l string) (bool, error) {
		if !strings.HasPrefix(strings.ToUpper(l), "* URLFETCH ") {
			return false, nil
		}
		switch {
		case strings.HasSuffix(strings.ToUpper(l), " NIL"):
			nilAnswer = true
			return false, nil
		case strings.HasSuffix(l, "}"):
			i := strings.LastIndexByte(l, '{')
			n, err := strconv.ParseInt(strings.TrimSuffix(l[i+1:len(l)-1], "+"), 10, 64)
			if i < 0 || err != nil || n < 0 {
				return false, fmt.Errorf("imap: bad literal in %q", l)
			}
			if n > orInt64(f.MaxBytes, 64<<20) {
				return false, fmt.Errorf("%w: %d octets", ErrURLRefused, n)
			}
			body = &literalReader{c: c, r: io.LimitReader(&deadlined{c}, n)}
			return true, nil
		}
		return false, fmt.Errorf("imap: URLFETCH answer %q", l)
	})
	switch {
	case err != nil:
		if errors.Is(err, ErrURLRefused) {
			return nil, err
		}
		return nil, unavailable(err)
	case body != nil:
		return body, nil
	case nilAnswer || strings.HasPrefix(r, "OK"):
		c.cmd("LOGOUT", nil)
		c.nc.Close()
		return nil, errRemoteNIL
	}
	c.cmd("LOGOUT", nil)
	c.nc.Close()
	return nil, fmt.Errorf("%w: URLFETCH: %s", ErrURLRefused, r)
}

func orInt64(a, b int64) int64 {
	if a > 0 {
		return a
	}
	return b
}

type deadlined struct{ c *imapConn }

func (d *deadlined) Read(b []byte) (int, error) {
	d.c.nc.SetDeadline(time.Now().Add(d.c.timeout))
	return d.c.br.Read(b)
}

// literalReader streams a URLFETCH literal; a short literal is an error.
type literalReader struct {
	c *imapConn
	r io.Reader
}

func (l *literalReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	if err == io.EOF {
		if lr, ok := l.r.(*io.LimitedReader); ok && lr.N > 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	return n, err
}

func (l *literalReader) Close() error {
	// The rest of the response, then LOGOUT; errors do not matter now.
	l.c.nc.SetDeadline(time.Now().Add(l.c.timeout))
	io.WriteString(l.c.nc, "z LOGOUT\r\n")
	return l.c.nc.Close()
}
