package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap/wire"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// RFC 4469 CATENATE: an APPEND message built on the server from TEXT
// literals and URL parts (the octets BODY.PEEK[section] of a stored
// message would return), so that a handset forwards a voice message
// without downloading and uploading its audio.
//
//	append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"
//	cat-part    = "TEXT" SP literal / "URL" SP astring
//	            / "UTF8" SP "(" literal8 ")"          ; RFC 6855 s4
//
// TEXT also takes a literal8 (BINARY is announced, RFC 5550 asks Lemonade
// servers to accept binary APPENDs).
//
// Each part is checked and copied into the command's spool (spool.go) as
// soon as it is parsed, before the client is asked for the next literal:
//   - a URL that does not resolve ends the command with NO [BADURL url]
//     naming it (the first failing URL, in command order, across the
//     messages of a MULTIAPPEND), instead of the next continuation;
//   - the assembled message past APPENDLIMIT is NO [TOOBIG], the account
//     past its quota NO [OVERQUOTA]: URL part sizes are known once
//     resolved, literal sizes from their markers, so a part that does not
//     fit is refused before its continuation;
//   - the source octets are read while the URL is resolved: a source that
//     disappears meanwhile (expunged, its blob collected) is a BADURL too,
//     never a half-written message, and the deposit that follows reads
//     only the spool. The messages are stored as APPEND stores them, in
//     one deposit: one new message per CATENATE, all of a MULTIAPPEND, or
//     nothing.
//
// URLs: an absolute-path reference ("/INBOX;UIDVALIDITY=7/;UID=20/;
// SECTION=2") names a mailbox of the session user (the base is
// imap://<user>@<server>/, RFC 4469 s3 with RFC 5092 s7.1), resolved with
// the user's own rights; a relative-path reference is refused (RFC 5092
// s7.2). Absolute URLs, URLAUTH-authorized (possibly another user's
// message) or naming this server and the session user, resolve as
// URLFETCH would resolve them for this session. The server's URLOpener
// (ChannelURLs of the daemon's channel.Resolver) does both; without one,
// absolute-path references are resolved here and absolute URLs are BADURL.
// ;PARTIAL= selects a range of the octets; a range past the end selects
// nothing, as FETCH BODY[]<partial> does. Reading a source never sets
// \Seen.

func init() {
	registerCap("CATENATE", always) // RFC 4469
}

// URLOpener opens the IMAP URL of a CATENATE part for the session user:
// an absolute-path reference in the user's own mailboxes (against
// imap://<user>@<url_host>/), an absolute URL of this server naming them,
// or a URLAUTH-authorized URL (RFC 4467), validated as URLFETCH validates
// it for the user's session. It returns the octets BODY.PEEK[section]
// returns, ;PARTIAL= applied, and their number. Errors of channel's URL
// sentinels (ErrBadURL, ErrNotPart, ErrNotOurs, ErrBadToken, ErrExpired,
// ErrNotPermitted, ErrGone, ErrMechanism) make the URL a BADURL; others are
// store failures. ChannelURLs adapts a channel.Resolver.
type URLOpener interface {
	OpenURL(ctx context.Context, ref string, user string) (io.ReadCloser, int64, error)
}

// ChannelURLs is the URLOpener of a channel.Resolver: relative references
// resolve against r.BaseURL(user), and the requester is the session's
// (r.Requester, with Own set for URLs without URLAUTH).
func ChannelURLs(r *channel.Resolver) URLOpener { return channelURLs{r} }

type channelURLs struct{ r *channel.Resolver }

