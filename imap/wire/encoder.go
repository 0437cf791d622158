package wire

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"sync"
)

// Encoder writes server responses. Errors are sticky: after the first write
// error every method is a no-op and Err reports it, so that response builders
// need not check each call.
type Encoder struct {
	dst io.Writer
	w   *bufio.Writer // nil while parked
	err error
	// UTF8 allows 8-bit octets in quoted strings (IMAP4rev2, UTF8=ACCEPT).
	// Otherwise strings with 8-bit octets are sent as literals.
	UTF8 bool
}

// NewEncoder returns an encoder writing to w through a 4 KiB buffer.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{dst: w}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// buf returns the write buffer, taking one from the pool when parked.
func (e *Encoder) buf() *bufio.Writer {
	if e.w == nil {
		e.w = writerPool.Get().(*bufio.Writer)
		e.w.Reset(e.dst)
	}
	return e.w
}

// Park flushes and gives the write buffer back to the pool (idle sessions
// hold none).
func (e *Encoder) Park() error {
	if e.w == nil {
		return e.err
	}
	e.Flush()
	e.w.Reset(nil)
	writerPool.Put(e.w)
	e.w = nil
	return e.err
}

// Reset switches the underlying writer (STARTTLS, COMPRESS); pending output
// is flushed first.
func (e *Encoder) Reset(w io.Writer) {
	e.Flush()
	e.dst = w
	if e.w != nil {
		e.w.Reset(w)
	}
}

// Err returns the first write error.
func (e *Encoder) Err() error { return e.err }

// Flush sends buffered output.
func (e *Encoder) Flush() error {
	if e.err == nil && e.w != nil {
		e.err = e.w.Flush()
	}
	return e.err
}

// Raw writes s as is.
func (e *Encoder) Raw(s string) *Encoder {
	if e.err == nil {
		_, e.err = e.buf().WriteString(s)
	}
	return e
}

// Byte writes one octet.
func (e *Encoder) Byte(c byte) *Encoder {
	if e.err == nil {
		e.err = e.buf().WriteByte(c)
	}
	return e
}

// SP writes a space.
func (e *Encoder) SP() *Encoder { return e.Byte(' ') }

// CRLF ends a response line.
func (e *Encoder) CRLF() *Encoder { return e.Raw("\r\n") }

// Number writes a decimal number.
func (e *Encoder) Number(n uint64) *Encoder {
	if e.err == nil {
		var buf [20]byte
		_, e.err = e.buf().Write(strconv.AppendUint(buf[:0], n, 10))
	}
	return e
}

// quotable reports whether s can be sent as a quoted string.
func (e *Encoder) quotable(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\r' || c == '\n' || (c >= 0x80 && !e.UTF8) {
			return false
		}
	}
	return true
}

// String writes s as a quoted string or, if it cannot be quoted, a literal.
func (e *Encoder) String(s string) *Encoder {
	if !e.quotable(s) {
		return e.Literal(int64(len(s)), bytes.NewReader([]byte(s)), false)
	}
	e.Byte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			e.Byte('\\')
		}
		e.Byte(s[i])
	}
	return e.Byte('"')
}

// Nstring writes NIL for nil, a string otherwise.
func (e *Encoder) Nstring(s *string) *Encoder {
	if s == nil {
		return e.Raw("NIL")
	}
	return e.String(*s)
}

// NstringEmptyNil writes NIL for "", a string otherwise (ENVELOPE fields).
func (e *Encoder) NstringEmptyNil(s string) *Encoder {
	if s == "" {
		return e.Raw("NIL")
	}
	return e.String(s)
}

// Astring writes s as an atom when it is one, else as a string.
func (e *Encoder) Astring(s string) *Encoder {
	if s != "" && len(s) < 256 && !bytes.EqualFold([]byte(s), []byte("NIL")) {
		ok := true
		for i := 0; i < len(s); i++ {
			if !IsAstringChar(s[i]) {
				ok = false
				break
			}
		}
		if ok {
			return e.Raw(s)
		}
	}
	return e.String(s)
}

// Literal writes a literal of size octets read from r ({n} or, binary,
// literal8 ~{n}). The octets are copied straight from r to the connection;
// if r ends early the connection cannot continue and the error is kept.
func (e *Encoder) Literal(size int64, r io.Reader, binary bool) *Encoder {
	if binary {
		e.Byte('~')
	}
	e.Byte('{').Number(uint64(size)).Raw("}\r\n")
	if e.err != nil {
		return e
	}
	var n int64
	if size <= bigLiteral {
		n, e.err = io.CopyN(e.buf(), r, size)
	} else {
		// Large bodies bypass the 4 KiB buffer and are read in big pieces:
		// the store's blob reader fetches a 256 KiB chunk per read.
		if e.err = e.Flush(); e.err != nil {
			return e
		}
		bp := copyPool.Get().(*[]byte)
		n, e.err = io.CopyBuffer(struct{ io.Writer }{e.dst}, io.LimitReader(r, size), *bp)
		copyPool.Put(bp)
		if e.err == nil && n < size {
			e.err = io.ErrUnexpectedEOF
		}
	}
	if e.err == io.EOF && n < size {
		e.err = io.ErrUnexpectedEOF
	}
	return e
}

// bigLiteral is the size above which Literal copies in copyBufSize pieces.
const (
	bigLiteral  = 64 << 10
	copyBufSize = 256 << 10
)

var copyPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
