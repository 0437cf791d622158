package message

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"sync"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Mode says which form of a section Open serves.
type Mode int

const (
	// Raw is the section as BODY[section] serves it: octets of the
	// presented message (a message with binary parts has them re-encoded
	// as base64, vmstore/present.go), HEADER.FIELDS filtered.
	Raw Mode = iota
	// Decoded is what BINARY[section] serves (RFC 3516 s4.2): a leaf part's
	// body with its transfer encoding removed; for the whole message, a
	// multipart or a message/rfc822 part, their octets as stored. The
	// section must be part numbers only.
	Decoded
	// DecodedLeaf is Decoded for a single-part body only: a multipart or
	// message/rfc822 part is ErrNotLeaf (CONVERT, playback, attachments).
	DecodedLeaf
)

// Message is one stored message opened for reading sections. It caches the
// structure and presented form between sections and lends read buffers to
// the parts it opens; Release returns them. A Message is not safe for
// concurrent use.
type Message struct {
	store *vmstore.Store
	msg   *vmstore.Message

	structure *vmstore.Part
	pres      *vmstore.Presentation
	blob      *vmstore.BlobReader
	bufs      []*bufio.Reader
}

// New opens a message for reading its sections.
func New(s *vmstore.Store, m *vmstore.Message) *Message {
	return &Message{store: s, msg: m}
}

// Lookup finds message uid of a user's mailbox.
func Lookup(s *vmstore.Store, user, mailbox string, uid uint32) (*Message, error) {
	mb, err := s.Mailbox(user, mailbox)
	if err != nil {
		return nil, err
	}
	m, err := s.Message(mb.ID, uid)
	if err != nil {
		return nil, err
	}
	return New(s, m), nil
}

// Open opens one section of message uid of a user's mailbox. Close the
// part when done to return its read buffers.
func Open(s *vmstore.Store, user, mailbox string, uid uint32, sec Section, mode Mode) (*Part, error) {
	m, err := Lookup(s, user, mailbox, uid)
	if err != nil {
		return nil, err
	}
	return m.Open(sec, mode)
}

// CacheKey names a section of this message in caches of data derived
// from it (decoded or converted media): the same for every opening of the
// same stored bytes in this process, different for any other message,
// store or section.
func (m *Message) CacheKey(section string) string {
	return fmt.Sprintf("%d/%d/%s", m.store.Instance(), m.msg.Blob, section)
}

// Stored returns the stored message record.
func (m *Message) Stored() *vmstore.Message { return m.msg }

// Structure returns the MIME structure of the message as stored (shared:
// do not modify).
func (m *Message) Structure() (*vmstore.Part, error) {
	if m.structure == nil {
		p, err := m.store.Structure(m.msg)
		if err != nil {
			return nil, err
		}
		m.structure = p
	}
	return m.structure, nil
}

// Presentation returns the message as BODY[] presents it.
func (m *Message) Presentation() (*vmstore.Presentation, error) {
	if m.pres == nil {
		root, err := m.Structure()
		if err != nil {
			return nil, err
		}
		pr, err := m.store.Present(m.msg, root)
		if err != nil {
			return nil, err
		}
		m.pres = pr
	}
	return m.pres, nil
}

// Shown returns the structure of the presented message (the stored one
// unless the message has binary parts): what BODYSTRUCTURE describes.
func (m *Message) Shown() (*vmstore.Part, error) {
	if !m.msg.Binary {
		return m.Structure()
	}
	pr, err := m.Presentation()
	if err != nil {
		return nil, err
	}
	return pr.Root, nil
}

// PresentedSize is the size of BODY[] (RFC822.SIZE).
func (m *Message) PresentedSize() (int64, error) {
	if !m.msg.Binary {
		return m.msg.Size, nil
	}
	pr, err := m.Presentation()
	if err != nil {
		return 0, err
	}
	return pr.Size, nil
}

