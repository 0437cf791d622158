package imap

import (
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/imap/wire"
)

// parser wraps the wire decoder with x-methods that raise syntaxError (BAD)
// on bad syntax and end the connection on I/O errors.
type parser struct {
	*wire.Decoder
	c *conn
}

func (p *parser) xcheck(err error) {
	if err == nil {
		return
	}
	var le *wire.LiteralTooBigError
	if errors.As(err, &le) {
		if !le.Sync {
			// The octets are on their way and we will not read them.
			panic(byeError{"[TOOBIG] " + err.Error()})
		}
		panic(userError{code: "TOOBIG", msg: err.Error()})
	}
	if wire.IsSyntax(err) {
		panic(syntaxError{msg: err.Error()})
	}
	panic(ioError{err})
}

func (p *parser) xsp()  { p.xcheck(p.SP()) }
func (p *parser) xend() { p.xcheck(p.End()) }

func (p *parser) xexpect(c byte) { p.xcheck(p.Expect(c)) }

func (p *parser) xatom() string {
	s, err := p.Atom()
	p.xcheck(err)
	return s
}

func (p *parser) xastring() string {
	s, err := p.Astring()
	p.xcheck(err)
	return s
}

func (p *parser) xstring() string {
	b, err := p.String()
	p.xcheck(err)
	return string(b)
}

func (p *parser) xnumber() uint32 {
	n, err := p.Number()
	p.xcheck(err)
	return n
}

func (p *parser) xnznumber() uint32 {
	n, err := p.NZNumber()
	p.xcheck(err)
	return n
}

func (p *parser) xnumber64() uint64 {
	n, err := p.Number64()
	p.xcheck(err)
	return n
}

func (p *parser) xlist(item func()) {
	p.xcheck(p.List(func() error { item(); return nil }))
}

func (p *parser) xflag() string {
	f, err := p.Flag(false)
	p.xcheck(err)
	return f
}

// xflagList reads "(" flags ")" or, when bare is allowed, a single flag or
// space-separated flags without parentheses (STORE allows that).
func (p *parser) xflagList(bare bool) []string {
	var flags []string
	if p.Peek() != '(' && bare {
		for {
			flags = append(flags, p.xflag())
			if !p.Consume(' ') {
				return flags
			}
		}
	}
	p.xlist(func() { flags = append(flags, p.xflag()) })
	return flags
}

// xmailbox reads a mailbox name; INBOX is case-insensitive (RFC 9051 s5.1).
func (p *parser) xmailbox() string {
	name := p.xastring()
	if !p.c.utf8Names() && strings.Contains(name, "&") {
		// RFC 3501 s5.1.3; a name that does not decode is taken as is.
		if n, err := wire.DecodeMUTF7(name); err == nil {
			name = n
		}
	}
	return inboxCase(name)
}

// inboxCase spells INBOX, which is case-insensitive (RFC 9051 s5.1), and
// the names under it in upper case.
func inboxCase(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		return "INBOX" + name[5:]
	}
	return name
}

// xseqset reads a sequence set; "$" yields the saved search result.
func (p *parser) xseqset() (imap.SeqSet, bool) {
	set, dollar, err := p.SeqSet()
	p.xcheck(err)
	return set, dollar
}

// xdateTime reads a quoted date-time (RFC 9051 s9): "dd-Mon-yyyy hh:mm:ss +zzzz".
func (p *parser) xdateTime() time.Time {
	s, err := p.Quoted()
	p.xcheck(err)
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		xsyntaxf("bad date-time %q", s)
	}
	return t
}

// xdate reads a date (SEARCH): d-Mon-yyyy, optionally quoted.
func (p *parser) xdate() time.Time {
	var s string
	if p.Peek() == '"' {
		q, err := p.Quoted()
		p.xcheck(err)
		s = q
	} else {
		s = p.xatom()
	}
	t, err := time.Parse("_2-Jan-2006", s)
	if err != nil {
		xsyntaxf("bad date %q", s)
	}
	return t
}

// utf8Names reports whether mailbox names travel as UTF-8 (IMAP4rev2 or
// UTF8=ACCEPT enabled) rather than modified UTF-7.
func (c *conn) utf8Names() bool { return c.rev2 || c.enabled["UTF8=ACCEPT"] }

// mboxOut encodes a mailbox name for the client.
func (c *conn) mboxOut(name string) string {
	if c.utf8Names() {
		return name
	}
	return wire.EncodeMUTF7(name)
}