func (c channelURLs) OpenURL(ctx context.Context, ref, user string) (io.ReadCloser, int64, error) {
	u, err := channel.ParseRef(c.r.BaseURL(user), ref)
	if err != nil {
		return nil, 0, err
	}
	if u.Access.Kind == channel.AccessNone {
		u.Mailbox = inboxCase(u.Mailbox)
	}
	req := c.r.Requester(user)
	req.Own = true
	res, err := c.r.Resolve(ctx, u, req)
	if err != nil {
		return nil, 0, err
	}
	rd, n, err := res.Content(res.Part)
	if err != nil {
		res.Close()
		return nil, 0, &sourceError{err}
	}
	return readCloser{rd, res.Close}, n, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// urlFault reports whether err says the URL cannot be used (BADURL),
// rather than that the store failed.
func urlFault(err error) bool {
	var be *badURLError
	var se *sourceError
	if errors.As(err, &be) || errors.As(err, &se) {
		return true
	}
	for _, e := range []error{channel.ErrBadURL, channel.ErrNotPart, channel.ErrNotOurs, channel.ErrBadToken,
		channel.ErrExpired, channel.ErrNotPermitted, channel.ErrGone, channel.ErrMechanism} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// maxCatParts bounds the parts of one CATENATE.
const maxCatParts = 1000

var (
	metricCatParts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_imap_catenate_parts_total",
		Help: "CATENATE parts by kind (text, url) and result (ok, badurl, refused).",
	}, []string{"kind", "result"})
	metricCatURLBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_imap_catenate_url_octets_total",
		Help: "Octets CATENATE copied from stored messages (octets the client did not send).",
	})
)

// catHandler receives the parts of a CATENATE list in command order.
// text is called at a TEXT literal marker, before any continuation: it
// reads the literal (or refuses it). url gets the URL as the client sent
// it.
type catHandler interface {
	text(p *parser, l wire.Literal)
	url(p *parser, raw string)
}

// xparseCatenate parses a CATENATE list, the parser standing at its "(".
// utf8 allows the RFC 6855 UTF8 part (ENABLE UTF8=ACCEPT).
func xparseCatenate(p *parser, utf8 bool, h catHandler) {
	p.xexpect('(')
	for n := 1; ; n++ {
		if n > maxCatParts {
			xsyntaxf("more than %d CATENATE parts", maxCatParts)
		}
		switch {
		case p.ConsumeFold("TEXT "):
			l, ok := p.PeekLiteral()
			if !ok {
				xsyntaxf("TEXT needs a literal")
			}
			h.text(p, l)
		case p.ConsumeFold("URL "):
			raw := p.xastring()
			if raw == "" {
				xsyntaxf("empty URL")
			}
			if len(raw) > channel.MaxURLLen {
				xsyntaxf("URL longer than %d octets", channel.MaxURLLen)
			}
			h.url(p, raw)
		case p.ConsumeFold("UTF8 ("):
			if !utf8 {
				xsyntaxf("UTF8 CATENATE part needs ENABLE UTF8=ACCEPT")
			}
			if l, ok := p.PeekLiteral(); !ok || !l.Binary {
				xsyntaxf("UTF8 needs a literal8")
			} else {
				h.text(p, l)
			}
			p.xexpect(')')
		default:
			xsyntaxf("expected TEXT or URL in the CATENATE list")
		}
		if p.Consume(')') {
			return
		}
		p.xsp()
	}
}

// catMessage assembles one CATENATE message in the command's spool.
type catMessage struct {
	c     *conn
	room  appendRoom
	sp    *spool
	size  int64
	parts []io.Reader
}

// xcatenate reads a CATENATE list (after "CATENATE ") and returns the
// assembled message, spooled.
func (c *conn) xcatenate(p *parser, room appendRoom, sp *spool) io.Reader {
	m := &catMessage{c: c, room: room, sp: sp}
	xparseCatenate(p, c.enabled["UTF8=ACCEPT"], m)
	if m.size == 0 {
		xusererrorf("CANNOT", "empty message")
	}
	sp.n++
	return io.MultiReader(m.parts...)
}

// maxCatenated is the size a CATENATE message may not reach whatever
// APPENDLIMIT says: RFC 4469 s5 answers TOOBIG past 4 GiB.
const maxCatenated = 1 << 32

