package smtp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

const python = "/usr/bin/python3"

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (CI installs python3): %v", python, err)
		}
		t.Skipf("SKIPPED LOUDLY: %s missing: the LMTP tests drive a real client (Python smtplib)", python)
	}
}

func testStore(t *testing.T) *vmstore.Store {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{Dir: t.TempDir(), GCInterval: -1,
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func account(t *testing.T, st *vmstore.Store, name string, q vmstore.Quota) {
	t.Helper()
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: name, Password: "x"}); err != nil {
		t.Fatal(err)
	}
	if q != (vmstore.Quota{}) {
		if err := st.SetQuota(name, q); err != nil {
			t.Fatal(err)
		}
	}
}

func startLMTP(t *testing.T, st *vmstore.Store, cfg LMTPConfig) *LMTP {
	t.Helper()
	if cfg.Listen == "" && cfg.Socket == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	l := NewLMTP(st, cfg)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// voiceMessage is a VPIM voice message of sec seconds of 8 kHz µ-law WAV.
func voiceMessage(t *testing.T, sec int) []byte {
	t.Helper()
	n := 8000 * sec
	le := binary.LittleEndian
	w := []byte("RIFF")
	w = le.AppendUint32(w, uint32(n+36))
	w = append(w, "WAVEfmt "...)
	w = le.AppendUint32(w, 16)
	w = le.AppendUint16(w, 7)
	w = le.AppendUint16(w, 1)
	w = le.AppendUint32(w, 8000)
	w = le.AppendUint32(w, 8000)
	w = le.AppendUint16(w, 1)
	w = le.AppendUint16(w, 8)
	w = append(w, "data"...)
	w = le.AppendUint32(w, uint32(n))
	for i := range n {
		w = append(w, byte(i*7))
	}
	b, err := io.ReadAll(vmstore.VoiceMessage{From: "+15551234567@vm.example.net", To: "alice@example.net",
		MediaType: "audio/wav", Duration: time.Duration(sec) * time.Second, Media: bytes.NewReader(w)}.Compose())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lmtpScript sends one message with Python's smtplib.LMTP and prints the
// replies as JSON: {"rcpt": [[code, text]...], "data": [[code, text]...]}.
// Arguments: host-or-socket port size-or-0 mode(data|bdat) chunk rcpt...;
// the message is read from stdin.
const lmtpScript = `
import json, smtplib, sys
host, port, size, mode, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rcpts = sys.argv[6:]
msg = sys.stdin.buffer.read()
c = smtplib.LMTP(host, port) if host[0] != '/' else smtplib.LMTP(host)
c.ehlo('test.example')
opts = ['SIZE=%d' % size] if size else []
if mode == 'bdat':
    opts.append('BODY=BINARYMIME')
code, text = c.mail('caller@pbx.example', opts)
assert code == 250, (code, text)
out = {'rcpt': [], 'data': []}
ok = 0
for r in rcpts:
    code, text = c.rcpt(r)
    out['rcpt'].append([code, text.decode()])
    if code == 250:
        ok += 1
if ok:
    if mode == 'data':
        code, text = c.data(msg)
        out['data'].append([code, text.decode()])
        for _ in range(ok - 1):
            code, text = c.getreply()
            out['data'].append([code, text.decode()])
    else:
        for i in range(0, len(msg), chunk):
            part = msg[i:i+chunk]
            last = i + chunk >= len(msg)
            c.send(('BDAT %d%s\r\n' % (len(part), ' LAST' if last else '')).encode() + part)
            if not last:
                code, text = c.getreply()
                assert code == 250, (code, text)
        for _ in range(ok):
            code, text = c.getreply()
            out['data'].append([code, text.decode()])
c.quit()
print(json.dumps(out))
`

type lmtpReplies struct {
	Rcpt [][2]any `json:"rcpt"`
	Data [][2]any `json:"data"`
}

func (r lmtpReplies) codes(which [][2]any) []string {
	var out []string
	for _, x := range which {
		code := int(x[0].(float64))
		text := x[1].(string)
		enh, _, _ := strings.Cut(text, " ")
		out = append(out, strings.TrimSpace(itoa(code)+" "+enh))
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func sendLMTP(t *testing.T, host, port string, size int, mode string, chunk int, msg []byte, rcpts ...string) lmtpReplies {
	t.Helper()
	args := append([]string{"-c", lmtpScript, host, port, itoa(size), mode, itoa(chunk)}, rcpts...)
	cmd := exec.Command(python, args...)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var r lmtpReplies
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}

func hostPort(t *testing.T, l *LMTP) (string, string) {
	t.Helper()
	for _, a := range l.Addrs() {
		if a.Network() == "tcp" {
			h, p, _ := strings.Cut(a.String(), ":")
			return h, p
		}
	}
	t.Fatal("no tcp listener")
	return "", ""
}

func inbox(t *testing.T, st *vmstore.Store, user string) []vmstore.Message {
	t.Helper()
	mb, err := st.Mailbox(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := st.Messages(mb.ID, 1, 1<<32-1)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func raw(t *testing.T, st *vmstore.Store, m *vmstore.Message) []byte {
	t.Helper()
	b, err := io.ReadAll(st.OpenMessage(m).Reader())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestLMTPQuotaPerRecipient: smtplib.LMTP sends a voice message to three
// recipients of which one is over quota, and to an unknown user. With
// SIZE= the quota refusal comes at RCPT (552 5.2.2: too big for what is
// left; 452 4.2.2: full); without it, after DATA (the store's check at
// commit). The others get 250 each, hold the message byte for byte with
// its Message-Context and duration, and the refused one holds nothing.
func TestLMTPQuotaPerRecipient(t *testing.T) {
	needPython(t)
	st := testStore(t)
	msg := voiceMessage(t, 4)
	account(t, st, "alice", vmstore.Quota{})
	account(t, st, "carol", vmstore.Quota{})
	account(t, st, "dave", vmstore.Quota{Bytes: int64(len(msg)) / 2})
	account(t, st, "bob", vmstore.Quota{Messages: 1})
	l := startLMTP(t, st, LMTPConfig{})
	host, port := hostPort(t, l)
	// bob fills his quota of one message.
	r := sendLMTP(t, host, port, 0, "data", 0, []byte("Subject: first\r\n\r\nhi\r\n"), "bob@example.net")
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5"}) {
		t.Fatalf("bob's first: %v", got)
	}

	r = sendLMTP(t, host, port, len(msg), "data", 0, msg, "alice@example.net", "dave@example.net", "carol@example.net", "bob@example.net", "nobody@example.net")
	if got := r.codes(r.Rcpt); !equal(got, []string{"250 2.0.0", "552 5.2.2", "250 2.0.0", "452 4.2.2", "550 5.1.1"}) {
		t.Fatalf("RCPT replies with SIZE: %v", got)
	}
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5", "250 2.1.5"}) {
		t.Fatalf("DATA replies: %v", got)
	}
	// Without SIZE, dave's refusal comes after the data.
	r = sendLMTP(t, host, port, 0, "data", 0, msg, "alice@example.net", "dave@example.net", "carol@example.net")
	if got := r.codes(r.Rcpt); !equal(got, []string{"250 2.0.0", "250 2.0.0", "250 2.0.0"}) {
		t.Fatalf("RCPT replies without SIZE: %v", got)
	}
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5", "552 5.2.2", "250 2.1.5"}) {
		t.Fatalf("DATA replies without SIZE: %v", got)
	}
	if n := len(inbox(t, st, "dave")); n != 0 {
		t.Fatalf("dave holds %d messages", n)
	}
	if n := len(inbox(t, st, "bob")); n != 1 {
		t.Fatalf("bob holds %d messages", n)
	}
	for _, u := range []string{"alice", "carol"} {
		ms := inbox(t, st, u)
		if len(ms) != 2 {
			t.Fatalf("%s holds %d messages", u, len(ms))
		}
		for i := range ms {
			m := &ms[i]
			b := raw(t, st, m)
			if !bytes.HasSuffix(b, msg) || !bytes.HasPrefix(b, []byte("Return-Path: <caller@pbx.example>\r\nReceived: ")) {
				t.Fatalf("%s: stored message differs (%d bytes for %d)", u, len(b), len(msg))
			}
			if m.Context != vmstore.ContextVoice || m.Duration < 3.5 || m.Duration > 4.5 {
				t.Fatalf("%s: context %q duration %v", u, m.Context, m.Duration)
			}
		}
	}
	if ms := inbox(t, st, "alice"); ms[0].Blob != inbox(t, st, "carol")[0].Blob {
		t.Fatal("the copies of one delivery do not share their content")
	}
}

// TestLMTPBDATBinary: BODY=BINARYMIME with BDAT chunks over a unix socket;
// the binary part is stored as sent.
func TestLMTPBDATBinary(t *testing.T) {
	needPython(t)
	st := testStore(t)
	account(t, st, "alice", vmstore.Quota{})
	account(t, st, "carol", vmstore.Quota{})
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	l := startLMTP(t, st, LMTPConfig{Listen: "127.0.0.1:0", Socket: sock})
	bin := make([]byte, 100000)
	for i := range bin {
		bin[i] = byte(i * 31)
	}
	msg := append([]byte("From: a@example.net\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: audio/basic\r\n"+
		"Content-Transfer-Encoding: binary\r\n\r\n"), bin...)
	msg = append(msg, "\r\n--b--\r\n"...)
	r := sendLMTP(t, sock, "0", len(msg), "bdat", 30000, msg, "alice@example.net", "carol@example.net", "nobody@example.net")
	if got := r.codes(r.Rcpt); !equal(got, []string{"250 2.0.0", "250 2.0.0", "550 5.1.1"}) {
		t.Fatalf("RCPT: %v", got)
	}
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5", "250 2.1.5"}) {
		t.Fatalf("BDAT: %v", got)
	}
	for _, u := range []string{"alice", "carol"} {
		ms := inbox(t, st, u)
		if len(ms) != 1 || !bytes.HasSuffix(raw(t, st, &ms[0]), msg) {
			t.Fatalf("%s: not stored as sent", u)
		}
	}
	// Over TCP as well, in one chunk.
	host, port := hostPort(t, l)
	r = sendLMTP(t, host, port, 0, "bdat", len(msg), msg, "alice@example.net")
	if got := r.codes(r.Data); !equal(got, []string{"250 2.1.5"}) {
		t.Fatalf("BDAT over TCP: %v", got)
	}
}

// TestLMTPTooBig: a message past max_message_size is refused by SIZE at
// MAIL and by the size limit in the data, and nothing is stored.
func TestLMTPTooBig(t *testing.T) {
	needPython(t)
	st := testStore(t)
	account(t, st, "alice", vmstore.Quota{})
	l := startLMTP(t, st, LMTPConfig{MaxMessageSize: 1000})
	host, port := hostPort(t, l)
	msg := []byte("Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 200))
	r := sendLMTP(t, host, port, 0, "data", 0, msg, "alice@example.net")
	if got := r.codes(r.Data); len(got) != 1 || !strings.HasPrefix(got[0], "552") {
		t.Fatalf("DATA of a big message: %v", got)
	}
	if n := len(inbox(t, st, "alice")); n != 0 {
		t.Fatalf("alice holds %d messages", n)
	}
}

// TestLMTPConnectionLimit: past lmtp.max_connections a client gets 421
// and is closed; a recipient of a domain not served is 550 5.1.1.
func TestLMTPConnectionLimit(t *testing.T) {
	st := testStore(t)
	account(t, st, "alice", vmstore.Quota{})
	l := startLMTP(t, st, LMTPConfig{MaxConnections: 1, Domains: []string{"example.net"}})
	host, port := hostPort(t, l)
	c1, err := net.Dial("tcp", host+":"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	r1 := bufio.NewReader(c1)
	if line, _ := r1.ReadString('\n'); !strings.HasPrefix(line, "220 ") {
		t.Fatalf("greeting %q", line)
	}
	c2, err := net.Dial("tcp", host+":"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	if line, _ := bufio.NewReader(c2).ReadString('\n'); !strings.HasPrefix(line, "421 4.4.5") {
		t.Fatalf("second connection got %q", line)
	}
	c1.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c1, "LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<Alice@example.net>\r\nQUIT\r\n")
	out, _ := io.ReadAll(r1)
	if !strings.Contains(string(out), "550 5.1.1") || strings.Count(string(out), "250 2.0.0") < 2 {
		t.Fatalf("replies:\n%s", out)
	}
}