// Blob returns a reader of the stored octets.
func (m *Message) Blob() *vmstore.BlobReader {
	if m.blob == nil {
		m.blob = m.store.OpenMessage(m.msg)
	}
	return m.blob
}

// Release returns the read buffers lent to the readers of every part
// opened so far; those readers must not be used afterwards. The Message
// stays usable.
func (m *Message) Release() {
	for _, b := range m.bufs {
		b.Reset(nil)
		bufPool.Put(b)
	}
	m.bufs = nil
}

// Resolve walks a part path (RFC 9051 s6.4.5 part numbering): parts of a
// multipart are numbered from 1; a non-multipart body is part 1 of its
// message; numbers after a message/rfc822 part address the encapsulated
// message's parts. An empty path is the root. It returns nil for a path
// that does not exist.
func Resolve(root *vmstore.Part, path []int) *vmstore.Part {
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
		if i < len(path)-1 && IsMessage(cur) {
			cur = &cur.Parts[0]
		}
	}
	return cur
}

// IsMessage reports whether p is an encapsulated message (message/rfc822
// or message/global with its parsed message).
func IsMessage(p *vmstore.Part) bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && len(p.Parts) == 1
}

// IsLeaf reports whether p is a single-part body.
func IsLeaf(p *vmstore.Part) bool { return p.Type != "multipart" && !IsMessage(p) }

// KnownEncoding reports whether enc is a Content-Transfer-Encoding this
// package can remove (RFC 2045 s6.1; "" is 7bit).
func KnownEncoding(enc string) bool {
	switch strings.ToLower(enc) {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
		return true
	}
	return false
}

// Part is one opened section.
type Part struct {
	Section Section
	Mode    Mode
	// Node is the structure node the section addresses (the root for the
	// whole message; for HEADER and TEXT of a part, that message/rfc822
	// part). For Raw it is the presented structure, for Decoded the
	// stored one.
	Node *vmstore.Part
	// Type, Subtype and Params describe the content: the node's media
	// type for its body; for TEXT the encapsulated message's; text/plain
	// for header sections (HEADER, HEADER.FIELDS[.NOT], MIME).
	Type, Subtype string
	Params        map[string]string
	// Encoding is the transfer encoding of the node as served by Raw
	// ("base64" for a binary part presented); the Decoded bytes of a leaf
	// carry none.
	Encoding string
	// Leaf: the content is the body of a single-part entity (no header,
	// no boundaries).
	Leaf bool

	m          *Message
	src        io.ReaderAt // raw octets: blob or presentation
	start, end int64       // of the octets in src
	data       []byte      // or materialized content (HEADER.FIELDS)
	decode     string      // "base64", "quoted-printable" or "" (identity)
	nulKnown   bool        // nul is known
	nul        bool
	sized      bool // size is known
	size       int64
}

// Open opens a section of the message. Errors: ErrNoSuchPart, ErrNotLeaf
// (DecodedLeaf), ErrUnknownEncoding (Decoded*), ErrSyntax (Decoded with a
// section-text), or the store's.
func (m *Message) Open(sec Section, mode Mode) (*Part, error) {
	if mode == Raw {
		return m.openRaw(sec)
	}
	if !sec.PartOnly() {
		return nil, fmt.Errorf("%w: BINARY section takes part numbers only", ErrSyntax)
	}
	root, err := m.Structure()
	if err != nil {
		return nil, err
	}
	node := root
	if len(sec.Path) > 0 {
		if node = Resolve(root, sec.Path); node == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchPart, sec.String())
		}
	}
	p := &Part{Section: sec, Mode: mode, Node: node, m: m, src: m.Blob(), Encoding: strings.ToLower(node.Encoding)}
	p.setType(node)
	// The body of a single-part entity; BINARY[] of a single-part message
	// is still the whole message, DecodedLeaf of it its body.
	p.Leaf = IsLeaf(node) && (len(sec.Path) > 0 || mode == DecodedLeaf)
	if mode == DecodedLeaf && !p.Leaf {
		return nil, fmt.Errorf("%w: %q is %s", ErrNotLeaf, sec.String(), node.MediaType())
	}
	if !p.Leaf {
		// RFC 3516: the whole message, a multipart or a message/rfc822
		// part is served as stored (its encoding can only be the
		// identity).
		if len(sec.Path) == 0 {
			p.start, p.end = 0, m.Blob().Size()
		} else {
			p.start, p.end = node.Body, node.End
		}
		p.nulKnown, p.nul = true, node.HasBinary()
		p.sized, p.size = true, p.end-p.start
		return p, nil
	}
	p.start, p.end = node.Body, node.End
	if !KnownEncoding(p.Encoding) {
		return nil, fmt.Errorf("%w %q", ErrUnknownEncoding, p.Node.Encoding)
	}
	switch p.Encoding {
	case "base64", "quoted-printable":
		p.decode = p.Encoding
	default:
		p.nulKnown, p.nul = true, p.Node.Binary
		p.sized, p.size = true, p.end-p.start
	}
	return p, nil
}

