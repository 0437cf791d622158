package smtp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	gosmtp "github.com/emersion/go-smtp"
)

// go-smtp reads a DATA body one byte at a time through a state machine
// (and scans every byte again for its line-length limit): for a voicemail
// of 650 kB that was most of the CPU of a deposit. It offers no way to
// supply another reader, so the LMTP listener's connections are wrapped in
// a dataConn that can take the body over:
//
//   - In command mode it hands go-smtp at most one line per Read, so that
//     when go-smtp answers 354 to a DATA line, its own buffer is empty:
//     everything after that line is still in the dataConn's buffer.
//     (The chunk after a BDAT line is handed over in bulk, as go-smtp
//     reads it.)
//   - When go-smtp writes a 354 right after reading a DATA line, the
//     connection is armed: LMTPData takes the body from it (takeData),
//     read a line at a time from the buffer and dot-unstuffed in bulk,
//     up to the terminating ".\r\n".
//   - Then go-smtp's own data reader is given just ".\r\n": an empty body
//     that ends at once; what the client sent after the terminator
//     (pipelined commands) follows in command mode.
//
// If the connection was not armed (a client that sent the body before the
// 354), go-smtp's reader is used as it is.

type dataListener struct {
	net.Listener
	maxSize int64
}

func (l *dataListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dataConn{Conn: c, br: bufio.NewReaderSize(c, 64<<10), maxSize: l.maxSize}, nil
}

const (
	modeCommand    = iota
	modeRaw        // a BDAT chunk
	modeTerminator // ".\r\n" for go-smtp's data reader
)

type dataConn struct {
	net.Conn
	br      *bufio.Reader
	maxSize int64

	mode     int
	raw      int64  // bytes of a BDAT chunk left
	line     []byte // start of the command line being handed over
	lineDone bool   // line holds a whole line
	term     []byte

	mu       sync.Mutex
	lastData bool // the last Read completed a "DATA" line
	armed    bool
	err      error
}

// Activate forwards to the listener's limits (netlimit).
func (c *dataConn) Activate() { Activate(c.Conn) }

// Read serves go-smtp. The reading side (go-smtp's reader, or a fastBody
// while go-smtp waits for LMTPData) is one goroutine at a time and owns
// br and the mode; mu guards what Write shares (lastData, armed) and err,
// and is never held while reading from the network.
func (c *dataConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	switch c.mode {
	case modeTerminator:
		n := copy(p, c.term)
		c.term = c.term[n:]
		if len(c.term) == 0 {
			c.mode = modeCommand
		}
		return n, nil
	case modeRaw:
		n, err := c.br.Read(p[:min(int64(len(p)), c.raw)])
		c.raw -= int64(n)
		if c.raw == 0 {
			c.mode = modeCommand
		}
		return n, err
	}
	// Command mode: at most the rest of one line.
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	n := len(buf)
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		n = i + 1
	}
	n = min(n, len(p))
	copy(p, buf[:n])
	_, _ = c.br.Discard(n)
	if c.lineDone {
		c.line, c.lineDone = c.line[:0], false
	}
	if len(c.line) < 64 {
		c.line = append(c.line, p[:min(n, 64-len(c.line))]...)
	}
	isData := false
	if p[n-1] == '\n' {
		c.lineDone = true
		cmd := strings.TrimSpace(string(c.line))
		switch {
		case strings.EqualFold(cmd, "DATA"):
			isData = true
		case len(cmd) > 5 && strings.EqualFold(cmd[:5], "BDAT "):
			if size, ok := bdatSize(cmd); ok && size > 0 {
				c.mode, c.raw = modeRaw, size
			}
		}
	}
	c.mu.Lock()
	c.lastData = isData
	c.mu.Unlock()
	return n, nil
}

// bdatSize parses a BDAT command as go-smtp does (a chunk follows it
// exactly when go-smtp accepts its arguments).
func bdatSize(cmd string) (int64, bool) {
	f := strings.Fields(cmd)
	if len(f) < 2 || len(f) > 3 || (len(f) == 3 && !strings.EqualFold(f[2], "LAST")) {
		return 0, false
	}
	n, err := strconv.ParseUint(f[1], 10, 32)
	return int64(n), err == nil
}

func (c *dataConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.lastData && bytes.HasPrefix(p, []byte("354")) {
		c.armed = true
	}
	c.lastData = false
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// takeData returns the body reader when the connection is armed (a DATA
// answered with 354, nothing of the body handed to go-smtp), else nil.
func (c *dataConn) takeData() *fastBody {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return nil
	}
	c.armed = false
	fastBodies.Add(1)
	return &fastBody{c: c, bol: true}
}

// fastBody reads a dot-stuffed body up to its terminator.
type fastBody struct {
	c    *dataConn
	bol  bool   // at the start of a line
	cur  []byte // unread output of the current line
	size int64
	done bool
	err  error
}

func (f *fastBody) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.done {
			return 0, io.EOF
		}
		f.next()
	}
	if f.c.maxSize > 0 && f.size > f.c.maxSize {
		// Refused: the rest of the body is read to its end first, so
		// the replies follow it.
		f.drain()
		if f.err == nil {
			f.err = gosmtp.ErrDataTooLarge
		}
		return 0, f.err
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// next reads the next line (or a piece of a long one) into cur.
func (f *fastBody) next() {
	line, err := f.c.br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		f.c.mu.Lock()
		f.c.err = err
		f.c.mu.Unlock()
		f.err = io.ErrUnexpectedEOF
		return
	}
	if f.bol && len(line) > 0 && line[0] == '.' {
		if bytes.Equal(line, []byte(".\r\n")) {
			f.done = true
			f.c.mode, f.c.term = modeTerminator, []byte(".\r\n")
			return
		}
		line = line[1:]
	}
	f.bol = err == nil // ended with '\n'
	f.cur = line
	f.size += int64(len(line))
}

// drain consumes the rest of the body (after a refusal), up to its
// terminator or a broken connection.
func (f *fastBody) drain() {
	for !f.done && f.err != io.ErrUnexpectedEOF {
		f.cur = nil
		f.next()
	}
}

// fastBodies counts bodies read by the fast path (tests).
var fastBodies atomic.Int64
