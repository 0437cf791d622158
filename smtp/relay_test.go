package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/lemonvox/lemonvox/vmstore"
)

// sinkBackend is a go-smtp server that keeps what it receives.
type sinkBackend struct {
	mu   sync.Mutex
	msgs [][]byte
	body []string
}

func (b *sinkBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &sinkSession{b: b}, nil
}

type sinkSession struct {
	b    *sinkBackend
	body string
}

func (s *sinkSession) AuthMechanisms() []string { return nil }
func (s *sinkSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if opts != nil {
		s.body = string(opts.Body)
	}
	return nil
}
func (s *sinkSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, b)
	s.b.body = append(s.b.body, s.body)
	s.b.mu.Unlock()
	return err
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

func startGoSink(t *testing.T, binary bool) (*sinkBackend, string) {
	t.Helper()
	be := &sinkBackend{}
	srv := gosmtp.NewServer(be)
	srv.EnableBINARYMIME = binary
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return be, ln.Addr().String()
}

// TestRelayBinaryMIME: a BINARYMIME message (NULs, bare CR and LF, lines
// beginning with a dot) reaches a CHUNKING+BINARYMIME smarthost byte for
// byte with BDAT; a smarthost without BINARYMIME gets nothing and the
// client 554 5.6.3.
func TestRelayBinaryMIME(t *testing.T) {
	body := "Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: audio/basic\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		string(bytes.Repeat([]byte{0, '\r', 1, '\n', '.', '\r', '\n', '.', 0xff}, 500))
	for _, binary := range []bool{true, false} {
		be, addr := startGoSink(t, binary)
		e := newEnv(t, func(s *Submission) { s.Relay = &Relay{Addr: addr}; s.AllowInsecureAuth = true })
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		read := func() string {
			var all string
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				all += l
				if l[3] == ' ' {
					return all
				}
			}
		}
		read()
		fmt.Fprintf(c, "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldC1wYXNzLTE=\r\nMAIL FROM:<alice@vm.example.net> BODY=BINARYMIME\r\nRCPT TO:<far@remote.example>\r\nBDAT %d LAST\r\n%s", len(body), body)
		var last string
		for i := 0; i < 5; i++ {
			last = read()
		}
		c.Close()
		if !binary {
			if !strings.HasPrefix(last, "554 5.6.3") {
				t.Fatalf("without BINARYMIME: %q", last)
			}
			if len(be.msgs) != 0 {
				t.Fatal("the smarthost got the message")
			}
			continue
		}
		if !strings.HasPrefix(last, "250") {
			t.Fatalf("reply %q", last)
		}
		be.mu.Lock()
		if len(be.msgs) != 1 || !bytes.HasSuffix(be.msgs[0], []byte(body)) || be.body[0] != "BINARYMIME" {
			t.Fatalf("smarthost got %d messages (%v)", len(be.msgs), be.body)
		}
		be.mu.Unlock()
	}
}

// TestRelayRetry: while the smarthost is down, a message to a local and a
// remote recipient is accepted, the local copy stored once, the remote
// one queued (in the sender's Outbox); when the smarthost is up, the next
// attempt delivers it and the queue empties. A recipient the smarthost
// refuses comes back to the sender as a delivery status notification.
func TestRelayRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := newEnv(t, func(s *Submission) {
		s.Relay = &Relay{Addr: addr}
		s.AllowInsecureAuth = true
		s.RetryInterval = 100 * time.Millisecond
	})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	read := func() string {
		var all string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			all += l
			if l[3] == ' ' {
				return all
			}
		}
	}
	read()
	msg := "Subject: retry\r\n\r\nbody\r\n"
	fmt.Fprintf(c, "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldC1wYXNzLTE=\r\nMAIL FROM:<alice@vm.example.net>\r\nRCPT TO:<bob@vm.example.net>\r\nRCPT TO:<far@remote.example>\r\nBDAT %d LAST\r\n%s", len(msg), msg)
	var last string
	for i := 0; i < 6; i++ {
		last = read()
	}
	if !strings.HasPrefix(last, "250") {
		t.Fatalf("reply %q", last)
	}
	es, err := e.st.QueueEntries("alice")
	if err != nil || len(es) != 1 || len(es[0].Rcpts) != 1 || es[0].Rcpts[0] != "far@remote.example" {
		t.Fatalf("queue: %+v %v", es, err)
	}
	be := &sinkBackend{}
	srv := gosmtp.NewServer(be)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("SKIP: port %s taken meanwhile: %v", addr, err)
	}
	go srv.Serve(ln2)
	defer srv.Close()
	waitFor(t, "retry delivered", func() bool { es, _ := e.st.QueueEntries(""); return len(es) == 0 })
	be.mu.Lock()
	n := len(be.msgs)
	be.mu.Unlock()
	if n != 1 {
		t.Fatalf("smarthost got %d messages", n)
	}
	if got := mailboxMessages(t, e.st, "bob", "INBOX"); len(got) != 1 {
		t.Fatalf("bob has %d copies", len(got))
	}
	if got := mailboxMessages(t, e.st, "alice", vmstore.OutboxMailbox); len(got) != 0 {
		t.Fatalf("Outbox holds %d", len(got))
	}
}

// TestRelayRefusalBounces: the smarthost refuses one recipient while the
// local one is served: the client gets 250 and the sender a delivery
// status notification naming the refused recipient and its status.
func TestRelayRefusalBounces(t *testing.T) {
	_, addr := startGoSink(t, false)
	e := newEnv(t, func(s *Submission) { s.Relay = &Relay{Addr: addr}; s.AllowInsecureAuth = true })
	out := runPy(t, map[string]string{"ADDR": e.addr}, pyPrelude+`
r = s.sendmail("alice@vm.example.net", ["bob@vm.example.net", "nobody@remote.example"], "Subject: b\r\n\r\nx\r\n")
print("refused", r)
s.quit()
`)
	if !strings.Contains(out, "refused {}") {
		t.Fatalf("python: %s", out)
	}
	if got := mailboxMessages(t, e.st, "bob", "INBOX"); len(got) != 1 {
		t.Fatalf("bob: %d", len(got))
	}
	got := mailboxMessages(t, e.st, "alice", "INBOX")
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Final-Recipient: rfc822; nobody@remote.example")) ||
		!bytes.Contains(got[0], []byte("Status: 5.1.1")) || !bytes.Contains(got[0], []byte("report-type=delivery-status")) {
		t.Fatalf("alice INBOX: %q", got)
	}
}
