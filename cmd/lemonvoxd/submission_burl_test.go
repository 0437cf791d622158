package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
)

// testWAV is a short 8 kHz 16-bit mono WAV tone.
func testWAV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)})
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	for i := 0; i < n; i++ {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(float64(i)/5)))
	}
	return b.Bytes()
}

// TestBURLForward: alice authorizes a submit+alice URL to the audio part
// of a voice message over IMAP (Python imaplib, GENURLAUTH), then submits
// a new message built around it with Python smtplib (STARTTLS, AUTH,
// BDAT for the header, BURL ... LAST for the audio). bob (local) receives
// audio bytes hash-identical to the original; the remote recipient's copy
// reaches an aiosmtpd sink through the smarthost. A URL of another role
// (user+alice) and a malformed one are refused as RFC 4468 s6 says.
func TestBURLForward(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing")
		}
		t.Skip("SKIP: /usr/bin/python3 missing")
	}
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-aiosmtpd missing")
		}
		t.Skip("SKIP: python3-aiosmtpd missing (apt-get install python3-aiosmtpd)")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-" + u + "-123"}); err != nil {
			t.Fatal(err)
		}
	}
	wav := testWAV(16000)
	orig := "From: caller@pstn.example\r\nTo: alice@vm.example.net\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/voice-message; boundary=b1\r\nMessage-Context: voice-message\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nA voice message\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(wav)) + "--b1--\r\n"
	if _, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(orig)}); err != nil {
		t.Fatal(err)
	}
	res := channel.NewResolver(st, "vm.example.net")
	isrv := &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: log, AllowInsecureAuth: true, URLResolver: res, SpoolDir: t.TempDir()}
	if err := isrv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer isrv.Close()

	sinkAddr := freePort(t)
	maildir := filepath.Join(t.TempDir(), "maildir")
	sink := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", sinkAddr, "-c", "aiosmtpd.handlers.Mailbox", maildir)
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	waitListen(t, sinkAddr)

	sub := &smtp.Submission{Store: st, Hostname: "vm.example.net", TLSConfig: testServerTLS(t), Logger: log, SpoolDir: t.TempDir(),
		Fetcher: smtp.Fetchers{Local: smtp.ResolverFetcher{R: res}}, Relay: &smtp.Relay{Addr: sinkAddr}}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	out, err := exec.Command(py, "-c", `
import imaplib, smtplib, ssl, sys, re
imap_addr, smtp_addr = sys.argv[1], sys.argv[2]
imaplib.Commands["GENURLAUTH"] = ("AUTH", "SELECTED")
h, p = imap_addr.rsplit(":", 1)
M = imaplib.IMAP4(h, int(p))
M.login("alice", "pw-alice-123")
typ, dat = M.select("INBOX")
uv = M.untagged_responses.get("UIDVALIDITY", [b"0"])[0].decode()
def gen(access):
    rump = "imap://alice@vm.example.net/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=2;URLAUTH=%s" % (uv, access)
    typ, dat = M._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
    typ, dat = M._untagged_response(typ, dat, "GENURLAUTH")
    return dat[0].decode().strip('"')
url = gen("submit+alice")
wrong = gen("user+alice")
M.logout()
h, p = smtp_addr.rsplit(":", 1)
s = smtplib.SMTP(h, int(p), timeout=60)
s.starttls(context=ssl._create_unverified_context())
s.login("alice", "pw-alice-123")
s.ehlo("handset")
print("burl-ext", s.esmtp_features.get("burl"))
head = ("From: alice@vm.example.net\r\nTo: bob@vm.example.net, far@remote.example\r\nSubject: Fwd: voice\r\n"
        "MIME-Version: 1.0\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
print("mail", s.docmd("MAIL FROM:<alice@vm.example.net>"))
print("rcpt", s.docmd("RCPT TO:<bob@vm.example.net>"))
print("rcpt", s.docmd("RCPT TO:<far@remote.example>"))
s.send(b"BDAT %d\r\n" % len(head) + head)
print("bdat", s.getreply())
print("burl", s.docmd("BURL " + url + " LAST"))
for label, u in (("wrongrole", wrong), ("badurl", "imap://vm.example.net/INBOX/;UID=x;URLAUTH=submit+alice:internal:00")):
    s.docmd("MAIL FROM:<alice@vm.example.net>")
    s.docmd("RCPT TO:<bob@vm.example.net>")
    print(label, s.docmd("BURL " + u + " LAST"))
    s.docmd("RSET")
s.quit()
`, isrv.PlainAddr(), ln.Addr().String()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, want := range []string{"burl-ext imap", "bdat (250", "burl (250", "wrongrole (554, b'5.6.6", "badurl (554, b'5.7.0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	// bob's copy: the audio decodes to the very bytes alice received.
	mb, err := st.Mailbox("bob", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := st.Messages(mb.ID, 1, 0)
	if err != nil || len(ms) != 1 {
		t.Fatalf("bob INBOX: %d messages, %v\n%s", len(ms), err, out)
	}
	raw, _ := io.ReadAll(st.OpenMessage(&ms[0]).Reader())
	if got := decodedBody(t, raw); sha256.Sum256(got) != sha256.Sum256(wav) {
		t.Fatalf("bob's audio differs (%d bytes vs %d)", len(got), len(wav))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		fs, _ := os.ReadDir(filepath.Join(maildir, "new"))
		if len(fs) == 1 {
			b, _ := os.ReadFile(filepath.Join(maildir, "new", fs[0].Name()))
			if got := decodedBody(t, b); sha256.Sum256(got) != sha256.Sum256(wav) {
				t.Fatalf("remote copy's audio differs (%d bytes)", len(got))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing reached the smarthost")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decodedBody(t *testing.T, msg []byte) []byte {
	t.Helper()
	msg = bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	_, body, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		t.Fatalf("no body in %q", msg)
	}
	b, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, string(body)))
	if err != nil {
		t.Fatalf("base64: %v", err)
	}
	return b
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

func waitListen(t *testing.T, addr string) {
	t.Helper()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if i > 1200 {
			t.Fatalf("%s: nothing listens", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testServerTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := loadOrCreateCert("", "", t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// TestBURLRemoteIMAP: a URL naming another IMAP server is fetched over
// IMAP (STARTTLS refused there, plaintext allowed for the test; LOGIN as
// the submission server's submit-role identity; URLFETCH), and the part
// arrives byte for byte. A URL for another user's submit+ is refused
// before any connection.
func TestBURLRemoteIMAP(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing")
		}
		t.Skip("SKIP: /usr/bin/python3 missing")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob", "submitter"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-" + u + "-123"}); err != nil {
			t.Fatal(err)
		}
	}
	wav := testWAV(8000)
	orig := "Subject: voice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap76(base64.StdEncoding.EncodeToString(wav)) + "--b1--\r\n"
	if _, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(orig)}); err != nil {
		t.Fatal(err)
	}
	imapAddr := freePort(t)
	// The "other" server: its URLs name 127.0.0.1:<port>.
	remote := channel.NewResolver(st, imapAddr)
	remote.Roles = map[string][]string{"submit": {"submitter"}}
	isrv := &imap.Server{Store: st, Addr: imapAddr, Logger: log, AllowInsecureAuth: true, URLResolver: remote, SpoolDir: t.TempDir()}
	if err := isrv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer isrv.Close()
	// The submission server's own URLs name vm.example.net: imapAddr is
	// not ours, so the IMAP client fetches it.
	sub := &smtp.Submission{Store: st, Hostname: "vm.example.net", AllowInsecureAuth: true, Logger: log, SpoolDir: t.TempDir(),
		Fetcher: smtp.Fetchers{Local: smtp.ResolverFetcher{R: channel.NewResolver(st, "vm.example.net")},
			Remote: &smtp.IMAPFetcher{Username: "submitter", Password: "pw-submitter-123", AllowPlaintext: true}}}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	out, err := exec.Command(py, "-c", `
import imaplib, smtplib, sys
imap_addr, smtp_addr = sys.argv[1], sys.argv[2]
imaplib.Commands["GENURLAUTH"] = ("AUTH", "SELECTED")
h, p = imap_addr.rsplit(":", 1)
M = imaplib.IMAP4(h, int(p))
M.login("alice", "pw-alice-123")
M.select("INBOX")
uv = M.untagged_responses.get("UIDVALIDITY", [b"0"])[0].decode()
def gen(access):
    rump = "imap://alice@%s/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=2;URLAUTH=%s" % (imap_addr, uv, access)
    typ, dat = M._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
    typ, dat = M._untagged_response(typ, dat, "GENURLAUTH")
    return dat[0].decode().strip('"')
url, bobs = gen("submit+alice"), gen("submit+bob")
M.logout()
h, p = smtp_addr.rsplit(":", 1)
s = smtplib.SMTP(h, int(p), timeout=60)
s.login("alice", "pw-alice-123")
head = b"Subject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n"
s.docmd("MAIL FROM:<alice@vm.example.net>")
s.docmd("RCPT TO:<bob@vm.example.net>")
s.send(b"BDAT %d\r\n" % len(head) + head)
print("bdat", s.getreply())
print("burl", s.docmd("BURL " + url + " LAST"))
s.docmd("MAIL FROM:<alice@vm.example.net>")
s.docmd("RCPT TO:<bob@vm.example.net>")
print("otheruser", s.docmd("BURL " + bobs + " LAST"))
s.quit()
`, imapAddr, ln.Addr().String()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, want := range []string{"burl (250", "otheruser (554, b'5.6.6"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	mb, _ := st.Mailbox("bob", "INBOX")
	ms, err := st.Messages(mb.ID, 1, 0)
	if err != nil || len(ms) != 1 {
		t.Fatalf("bob INBOX: %d, %v\n%s", len(ms), err, out)
	}
	raw, _ := io.ReadAll(st.OpenMessage(&ms[0]).Reader())
	if got := decodedBody(t, raw); sha256.Sum256(got) != sha256.Sum256(wav) {
		t.Fatalf("audio differs (%d bytes vs %d)", len(got), len(wav))
	}
}

// TestFutureReleaseCancelOverIMAP: a message held with HOLDFOR shows in
// the sender's Outbox over IMAP; expunging it there (imaplib) cancels the
// submission: after its release time the queue is empty and the
// recipient has nothing.
func TestFutureReleaseCancelOverIMAP(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing")
		}
		t.Skip("SKIP: /usr/bin/python3 missing")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-" + u + "-123"}); err != nil {
			t.Fatal(err)
		}
	}
	isrv := &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: log, AllowInsecureAuth: true, SpoolDir: t.TempDir()}
	if err := isrv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer isrv.Close()
	sub := &smtp.Submission{Store: st, Hostname: "vm.example.net", AllowInsecureAuth: true, Logger: log, SpoolDir: t.TempDir()}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	out, err := exec.Command(py, "-c", `
import imaplib, smtplib, sys
h, p = sys.argv[2].rsplit(":", 1)
s = smtplib.SMTP(h, int(p), timeout=60)
s.login("alice", "pw-alice-123")
s.sendmail("alice@vm.example.net", ["bob@vm.example.net"], "Subject: never\r\n\r\nx\r\n", mail_options=["HOLDFOR=2"])
s.quit()
h, p = sys.argv[1].rsplit(":", 1)
M = imaplib.IMAP4(h, int(p))
M.login("alice", "pw-alice-123")
print("select", M.select("Outbox"))
print("store", M.uid("STORE", "1", "+FLAGS", "(\\Deleted)"))
print("expunge", M.expunge())
M.logout()
`, isrv.PlainAddr(), ln.Addr().String()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "select ('OK', [b'1'])") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	// The scheduler drops the entry once its time has come.
	deadline := time.Now().Add(time.Minute)
	for {
		es, err := st.QueueEntries("")
		if err == nil && len(es) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not emptied: %v %v", es, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mb, _ := st.Mailbox("bob", "INBOX")
	if mb.Counts.Messages != 0 {
		t.Fatalf("bob received %d messages", mb.Counts.Messages)
	}
}
