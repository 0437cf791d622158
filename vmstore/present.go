package vmstore

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Binary content (RFC 3516).
//
// A message appended with a literal8 can carry parts whose bodies contain
// NUL, which no IMAP literal but a literal8 may carry. Such a message is
// stored exactly as received (BINARY[] returns those octets) and the parser
// marks each leaf part whose body contains NUL (Part.Binary) and the message
// (Message.Binary). Everything that serves the message as RFC 5322 text
// (BODY[...], RFC822, RFC822.SIZE, BODYSTRUCTURE) uses its presented form,
// in which each marked part is re-encoded as RFC 3516 s4.3 requires: its
// Content-Transfer-Encoding field reads "base64" and its body is the base64
// of the stored octets in lines of 76 characters. The presented structure
// has the offsets, sizes, encodings and line counts of that form, so that
// BODYSTRUCTURE, BODY[n.MIME] and BODY[n] agree. Nothing else of the
// message changes.

// b64Line is the number of stored octets on one line of base64 (76
// characters).
const b64Line = 57

// b64Len returns the size of n octets encoded as base64 lines of 76
// characters separated by CRLF (no CRLF after the last line: the line end
// before a boundary is the boundary's), and its number of line ends.
func b64Len(n int64) (size, eols int64) {
	if n == 0 {
		return 0, 0
	}
	lines := (n + b64Line - 1) / b64Line
	return (n+2)/3*4 + 2*(lines-1), lines - 1
}

// Presentation is a message in its presented form.
type Presentation struct {
	Root *Part // the structure, with offsets into the presented form
	Size int64
	segs []presSeg
	blob *BlobReader
}

// presSeg is a piece of the presented form: stored octets, replacement
// octets, or stored octets as base64.
type presSeg struct {
	start, size int64 // in the presented form
	raw         int64 // offset of the stored octets
	rawLen      int64 // base64: number of stored octets
	data        []byte
	kind        byte // 'r' raw, 'd' data, 'b' base64
}

// HasBinary reports whether a leaf of the tree is marked binary.
func (p *Part) HasBinary() bool {
	if p.Binary {
		return true
	}
	for i := range p.Parts {
		if p.Parts[i].HasBinary() {
			return true
		}
	}
	return false
}

// Present builds the presented form of a message from its stored
// structure. A message without binary parts is presented as stored.
func (s *Store) Present(m *Message, raw *Part) (*Presentation, error) {
	blob := s.OpenMessage(m)
	pr := &Presentation{Root: raw, Size: blob.Size(), blob: blob}
	if !raw.HasBinary() {
		pr.segs = []presSeg{{start: 0, size: blob.Size(), raw: 0, kind: 'r'}}
		return pr, nil
	}
	type leafFix struct {
		part          *Part // in the copy
		start, body   int64 // stored offsets
		end           int64
		hdr           []byte
		enc, encEOLs  int64
		delta, dLines int64
	}
	root := clonePart(raw)
	var fixes []*leafFix
	var walk func(p *Part)
	walk = func(p *Part) {
		if p.Binary && len(p.Parts) == 0 {
			fixes = append(fixes, &leafFix{part: p, start: p.Start, body: p.Body, end: p.End})
		}
		for i := range p.Parts {
			walk(&p.Parts[i])
		}
	}
	walk(root)
	var pos, rawPos, delta int64
	for _, f := range fixes {
		old := make([]byte, f.body-f.start)
		if _, err := blob.ReadAt(old, f.start); err != nil && err != io.EOF {
			return nil, fmt.Errorf("vmstore: reading part header: %w", err)
		}
		f.hdr = base64Header(old)
		f.enc, f.encEOLs = b64Len(f.end - f.body)
		f.delta = int64(len(f.hdr)) - int64(len(old)) + f.enc - (f.end - f.body)
		f.dLines = int64(bytes.Count(f.hdr, []byte("\n"))-bytes.Count(old, []byte("\n"))) + f.encEOLs - f.part.Lines
		if f.start > rawPos {
			pr.segs = append(pr.segs, presSeg{start: pos, size: f.start - rawPos, raw: rawPos, kind: 'r'})
			pos += f.start - rawPos
		}
		pr.segs = append(pr.segs, presSeg{start: pos, size: int64(len(f.hdr)), data: f.hdr, kind: 'd'})
		pos += int64(len(f.hdr))
		if f.enc > 0 {
			pr.segs = append(pr.segs, presSeg{start: pos, size: f.enc, raw: f.body, rawLen: f.end - f.body, kind: 'b'})
			pos += f.enc
		}
		rawPos = f.end
		delta += f.delta
	}
	if blob.Size() > rawPos {
		pr.segs = append(pr.segs, presSeg{start: pos, size: blob.Size() - rawPos, raw: rawPos, kind: 'r'})
		pos += blob.Size() - rawPos
	}
	pr.Size = pos
	// Offsets: shifted by the growth of every re-encoded part before them.
	shift := func(off int64) int64 {
		out := off
		for _, f := range fixes {
			if f.end <= off {
				out += f.delta
			}
		}
		return out
	}
	var mapPart func(p *Part)
	mapPart = func(p *Part) {
		rs, rb, re := p.Start, p.Body, p.End
		for i := range p.Parts {
			mapPart(&p.Parts[i])
		}
		for _, f := range fixes {
			if f.part == p {
				p.Start = shift(rs)
				p.Body = p.Start + int64(len(f.hdr))
				p.End = p.Body + f.enc
				p.Encoding = "base64"
				p.Lines = f.encEOLs
				p.Binary = false
				return
			}
		}
		p.Start, p.Body, p.End = shift(rs), shift(rb), shift(re)
		if p.Type == "message" && len(p.Parts) == 1 {
			// A message/rfc822 part counts the lines of what it holds.
			for _, f := range fixes {
				if f.start >= rb && f.end <= re {
					p.Lines += f.dLines
				}
			}
		}
	}
	mapPart(root)
	pr.Root = root
	return pr, nil
}

