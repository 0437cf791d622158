package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Defaults of the decoder limits.
const (
	DefaultMaxLine    = 64 * 1024
	DefaultMaxLiteral = 64 * 1024 * 1024
	DefaultMaxDepth   = 32
	// MaxNonSyncLiteral is the LITERAL- bound (RFC 7888 s5).
	MaxNonSyncLiteral = 4096
)

// Decoder reads client commands. A command is a sequence of line segments
// separated by literals: each segment ends with CRLF, and a segment that ends
// with a literal marker ({n}, {n+}, ~{n}, ~{n+}) is followed by n octets and
// the next segment. Parsing methods consume the current segment; OpenLiteral
// and CloseLiteral cross a literal so that large literals (APPEND) are
// streamed instead of being held in memory.
//
// The zero limits take the defaults. A Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxLine bounds a command's octets outside literals (RFC 7162 s4 asks
	// for at least 8 KiB; we accept 64 KiB by default).
	MaxLine int
	// MaxLiteral bounds one literal (APPENDLIMIT for APPEND data).
	MaxLiteral int64
	// MaxNonSync, if > 0, bounds non-synchronizing literals (LITERAL-).
	MaxNonSync int64
	// MaxDepth bounds the nesting of parenthesized lists.
	MaxDepth int
	// Continue is called before the octets of a synchronizing literal are
	// read; it must send and flush the "+" continuation request.
	Continue func() error

	src   io.Reader
	r     *bufio.Reader // nil while parked
	seg   []byte
	pos   int
	used  int
	depth int
	lit   io.LimitedReader
	inLit bool
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{src: r}
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// Reset switches the underlying reader (STARTTLS, COMPRESS). Octets already
// buffered are dropped; callers check Buffered first.
func (d *Decoder) Reset(r io.Reader) {
	d.src = r
	if d.r != nil {
		d.r.Reset(r)
	}
}

// Buffered reports octets read from the connection but not yet parsed.
func (d *Decoder) Buffered() int {
	if d.r == nil {
		return 0
	}
	return d.r.Buffered()
}

// TakeBuffered returns (and drops) the octets read ahead of the current
// command, for a layer that starts under them (COMPRESS: a client may start
// compressing right after its COMPRESS command).
func (d *Decoder) TakeBuffered() []byte {
	if d.r == nil || d.r.Buffered() == 0 {
		return nil
	}
	b, _ := d.r.Peek(d.r.Buffered())
	b = bytes.Clone(b)
	d.r.Discard(len(b))
	return b
}

// Park gives the read buffer back to a shared pool when nothing is
// buffered, so that an idle connection holds no buffer while it waits; the
// next read takes one again. A session parks before it waits for a command
// or for DONE.
func (d *Decoder) Park() {
	if d.r == nil || d.inLit || d.r.Buffered() > 0 {
		return
	}
	d.r.Reset(nil)
	readerPool.Put(d.r)
	d.r = nil
	if cap(d.seg) > 1024 {
		d.seg = nil
	}
}

// Parked reports whether the decoder holds no read buffer (and so nothing
// read ahead).
func (d *Decoder) Parked() bool { return d.r == nil }

// Wait blocks until the client sends something: when parked, it reads the
// first octet (without a buffer) and keeps it for the next command.
func (d *Decoder) Wait() error { return d.acquire() }

// acquire takes a read buffer when parked. It first waits for one octet
// without any buffer, so a parked connection stays small while it waits.
func (d *Decoder) acquire() error {
	if d.r != nil {
		return nil
	}
	var one [1]byte
	for {
		n, err := d.src.Read(one[:])
		if n == 1 {
			break
		}
		if err != nil {
			return err
		}
	}
	d.r = readerPool.Get().(*bufio.Reader)
	d.r.Reset(io.MultiReader(bytes.NewReader(one[:]), d.src))
	return nil
}

func (d *Decoder) maxLine() int {
	if d.MaxLine > 0 {
		return d.MaxLine
	}
	return DefaultMaxLine
}

