package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

const testPass = "secret-pass-1"

type testEnv struct {
	st   *vmstore.Store
	srv  *Submission
	addr string
}

func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lemonvox test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func newEnv(t *testing.T, mod func(s *Submission)) *testEnv {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: testPass}); err != nil {
			t.Fatal(err)
		}
	}
	s := &Submission{Store: st, Hostname: "vm.example.net", TLSConfig: testTLS(t), SpoolDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(s)
	}
	s.Start()
	ln, err := s.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testEnv{st: st, srv: s, addr: ln.Addr().String()}
}

func pythonBin(t *testing.T) string {
	t.Helper()
	const p = "/usr/bin/python3"
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (Debian python3)", p)
		}
		t.Skipf("SKIP: %s missing (install Debian python3)", p)
	}
	return p
}

// runPy runs a Python script with the server's port in PORT.
func runPy(t *testing.T, env map[string]string, script string) string {
	t.Helper()
	cmd := exec.Command(pythonBin(t), "-c", script)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

const pyPrelude = `
import os, smtplib, ssl, sys
host, port = os.environ["ADDR"].rsplit(":", 1)
ctx = ssl._create_unverified_context()
s = smtplib.SMTP(host, int(port), timeout=60)
s.ehlo("client.example")
s.starttls(context=ctx)
s.ehlo("client.example")
s.login(os.environ.get("USER_NAME", "alice"), os.environ.get("USER_PASS", "` + testPass + `"))
`

// startSink starts aiosmtpd on loopback writing to a maildir; it returns
// the address and the maildir.
func startSink(t *testing.T) (string, string) {
	t.Helper()
	py := pythonBin(t)
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-aiosmtpd missing")
		}
		t.Skip("SKIP: python3-aiosmtpd missing (apt-get install python3-aiosmtpd)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(t.TempDir(), "maildir")
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 600 {
			t.Fatal("aiosmtpd did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, dir
}

func sinkMessages(dir string) [][]byte {
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		fs, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, f := range fs {
			b, err := os.ReadFile(filepath.Join(dir, sub, f.Name()))
			if err == nil {
				out = append(out, b)
			}
		}
	}
	return out
}

func mailboxMessages(t *testing.T, st *vmstore.Store, user, mailbox string) [][]byte {
	t.Helper()
	mb, err := st.Mailbox(user, mailbox)
	if errors.Is(err, vmstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ms, err := st.Messages(mb.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range ms {
		b, err := io.ReadAll(st.OpenMessage(&ms[i]).Reader())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubmissionSmtplib: Python's smtplib with STARTTLS and AUTH PLAIN
// submits to a local recipient and to a remote one; the local copy is in
// bob's INBOX, the remote one reaches the aiosmtpd sink through the
// smarthost, the sender has a copy in Sent.
func TestSubmissionSmtplib(t *testing.T) {
	sinkAddr, dir := startSink(t)
	e := newEnv(t, func(s *Submission) { s.Relay = &Relay{Addr: sinkAddr} })
	out := runPy(t, map[string]string{"ADDR": e.addr}, pyPrelude+`
print(s.esmtp_features.get("burl", "none"))
msg = "From: alice@vm.example.net\r\nTo: bob@vm.example.net, x@remote.example\r\nSubject: hi\r\n\r\nhello there\r\n.dot line\r\n"
r = s.sendmail("alice@vm.example.net", ["bob@vm.example.net", "x@remote.example"], msg)
print("refused", r)
s.quit()
`)
	if !strings.Contains(out, "refused {}") {
		t.Fatalf("python: %s", out)
	}
	got := mailboxMessages(t, e.st, "bob", "INBOX")
	if len(got) != 1 || !bytes.Contains(got[0], []byte("\r\n.dot line\r\n")) || !bytes.HasPrefix(got[0], []byte("Received: ")) {
		t.Fatalf("bob INBOX: %q", got)
	}
	waitFor(t, "sink", func() bool { return len(sinkMessages(dir)) == 1 })
	if m := sinkMessages(dir)[0]; !bytes.Contains(m, []byte("hello there")) {
		t.Fatalf("sink: %q", m)
	}
	if sent := mailboxMessages(t, e.st, "alice", "Sent"); len(sent) != 1 {
		t.Fatalf("Sent: %d messages", len(sent))
	}
}

// TestSubmissionRefusals: no smarthost -> 550 at RCPT; unknown local
// user -> 550 5.1.1; MAIL before AUTH -> 530; AUTH before TLS -> 538.
func TestSubmissionRefusals(t *testing.T) {
	e := newEnv(t, nil)
	out := runPy(t, map[string]string{"ADDR": e.addr}, `
import os, smtplib, ssl
host, port = os.environ["ADDR"].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), timeout=60)
s.ehlo("c")
print("auth-before-tls", s.docmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="))
print("mail-before-auth", s.docmd("MAIL FROM:<alice@vm.example.net>"))
s.starttls(context=ssl._create_unverified_context())
s.ehlo("c")
try:
    s.login("alice", "wrong")
except smtplib.SMTPAuthenticationError as e:
    print("badpass", e.smtp_code)
s.login("alice", "`+testPass+`")
print("mail", s.docmd("MAIL FROM:<alice@vm.example.net>"))
print("remote", s.docmd("RCPT TO:<x@remote.example>"))
print("unknown", s.docmd("RCPT TO:<nobody@vm.example.net>"))
print("holdbad", s.docmd("RSET"))
print("holdlong", s.docmd("MAIL FROM:<alice@vm.example.net> HOLDFOR=99999999"))
print("holdboth", s.docmd("MAIL FROM:<alice@vm.example.net> HOLDFOR=5 HOLDUNTIL=2030-01-01T00:00:00Z"))
print("toolong", s.docmd("NOOP " + "x" * 5000))
s.quit()
`)
	for _, want := range []string{"auth-before-tls (538", "mail-before-auth (530", "badpass 535", "remote (550, b'5.7.1",
		"unknown (550, b'5.1.1", "toolong (500, b'5.5.2", "holdlong (501, b'5.5.4", "holdboth (501, b'5.5.4"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// fakeFetcher serves URLs from a map for the user named in the URL's
// submit+ access identifier, as the resolver would.
type fakeFetcher struct{ parts map[string][]byte }

func (f fakeFetcher) FetchURL(ctx context.Context, u *channel.URL, user string) (io.ReadCloser, error) {
	if u.Access.Kind != channel.AccessSubmit || u.Access.User != user {
		return nil, ErrURLRefused
	}
	b, ok := f.parts[u.Rump()]
	if !ok {
		return nil, ErrURLRefused
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestSubmissionBURLMixed: BDAT and BURL chunks make one message, byte
// for byte; a malformed URL is 554 5.7.0, a URL of another role 554 5.6.6.
func TestSubmissionBURLMixed(t *testing.T) {
	audio := bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n', '.'}, 3000)
	u := "imap://alice@vm.example.net/INBOX;UIDVALIDITY=1/;UID=1/;SECTION=2;URLAUTH=submit+alice"
	other := "imap://bob@vm.example.net/INBOX;UIDVALIDITY=1/;UID=1;URLAUTH=submit+bob"
	ff := fakeFetcher{parts: map[string][]byte{u: audio, other: []byte("x")}}
	e := newEnv(t, func(s *Submission) { s.Fetcher = ff })
	head := "From: alice@vm.example.net\r\nTo: bob@vm.example.net\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: audio/basic\r\nContent-Transfer-Encoding: binary\r\n\r\n"
	out := runPy(t, map[string]string{"ADDR": e.addr, "HEAD": head, "U": u + ":internal:" + strings.Repeat("ab", 32), "OTHER": other + ":internal:" + strings.Repeat("ab", 32)}, pyPrelude+`
s.ehlo("client.example")
print("features", s.esmtp_features.get("burl"))
print(s.docmd("MAIL FROM:<alice@vm.example.net> BODY=BINARYMIME"))
print(s.docmd("RCPT TO:<bob@vm.example.net>"))
h = os.environ["HEAD"].encode()
s.send(b"BDAT %d\r\n" % len(h) + h)
print("bdat", s.getreply())
print("burl", s.docmd("BURL " + os.environ["U"] + " LAST"))
print(s.docmd("MAIL FROM:<alice@vm.example.net>"))
print(s.docmd("RCPT TO:<bob@vm.example.net>"))
print("bad", s.docmd("BURL imap://nonsense LAST"))
print(s.docmd("MAIL FROM:<alice@vm.example.net>"))
print(s.docmd("RCPT TO:<bob@vm.example.net>"))
print("role", s.docmd("BURL " + os.environ["OTHER"] + " LAST"))
s.quit()
`)
	for _, want := range []string{"features imap", "bdat (250", "burl (250", "bad (554, b'5.7.0", "role (554, b'5.6.6"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	got := mailboxMessages(t, e.st, "bob", "INBOX")
	if len(got) != 1 {
		t.Fatalf("bob INBOX: %d messages\n%s", len(got), out)
	}
	_, body, _ := bytes.Cut(got[0], []byte("\r\n\r\n"))
	if sha256.Sum256(body) != sha256.Sum256(audio) {
		t.Fatalf("audio differs: %d vs %d bytes", len(body), len(audio))
	}
}

// TestFutureRelease: HOLDFOR=2 arrives no sooner than 2 s after the
// submission; it waits in alice's Outbox meanwhile. A held message
// expunged from the Outbox never arrives.
func TestFutureRelease(t *testing.T) {
	e := newEnv(t, nil)
	start := time.Now()
	out := runPy(t, map[string]string{"ADDR": e.addr}, pyPrelude+`
print("ehlo", s.esmtp_features.get("futurerelease"))
msg = "From: alice@vm.example.net\r\nSubject: later\r\n\r\nlater\r\n"
s.sendmail("alice@vm.example.net", ["bob@vm.example.net"], msg, mail_options=["HOLDFOR=2"])
msg = "From: alice@vm.example.net\r\nSubject: cancel me\r\n\r\nnever\r\n"
s.sendmail("alice@vm.example.net", ["carol@vm.example.net"], msg, mail_options=["HOLDFOR=3"])
s.quit()
`)
	if !strings.Contains(out, "ehlo 604800 ") {
		t.Fatalf("EHLO FUTURERELEASE: %s", out)
	}
	if n := len(mailboxMessages(t, e.st, "alice", "Outbox")); n != 2 {
		t.Fatalf("Outbox holds %d", n)
	}
	// Cancel the second by expunging it from the Outbox, as an IMAP
	// client would.
	es, err := e.st.QueueEntries("alice")
	if err != nil || len(es) != 2 {
		t.Fatalf("queue: %v %v", es, err)
	}
	var cancel vmstore.QueueEntry
	for _, q := range es {
		if q.Rcpts[0] == "carol@vm.example.net" {
			cancel = q
		}
	}
	if _, err := e.st.Remove("alice", cancel.MailboxID, []uint32{cancel.UID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "release", func() bool { return len(mailboxMessages(t, e.st, "bob", "INBOX")) == 1 })
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("released after %v", el)
	}
	waitFor(t, "queue empty", func() bool { es, _ := e.st.QueueEntries(""); return len(es) == 0 })
	if n := len(mailboxMessages(t, e.st, "carol", "INBOX")); n != 0 {
		t.Fatalf("cancelled message arrived")
	}
	if n := len(mailboxMessages(t, e.st, "alice", "Outbox")); n != 0 {
		t.Fatalf("Outbox still holds %d", n)
	}
}

// TestSubmissionPipelining: a pipelined group with BDAT chunks (and a
// refused BDAT whose bytes are skipped) answered in order.
func TestSubmissionPipelining(t *testing.T) {
	e := newEnv(t, func(s *Submission) { s.AllowInsecureAuth = true })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	readReply := func() string {
		var all string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v (%q)", err, all)
			}
			all += l
			if len(l) < 4 || l[3] == ' ' {
				return all
			}
		}
	}
	readReply()
	msg := "Subject: p\r\n\r\nbody\r\n"
	fmt.Fprintf(c, "EHLO c\r\nAUTH PLAIN %s\r\nBDAT 5\r\nxxxxxMAIL FROM:<alice@vm.example.net>\r\nRCPT TO:<bob@vm.example.net>\r\nBDAT %d LAST\r\n%sQUIT\r\n",
		"AGFsaWNlAHNlY3JldC1wYXNzLTE=", len(msg), msg)
	want := []string{"250", "235", "503", "250", "250", "250", "221"}
	for i, w := range want {
		if r := readReply(); !strings.HasPrefix(r, w) {
			t.Fatalf("reply %d: %q, want %s", i, r, w)
		}
	}
	if got := mailboxMessages(t, e.st, "bob", "INBOX"); len(got) != 1 || !bytes.HasSuffix(got[0], []byte(msg)) {
		t.Fatalf("INBOX: %q", got)
	}
}

func fuzzStore(f *testing.F) *vmstore.Store {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: testPass}); err != nil {
		f.Fatal(err)
	}
	return st
}

// TestBURLBinaryNeedsBinaryMIME: binary content fetched by BURL into a
// message not declared BODY=BINARYMIME is refused with 554 5.6.3.
func TestBURLBinaryNeedsBinaryMIME(t *testing.T) {
	u := "imap://alice@vm.example.net/INBOX;UIDVALIDITY=1/;UID=1;URLAUTH=submit+alice"
	e := newEnv(t, func(s *Submission) { s.Fetcher = fakeFetcher{parts: map[string][]byte{u: {'a', 0, 'b'}}} })
	out := runPy(t, map[string]string{"ADDR": e.addr, "U": u + ":internal:" + strings.Repeat("cd", 32)}, pyPrelude+`
s.docmd("MAIL FROM:<alice@vm.example.net> BODY=8BITMIME")
s.docmd("RCPT TO:<bob@vm.example.net>")
print("burl", s.docmd("BURL " + os.environ["U"] + " LAST"))
s.quit()
`)
	if !strings.Contains(out, "burl (554, b'5.6.3") {
		t.Fatalf("got %s", out)
	}
	if n := len(mailboxMessages(t, e.st, "bob", "INBOX")); n != 0 {
		t.Fatalf("stored %d", n)
	}
}
