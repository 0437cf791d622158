package imap

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// voicemailWAV is a VPIM-style message whose part 1 is a 2-second GSM 06.10
// WAV (WAV49), as GSM-recording platforms deposit.
func voicemailWAV(t *testing.T) string {
	t.Helper()
	pcm := make([]int16, 16000)
	for i := range pcm {
		pcm[i] = int16(8000 * (float64(i%40)/20 - 1))
	}
	var wav bytes.Buffer
	if err := transcode.WriteWAV(&wav, pcm, 8000, transcode.GSM); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(vmstore.VoiceMessage{From: "+15551234@example.net", MediaType: "audio/wav", Media: bytes.NewReader(wav.Bytes())}.Compose())
	return b.String()
}

func jpegMessage(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y += 4 {
		for x := 0; x < 640; x += 4 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var j bytes.Buffer
	jpeg.Encode(&j, img, nil)
	return "From: mms@example.net\r\nSubject: picture\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(j.Bytes()) + "\r\n--zz--\r\n"
}

var literalRe = regexp.MustCompile(`~?\{(\d+)\}$`)

// readConverted reads one CONVERTED response with an optional literal and
// returns the text and the literal bytes.
func (rc *rawClient) convertCmd(format string, args ...any) (string, []byte, string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("t%d", rc.n)
	rc.send(tag + " " + fmt.Sprintf(format, args...))
	var text string
	var lit []byte
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return text, lit, l
		}
		text += l
		if m := literalRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			lit = make([]byte, n)
			if _, err := io.ReadFull(rc.r, lit); err != nil {
				rc.t.Fatal(err)
			}
		}
	}
}

