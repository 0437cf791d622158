package imap

import (
	"errors"
	"io"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore/message"
)

// section is a BODY[section] / BINARY[section] specifier (RFC 9051
// s6.4.5); the store's message package resolves and reads it.
type section = message.Section

// xsection reads "[" section "]"; binary sections allow only part numbers.
func (p *parser) xsection(binary bool) section {
	var s section
	p.xexpect('[')
	dot := false
	for p.Peek() >= '1' && p.Peek() <= '9' {
		s.Path = append(s.Path, int(p.xnznumber()))
		if dot = p.Consume('.'); !dot {
			break
		}
	}
	if dot && p.Peek() == ']' {
		xsyntaxf("section ends with a dot")
	}
	if p.Peek() != ']' {
		if binary {
			xsyntaxf("BINARY section takes part numbers only")
		}
		s.Spec = strings.ToUpper(p.TakeWhile(func(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '.' }))
		switch s.Spec {
		case message.SpecHeader, message.SpecText:
		case message.SpecMIME:
			if len(s.Path) == 0 {
				xsyntaxf("MIME needs a part number")
			}
		case message.SpecHeaderFields, message.SpecHeaderFieldsNot:
			p.xsp()
			p.xlist(func() { s.Fields = append(s.Fields, strings.ToUpper(p.xastring())) })
			if len(s.Fields) == 0 {
				xsyntaxf("empty header list")
			}
		default:
			xsyntaxf("bad section %q", s.Spec)
		}
	}
	p.xexpect(']')
	return s
}

// xpartial reads an optional "<" offset "." count ">".
func (p *parser) xpartial() (off, n int64, ok bool) {
	if !p.Consume('<') {
		return 0, 0, false
	}
	o := p.xnumber()
	p.xexpect('.')
	cnt := p.xnznumber()
	p.xexpect('>')
	return int64(o), int64(cnt), true
}

func parseBodyFetch(p *parser, name string) []fetchItem {
	if name == "BODY" && p.Peek() != '[' {
		return []fetchItem{fetchBody}
	}
	binary := strings.HasPrefix(name, "BINARY")
	sec := p.xsection(binary)
	if name == "BINARY.SIZE" {
		return []fetchItem{{
			name:      "BINARY.SIZE[" + sec.String() + "]",
			needsPart: true,
			check:     func(c *conn, fm *fetchMsg) { c.xbinarySection(fm, sec) },
			write: func(c *conn, fm *fetchMsg) {
				c.enc.Raw("BINARY.SIZE[").Raw(sec.String()).Raw("] ")
				size, _ := c.xdecodedSize(fm, c.xbinarySection(fm, sec))
				c.enc.Number(uint64(size))
			},
		}}
	}
	off, n, partial := p.xpartial()
	respName := "BODY"
	if binary {
		respName = "BINARY"
	}
	respName += "[" + sec.String() + "]"
	if partial {
		respName += "<" + itoa64(off) + ">"
	}
	return []fetchItem{{
		name:      respName,
		setsSeen:  !strings.HasSuffix(name, ".PEEK"),
		needsPart: true,
		check: func(c *conn, fm *fetchMsg) {
			if binary {
				c.xbinarySection(fm, sec)
			}
		},
		write: func(c *conn, fm *fetchMsg) {
			c.enc.Raw(respName).SP()
			if binary {
				c.writeBinary(fm, sec, off, n, partial)
			} else {
				c.writeSection(fm, sec, off, n, partial)
			}
		},
	}}
}

func simpleFetchSection(respName string, sec section, setsSeen bool) func(*parser, string) []fetchItem {
	return func(*parser, string) []fetchItem {
		return []fetchItem{{name: respName, setsSeen: setsSeen, needsPart: true, write: func(c *conn, fm *fetchMsg) {
			c.enc.Raw(respName).SP()
			c.writeSection(fm, sec, 0, 0, false)
		}}}
	}
}

