package imap

// URLAUTH (RFC 4467): GENURLAUTH, RESETKEY, URLFETCH; URLAUTH=BINARY
// (RFC 5524): URLFETCH with per-URL BODYPARTSTRUCTURE, BINARY and BODY;
// URL-PARTIAL (RFC 5550 s5.7.1): ;PARTIAL= in those URLs. The checks and
// the access keys are channel.Resolver's (Server.URLResolver); without one
// nothing here is announced and the commands are unknown.
//
// Implementation notes:
//   - URLFETCH answers every URL that fails, for whatever reason, with NIL
//     in its own "* URLFETCH url NIL" (one response per URL, streamed);
//     only a syntax error is BAD, before any response, and only a store
//     failure is NO.
//   - GENURLAUTH: every URL that fails validation is tagged BAD, as RFC
//     4467 s7.1 requires: malformed, not a URLAUTH rump, an unsupported
//     mechanism, another server or another user's mailbox, no such
//     mailbox, message or section, an ;EXPIRE= in the past. Only the
//     anonymous-lifetime policy (an anonymous URL without a near enough
//     ;EXPIRE=) is NO [CANNOT], and a store failure NO [SERVERBUG].
//     Nothing is returned unless every URL of the command is authorized.
//   - URLFETCH BODYPARTSTRUCTURE describes the data as returned: decoded
//     (encoding BINARY unless it was an identity one) when BINARY was
//     asked, and with the size (and, for text and encapsulated messages,
//     the lines) of the ;PARTIAL= range when there is one. A multipart
//     has no size or lines of its own in BODYSTRUCTURE: its structure is
//     that of the whole part, whatever range is returned, and BINARY of
//     a multipart returns it as stored (its parts keep their encodings,
//     which the structure shows).
//   - ;PARTIAL= applies to the encoded octets for BODY and the simple form,
//     to the decoded ones for BINARY (as FETCH BINARY<partial> does).

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

var metricURLAuth = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "lemonvox_imap_urlauth_total",
	Help: "URLAUTH operations by command (genurlauth, resetkey, urlfetch) and result (ok, bad, refused, error, nil; urlfetch: badtoken, throttled).",
}, []string{"cmd", "result"})

func init() {
	urlauth := func(c *conn) bool { return c.state != stateNotAuth && c.srv.URLResolver != nil }
	registerCap("URLAUTH", urlauth)        // RFC 4467
	registerCap("URLAUTH=BINARY", urlauth) // RFC 5524
	registerCap("URL-PARTIAL", urlauth)    // RFC 5550 s5.7.1
	register("GENURLAUTH", statesAuthSel, cmdGenURLAuth)
	register("RESETKEY", statesAuthSel, cmdResetKey)
	register("URLFETCH", statesAuthSel, cmdURLFetch)
	registerCap("AUTH=ANONYMOUS", func(c *conn) bool { return c.state == stateNotAuth && c.srv.AllowAnonymous })
}

// anonymousCommands are what a SASL ANONYMOUS session may do: fetch
// anonymous URLs (RFC 5092 s6.1.2, RFC 5616 s3.4), nothing of any account.
var anonymousCommands = map[string]bool{"CAPABILITY": true, "NOOP": true, "LOGOUT": true, "ID": true, "URLFETCH": true}

// xanonymous completes AUTHENTICATE ANONYMOUS (RFC 4505): the trace the
// client sends (an e-mail address or a token, at most 255 characters) is
// only logged.
func (c *conn) xanonymous(initial *string) {
	var resp string
	if initial != nil {
		resp = *initial
		if resp == "=" {
			resp = ""
		}
	} else {
		c.writeLine("+ ")
		c.xflush()
		line, err := c.dec.ReadLine()
		if err != nil {
			panic(ioError{err})
		}
		resp = line
	}
	if resp == "*" {
		xsyntaxf("authentication cancelled")
	}
	trace, err := base64.StdEncoding.DecodeString(resp)
	if err != nil || len(trace) > 255*4 || !utf8.Valid(trace) {
		xsyntaxf("bad ANONYMOUS trace")
	}
	metricAuth.WithLabelValues("anonymous", "ok").Inc()
	c.log.Info("imap anonymous login", "trace", string(trace))
	c.anonymous = true
	c.state = stateAuth
	c.okText = "[CAPABILITY " + c.capabilities() + "] anonymous access: URLFETCH only"
}

