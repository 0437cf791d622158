package smtp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// unstuff is the reference: RFC 5321 s4.5.2 on a whole body that ends
// with CRLF.CRLF.
func unstuff(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		if line[0] == '.' {
			if string(line) == ".\r\n" {
				break
			}
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out
}

func stuff(b []byte) []byte {
	var out []byte
	bol := true
	for _, c := range b {
		if bol && c == '.' {
			out = append(out, '.')
		}
		out = append(out, c)
		bol = c == '\n'
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return append(out, ".\r\n"...)
}

// readBody runs a dataConn with a buffer of size bufSize on wire as if
// go-smtp had read "DATA" and answered 354, and returns the body read by
// the fast path and what go-smtp reads after it.
func readBody(t testing.TB, wire []byte, bufSize int, max int64) ([]byte, error, []byte) {
	a, b := net.Pipe()
	go func() {
		b.Write(wire)
		b.Close()
	}()
	go io.Copy(io.Discard, b) // the 354
	c := &dataConn{Conn: a, br: bufio.NewReaderSize(a, bufSize), maxSize: max}
	defer c.Close()
	c.lastData = true
	c.Write([]byte("354 go ahead\r\n"))
	fb := c.takeData()
	if fb == nil {
		t.Fatal("not armed")
	}
	body, err := io.ReadAll(fb)
	fb.drain()
	rest, _ := io.ReadAll(c)
	return body, err, rest
}

// TestFastBody: dot-unstuffing with lines longer than the buffer, the
// terminator, what follows it handed back to go-smtp in command mode
// (after the ".\r\n" its own reader ends on), and the size limit.
func TestFastBody(t *testing.T) {
	msg := []byte("Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\n" + strings.Repeat("x", 100) + "\r\n. \r\nend")
	for _, size := range []int{16, 17, 64, 4096} {
		wire := append(stuff(msg), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"...)
		body, err, rest := readBody(t, wire, size, 0)
		if err != nil || !bytes.Equal(body, append(bytes.Clone(msg), '\r', '\n')) {
			t.Fatalf("buffer %d: body %q, %v", size, body, err)
		}
		if string(rest) != ".\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n" {
			t.Fatalf("buffer %d: after the body %q", size, rest)
		}
	}
	body, err, rest := readBody(t, append(stuff(msg), "QUIT\r\n"...), 64, 20)
	if err == nil || len(body) > 64 || string(rest) != ".\r\nQUIT\r\n" {
		t.Fatalf("over the limit: %d bytes, %v, then %q", len(body), err, rest)
	}
	_, err, _ = readBody(t, []byte("Subject: cut\r\nno end"), 64, 0)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("cut body: %v", err)
	}
}

// FuzzFastBody: the fast path reads what the reference unstuffing reads.
func FuzzFastBody(f *testing.F) {
	f.Add([]byte("a\r\n.b\r\n..\r\n"), 16)
	f.Add([]byte(".\r\n"), 4)
	f.Add([]byte("x\ny\r.\r\n.\r\r\n"), 32)
	f.Fuzz(func(t *testing.T, msg []byte, size int) {
		size = 16 + size%64
		if size < 16 {
			size = 16
		}
		wire := stuff(msg)
		want := unstuff(wire)
		body, err, _ := readBody(t, wire, size, 0)
		if err != nil || !bytes.Equal(body, want) {
			t.Fatalf("buffer %d: got %q (%v), want %q", size, body, err, want)
		}
	})
}

// TestLMTPDataFastPath: smtplib's DATA goes through the fast path; a
// client that sends its body before the 354 and pipelines the next
// transaction after the terminator is served by go-smtp's reader; both
// store the same bytes.
func TestLMTPDataFastPath(t *testing.T) {
	needPython(t)
	st := testStore(t)
	account(t, st, "alice", vmstore.Quota{})
	l := startLMTP(t, st, LMTPConfig{})
	host, port := hostPort(t, l)
	msg := []byte("Subject: dots\r\n\r\n.leading\r\n..two\r\n" + strings.Repeat("0123456789", 10000) + "\r\nend\r\n")
	before := fastBodies.Load()
	r := sendLMTP(t, host, port, 0, "data", 0, msg, "alice@example.net")
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5"}) || fastBodies.Load() != before+1 {
		t.Fatalf("DATA: %v, fast bodies %d", got, fastBodies.Load()-before)
	}
	// Everything in one write: body before the 354, then a second
	// transaction pipelined after the terminator.
	conn, err := net.Dial("tcp", host+":"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var w bytes.Buffer
	w.WriteString("LHLO x\r\n")
	for i := 0; i < 2; i++ {
		w.WriteString("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.net>\r\nDATA\r\n")
		w.Write(stuff(msg))
	}
	w.WriteString("QUIT\r\n")
	conn.Write(w.Bytes())
	replies, _ := io.ReadAll(conn)
	if n := strings.Count(string(replies), "250 2.1.5"); n != 2 {
		t.Fatalf("pipelined: %d deliveries\n%s", n, replies)
	}
	ms := inbox(t, st, "alice")
	if len(ms) != 3 {
		t.Fatalf("%d messages", len(ms))
	}
	for i := range ms {
		if b := raw(t, st, &ms[i]); !bytes.HasSuffix(b, msg) {
			t.Fatalf("message %d: %q...", i, b[len(b)-min(len(b), 80):])
		}
	}
}
