package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"sync"

	"github.com/lemonvox/lemonvox/vmstore"
)

// section is a BODY[section] / BINARY[section] specifier
// (RFC 9051 s6.4.5).
type section struct {
	path   []int
	spec   string // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields []string
}

func (s section) String() string {
	var b strings.Builder
	for i, n := range s.path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if s.spec != "" {
		if len(s.path) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.spec)
	}
	if len(s.fields) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(s.fields, " "))
		b.WriteString(")")
	}
	return b.String()
}

// xsection reads "[" section "]"; binary sections allow only part numbers.
func (p *parser) xsection(binary bool) section {
	var s section
	p.xexpect('[')
	for p.Peek() >= '1' && p.Peek() <= '9' {
		s.path = append(s.path, int(p.xnznumber()))
		if !p.Consume('.') {
			break
		}
	}
	if p.Peek() != ']' {
		if binary {
			xsyntaxf("BINARY section takes part numbers only")
		}
		s.spec = strings.ToUpper(p.TakeWhile(func(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '.' }))
		switch s.spec {
		case "HEADER", "TEXT":
		case "MIME":
			if len(s.path) == 0 {
				xsyntaxf("MIME needs a part number")
			}
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			p.xsp()
			p.xlist(func() { s.fields = append(s.fields, strings.ToUpper(p.xastring())) })
			if len(s.fields) == 0 {
				xsyntaxf("empty header list")
			}
		default:
			xsyntaxf("bad section %q", s.spec)
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

// resolvePart walks a part path (RFC 9051 s6.4.5 part numbering): parts of
// a multipart are numbered from 1; a non-multipart body is part 1 of its
// message; numbers after a message/rfc822 part address the encapsulated
// message's parts. It returns nil for a path that does not exist.
func resolvePart(root *vmstore.Part, path []int) *vmstore.Part {
	cur := root
	for i, n := range path {
		if cur.Type == "multipart" {
			if n < 1 || n > len(cur.Parts) {
				return nil
			}
			cur = &cur.Parts[n-1]
		} else if n != 1 {
			return nil
		}
		if i < len(path)-1 && isMessagePart(cur) {
			cur = &cur.Parts[0]
		}
	}
	return cur
}

func isMessagePart(p *vmstore.Part) bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && len(p.Parts) == 1
}

// sectionRange returns the byte range [start, end) of a section, or ok
// false when the section does not exist (answered with an empty string).
func sectionRange(root *vmstore.Part, size int64, sec section) (start, end int64, ok bool) {
	if len(sec.path) == 0 && sec.spec == "" {
		return 0, size, true
	}
	part := root
	if len(sec.path) > 0 {
		part = resolvePart(root, sec.path)
		if part == nil {
			return 0, 0, false
		}
	}
	msg := part
	switch sec.spec {
	case "":
		return part.Body, part.End, true
	case "MIME":
		return part.Start, part.Body, true
	}
	if len(sec.path) > 0 {
		if !isMessagePart(part) {
			return 0, 0, false
		}
		msg = &part.Parts[0]
	}
	switch sec.spec {
	case "TEXT":
		return msg.Body, msg.End, true
	default: // HEADER, HEADER.FIELDS[.NOT]
		return msg.Start, msg.Body, true
	}
}

// writeSection sends BODY[section]<partial> as a literal streamed from the
// presented message (the blob as stored, unless it has binary parts).
func (c *conn) writeSection(fm *fetchMsg, sec section, off, n int64, partial bool) {
	root := c.xshown(fm)
	var blob interface {
		Section(off, n int64) *io.SectionReader
		Size() int64
	} = c.xblob(fm)
	if fm.msg.Binary {
		blob = presSized{c.xpres(fm)}
	}
	start, end, ok := sectionRange(root, blob.Size(), sec)
	if !ok {
		c.enc.Raw(`""`)
		return
	}
	if partial && !strings.HasPrefix(sec.spec, "HEADER.FIELDS") {
		// Seek instead of reading up to the offset.
		if off >= end-start {
			c.enc.Raw(`""`)
			return
		}
		start += off
		end = min(end, start+n)
		c.writePartial(blob.Section(start, end-start), end-start, 0, 0, false, false)
		return
	}
	var r io.Reader = blob.Section(start, end-start)
	size := end - start
	if strings.HasPrefix(sec.spec, "HEADER.FIELDS") {
		hdr, err := io.ReadAll(r)
		xcheckf(err, "reading header")
		b := filterHeader(hdr, sec.fields, sec.spec == "HEADER.FIELDS.NOT")
		r, size = bytes.NewReader(b), int64(len(b))
	}
	c.writePartial(r, size, off, n, partial, false)
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

// filterHeader keeps (or, not, drops) the named fields of a header block
// and ends it with the empty line (RFC 9051 s6.4.5 HEADER.FIELDS).
func filterHeader(hdr []byte, fields []string, not bool) []byte {
	want := map[string]bool{}
	for _, f := range fields {
		want[strings.ToUpper(f)] = true
	}
	var out bytes.Buffer
	keep := false
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	sc.Buffer(make([]byte, 0, 4096), len(hdr)+1)
	sc.Split(scanLinesCRLF)
	for sc.Scan() {
		line := sc.Bytes()
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, found := bytes.Cut(trimmed, []byte(":"))
			keep = found && want[strings.ToUpper(strings.TrimSpace(string(name)))] != not
		}
		if keep {
			out.Write(trimmed)
			out.WriteString("\r\n")
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// scanLinesCRLF splits after each LF, keeping the line ending.
func scanLinesCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

type presSized struct{ *vmstore.Presentation }

func (p presSized) Size() int64 { return p.Presentation.Size }

// binarySection is what BINARY[section] serves (RFC 3516 s4.2): a leaf
// part's body with its transfer encoding removed or, for the whole message,
// a message/rfc822 part or a multipart, their octets as stored (their
// encoding can only be the identity).
type binarySection struct {
	part       *vmstore.Part
	start, end int64 // the octets, when not a leaf
	leaf       bool
}

func (c *conn) xbinarySection(fm *fetchMsg, sec section) binarySection {
	root := c.xpart(fm)
	if len(sec.path) == 0 {
		return binarySection{part: root, start: 0, end: c.xblob(fm).Size()}
	}
	part := resolvePart(root, sec.path)
	if part == nil {
		xusererrorf("NONEXISTENT", "no such part")
	}
	if part.Type == "multipart" || isMessagePart(part) {
		return binarySection{part: part, start: part.Body, end: part.End}
	}
	switch strings.ToLower(part.Encoding) {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
	default:
		xusererrorf("UNKNOWN-CTE", "unknown content transfer encoding %q", part.Encoding)
	}
	return binarySection{part: part, start: part.Body, end: part.End, leaf: true}
}

// decoder returns a reader of the part's body with its transfer encoding
// removed.
//
// The blob reader fetches a whole 256 KiB chunk from the store for every
// read, and the decoders read in small pieces, so the part is read through
// a buffer of that size.
func (c *conn) decoder(fm *fetchMsg, part *vmstore.Part) io.Reader {
	br := blobBufPool.Get().(*bufio.Reader)
	br.Reset(c.xblob(fm).Section(part.Body, part.End-part.Body))
	fm.bufs = append(fm.bufs, br)
	r := io.Reader(br)
	switch strings.ToLower(part.Encoding) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Filter drops octets outside the base64 alphabet (line breaks,
// spaces), which RFC 2045 s6.8 says decoders ignore.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			if b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '=' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// xdecodedSize returns the size of what BINARY serves and whether it has a
// NUL octet (then only a literal8 can carry it).
func (c *conn) xdecodedSize(fm *fetchMsg, bs binarySection) (int64, bool) {
	if !bs.leaf {
		return bs.end - bs.start, bs.part.HasBinary()
	}
	part := bs.part
	switch strings.ToLower(part.Encoding) {
	case "base64", "quoted-printable":
		var nul nulCounter
		n, err := io.Copy(&nul, c.decoder(fm, part))
		fm.release()
		if err != nil {
			xusererrorf("UNKNOWN-CTE", "cannot decode part: %v", err)
		}
		return n, nul.seen
	}
	return part.End - part.Body, part.Binary
}

type nulCounter struct{ seen bool }

func (w *nulCounter) Write(p []byte) (int, error) {
	if !w.seen && bytes.IndexByte(p, 0) >= 0 {
		w.seen = true
	}
	return len(p), nil
}

// writeBinary sends BINARY[section]<partial> (RFC 3516): the decoded
// content, as a literal8 for non-text parts and for anything with NUL.
func (c *conn) writeBinary(fm *fetchMsg, sec section, off, n int64, partial bool) {
	bs := c.xbinarySection(fm, sec)
	size, nul := c.xdecodedSize(fm, bs)
	if !bs.leaf {
		c.writePartial(c.xblob(fm).Section(bs.start, size), size, off, n, partial, nul)
		return
	}
	c.writePartial(c.decoder(fm, bs.part), size, off, n, partial, nul || bs.part.Type != "text")
}

var blobBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// release returns the buffers a fetch of one message took.
func (fm *fetchMsg) release() {
	for _, b := range fm.bufs {
		b.Reset(nil)
		blobBufPool.Put(b)
	}
	fm.bufs = nil
}