func (c *conn) xresolver() *channel.Resolver {
	if c.srv.URLResolver == nil {
		xsyntaxf("unknown command")
	}
	return c.srv.URLResolver
}

// requester is who this session is to the URLAUTH access identifiers.
func (c *conn) requester() channel.Requester {
	if c.anonymous {
		return channel.Requester{}
	}
	return c.srv.URLResolver.Requester(c.user)
}

// spaces consumes one or more SP (RFC 5524's examples have two).
func (p *parser) xspaces() {
	p.xsp()
	for p.Consume(' ') {
	}
}

// GENURLAUTH 1*(SP url-rump SP mechanism) (RFC 4467 s7.1).
func cmdGenURLAuth(c *conn, tag string, p *parser) {
	r := c.xresolver()
	type pair struct{ rump, mech string }
	var pairs []pair
	for {
		p.xsp()
		rump := p.xastring()
		p.xsp()
		mech := p.xatom()
		pairs = append(pairs, pair{rump, mech})
		if p.AtEnd() {
			break
		}
	}
	p.xend()
	out := make([]string, 0, len(pairs))
	for _, pr := range pairs {
		u, err := r.AuthorizeURL(c.user, pr.rump, pr.mech)
		if err != nil {
			xgenurlauthErr(err)
		}
		out = append(out, u)
	}
	metricURLAuth.WithLabelValues("genurlauth", "ok").Add(float64(len(out)))
	c.enc.Raw("* GENURLAUTH")
	for _, u := range out {
		c.enc.SP().String(u)
	}
	c.enc.CRLF()
}

// xgenurlauthErr raises the answer to a GENURLAUTH failure. RFC 4467
// s7.1 (BASE.6.3.GENURLAUTH) lists what the server MUST validate (the
// mailbox exists; the URL names the owner of the key table, which the
// logged-in user must own; a valid access identifier and mechanism; MAY:
// the UID and section) and says: "If any of the above checks fail, the
// server MUST return a tagged BAD response". So every refusal of the
// URL is BAD, and none of the URLs of the command is returned. NO ("can't
// generate a URLAUTH") is left for what is not the URL's fault: the
// anonymous-lifetime policy and the store's failures.
func xgenurlauthErr(err error) {
	result := "bad"
	defer func() { metricURLAuth.WithLabelValues("genurlauth", result).Inc() }()
	switch {
	case errors.Is(err, channel.ErrPolicy):
		result = "refused"
		xusererrorf("CANNOT", "%s", reasonOf(err, channel.ErrPolicy, channel.ErrNotPermitted))
	case errors.Is(err, channel.ErrMechanism):
		xsyntaxf("unsupported URLAUTH mechanism (INTERNAL only)")
	case errors.Is(err, channel.ErrNotPart):
		xsyntaxf("URLAUTH is only for a message or a part of one (;UID= missing)")
	case errors.Is(err, channel.ErrBadAccess):
		xsyntaxf("invalid access identifier: %s", urlErrText(err))
	case errors.Is(err, channel.ErrBadURL):
		xsyntaxf("not a URLAUTH rump URL: %s", urlErrText(err))
	case errors.Is(err, channel.ErrNotOurs):
		xsyntaxf("the URL names another server")
	case errors.Is(err, channel.ErrNotPermitted):
		xsyntaxf("%s", reasonOf(err, channel.ErrNotPermitted))
	case errors.Is(err, channel.ErrExpired):
		xsyntaxf("the URL's ;EXPIRE= is in the past")
	case errors.Is(err, channel.ErrGone), errors.Is(err, vmstore.ErrNotFound):
		xsyntaxf("no such mailbox, message or part")
	}
	result = "error"
	xcheckf(err, "GENURLAUTH")
}

// xresetkeyErr raises the answer to a RESETKEY failure: "NO - RESETKEY
// error: can't change key of that mailbox" (RFC 4467 s7.1,
// BASE.6.3.RESETKEY); an unsupported mechanism is BAD.
func xresetkeyErr(err error) {
	metricURLAuth.WithLabelValues("resetkey", "refused").Inc()
	switch {
	case errors.Is(err, channel.ErrMechanism):
		xsyntaxf("unsupported URLAUTH mechanism (INTERNAL only)")
	case errors.Is(err, channel.ErrGone), errors.Is(err, vmstore.ErrNotFound):
		xusererrorf("NONEXISTENT", "no such mailbox")
	}
	xcheckf(err, "RESETKEY")
}