func TestConvert(t *testing.T) {
	e := newTestEnv(t)
	uid := e.deposit("alice", "INBOX", voicemailWAV(t))
	pic := e.deposit("alice", "INBOX", jpegMessage(t))
	rc := e.raw()
	// CONVERT needs a selected mailbox; CONVERSIONS does not.
	if _, tagged := rc.cmd("CONVERT 1 (NIL) BINARY[1]"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("CONVERT before login: %s", tagged)
	}
	rc.login("alice")
	if _, tagged := rc.cmd("CONVERT 1 (NIL) BINARY[1]"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("CONVERT without mailbox: %s", tagged)
	}
	lines := rc.ok(`CONVERSIONS "text/plain" "text/plain"`)
	if len(lines) != 1 || !strings.Contains(lines[0], `"charset"`) || !strings.Contains(lines[0], `"unknown-character-replacement"`) {
		t.Fatalf("text conversions: %q", lines)
	}
	if lines := rc.ok(`CONVERSIONS "audio/*" "*"`); len(lines) < 10 {
		t.Fatalf("audio conversions: %d", len(lines))
	}
	if lines := rc.ok(`CONVERSIONS "x-foo/bar" "*"`); len(lines) != 0 {
		t.Fatalf("no conversions expected: %q", lines)
	}
	if _, tagged := rc.cmd(`CONVERSIONS "audio" "*"`); !strings.Contains(tagged, "BAD") {
		t.Fatalf("bad pattern: %s", tagged)
	}
	rc.ok("SELECT INBOX")

	// Structure and size first, then the content, paged.
	text, _, tagged := rc.convertCmd(`UID CONVERT %d ("audio/basic") (BODYPARTSTRUCTURE[1] BINARY.SIZE[1])`, uid)
	if !strings.Contains(tagged, "OK") || !strings.Contains(text, `CONVERTED (TAG "t`) || !strings.Contains(text, "(UID "+fmt.Sprint(uid)+" BODYPARTSTRUCTURE[1] (\"AUDIO\" \"BASIC\"") ||
		!strings.Contains(text, "BINARY.SIZE[1] 16000") {
		t.Fatalf("structure/size: %s / %s", text, tagged)
	}
	_, whole, _ := rc.convertCmd(`UID CONVERT %d ("audio/basic") BINARY[1]`, uid)
	var paged []byte
	for off := 0; off < 16000; off += 4096 {
		_, part, _ := rc.convertCmd(`UID CONVERT %d ("audio/basic") BINARY[1]<%d.4096>`, uid, off)
		paged = append(paged, part...)
	}
	if len(whole) != 16000 || !bytes.Equal(whole, paged) {
		t.Fatalf("whole %d bytes, paged %d, equal %v", len(whole), len(paged), bytes.Equal(whole, paged))
	}
	// L16 16 kHz WAV.
	_, wav, tagged := rc.convertCmd(`UID CONVERT %d ("audio/wav" ("u.codec" "l16" "u.sample-rate" "16000")) BINARY[1]`, uid)
	info, err := transcode.Probe(bytes.NewReader(wav))
	if err != nil || info.Codec != transcode.L16 || info.Rate != 16000 || info.Duration.Seconds() != 2 {
		t.Fatalf("l16 wav: %v %v (%s)", info, err, tagged)
	}
	// The default conversion, and what is available.
	text, _, _ = rc.convertCmd(`UID CONVERT %d (NIL) AVAILABLECONVERSIONS[1]`, uid)
	if !strings.Contains(text, `AVAILABLECONVERSIONS[1] (("audio/wav" "audio/basic"`) {
		t.Fatalf("available: %s", text)
	}
	// A JPEG scaled into 176x144.
	_, img, tagged := rc.convertCmd(`UID CONVERT %d ("image/jpeg" ("pix-x" "176" "pix-y" "144")) BINARY[1]`, pic)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 176 || cfg.Height != 132 {
		t.Fatalf("scaled picture %dx%d %v (%s)", cfg.Width, cfg.Height, err, tagged)
	}
	// Errors.
	text, _, tagged = rc.convertCmd(`UID CONVERT %d ("audio/basic" ("x-frob" "1")) BINARY[1]`, uid)
	if !strings.Contains(text, `(ERROR "`) || !strings.Contains(text, `BADPARAMETERS "audio/wav" "audio/basic" ("x-frob"))`) || !strings.Contains(tagged, "NO") {
		t.Fatalf("unknown parameter: %s / %s", text, tagged)
	}
	text, _, _ = rc.convertCmd(`UID CONVERT %d ("audio/basic") BINARY[9]`, uid)
	if !strings.Contains(text, `BADPARAMETERS NIL "audio/basic"`) {
		t.Fatalf("missing part: %s", text)
	}
	if _, tagged := rc.cmd(`UID CONVERT %d ("audio") BINARY[1]`, uid); !strings.Contains(tagged, "BAD") {
		t.Fatalf("bad type: %s", tagged)
	}
	if _, tagged := rc.cmd(`UID CONVERT %d ("x-foo/bar") BINARY[1]`, uid); !strings.Contains(tagged, "NO") {
		t.Fatalf("unknown type: %s", tagged)
	}
	for i := 0; i < maxConvertMessages; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprint("m", i), "x"))
	}
	rc.ok("NOOP")
	if _, tagged := rc.cmd(`CONVERT 1:* ("audio/basic") BINARY[1]`); !strings.Contains(tagged, fmt.Sprintf("NO [MAXCONVERTMESSAGES %d]", maxConvertMessages)) {
		t.Fatalf("too many: %s", tagged)
	}
	// Nothing was marked read, nothing changed in the store.
	msgs, _ := e.store.Messages(mustMailbox(t, e, "alice").ID, uid, pic)
	for _, m := range msgs {
		if m.Has(vmstore.FlagSeen) {
			t.Fatalf("CONVERT set \\Seen on %d", m.UID)
		}
	}
}

func mustMailbox(t *testing.T, e *testEnv, user string) *vmstore.Mailbox {
	mb, err := e.store.Mailbox(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// Python's imaplib, a client we did not write, drives CONVERT.
func TestConvertPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	e := newTestEnv(t)
	uid := e.deposit("alice", "INBOX", voicemailWAV(t))
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	script := `
import imaplib, sys
imaplib.Commands['CONVERT'] = ('SELECTED',)
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
m.select('INBOX')
typ, data = m.uid('CONVERT', sys.argv[5], '("audio/basic")', '(BINARY.SIZE[1] BINARY[1])')
assert typ == 'OK', (typ, data)
conv = m.untagged_responses.get('CONVERTED') or []
assert conv, m.untagged_responses
blob = b''.join(x[1] if isinstance(x, tuple) else b'' for x in conv)
assert len(blob) == 16000, len(blob)
typ, data = m.uid('CONVERT', sys.argv[5], '("audio/basic" ("nonsense" "1"))', 'BINARY[1]')
assert typ == 'NO', (typ, data)
print('OK converted', len(blob))
m.logout()
`
	out, err := exec.Command(py, "-c", script, host, port, "alice", testPass, fmt.Sprint(uid)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK converted 16000") {
		t.Fatalf("imaplib CONVERT: %v\n%s", err, out)
	}
}
