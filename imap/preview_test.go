package imap

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// TestPreview: FETCH PREVIEW (RFC 8970) for text, HTML, voice and
// media-only messages; the text is decoded to UTF-8, its white space
// collapsed and cut at 256 characters; PREVIEW (LAZY) returns what was
// computed at deposit; PREVIEW does not set \Seen.
func TestPreview(t *testing.T) {
	e := newTestEnv(t)
	long := strings.Repeat("word  \r\n\t", 100)
	e.deposit("alice", "INBOX", "Subject: t\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n  Caf=E9   au\r\n lait.\r\n> quoted, left out\r\n "+long+"\r\n")
	e.deposit("alice", "INBOX", "Subject: h\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/html\r\n\r\n<html><head><title>x</title><style>p{}</style></head><body><p>Hello&nbsp;<b>there</b> &amp; bye</p></body></html>\r\n--A--\r\n")
	voice, err := io.ReadAll(vmstore.VoiceMessage{From: "+15551234567@vm.example.net", Date: time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC),
		MediaType: "audio/wav", Duration: 42 * time.Second, Media: strings.NewReader("RIFF0000WAVE")}.Compose())
	if err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "INBOX", string(voice))
	e.deposit("alice", "INBOX", "From: Alice Example <alice@example.net>\r\nDate: Fri, 4 Dec 2026 10:15:00 +0100\r\nSubject: vm\r\nMessage-Context: voice-message\r\nContent-Duration: 65\r\n"+
		"Content-Type: multipart/voice-message; boundary=V\r\n\r\n--V\r\nContent-Type: text/plain\r\n\r\nHi, please\r\ncall me back.\r\n"+
		"--V\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\nUklGRjAwMDBXQVZF\r\n--V--\r\n")
	e.deposit("alice", "INBOX", "Subject: pic\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n")
	e.deposit("alice", "INBOX", "Subject: att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nnot this\r\n--B\r\nContent-Type: text/plain\r\n\r\nbut this\r\n--B--\r\n")
	rc := e.raw()
	rc.login("alice")
	if caps := rc.ok("CAPABILITY"); !strings.Contains(caps[0], " PREVIEW") {
		t.Fatalf("CAPABILITY: %q", caps)
	}
	rc.ok("SELECT INBOX")
	text := "Café au lait. " + strings.TrimSpace(strings.Repeat("word ", 100))
	text = string([]rune(text)[:256])
	for _, tc := range []struct{ seq, item, want string }{
		{"1", "PREVIEW", text},
		{"1", "PREVIEW (LAZY)", text},
		{"2", "PREVIEW", "Hello there & bye"},
		{"3", "PREVIEW", "Voice message from +15551234567, 0:42, 2026-12-04 10:15"},
		{"4", "PREVIEW (LAZY)", "Voice message from Alice Example, 1:05, 2026-12-04 10:15: Hi, please call me back."},
		{"5", "PREVIEW", ""},
		{"6", "PREVIEW", "but this"},
	} {
		first, got := fetchRaw(t, rc, tc.seq, tc.item)
		if !strings.HasSuffix(first, "}") {
			// A quoted string on the line.
			i := strings.Index(first, "PREVIEW ")
			if i < 0 {
				t.Fatalf("%s %s: %s", tc.seq, tc.item, first)
			}
			got = strings.TrimSuffix(first[i+len("PREVIEW "):], ")")
			got = strings.TrimSuffix(strings.TrimPrefix(got, `"`), `"`)
		}
		if got != tc.want {
			t.Errorf("%s %s: %s\ngot  %q\nwant %q", tc.seq, tc.item, first, got, tc.want)
		}
	}
	if l := rc.ok("FETCH 3 (PREVIEW FLAGS)"); l[0] != `* 3 FETCH (PREVIEW "Voice message from +15551234567, 0:42, 2026-12-04 10:15" FLAGS (\Recent))` {
		t.Fatalf("%q", l)
	}
	if l := rc.ok("UID FETCH 5 PREVIEW (CHANGEDSINCE 1)"); !strings.HasPrefix(l[len(l)-1], `* 5 FETCH (UID 5 PREVIEW "" MODSEQ (`) {
		t.Fatalf("%q", l)
	}
	if _, tagged := rc.cmd("FETCH 1 (PREVIEW (LAZY BOGUS))"); !strings.Contains(tagged, " BAD ") {
		t.Fatal(tagged)
	}
}

// TestPreviewPythonImaplib: imaplib, a client we did not write, fetches
// PREVIEW and BINARY[] and moves a message within the selected mailbox.
func TestPreviewPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("py", "Hello from imaplib"))
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	script := `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
assert 'PREVIEW' in m.capabilities and 'WITHIN' in m.capabilities, m.capabilities
m.select('INBOX')
typ, data = m.fetch('1', '(PREVIEW)')
assert typ == 'OK' and b'PREVIEW "Hello from imaplib"' in data[0], data
typ, data = m.fetch('1', '(BINARY.PEEK[])')
assert typ == 'OK' and data[0][1].endswith(b'Hello from imaplib\r\n'), data
typ, data = m.uid('MOVE', '1', 'INBOX')
assert typ == 'OK', (typ, data)
typ, data = m.uid('SEARCH', 'YOUNGER', '3600', 'MODSEQ', '1')
assert typ == 'OK' and data[0].split()[0] == b'2', data
print('OK preview')
m.logout()
`
	out, err := exec.Command(py, "-c", script, host, port, "alice", testPass).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK preview") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}