// reasonOf is err's text without the words of the sentinels it wraps.
func reasonOf(err error, sentinels ...error) string {
	s := err.Error()
	for _, e := range sentinels {
		s = strings.TrimPrefix(s, e.Error()+": ")
	}
	return s
}

// urlErrText is the reason of a URL error, without the sentinel's words.
func urlErrText(err error) string {
	var ue *channel.URLError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return err.Error()
}

// RESETKEY [SP mailbox *(SP mechanism)] (RFC 4467 s7.2).
func cmdResetKey(c *conn, tag string, p *parser) {
	r := c.xresolver()
	mailbox := ""
	if p.Consume(' ') {
		mailbox = p.xmailbox()
		for p.Consume(' ') {
			if m := p.xatom(); !strings.EqualFold(m, channel.MechanismInternal) {
				xsyntaxf("unsupported URLAUTH mechanism %q (INTERNAL only)", m)
			}
		}
	}
	p.xend()
	if err := r.Reset(c.user, mailbox, ""); err != nil {
		xresetkeyErr(err)
	}
	metricURLAuth.WithLabelValues("resetkey", "ok").Inc()
	if mailbox == "" {
		c.okText = "RESETKEY completed, every mailbox access key removed"
		return
	}
	c.okText = "[URLMECH INTERNAL] RESETKEY completed"
}

// urlFetchArg is one URL of URLFETCH with the items of its extended form.
type urlFetchArg struct {
	url                   string
	extended              bool
	bps, body, binaryData bool
}

// URLFETCH 1*(SP (url / "(" url *(SP param) ")")) (RFC 4467 s7.3,
// RFC 5524 s3).
func cmdURLFetch(c *conn, tag string, p *parser) {
	r := c.xresolver()
	var args []urlFetchArg
	for {
		p.xspaces()
		var a urlFetchArg
		if p.Consume('(') {
			a.url = p.xastring()
			for !p.Consume(')') {
				p.xspaces()
				if p.Peek() == ')' {
					continue
				}
				switch name := strings.ToUpper(p.xatom()); name {
				case "BODYPARTSTRUCTURE":
					if a.bps {
						xsyntaxf("BODYPARTSTRUCTURE twice")
					}
					a.bps = true
				case "BODY":
					if a.body {
						xsyntaxf("BODY twice")
					}
					a.body = true
				case "BINARY":
					if a.binaryData {
						xsyntaxf("BINARY twice")
					}
					a.binaryData = true
				default:
					xsyntaxf("unknown URLFETCH parameter %q", name)
				}
			}
			if a.body && a.binaryData {
				xsyntaxf("BODY and BINARY together")
			}
			a.extended = a.bps || a.body || a.binaryData
		} else {
			a.url = p.xastring()
		}
		args = append(args, a)
		if p.AtEnd() {
			break
		}
	}
	p.xend()
	req := c.requester()
	for _, a := range args {
		c.urlFetchOne(r, req, a)
		c.xflush()
	}
}