// writeSection sends BODY[section]<partial> as a literal streamed from the
// presented message (the blob as stored, unless it has binary parts); a
// section the message does not have is an empty string.
func (c *conn) writeSection(fm *fetchMsg, sec section, off, n int64, partial bool) {
	part, err := c.xmsg(fm).Open(sec, message.Raw)
	if errors.Is(err, message.ErrNoSuchPart) {
		c.enc.Raw(`""`)
		return
	}
	xcheckf(err, "opening section")
	size, err := part.Size()
	xcheckf(err, "opening section")
	c.writePart(part, size, off, n, partial, false)
}

// writePart sends size octets of a part as a literal (literal8 when
// binary), cut to <off.n> when partial; an offset at or past the end is an
// empty string. Raw content is read from the offset on; decoded content is
// decoded from its start.
func (c *conn) writePart(part *message.Part, size, off, n int64, partial, binary bool) {
	var r io.Reader
	if partial {
		if off >= size {
			c.enc.Raw(`""`)
			return
		}
		size = min(n, size-off)
		var err error
		r, err = part.Range(off, size)
		c.xpartErr(err)
	} else {
		r = part.Reader()
	}
	c.enc.Literal(size, r, binary)
	if err := c.enc.Err(); err != nil {
		panic(ioError{err})
	}
}

// writePartial sends size octets from r as a literal, cut to <off.n>.
func (c *conn) writePartial(r io.Reader, size, off, n int64, partial, binary bool) {
	if partial {
		if off >= size {
			c.enc.Raw(`""`)
			return
		}
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			xcheckf(err, "skipping to offset")
		}
		size -= off
		if n < size {
			size = n
		}
	}
	c.enc.Literal(size, r, binary)
	if err := c.enc.Err(); err != nil {
		panic(ioError{err})
	}
}

// xbinarySection opens what BINARY[section] serves (RFC 3516 s4.2): a
// leaf part's body with its transfer encoding removed or, for the whole
// message, a message/rfc822 part or a multipart, their octets as stored.
func (c *conn) xbinarySection(fm *fetchMsg, sec section) *message.Part {
	part, err := c.xmsg(fm).Open(sec, message.Decoded)
	if errors.Is(err, message.ErrUnknownEncoding) {
		xusererrorf("UNKNOWN-CTE", "unknown content transfer encoding %q", message.Resolve(c.xpart(fm), sec.Path).Encoding)
	}
	c.xpartErr(err)
	return part
}

// xpartErr maps the message package's errors to IMAP responses.
func (c *conn) xpartErr(err error) {
	switch {
	case err == nil:
	case errors.Is(err, message.ErrNoSuchPart):
		xusererrorf("NONEXISTENT", "no such part")
	case errors.Is(err, message.ErrUnknownEncoding):
		xusererrorf("UNKNOWN-CTE", "%v", err)
	case errors.Is(err, message.ErrBadEncoding):
		xusererrorf("UNKNOWN-CTE", "cannot decode part: %s", strings.TrimPrefix(err.Error(), message.ErrBadEncoding.Error()+": "))
	default:
		xcheckf(err, "reading section")
	}
}

// xdecodedSize returns the size of what BINARY serves and whether it has a
// NUL octet (then only a literal8 can carry it).
func (c *conn) xdecodedSize(fm *fetchMsg, part *message.Part) (int64, bool) {
	size, err := part.Size()
	c.xpartErr(err)
	nul, err := part.HasNUL()
	c.xpartErr(err)
	return size, nul
}

// writeBinary sends BINARY[section]<partial> (RFC 3516): the decoded
// content, as a literal8 for non-text parts and for anything with NUL.
func (c *conn) writeBinary(fm *fetchMsg, sec section, off, n int64, partial bool) {
	part := c.xbinarySection(fm, sec)
	size, nul := c.xdecodedSize(fm, part)
	c.writePart(part, size, off, n, partial, nul || part.Leaf && part.Type != "text")
}
