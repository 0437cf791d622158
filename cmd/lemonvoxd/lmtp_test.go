package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

const python = "/usr/bin/python3"

type lmtpDaemon struct {
	bin, cfg, data string
	cmd            *exec.Cmd
	log            syncBuffer
}

// syncBuffer is a bytes.Buffer that the daemon's output copier and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func (d *lmtpDaemon) start(t *testing.T) {
	t.Helper()
	admin.RemoveRunInfo(d.data)
	d.log.Reset()
	d.cmd = exec.Command(d.bin, "-config", d.cfg, "-data", d.data)
	d.cmd.Stdout, d.cmd.Stderr = &d.log, &d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := d.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := admin.ReadRunInfo(d.data); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not start:\n%s", d.log.String())
}

// lmtpSend sends each message of the JSON list on stdin to the
// recipients (comma-separated) with smtplib.LMTP (DATA) and prints the
// replies to each message on one line, one per recipient, "|" between.
const lmtpSend = `
import json, smtplib, sys
host, port, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(',')
msgs = json.load(sys.stdin)
c = smtplib.LMTP(host, port)
c.ehlo('pbx.example')
for m in msgs:
    code, text = c.mail('caller@pbx.example')
    assert code == 250, (code, text)
    for r in rcpts:
        code, text = c.rcpt(r)
        assert code == 250, (code, text)
    replies = [c.data(m.encode())]
    for _ in rcpts[1:]:
        replies.append(c.getreply())
    print('|'.join('%d %s' % (code, text.decode()) for code, text in replies), flush=True)
c.close()
`

func sendLMTP(t *testing.T, addr, rcpt string, msgs ...string) []string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	in, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", lmtpSend, host, port, rcpt)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func imapLogin(t *testing.T, addr, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, user).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLMTPDaemon: lemonvoxd with its [lmtp] listener. An RFC 4356 MMS
// sample (the PDU base64 in a message) deposited over LMTP with Python's
// smtplib is read back over IMAP: BODYSTRUCTURE shows multipart/related
// with the SMIL start part and the media parts, BINARY of the audio part
// is the PDU's audio byte for byte. Then voice messages are deposited for
// two recipients and the daemon killed with SIGKILL as soon as the last
// 250 arrived: after a restart every acknowledged copy is there, intact.
func TestLMTPDaemon(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (CI installs python3): %v", python, err)
		}
		t.Skipf("SKIPPED LOUDLY: %s missing: this test drives lemonvoxd with Python's smtplib.LMTP", python)
	}
	dir := t.TempDir()
	d := &lmtpDaemon{bin: filepath.Join(dir, "lemonvoxd"), cfg: filepath.Join(dir, "lemonvox.toml"), data: filepath.Join(dir, "data")}
	build := exec.Command("go", "build", "-o", d.bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	imapAddr, lmtpAddr := freePort(t), freePort(t)
	conf := fmt.Sprintf(`
[imap]
listen = %q
listen_tls = ""
allow_insecure_auth = true
[lmtp]
listen = %q
[submission]
listen = ""
[rtsp]
listen = ""
listen_tls = ""
[sip]
listen = ""
listen_tls = ""
[admin]
listen = "127.0.0.1:0"
`, imapAddr, lmtpAddr)
	if err := os.WriteFile(d.cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start(t)

	pdu, err := os.ReadFile(filepath.Join("..", "..", "vmstore", "deposit", "testdata", "rfc4356-sample.mms"))
	if err != nil {
		t.Fatal(err)
	}
	mms, err := deposit.DecodeMMS(pdu)
	if err != nil {
		t.Fatal(err)
	}
	audio := mms.Parts[3].Data
	var b64 strings.Builder
	enc := base64.StdEncoding.EncodeToString(pdu)
	for len(enc) > 76 {
		b64.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b64.WriteString(enc + "\r\n")
	wrapped := "From: mmsc@mms.example.net\r\nTo: demo@example.net\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/vnd.wap.mms-message\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64.String()
	if got := sendLMTP(t, lmtpAddr, "demo@example.net", wrapped); len(got) != 1 || !strings.HasPrefix(got[0], "250 ") {
		t.Fatalf("LMTP replies: %q", got)
	}

	c := imapLogin(t, imapAddr, "demo")
	audioSec := &imap.FetchItemBinarySection{Part: []int{4}}
	msgs, err := c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BinarySection: []*imap.FetchItemBinarySection{audioSec}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v (%d messages)\n%s", err, len(msgs), d.log.String())
	}
	mp, ok := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.MediaType() != "multipart/related" || mp.Extended == nil || mp.Extended.Params["type"] != "application/smil" {
		t.Fatalf("BODYSTRUCTURE: %#v", msgs[0].BodyStructure)
	}
	var types []string
	for _, ch := range mp.Children {
		types = append(types, ch.MediaType())
	}
	if strings.Join(types, " ") != "application/smil text/plain image/png audio/wav" {
		t.Fatalf("parts: %v", types)
	}
	if sp := mp.Children[0].(*imap.BodyStructureSinglePart); sp.ID != "<smil>" {
		t.Fatalf("SMIL part id %q", sp.ID)
	}
	if got := msgs[0].FindBinarySection(audioSec); !bytes.Equal(got, audio) {
		t.Fatalf("BINARY[4]: %d bytes, want the PDU's %d bytes of audio", len(got), len(audio))
	}
	c.Logout().Wait()

	// Durability: kill -9 right after the last acknowledgement.
	var voice []string
	for i := range 5 {
		var b bytes.Buffer
		// 2 to 32 s of audio: the larger ones are kept in blob files.
		media := bytes.Repeat([]byte{byte(i + 1)}, 16000<<i)
		_, _ = io.Copy(&b, vmstore.VoiceMessage{From: fmt.Sprintf("+1555000%d@pbx.example", i), MediaType: "audio/basic",
			Duration: time.Duration(2<<i) * time.Second, Media: bytes.NewReader(media)}.Compose())
		voice = append(voice, b.String())
	}
	// To two accounts: every acknowledged copy survives (one commit).
	ri, err := admin.ReadRunInfo(d.data)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := admin.NewClient(ri)
	if err != nil {
		t.Fatal(err)
	}
	pw := "bob"
	if _, err := ac.CreateAccount(admin.AccountRequest{Name: "bob", Password: &pw}); err != nil {
		t.Fatal(err)
	}
	replies := sendLMTP(t, lmtpAddr, "demo@example.net,bob@example.net", voice...)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	if len(replies) != len(voice) {
		t.Fatalf("replies %q", replies)
	}
	for _, r := range replies {
		if rs := strings.Split(r, "|"); len(rs) != 2 || !strings.HasPrefix(rs[0], "250 ") || !strings.HasPrefix(rs[1], "250 ") {
			t.Fatalf("replies %q", replies)
		}
	}
	d.start(t)
	for user, first := range map[string]uint32{"demo": 3, "bob": 1} {
		c = imapLogin(t, imapAddr, user)
		whole := &imap.FetchItemBodySection{}
		msgs, err = c.Fetch(imap.SeqSet{{Start: first, Stop: 0}}, &imap.FetchOptions{UID: true,
			BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != len(voice) {
			t.Fatalf("%s: %d of %d acknowledged messages after kill -9\n%s", user, len(msgs), len(voice), d.log.String())
		}
		for i, m := range msgs {
			if body := m.FindBodySection(whole); !bytes.HasSuffix(body, []byte(voice[i])) {
				t.Fatalf("%s: message %d differs after kill -9: %x", user, i, sha256.Sum256(body))
			}
		}
		c.Logout().Wait()
	}
}