// roomExceeded is conn.roomExceeded with the RFC 4469 bound.
func (m *catMessage) roomExceeded(add int64) (code, msg string) {
	if m.size+add >= maxCatenated {
		return "TOOBIG", "the message would reach 4 GiB"
	}
	return m.c.roomExceeded(m.size, add, m.room, m.sp)
}

func (m *catMessage) text(p *parser, l wire.Literal) {
	if code, msg := m.roomExceeded(l.Size); code != "" {
		metricCatParts.WithLabelValues("text", "refused").Inc()
		xrefuseLiteral(l, true, code, msg)
	}
	p.MaxLiteral = m.c.srv.appendLimit() - m.size
	r, lit, err := p.OpenLiteral(true)
	p.MaxLiteral = maxStringLiteral
	p.xcheck(err)
	body, err := m.sp.addPart(r, lit.Size)
	if err != nil {
		if ioErr := p.CloseLiteral(); ioErr != nil {
			panic(ioError{ioErr})
		}
		xcheckf(err, "spooling CATENATE text")
	}
	p.xcheck(p.CloseLiteral())
	metricCatParts.WithLabelValues("text", "ok").Inc()
	m.add(body, lit.Size)
}

func (m *catMessage) url(p *parser, raw string) {
	c := m.c
	src, err := c.openCatURL(raw)
	if err != nil {
		c.xcatURLFailed(p, raw, err)
	}
	defer src.Close()
	if code, msg := m.roomExceeded(src.size); code != "" {
		metricCatParts.WithLabelValues("url", "refused").Inc()
		xrefusePending(p, code, msg)
	}
	body, err := m.sp.addPart(&sourceReader{r: src.r, left: src.size}, src.size)
	if err != nil {
		c.xcatURLFailed(p, raw, err)
	}
	metricCatParts.WithLabelValues("url", "ok").Inc()
	metricCatURLBytes.Add(float64(src.size))
	m.add(body, src.size)
}

func (m *catMessage) add(r io.Reader, size int64) {
	if size > 0 {
		m.parts = append(m.parts, r)
		m.size += size
	}
}

// xrefusePending ends the command with NO [code] midway, minding the
// literal the current line ends with (xrefuseLiteral).
func xrefusePending(p *parser, code, msg string) {
	l, ok := p.PendingLiteral()
	xrefuseLiteral(l, ok, code, msg)
}

// badURLError says why a URL cannot be used; it becomes NO [BADURL].
type badURLError struct{ reason string }

func (e *badURLError) Error() string { return e.reason }

func badURL(format string, args ...any) error {
	return &badURLError{fmt.Sprintf(format, args...)}
}

// sourceError is a failure reading a URL's octets: the source changed
// under the command (expunged, collected); the URL is a BADURL.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the URL's source: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader reads a URL's octets, marking its failures (and an early
// end) as sourceError so that they are told apart from the spool's.
type sourceReader struct {
	r    io.Reader
	left int64
}

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.left -= int64(n)
	switch {
	case err == io.EOF && s.left > 0:
		err = &sourceError{io.ErrUnexpectedEOF}
	case err != nil && err != io.EOF:
		err = &sourceError{err}
	}
	return n, err
}

// xcatURLFailed ends the command for a URL that cannot be used: NO
// [BADURL url] when the URL is at fault (or its source vanished), else NO
// [UNAVAILABLE] (the store failed; logged). The URL is not logged: an
// URLAUTH URL is a bearer credential.
func (c *conn) xcatURLFailed(p *parser, raw string, err error) {
	if urlFault(err) {
		metricCatParts.WithLabelValues("url", "badurl").Inc()
		c.log.Debug("catenate url refused", "err", err)
		xrefusePending(p, "BADURL "+badURLText(raw), "CATENATE: "+err.Error())
	}
	metricCatParts.WithLabelValues("url", "refused").Inc()
	c.log.Error("catenate url", "err", err)
	xrefusePending(p, "UNAVAILABLE", "CATENATE: the message store failed, try again")
}