func (p *Part) setType(n *vmstore.Part) {
	p.Type, p.Subtype, p.Params = n.Type, n.Subtype, n.Params
}

// sectionRange returns the byte range [start, end) of a section in the
// presented form, or ok false when the section does not exist.
func sectionRange(root *vmstore.Part, size int64, sec Section) (node *vmstore.Part, start, end int64, ok bool) {
	if len(sec.Path) == 0 && sec.Spec == "" {
		return root, 0, size, true
	}
	part := root
	if len(sec.Path) > 0 {
		part = Resolve(root, sec.Path)
		if part == nil {
			return nil, 0, 0, false
		}
	}
	msg := part
	switch sec.Spec {
	case "":
		return part, part.Body, part.End, true
	case SpecMIME:
		return part, part.Start, part.Body, true
	}
	if len(sec.Path) > 0 {
		if !IsMessage(part) {
			return nil, 0, 0, false
		}
		msg = &part.Parts[0]
	}
	switch sec.Spec {
	case SpecText:
		return part, msg.Body, msg.End, true
	default: // HEADER, HEADER.FIELDS[.NOT]
		return part, msg.Start, msg.Body, true
	}
}

func (m *Message) openRaw(sec Section) (*Part, error) {
	root, err := m.Shown()
	if err != nil {
		return nil, err
	}
	var src io.ReaderAt = m.Blob()
	size := m.Blob().Size()
	if m.msg.Binary {
		pr, err := m.Presentation()
		if err != nil {
			return nil, err
		}
		src, size = pr, pr.Size
	}
	node, start, end, ok := sectionRange(root, size, sec)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchPart, sec.String())
	}
	p := &Part{Section: sec, Mode: Raw, Node: node, m: m, src: src, start: start, end: end,
		Encoding: strings.ToLower(node.Encoding), nulKnown: true, sized: true, size: end - start}
	switch sec.Spec {
	case "":
		p.setType(node)
		p.Leaf = len(sec.Path) > 0 && IsLeaf(node)
	case SpecText:
		body := node // the message whose body TEXT is
		if len(sec.Path) > 0 {
			body = &node.Parts[0]
		}
		p.setType(body)
		p.Encoding = strings.ToLower(body.Encoding)
		p.Leaf = IsLeaf(body)
	default:
		p.Type, p.Subtype, p.Params, p.Encoding = "text", "plain", nil, ""
	}
	if sec.HeaderFields() {
		hdr := make([]byte, end-start)
		if _, err := src.ReadAt(hdr, start); err != nil && err != io.EOF {
			return nil, fmt.Errorf("message: reading header: %w", err)
		}
		p.data = FilterHeader(hdr, sec.Fields, sec.Spec == SpecHeaderFieldsNot)
		p.size = int64(len(p.data))
	}
	return p, nil
}