func clonePart(p *Part) *Part {
	c := *p
	if p.Parts != nil {
		c.Parts = make([]Part, len(p.Parts))
		for i := range p.Parts {
			c.Parts[i] = *clonePart(&p.Parts[i])
		}
	}
	return &c
}

// base64Header rewrites a part header for a base64 body: every
// Content-Transfer-Encoding field (with its continuation lines) is
// dropped and "Content-Transfer-Encoding: base64" added before the empty
// line that ends the header (added too when the part had no header).
func base64Header(h []byte) []byte {
	var out bytes.Buffer
	drop := false
	for _, line := range bytes.SplitAfter(h, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !drop {
				out.Write(line)
			}
			continue
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		drop = strings.EqualFold(strings.TrimSpace(string(name)), "Content-Transfer-Encoding")
		if !drop {
			out.Write(line)
			if !bytes.HasSuffix(line, []byte("\n")) {
				out.WriteString("\r\n")
			}
		}
	}
	out.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	return out.Bytes()
}

// ReadAt implements io.ReaderAt over the presented form.
func (pr *Presentation) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrInvalid)
	}
	n := 0
	for _, sg := range pr.segs {
		if n == len(p) {
			break
		}
		cur := off + int64(n)
		if cur >= sg.start+sg.size || cur < sg.start {
			continue
		}
		within := cur - sg.start
		k := min(int64(len(p)-n), sg.size-within)
		dst := p[n : n+int(k)]
		switch sg.kind {
		case 'r':
			if m, err := pr.blob.ReadAt(dst, sg.raw+within); m < len(dst) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n + m, err
			}
		case 'd':
			copy(dst, sg.data[within:])
		case 'b':
			if err := pr.readBase64(dst, sg, within); err != nil {
				return n, err
			}
		}
		n += int(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readBase64 fills dst with the base64 form of a segment from offset
// within: lines of 76 characters (57 stored octets) and CRLF.
func (pr *Presentation) readBase64(dst []byte, sg presSeg, within int64) error {
	const width = 76 + 2
	first := within / width
	last := (within + int64(len(dst)) - 1) / width
	rawOff := first * b64Line
	rawEnd := min((last+1)*b64Line, sg.rawLen)
	raw := make([]byte, rawEnd-rawOff)
	if m, err := pr.blob.ReadAt(raw, sg.raw+rawOff); m < len(raw) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	enc := make([]byte, 0, (last-first+1)*width)
	for i := int64(0); i < int64(len(raw)); i += b64Line {
		chunk := raw[i:min(i+b64Line, int64(len(raw)))]
		enc = base64.StdEncoding.AppendEncode(enc, chunk)
		if rawOff+i+int64(len(chunk)) < sg.rawLen {
			enc = append(enc, '\r', '\n')
		}
	}
	copy(dst, enc[within-first*width:])
	return nil
}

// Section returns a reader of bytes [off, off+n) of the presented form.
func (pr *Presentation) Section(off, n int64) *io.SectionReader {
	return io.NewSectionReader(pr, off, n)
}