// badURLText is the URL as the client sent it, for the BADURL response
// code (RFC 4469 s5 url-resp-text: TEXT-CHAR but "]"): controls, spaces,
// "]" and non-ASCII octets are percent-encoded.
func badURLText(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		if ch <= ' ' || ch == ']' || ch >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", ch)
		} else {
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// catSource is the content of one URL part.
type catSource struct {
	r     io.Reader
	size  int64
	close func()
}

func (s *catSource) Close() {
	if s.close != nil {
		s.close()
	}
}

// catURLs is the URLOpener of the session's CATENATE parts, nil when the
// server has none.
func (c *conn) catURLs() URLOpener {
	if c.srv.CatenateURLs != nil {
		return c.srv.CatenateURLs
	}
	if c.srv.URLResolver != nil {
		return ChannelURLs(c.srv.URLResolver)
	}
	return nil
}

// openCatURL resolves one URL of a CATENATE for this session. Without a
// URLOpener, absolute-path references resolve in the session user's
// mailboxes and absolute URLs are BADURL.
func (c *conn) openCatURL(raw string) (*catSource, error) {
	if op := c.catURLs(); op != nil {
		var rc io.ReadCloser
		var size int64
		err := c.limitedRedeem("catenate", func() (err error) {
			rc, size, err = op.OpenURL(c.srv.ctx, raw, c.user)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &catSource{r: rc, size: size, close: func() { rc.Close() }}, nil
	}
	u, err := channel.ParseRef(&channel.URL{User: c.user, Host: "localhost"}, raw)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
		return nil, badURL("absolute URLs are not resolved by this server")
	}
	return openOwnPart(c.srv.Store, c.user, u)
}

// openOwnPart opens what URL u names in user's own mailboxes: the octets
// of BODY.PEEK[section]<partial> of the message.
func openOwnPart(st *vmstore.Store, user string, u *channel.URL) (*catSource, error) {
	if u.UID == 0 {
		return nil, badURL("the URL names no message")
	}
	mb, err := st.Mailbox(user, inboxCase(u.Mailbox))
	if errors.Is(err, vmstore.ErrNotFound) {
		return nil, badURL("no such mailbox")
	} else if err != nil {
		return nil, err
	}
	if u.UIDValidity != 0 && u.UIDValidity != mb.UIDValidity {
		return nil, badURL("UIDVALIDITY has changed")
	}
	sec, err := message.Parse(u.Section)
	if err != nil {
		return nil, badURL("%v", err)
	}
	vm, err := st.Message(mb.ID, u.UID)
	if errors.Is(err, vmstore.ErrNotFound) {
		return nil, badURL("no such message")
	} else if err != nil {
		return nil, err
	}
	m := message.New(st, vm)
	part, err := m.Open(sec, message.Raw)
	if errors.Is(err, message.ErrNoSuchPart) {
		return nil, badURL("no such part")
	} else if err != nil {
		return nil, &sourceError{err}
	}
	size, err := part.Size()
	if err != nil {
		part.Close()
		return nil, &sourceError{err}
	}
	off, n := partialRange(u.Partial, size)
	r, err := part.Range(off, n)
	if err != nil {
		part.Close()
		return nil, &sourceError{err}
	}
	return &catSource{r: r, size: n, close: func() { part.Close() }}, nil
}

// partialRange is the offset and length of the octets a ;PARTIAL= range
// selects from size octets (RFC 5092 s6, as FETCH BODY[]<o.n>): from the
// offset to the end, or Length octets; nothing when the offset is at or
// past the end. A nil range selects everything.
func partialRange(r *channel.Range, size int64) (off, n int64) {
	if r == nil {
		return 0, size
	}
	off = int64(r.Offset)
	if off >= size {
		return size, 0
	}
	n = size - off
	if r.Length > 0 && int64(r.Length) < n {
		n = int64(r.Length)
	}
	return off, n
}
