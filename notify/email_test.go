package notify

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// fakeSMTP is a minimal SMTP receiver for tests.
type fakeSMTP struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
	rcpt []string
}

func newFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { c.Write([]byte(s + "\r\n")) }
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 fake")
		case strings.HasPrefix(cmd, "MAIL"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT"):
			f.mu.Lock()
			f.rcpt = append(f.rcpt, strings.TrimSpace(line[8:]))
			f.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			say("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			f.mu.Lock()
			f.msgs = append(f.msgs, b.String())
			f.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 no")
		}
	}
}

func (f *fakeSMTP) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgs...)
}

func TestEmailSinkVoicemailToEmail(t *testing.T) {
	smtpd := newFakeSMTP(t)
	s := openStore(t, "")
	mustAccount(t, s, "mail", vmstore.AccountOptions{Email: "mail@example.net"})
	mustAccount(t, s, "nomail", vmstore.AccountOptions{})
	e := &EmailSink{Store: s, Smarthost: smtpd.ln.Addr().String(), From: "voicemail@vm.test", Attach: true, DeleteAfterSend: true,
		URLFor: func(ev *vmstore.Event) string { return "https://vm.test/play/42" }, Location: time.FixedZone("CEST", 2*3600)}
	if err := e.Initialize(); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, s, t.TempDir(), e)
	deposit(t, s, "nomail")
	res := deposit(t, s, "mail")
	waitFor(t, 5*time.Second, "mail", func() bool { return len(smtpd.got()) == 1 })
	m := smtpd.got()[0]
	for _, want := range []string{"To: mail@example.net", "Subject: Voice message from +15557654321@example.net",
		"You have a new voice message from +15557654321@example.net.", "Length:   27 s", "Listen:   https://vm.test/play/42",
		"Content-Type: message/rfc822", "Content-Type: multipart/voice-message", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(m, want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
	waitFor(t, 5*time.Second, "deleted after send", func() bool {
		_, err := s.Message(res.Mailbox.ID, res.Message.UID)
		return err != nil
	})
	waitSettled(t, s, e.Name())
	if n := len(smtpd.got()); n != 1 {
		t.Fatalf("%d mails", n)
	}
}

// A message with a part stored with NUL octets (IMAP APPEND of a
// literal8) is attached in its presented form: that part base64-encoded,
// so that no NUL goes into the mail.
func TestEmailSinkAttachesBinaryMessagePresented(t *testing.T) {
	smtpd := newFakeSMTP(t)
	s := openStore(t, "")
	mustAccount(t, s, "mail", vmstore.AccountOptions{Email: "mail@example.net"})
	e := &EmailSink{Store: s, Smarthost: smtpd.ln.Addr().String(), From: "voicemail@vm.test", Attach: true}
	if err := e.Initialize(); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, s, t.TempDir(), e)
	audio := "RIFF\x00\x01\x02\x00WAVEdata\x00\x00\xff\x7f"
	raw := "From: <+15557654321@example.net>\r\nTo: <mail@example.net>\r\nSubject: binary\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: binary\r\n\r\n" + audio + "\r\n--b--\r\n"
	if _, err := s.Deposit(vmstore.DepositReq{User: "mail", Body: strings.NewReader(raw), Service: "imap"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "mail", func() bool { return len(smtpd.got()) == 1 })
	m := smtpd.got()[0]
	if strings.IndexByte(m, 0) >= 0 {
		t.Fatalf("mail carries NUL octets:\n%q", m)
	}
	want := "Content-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(audio)) + "\r\n--b--"
	if !strings.Contains(m, want) {
		t.Fatalf("mail lacks the presented audio part %q:\n%q", want, m)
	}
}