func (d *Decoder) maxLiteral() int64 {
	if d.MaxLiteral > 0 {
		return d.MaxLiteral
	}
	return DefaultMaxLiteral
}

func (d *Decoder) maxDepth() int {
	if d.MaxDepth > 0 {
		return d.MaxDepth
	}
	return DefaultMaxDepth
}

// readSegment reads one line into seg, without CRLF (a bare LF is accepted).
func (d *Decoder) readSegment() error {
	d.seg = d.seg[:0]
	d.pos = 0
	limit := d.maxLine()
	tooLong := false
	for {
		chunk, err := d.r.ReadSlice('\n')
		if !tooLong {
			if d.used+len(d.seg)+len(chunk) > limit {
				tooLong = true
				d.seg = d.seg[:0]
			} else {
				d.seg = append(d.seg, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && (len(d.seg) > 0 || tooLong) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		break
	}
	if tooLong {
		d.seg = d.seg[:0]
		return ErrLineTooLong
	}
	d.seg = bytes.TrimSuffix(d.seg, []byte("\n"))
	d.seg = bytes.TrimSuffix(d.seg, []byte("\r"))
	d.used += len(d.seg) + 2
	return nil
}

// Begin starts a new command: it skips what remains of the previous one's
// current segment and reads the first line.
func (d *Decoder) Begin() error {
	if err := d.acquire(); err != nil {
		return err
	}
	d.used = 0
	d.depth = 0
	d.inLit = false
	return d.readSegment()
}

// ReadLine reads one raw line (IDLE's DONE, AUTHENTICATE responses), bounded
// by MaxLine.
func (d *Decoder) ReadLine() (string, error) {
	if err := d.acquire(); err != nil {
		return "", err
	}
	d.used = 0
	if err := d.readSegment(); err != nil {
		return "", err
	}
	return string(d.seg), nil
}

// Line returns the current segment, for logging.
func (d *Decoder) Line() []byte { return d.seg }

func (d *Decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Pos: d.pos, Msg: fmt.Sprintf(format, args...)}
}

// Peek returns the next octet of the segment, or 0 at its end.
func (d *Decoder) Peek() byte {
	if d.pos < len(d.seg) {
		return d.seg[d.pos]
	}
	return 0
}

// PeekFold reports whether the segment continues with s (ASCII
// case-insensitively) without consuming it.
func (d *Decoder) PeekFold(s string) bool {
	rest := d.seg[d.pos:]
	return len(rest) >= len(s) && bytes.EqualFold(rest[:len(s)], []byte(s))
}

// AtEnd reports whether the command is complete (nothing left in the segment).
func (d *Decoder) AtEnd() bool { return d.pos >= len(d.seg) }

// Consume consumes c if it comes next.
func (d *Decoder) Consume(c byte) bool {
	if d.pos < len(d.seg) && d.seg[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// ConsumeFold consumes s (case-insensitively) if it comes next.
func (d *Decoder) ConsumeFold(s string) bool {
	if d.PeekFold(s) {
		d.pos += len(s)
		return true
	}
	return false
}

// Expect consumes c or fails.
func (d *Decoder) Expect(c byte) error {
	if !d.Consume(c) {
		return d.errorf("expected %q", c)
	}
	return nil
}

// SP consumes one space.
func (d *Decoder) SP() error { return d.Expect(' ') }

// End checks that the command is complete.
func (d *Decoder) End() error {
	if !d.AtEnd() {
		return d.errorf("unexpected %q at end of command", d.seg[d.pos])
	}
	return nil
}

// TakeWhile consumes octets while ok holds and returns them.
func (d *Decoder) TakeWhile(ok func(byte) bool) string {
	start := d.pos
	for d.pos < len(d.seg) && ok(d.seg[d.pos]) {
		d.pos++
	}
	return string(d.seg[start:d.pos])
}

// Rest consumes and returns the remainder of the segment.
func (d *Decoder) Rest() string {
	s := string(d.seg[d.pos:])
	d.pos = len(d.seg)
	return s
}

// IsAtomChar reports an ATOM-CHAR (RFC 9051 s9).
func IsAtomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// IsAstringChar reports an ASTRING-CHAR: ATOM-CHAR or "]".
func IsAstringChar(c byte) bool { return c == ']' || IsAtomChar(c) }

// IsListChar reports a list-char of LIST patterns: ATOM-CHAR, "%", "*", "]".
func IsListChar(c byte) bool {
	return c == '%' || c == '*' || c == ']' || IsAtomChar(c)
}

// Atom reads an atom (one or more ATOM-CHARs).
func (d *Decoder) Atom() (string, error) {
	s := d.TakeWhile(IsAtomChar)
	if s == "" {
		return "", d.errorf("expected atom")
	}
	return s, nil
}

// Number reads a 32-bit number.
func (d *Decoder) Number() (uint32, error) {
	s := d.TakeWhile(isDigit)
	if s == "" {
		return 0, d.errorf("expected number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, d.errorf("number out of range")
	}
	return uint32(n), nil
}

// NZNumber reads a non-zero 32-bit number.
func (d *Decoder) NZNumber() (uint32, error) {
	n, err := d.Number()
	if err == nil && n == 0 {
		err = d.errorf("expected non-zero number")
	}
	return n, err
}

// Number64 reads a 63-bit number (number64, mod-sequence-valzer).
func (d *Decoder) Number64() (uint64, error) {
	s := d.TakeWhile(isDigit)
	if s == "" {
		return 0, d.errorf("expected number")
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, d.errorf("number out of range")
	}
	return n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Quoted reads a quoted string (RFC 9051 s4.3): backslash escapes only '"'
// and '\'; no CR, LF or NUL. 8-bit octets are kept (UTF-8, RFC 9051).
func (d *Decoder) Quoted() (string, error) {
	if err := d.Expect('"'); err != nil {
		return "", err
	}
	var b []byte
	for {
		if d.pos >= len(d.seg) {
			return "", d.errorf("unterminated quoted string")
		}
		c := d.seg[d.pos]
		d.pos++
		switch c {
		case '"':
			return string(b), nil
		case '\\':
			if d.pos >= len(d.seg) || (d.seg[d.pos] != '"' && d.seg[d.pos] != '\\') {
				return "", d.errorf("bad escape in quoted string")
			}
			b = append(b, d.seg[d.pos])
			d.pos++
		case 0:
			return "", d.errorf("NUL in quoted string")
		default:
			b = append(b, c)
		}
	}
}

// Flag reads a flag: an atom, or "\" followed by an atom (system flags),
// or "\*" when allowStar (PERMANENTFLAGS).
func (d *Decoder) Flag(allowStar bool) (string, error) {
	if d.Consume('\\') {
		if allowStar && d.Consume('*') {
			return `\*`, nil
		}
		a, err := d.Atom()
		return `\` + a, err
	}
	return d.Atom()
}

// Literal describes a literal marker at the end of the current segment.
type Literal struct {
	Size   int64
	Sync   bool // {n}: the client waits for "+"
	Binary bool // literal8 (~{n}, RFC 3516/4466)
}

// PeekLiteral reports whether a literal marker ({n}, {n+}, ~{n}, ~{n+})
// comes next and ends the segment, without consuming it.
func (d *Decoder) PeekLiteral() (Literal, bool) {
	rest := d.seg[d.pos:]
	var l Literal
	if len(rest) > 0 && rest[0] == '~' {
		l.Binary = true
		rest = rest[1:]
	}
	if len(rest) < 3 || rest[0] != '{' || rest[len(rest)-1] != '}' {
		return l, false
	}
	num := rest[1 : len(rest)-1]
	l.Sync = true
	if len(num) > 0 && num[len(num)-1] == '+' {
		l.Sync = false
		num = num[:len(num)-1]
	}
	if len(num) == 0 || len(num) > 19 {
		return l, false
	}
	for _, c := range num {
		if !isDigit(c) {
			return l, false
		}
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return l, false
	}
	l.Size = n
	return l, true
}

// OpenLiteral consumes a literal marker, checks the limits, sends the
// continuation for a synchronizing literal and returns a reader of exactly
// Size octets. The caller reads it (fully or not) and calls CloseLiteral.
func (d *Decoder) OpenLiteral(allowBinary bool) (io.Reader, Literal, error) {
	l, ok := d.PeekLiteral()
	if !ok {
		return nil, l, d.errorf("expected literal")
	}
	if l.Binary && !allowBinary {
		return nil, l, d.errorf("literal8 not allowed here")
	}
	max := d.maxLiteral()
	if !l.Sync && d.MaxNonSync > 0 && d.MaxNonSync < max {
		max = d.MaxNonSync
	}
	if l.Size > max {
		return nil, l, &LiteralTooBigError{Size: l.Size, Max: max, Sync: l.Sync}
	}
	d.pos = len(d.seg)
	if l.Sync && d.Continue != nil {
		if err := d.Continue(); err != nil {
			return nil, l, err
		}
	}
	d.lit = io.LimitedReader{R: d.r, N: l.Size}
	d.inLit = true
	return &d.lit, l, nil
}

// CloseLiteral discards unread literal octets and reads the segment that
// follows the literal.
func (d *Decoder) CloseLiteral() error {
	if !d.inLit {
		return errNoLiteral
	}
	d.inLit = false
	if d.lit.N > 0 {
		if _, err := io.Copy(io.Discard, &d.lit); err != nil {
			return err
		}
		if d.lit.N > 0 {
			return io.ErrUnexpectedEOF
		}
	}
	return d.readSegment()
}

// readLiteral reads a literal into memory.
func (d *Decoder) readLiteral(allowBinary bool) ([]byte, error) {
	r, l, err := d.OpenLiteral(allowBinary)
	if err != nil {
		return nil, err
	}
	b := make([]byte, l.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, d.CloseLiteral()
}

// String reads a quoted string or a literal (into memory).
func (d *Decoder) String() ([]byte, error) {
	return d.string(false)
}

// String8 is String that also accepts literal8.
func (d *Decoder) String8() ([]byte, error) {
	return d.string(true)
}

func (d *Decoder) string(allowBinary bool) ([]byte, error) {
	if d.Peek() == '"' {
		s, err := d.Quoted()
		return []byte(s), err
	}
	if _, ok := d.PeekLiteral(); ok {
		return d.readLiteral(allowBinary)
	}
	return nil, d.errorf("expected string")
}

// Astring reads an astring: 1*ASTRING-CHAR or a string.
func (d *Decoder) Astring() (string, error) {
	if c := d.Peek(); c == '"' || c == '{' || c == '~' {
		if c != '~' || bytes.HasPrefix(d.seg[d.pos:], []byte("~{")) {
			b, err := d.String()
			return string(b), err
		}
	}
	s := d.TakeWhile(IsAstringChar)
	if s == "" {
		return "", d.errorf("expected astring")
	}
	return s, nil
}

// Nstring reads NIL or a string; nil means NIL.
func (d *Decoder) Nstring() ([]byte, error) {
	if d.PeekFold("NIL") {
		d.pos += 3
		return nil, nil
	}
	b, err := d.String()
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// List parses "(" [item *(SP item)] ")", calling item for each element. The
// nesting depth is bounded by MaxDepth.
func (d *Decoder) List(item func() error) error {
	if err := d.Expect('('); err != nil {
		return err
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > d.maxDepth() {
		return d.errorf("lists nested too deeply")
	}
	if d.Consume(')') {
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		if d.Consume(')') {
			return nil
		}
		if err := d.SP(); err != nil {
			return d.errorf("expected SP or \")\"")
		}
	}
}

// SeqSet reads a sequence-set (RFC 9051 s9) with "*" as 0, or "$" (the saved
// search result, RFC 5182), reported by dollar.
func (d *Decoder) SeqSet() (set imap.SeqSet, dollar bool, err error) {
	if d.Consume('$') {
		return nil, true, nil
	}
	for {
		var r imap.SeqRange
		if r.Start, err = d.seqNumber(); err != nil {
			return nil, false, err
		}
		r.Stop = r.Start
		if d.Consume(':') {
			if r.Stop, err = d.seqNumber(); err != nil {
				return nil, false, err
			}
		}
		set = append(set, r)
		if !d.Consume(',') {
			return set, false, nil
		}
	}
}

func (d *Decoder) seqNumber() (uint32, error) {
	if d.Consume('*') {
		return 0, nil
	}
	return d.NZNumber()
}

// Value is a generic parsed argument: exactly one field is set (List may be
// an empty non-nil slice). Used for extension parameters we only pass on and
// for fuzzing the decoder.
type Value struct {
	Atom   string
	String []byte
	List   []Value
	IsList bool
	IsNil  bool
}

// Value reads an atom (including number and NIL), a string, a literal8 or a
// parenthesized list of values.
func (d *Decoder) Value() (Value, error) {
	switch c := d.Peek(); {
	case c == '(':
		v := Value{IsList: true, List: []Value{}}
		err := d.List(func() error {
			x, err := d.Value()
			v.List = append(v.List, x)
			return err
		})
		return v, err
	case c == '"' || c == '{' || (c == '~' && bytes.HasPrefix(d.seg[d.pos:], []byte("~{"))):
		b, err := d.String8()
		if b == nil {
			b = []byte{}
		}
		return Value{String: b}, err
	default:
		start := d.pos
		d.Consume('\\')
		d.TakeWhile(func(c byte) bool { return IsAstringChar(c) || c == '*' || c == '%' })
		s := string(d.seg[start:d.pos])
		if s == "" {
			return Value{}, d.errorf("expected value")
		}
		if len(s) == 3 && bytes.EqualFold([]byte(s), []byte("NIL")) {
			return Value{IsNil: true}, nil
		}
		return Value{Atom: s}, nil
	}
}

// SkipCommand discards the rest of a command after a syntax error: octets of
// non-synchronizing literals the client sends regardless, and the segments
// after them. A synchronizing literal is not skipped: the client waits for
// a continuation that is not sent.
func (d *Decoder) SkipCommand() error {
	if d.inLit {
		d.inLit = false
		if _, err := io.Copy(io.Discard, &d.lit); err != nil {
			return err
		}
		if err := d.readSegment(); err != nil {
			return err
		}
	}
	for {
		d.pos = 0
		l, ok := d.lastLiteral()
		if !ok || l.Sync {
			d.pos = len(d.seg)
			return nil
		}
		if _, err := io.CopyN(io.Discard, d.r, l.Size); err != nil {
			return err
		}
		if err := d.readSegment(); err != nil {
			return err
		}
	}
}

// PendingLiteral reports the literal marker that ends the current segment,
// if any: the literal a client sends (non-synchronizing) or waits to send
// after what has been parsed so far. A handler refusing a command midway
// decides from it whether the octets in flight are worth reading.
func (d *Decoder) PendingLiteral() (Literal, bool) {
	if d.inLit {
		return Literal{}, false
	}
	return d.lastLiteral()
}

// lastLiteral finds a literal marker ending the current segment.
func (d *Decoder) lastLiteral() (Literal, bool) {
	i := bytes.LastIndexByte(d.seg, '{')
	if i < 0 {
		return Literal{}, false
	}
	if i > 0 && d.seg[i-1] == '~' {
		i--
	}
	save := d.pos
	d.pos = i
	l, ok := d.PeekLiteral()
	d.pos = save
	return l, ok
}