// Size is the number of octets the part serves (for Decoded base64 and
// quoted-printable content, found by decoding it once).
func (p *Part) Size() (int64, error) {
	if !p.sized {
		if err := p.scan(); err != nil {
			return 0, err
		}
	}
	return p.size, nil
}

// HasNUL reports whether the content has a NUL octet, which only an IMAP
// literal8 can carry. For Raw content it is always false: the presented
// form has no NUL.
func (p *Part) HasNUL() (bool, error) {
	if p.Mode == Raw {
		return false, nil
	}
	if !p.nulKnown {
		if err := p.scan(); err != nil {
			return false, err
		}
	}
	return p.nul, nil
}

// scan decodes the content once for its size and NUL octets.
func (p *Part) scan() error {
	var nul nulWriter
	r, br := p.decoder()
	n, err := io.Copy(&nul, r)
	putBuf(br)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	p.sized, p.size = true, n
	p.nulKnown, p.nul = true, nul.seen
	return nil
}

type nulWriter struct{ seen bool }

func (w *nulWriter) Write(b []byte) (int, error) {
	if !w.seen && bytes.IndexByte(b, 0) >= 0 {
		w.seen = true
	}
	return len(b), nil
}

// bufPool holds the read buffers of decoders. The blob reader fetches a
// whole 256 KiB chunk from the store for every read and the decoders read
// in small pieces, so encoded content is read through a buffer that size.
var bufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// bufferAbove is the size from which identity content is read through a
// pooled buffer too: every read of the store's blob reader fetches whole
// chunks, so small reads of a large part would fetch each chunk many times.
const bufferAbove = 64 << 10

// rawFrom returns a reader of identity content from offset off and the
// pooled buffer it reads through (nil when none).
func (p *Part) rawFrom(off int64) (io.Reader, *bufio.Reader) {
	if p.data != nil {
		return bytes.NewReader(p.data[min(off, int64(len(p.data))):]), nil
	}
	n := max(p.end-p.start-off, 0)
	sr := io.NewSectionReader(p.src, p.start+off, n)
	if n <= bufferAbove {
		return sr, nil
	}
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(sr)
	return br, br
}

// decoder returns a reader of the content from its start and the pooled
// buffer it reads through (nil when none), which the caller returns with
// putBuf once done.
func (p *Part) decoder() (io.Reader, *bufio.Reader) {
	if p.decode == "" {
		return p.rawFrom(0)
	}
	sr := io.NewSectionReader(p.src, p.start, p.end-p.start)
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(sr)
	if p.decode == "base64" {
		return base64.NewDecoder(base64.StdEncoding, &base64Filter{r: br}), br
	}
	return quotedprintable.NewReader(br), br
}

func putBuf(br *bufio.Reader) {
	if br != nil {
		br.Reset(nil)
		bufPool.Put(br)
	}
}

// stream is decoder with the buffer lent until the Message's Release.
func (p *Part) stream() io.Reader { return p.lend(p.decoder()) }

func (p *Part) lend(r io.Reader, br *bufio.Reader) io.Reader {
	if br != nil {
		p.m.bufs = append(p.m.bufs, br)
	}
	return r
}

// Close returns the read buffers lent to the readers of the Message the
// part was opened from (Message.Release).
func (p *Part) Close() error {
	p.m.Release()
	return nil
}

// Reader returns a reader of the whole content from its start.
func (p *Part) Reader() io.Reader { return p.stream() }

// Range returns a reader of n octets of the content from offset off (n < 0:
// to the end); past the end it reads nothing. Raw content is read from
// the offset directly; decoded content is decoded from the start and the
// first off octets skipped.
func (p *Part) Range(off, n int64) (io.Reader, error) {
	if off < 0 {
		return nil, fmt.Errorf("message: negative offset %d", off)
	}
	if p.decode == "" {
		size := p.size
		if off >= size {
			return bytes.NewReader(nil), nil
		}
		if n < 0 || n > size-off {
			n = size - off
		}
		return io.LimitReader(p.lend(p.rawFrom(off)), n), nil
	}
	r := p.stream()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		if err == io.EOF {
			return bytes.NewReader(nil), nil
		}
		return nil, fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	if n < 0 {
		return &errMapper{r}, nil
	}
	return io.LimitReader(&errMapper{r}, n), nil
}

