package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// TestCatenateBURLForward forwards a voice message without downloading it,
// with real clients: Python imaplib builds the forward in Sent with
// CATENATE (a TEXT part with the new headers and a text part, the voice
// part's MIME header and body by URL, the closing boundary) and authorizes
// it with GENURLAUTH submit+alice; Python smtplib submits it to bob with
// BURL ... LAST. bob's copy decodes to the original audio bytes.
func TestCatenateBURLForward(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing")
		}
		t.Skip("SKIPPING: /usr/bin/python3 missing; this test runs real clients")
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
	audio := make([]byte, 8000*5)
	rand.New(rand.NewSource(7)).Read(audio)
	vm := vmstore.VoiceMessage{From: "+15551234567@pstn.example", To: "alice@vm.example.net", MediaType: "audio/basic",
		Duration: 5 * time.Second, Media: bytes.NewReader(audio)}
	if _, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: vm.Compose()}); err != nil {
		t.Fatal(err)
	}
	res := channel.NewResolver(st, "vm.example.net")
	isrv := &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: log, URLResolver: res, SpoolDir: t.TempDir()}
	if err := isrv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer isrv.Close()
	sub := &smtp.Submission{Store: st, Hostname: "vm.example.net", AllowInsecureAuth: true, Logger: log, SpoolDir: t.TempDir(),
		Fetcher: smtp.Fetchers{Local: smtp.ResolverFetcher{R: res}}}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	out, err := exec.Command(py, "-c", `
import imaplib, smtplib, sys, re
imap_addr, smtp_addr = sys.argv[1], sys.argv[2]
imaplib.Commands["GENURLAUTH"] = ("AUTH", "SELECTED")
h, p = imap_addr.rsplit(":", 1)
M = imaplib.IMAP4(h, int(p))
M.login("alice", "pw-alice-123")
M.create("Sent")
typ, dat = M.select("INBOX")
uv = M.untagged_responses.get("UIDVALIDITY", [b"0"])[0].decode()
head = (b"From: alice@vm.example.net\r\nTo: bob@vm.example.net\r\nSubject: Fwd: voice message\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=fwd\r\n\r\n"
        b"--fwd\r\nContent-Type: text/plain\r\n\r\nListen to this.\r\n--fwd\r\n")
tail = b"\r\n--fwd--\r\n"
src = ("/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=" % uv).encode()
parts = (b"(TEXT {%d+}\r\n" % len(head) + head + b' URL "' + src + b'1.MIME" URL "' + src + b'1"' +
         b" TEXT {%d+}\r\n" % len(tail) + tail + b")")
typ, dat = M._simple_command("APPEND", "Sent", "(\\Seen)", "CATENATE", parts)
print("catenate", typ, dat)
m = re.search(rb"APPENDUID (\d+) (\d+)", dat[0])
rump = "imap://alice@vm.example.net/Sent;UIDVALIDITY=%s/;UID=%s;URLAUTH=submit+alice" % (m.group(1).decode(), m.group(2).decode())
typ, dat = M._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
typ, dat = M._untagged_response(typ, dat, "GENURLAUTH")
url = dat[0].decode().strip('"')
M.logout()
h, p = smtp_addr.rsplit(":", 1)
s = smtplib.SMTP(h, int(p), timeout=60)
s.login("alice", "pw-alice-123")
s.ehlo("handset")
print("burl-ext", s.esmtp_features.get("burl"))
print("mail", s.docmd("MAIL FROM:<alice@vm.example.net>"))
print("rcpt", s.docmd("RCPT TO:<bob@vm.example.net>"))
print("burl", s.docmd("BURL " + url + " LAST"))
s.quit()
`, isrv.PlainAddr(), ln.Addr().String()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, want := range []string{"catenate OK [b'[APPENDUID ", "burl-ext imap", "burl (250"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	mb, err := st.Mailbox("bob", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if mb.UIDNext != 2 {
		t.Fatalf("bob's INBOX UIDNEXT %d\n%s", mb.UIDNext, out)
	}
	p, err := message.Open(st, "bob", "INBOX", 1, message.Section{Path: []int{2}}, message.Decoded)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, err := io.ReadAll(p.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(audio) {
		t.Fatalf("bob's audio differs (%d bytes, want %d)", len(got), len(audio))
	}
}