// refusal reports whether err is a URL's fault (NIL) rather than the
// store's (NO).
func refusal(err error) bool {
	for _, e := range []error{channel.ErrBadURL, channel.ErrNotPart, channel.ErrNotOurs, channel.ErrBadToken,
		channel.ErrExpired, channel.ErrNotPermitted, channel.ErrGone, channel.ErrMechanism,
		vmstore.ErrNotFound, message.ErrNoSuchPart, message.ErrSyntax} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errURLThrottled: the client's address has too many failed URL
// authorizations queued; the URL was not checked. It matches
// channel.ErrBadToken, so it is answered as a URL that does not verify.
var errURLThrottled = fmt.Errorf("%w: too many failed URL authorizations from this address, try later", channel.ErrBadToken)

// limitedRedeem runs redeem, which checks a URLAUTH token (URLFETCH,
// CATENATE), under the shared authentication limiter: a token that does
// not verify (channel.ErrBadToken) counts as a failed credential against
// the client's address and (account, address), as a failed LOGIN does,
// so guessing tokens is slowed down as guessing passwords is (RFC 4467
// s10: "progressively longer delays on multiple URL requests that fail
// validation"); a source with too many attempts queued gets
// errURLThrottled without its URL being checked. Other outcomes count
// neither way: a refusal before the token is looked at (expired, wrong
// role) proves nothing, and a valid token does not make earlier wrong
// ones innocent. Tokens are compared in constant time by the resolver;
// the URL itself is a credential and is never logged.
func (c *conn) limitedRedeem(cmd string, redeem func() error) error {
	user := c.user
	if c.anonymous {
		user = ""
	}
	ip := remoteIP(c.nc.RemoteAddr())
	att, err := c.srv.AuthLimiter.Begin(c.srv.ctx, "urlauth", authlimit.AddrOf(c.nc.RemoteAddr()), user)
	if err != nil {
		metricURLAuth.WithLabelValues(cmd, "throttled").Inc()
		c.log.Info("url authorization throttled", "cmd", cmd, "user", user, "ip", ip, "err", err)
		return errURLThrottled
	}
	err = redeem()
	if errors.Is(err, channel.ErrBadToken) {
		metricURLAuth.WithLabelValues(cmd, "badtoken").Inc()
		c.log.Info("url authorization failed: token does not verify", "cmd", cmd, "user", user, "ip", ip)
		att.Failed()
	} else {
		att.Abandon()
	}
	return err
}

func (c *conn) urlFetchOne(r *channel.Resolver, req channel.Requester, a urlFetchArg) {
	var res *channel.Resolved
	err := c.limitedRedeem("urlfetch", func() (err error) {
		res, err = r.ResolveURL(context.Background(), a.url, req)
		return err
	})
	if err != nil {
		if !refusal(err) {
			xcheckf(err, "URLFETCH")
		}
		metricURLAuth.WithLabelValues("urlfetch", "nil").Inc()
		c.log.Debug("urlfetch refused", "reason", err.Error()) // the URL is a credential: not logged
		c.enc.Raw("* URLFETCH ").String(a.url).Raw(" NIL").CRLF()
		return
	}
	defer res.Close()
	metricURLAuth.WithLabelValues("urlfetch", "ok").Inc()
	if !a.extended {
		rd, n, err := res.Content(res.Part)
		c.xurlPartErr(err)
		c.enc.Raw("* URLFETCH ").String(a.url).SP()
		c.writeURLData(rd, n, false)
		c.enc.CRLF()
		return
	}
	// Everything that can fail is worked out before the response starts:
	// which form of the part is returned (BINARY falls back to (BINARY
	// NIL) with the stored form described), its lines, its size.
	part, decoded := res.Part, false
	if a.binaryData {
		dp, err := res.Open(message.Decoded)
		if err == nil {
			_, err = dp.Size() // decodes once: a part that does not decode is NIL
		}
		switch {
		case err == nil:
			part, decoded = dp, true
		case errors.Is(err, message.ErrUnknownEncoding), errors.Is(err, message.ErrBadEncoding), errors.Is(err, message.ErrSyntax):
		default:
			xcheckf(err, "URLFETCH BINARY")
		}
	}
	lines := int64(-1)
	if a.bps && (strings.EqualFold(part.Type, "text") || encapsulated(part.Node)) {
		lines = c.xurlLines(res, part)
	}
	rd, n, err := res.Content(part)
	c.xurlPartErr(err)
	c.enc.Raw("* URLFETCH ").String(a.url)
	if a.bps {
		c.enc.Raw(" (BODYPARTSTRUCTURE ")
		c.writeURLPartStructure(res, part, n, decoded, lines)
		c.enc.Raw(")")
	}
	switch {
	case a.body:
		c.enc.Raw(" (BODY ")
		c.writeURLData(rd, n, false)
		c.enc.Raw(")")
	case a.binaryData && !decoded:
		c.enc.Raw(" (BINARY NIL)")
	case a.binaryData:
		nul, err := part.HasNUL()
		c.xurlPartErr(err)
		c.enc.Raw(" (BINARY ")
		c.writeURLData(rd, n, nul || part.Leaf && !strings.EqualFold(part.Type, "text"))
		c.enc.Raw(")")
	}
	c.enc.CRLF()
}

// xurlPartErr raises a failure to read a resolved part: the store's.
func (c *conn) xurlPartErr(err error) {
	if err != nil {
		xcheckf(err, "URLFETCH")
	}
}

// writeURLData writes n octets from rd as a literal (literal8 when
// binary); an empty range is "".
func (c *conn) writeURLData(rd io.Reader, n int64, binary bool) {
	if n == 0 {
		c.enc.Raw(`""`)
		return
	}
	c.enc.Literal(n, rd, binary)
	if err := c.enc.Err(); err != nil {
		panic(ioError{err})
	}
}

// xurlLines counts the line ends of what a text part's URL returns.
func (c *conn) xurlLines(res *channel.Resolved, part *message.Part) int64 {
	if _, _, partial := res.Partial(); !partial && part.Mode == message.Raw && part.Leaf && res.Section.Spec == "" {
		return part.Node.Lines
	}
	rd, _, err := res.Content(part)
	c.xurlPartErr(err)
	var lc lineCounter
	if _, err := io.Copy(&lc, rd); err != nil {
		xcheckf(err, "counting lines")
	}
	return lc.n
}

// encapsulated reports whether p is a message/rfc822 (or global) part
// with its message: BODYSTRUCTURE gives it a size and lines.
func encapsulated(p *vmstore.Part) bool {
	return p != nil && strings.EqualFold(p.Type, "message") && (strings.EqualFold(p.Subtype, "rfc822") || strings.EqualFold(p.Subtype, "global")) && len(p.Parts) == 1
}

type lineCounter struct{ n int64 }

func (l *lineCounter) Write(b []byte) (int, error) {
	for _, x := range b {
		if x == '\n' {
			l.n++
		}
	}
	return len(b), nil
}

// writeURLPartStructure writes the BODYPARTSTRUCTURE of what a URL
// returns (RFC 5524 s3): for a single-part body its description with the
// encoding and size of the data as returned; for a multipart or an
// encapsulated message, its structure.
func (c *conn) writeURLPartStructure(res *channel.Resolved, part *message.Part, size int64, decoded bool, lines int64) {
	single := part.Leaf || res.Section.Spec != "" && res.Section.Spec != message.SpecText
	if _, _, partial := res.Partial(); partial && res.Section.Spec == "" && encapsulated(part.Node) {
		// An encapsulated message cut by ;PARTIAL=: its structure,
		// with the size and lines of the range returned, as a single
		// part's are. (A multipart has no size or lines of its own:
		// its structure describes the whole part, whatever range of
		// it is returned.)
		d := *part.Node
		d.Body, d.End = 0, size
		if lines >= 0 {
			d.Lines = lines
		}
		c.writeBodyStructure(&d, true)
		return
	}
	if !single && res.Section.Spec == message.SpecText && len(part.Node.Parts) == 1 {
		// TEXT of a message: the structure of its body.
		c.writeBodyStructure(&part.Node.Parts[0], true)
		return
	}
	if !single {
		c.writeBodyStructure(part.Node, true)
		return
	}
	var d vmstore.Part
	if res.Section.Spec == "" && part.Node != nil {
		d = *part.Node
		d.Parts, d.Envelope = nil, nil
	} else {
		d = vmstore.Part{Type: part.Type, Subtype: part.Subtype, Params: part.Params, Encoding: part.Encoding}
	}
	if decoded {
		switch strings.ToLower(d.Encoding) {
		case "base64", "quoted-printable":
			d.Encoding = "binary"
		}
		d.MD5 = ""
	}
	d.Body, d.End = 0, size
	if lines >= 0 {
		d.Lines = lines
	}
	c.writeBodyStructure(&d, true)
}

// urlKeysReset tells a session that has the mailbox selected that its
// URLAUTH key was reset (RESETKEY here or in another session): "* OK
// [URLMECH INTERNAL]" at the next point where updates go out (RFC 4467
// s7.2). The session that ran RESETKEY gets it too, which is harmless.
func (c *conn) urlKeysReset(ev *vmstore.Event) {
	s := c.sel
	if c.srv.URLResolver == nil || s == nil || ev.Seq <= s.baseSeq || (ev.MailboxID != 0 && ev.MailboxID != s.mb.ID) {
		return
	}
	c.pendNotify = append(c.pendNotify, "* OK [URLMECH INTERNAL] mailbox access key reset")
}