// ReadAt implements io.ReaderAt over the content. For decoded content each
// call decodes from the start: use NewReader to read sequentially.
func (p *Part) ReadAt(b []byte, off int64) (int, error) {
	if p.decode == "" {
		if off >= p.size {
			return 0, io.EOF
		}
		if p.data != nil {
			n := copy(b, p.data[off:])
			if n < len(b) {
				return n, io.EOF
			}
			return n, nil
		}
		k := min(int64(len(b)), p.size-off)
		n, err := p.src.ReadAt(b[:k], p.start+off)
		if err == nil && int64(n) < int64(len(b)) {
			err = io.EOF
		}
		return n, err
	}
	r, br := p.decoder()
	defer putBuf(br)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	n, err := io.ReadFull(r, b)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	} else if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	return n, err
}

// errMapper marks decoding failures met while reading as ErrBadEncoding.
type errMapper struct{ r io.Reader }

func (e *errMapper) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF && !errors.Is(err, ErrBadEncoding) {
		err = fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	return n, err
}

// base64Filter drops octets outside the base64 alphabet (line breaks,
// spaces), which RFC 2045 s6.8 says decoders ignore.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(b []byte) (int, error) {
	for {
		n, err := f.r.Read(b)
		j := 0
		for _, c := range b[:n] {
			b[j] = c
			j += int(b64Alphabet[c])
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// b64Alphabet is 1 for the octets of the base64 alphabet and "=".
var b64Alphabet = func() (t [256]byte) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = 1
	}
	return t
}()

// FilterHeader keeps (or, not, drops) the named fields of a header block
// and ends it with the empty line (RFC 9051 s6.4.5 HEADER.FIELDS). Field
// names compare case-insensitively.
func FilterHeader(hdr []byte, fields []string, not bool) []byte {
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

// Reader is an io.ReadSeeker over a part's content. Identity content is
// read from the position on; decoded content is decoded sequentially,
// and a seek backwards starts decoding again from the start.
type Reader struct {
	p    *Part
	pos  int64
	r    io.Reader // decoded stream at rpos
	rpos int64
	buf  *bufio.Reader
}

// NewReader returns a reader of the content from its start. Close it to
// return its read buffer.
func (p *Part) NewReader() *Reader { return &Reader{p: p} }

func (r *Reader) Read(b []byte) (int, error) {
	if r.r == nil || r.rpos > r.pos || r.p.decode == "" && r.rpos != r.pos {
		putBuf(r.buf)
		if r.p.decode == "" {
			r.r, r.buf = r.p.rawFrom(r.pos)
			r.rpos = r.pos
		} else {
			r.r, r.buf = r.p.decoder()
			r.rpos = 0
		}
	}
	if r.rpos < r.pos {
		k, err := io.CopyN(io.Discard, r.r, r.pos-r.rpos)
		r.rpos += k
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrBadEncoding, err)
		}
	}
	n, err := r.r.Read(b)
	r.rpos += int64(n)
	r.pos = r.rpos
	if err != nil && err != io.EOF {
		if r.p.decode != "" {
			err = fmt.Errorf("%w: %v", ErrBadEncoding, err)
		}
	}
	return n, err
}

// Seek implements io.Seeker; io.SeekEnd needs the size (Part.Size).
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		size, err := r.p.Size()
		if err != nil {
			return r.pos, err
		}
		offset += size
	default:
		return r.pos, fmt.Errorf("message: bad whence %d", whence)
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("message: negative position %d", offset)
	}
	r.pos = offset
	return offset, nil
}

// Close returns the read buffer.
func (r *Reader) Close() error {
	putBuf(r.buf)
	r.r, r.buf = nil, nil
	return nil
}
