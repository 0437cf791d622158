package deposit

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

var update = flag.Bool("update", false, "rewrite testdata/rfc4356-sample.{mms,eml}")

// A minimal WSP encoder for the tests: it builds the sample PDU (and so
// documents the encoding the decoder reads).
type enc struct{ bytes.Buffer }

func (e *enc) uintvar(v int) {
	var tmp [5]byte
	i := len(tmp) - 1
	tmp[i] = byte(v & 0x7f)
	for v >>= 7; v > 0; v >>= 7 {
		i--
		tmp[i] = byte(v&0x7f) | 0x80
	}
	e.Write(tmp[i:])
}
func (e *enc) text(s string) { e.WriteString(s); e.WriteByte(0) }
func (e *enc) valueLen(b []byte) {
	if len(b) <= 30 {
		e.WriteByte(byte(len(b)))
	} else {
		e.WriteByte(31)
		e.uintvar(len(b))
	}
	e.Write(b)
}

type part struct {
	ctype   []byte // encoded content type
	headers []byte
	data    []byte
}

func textType(t string) []byte { return append([]byte(t), 0) }

// sampleAudio is one second of 8 kHz µ-law in a WAV file.
func sampleAudio() []byte {
	le := binary.LittleEndian
	n := 8000
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
		w = append(w, byte(0xff-(i%64)))
	}
	return w
}

// samplePNG is a 1x1 PNG.
var samplePNG, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

const sampleSMIL = `<smil><head><layout><root-layout width="160" height="120"/>` +
	`<region id="Image" top="0" left="0" height="80" width="160"/><region id="Text" top="80" left="0" height="40" width="160"/>` +
	`</layout></head><body><par dur="1000ms"><img src="cid:image" region="Image"/><text src="cid:text" region="Text"/>` +
	`<audio src="cid:audio"/></par></body></smil>`

const sampleText = "Greetings from the beach — à bientôt!"

// samplePDU builds an m-retrieve-conf with a SMIL presentation, a text,
// an image and an audio part (OMA MMS encapsulation 1.2).
func samplePDU() []byte {
	var e enc
	e.Write([]byte{0x8C, 0x84}) // X-Mms-Message-Type: m-retrieve-conf
	e.WriteByte(0x98)           // X-Mms-Transaction-Id
	e.text("T0123456789")       //
	e.Write([]byte{0x8D, 0x92}) // X-Mms-MMS-Version: 1.2
	e.WriteByte(0x8B)           // Message-ID
	e.text("mms-20261205-0001@mmsc.example.net")
	e.Write([]byte{0x85, 0x04}) // Date: long-integer, 4 octets
	e.Write(binary.BigEndian.AppendUint32(nil, 1764921600))
	var from enc
	from.WriteByte(0x80) // Address-present-token
	from.text("+15551234567/TYPE=PLMN")
	e.WriteByte(0x89) // From
	e.valueLen(from.Bytes())
	e.WriteByte(0x97) // To
	e.text("+15557654321/TYPE=PLMN")
	var subj enc
	subj.WriteByte(0xEA) // charset utf-8 (106)
	subj.text("Beach day ☀")
	e.WriteByte(0x96) // Subject: encoded-string-value
	e.valueLen(subj.Bytes())
	e.Write([]byte{0x8A, 0x80}) // X-Mms-Message-Class: Personal
	e.Write([]byte{0x8F, 0x82}) // X-Mms-Priority: High
	e.Write([]byte{0x86, 0x81}) // X-Mms-Delivery-Report: No
	e.WriteString("X-Carrier-Note")
	e.WriteByte(0)
	e.text("sample") // an application header
	var ct enc
	ct.WriteByte(0xB3) // application/vnd.wap.multipart.related
	ct.WriteByte(0x89) // type
	ct.text("application/smil")
	ct.WriteByte(0x8A) // start
	ct.text("<smil>")
	e.WriteByte(0x84) // Content-Type
	e.valueLen(ct.Bytes())

	cid := func(id, loc string) []byte {
		var h enc
		h.WriteByte(0xC0) // Content-ID
		h.WriteByte('"')
		h.text("<" + id + ">")
		h.WriteByte(0x8E) // Content-Location
		h.text(loc)
		return h.Bytes()
	}
	var textCT enc
	textCT.valueLen([]byte{0x83, 0x81, 0xEA}) // text/plain; charset=utf-8
	parts := []part{
		{textType("application/smil"), cid("smil", "smil.smil"), []byte(sampleSMIL)},
		{textCT.Bytes(), cid("text", "text.txt"), []byte(sampleText)},
		{[]byte{0xA0}, cid("image", "beach.png"), samplePNG}, // image/png
		{textType("audio/wav"), cid("audio", "hello.wav"), sampleAudio()},
	}
	e.uintvar(len(parts))
	for _, p := range parts {
		e.uintvar(len(p.ctype) + len(p.headers))
		e.uintvar(len(p.data))
		e.Write(p.ctype)
		e.Write(p.headers)
		e.Write(p.data)
	}
	return e.Bytes()
}

// TestRFC4356Sample: the checked-in PDU is what samplePDU builds, and it
// maps to the checked-in Internet mail form (go test -update rewrites
// both).
func TestRFC4356Sample(t *testing.T) {
	pdu := samplePDU()
	m, err := DecodeMMS(pdu)
	if err != nil {
		t.Fatal(err)
	}
	mail := m.Mail("mms.example.net")
	mmsPath, emlPath := filepath.Join("testdata", "rfc4356-sample.mms"), filepath.Join("testdata", "rfc4356-sample.eml")
	if *update {
		if err := os.WriteFile(mmsPath, pdu, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(emlPath, mail, 0o644); err != nil {
			t.Fatal(err)
		}
		seed := []byte("go test fuzz v1\n[]byte(" + goQuote(pdu) + ")\n")
		if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzDecodeMMS", "sample"), seed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantPDU, err := os.ReadFile(mmsPath)
	if err != nil {
		t.Fatal(err)
	}
	wantMail, err := os.ReadFile(emlPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pdu, wantPDU) || !bytes.Equal(mail, wantMail) {
		t.Fatalf("the sample changed; rerun with -update if intended:\n%s", mail)
	}
	for _, want := range []string{
		"X-Mms-Message-Type: m-retrieve-conf\r\n", "X-Mms-Transaction-Id: T0123456789\r\n",
		"X-Mms-MMS-Version: 1.2\r\n", "X-Mms-Message-Class: Personal\r\n", "X-Mms-Priority: High\r\n",
		"From: +15551234567/TYPE=PLMN@mms.example.net\r\n", "To: +15557654321/TYPE=PLMN@mms.example.net\r\n",
		"Subject: =?utf-8?q?Beach_day_=E2=98=80?=\r\n", "Message-Id: <mms-20261205-0001@mmsc.example.net>\r\n",
		"Date: Fri, 05 Dec 2025 08:00:00 +0000\r\n", "X-Carrier-Note: sample\r\n",
		"Message-Context: multimedia-message\r\n", "Content-Type: multipart/related; boundary=",
		`start="<smil>"`, "type=\"application/smil\"", "Content-Id: <audio>\r\n", "Content-Location: hello.wav\r\n",
	} {
		if !bytes.Contains(mail, []byte(want)) {
			t.Errorf("no %q in the mapped message", want)
		}
	}
}

func goQuote(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			s.WriteString(`\x`)
			s.WriteByte("0123456789abcdef"[c>>4])
			s.WriteByte("0123456789abcdef"[c&15])
		}
	}
	s.WriteByte('"')
	return s.String()
}

// TestDepositMMS: the PDU deposited bare, and carried base64 in a message,
// is stored as a multimedia-message with its multipart/related structure
// (SMIL start part, text, image, audio) and the audio part reads back
// byte for byte through the part API, with its duration measured.
func TestDepositMMS(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1,
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	account(t, st, "u", vmstore.Quota{})
	pdu := samplePDU()
	wrapped := "From: mmsc@example.net\r\nTo: u@example.net\r\nSubject: outer\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/vnd.wap.mms-message\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		lines(base64.StdEncoding.EncodeToString(pdu))
	for _, in := range []io.Reader{bytes.NewReader(pdu), strings.NewReader(wrapped)} {
		res, err := Deposit(st, "u", in, Options{Service: "lmtp", MMSDomain: "mms.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Message.Context != vmstore.ContextMultimedia {
			t.Fatalf("context %q", res.Message.Context)
		}
		msg := message.New(st, &res.Message)
		root, err := msg.Structure()
		if err != nil {
			t.Fatal(err)
		}
		if root.MediaType() != "multipart/related" || root.Params["type"] != "application/smil" || len(root.Parts) != 4 {
			t.Fatalf("structure %s %v, %d parts", root.MediaType(), root.Params, len(root.Parts))
		}
		var types []string
		for _, p := range root.Parts {
			types = append(types, p.MediaType())
		}
		if got := strings.Join(types, " "); got != "application/smil text/plain image/png audio/wav" {
			t.Fatalf("parts %s", got)
		}
		sec, _ := message.ParseBinary("4")
		p, err := msg.Open(sec, message.DecodedLeaf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(p.Reader())
		p.Close()
		if err != nil || !bytes.Equal(got, sampleAudio()) {
			t.Fatalf("audio part: %d bytes, %v", len(got), err)
		}
		sec, _ = message.ParseBinary("2")
		p, _ = msg.Open(sec, message.DecodedLeaf)
		got, _ = io.ReadAll(p.Reader())
		p.Close()
		if string(got) != sampleText {
			t.Fatalf("text part %q", got)
		}
		msg.Release()
	}
	// The mapped form deposited as it is: stored byte for byte, as a
	// multimedia-message.
	eml, err := os.ReadFile(filepath.Join("testdata", "rfc4356-sample.eml"))
	if err != nil {
		t.Fatal(err)
	}
	noCtx := bytes.Replace(eml, []byte("Message-Context: multimedia-message\r\n"), nil, 1)
	res, err := Deposit(st, "u", bytes.NewReader(noCtx), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Context != vmstore.ContextMultimedia || readAll(t, st, &res.Message) != string(noCtx) {
		t.Fatalf("mapped MMS stored as %q", res.Message.Context)
	}
}

func lines(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// TestDecodeMMSRefuses: truncations and corruptions of the sample are
// ErrBadMMS, never a panic.
func TestDecodeMMSRefuses(t *testing.T) {
	pdu := samplePDU()
	for n := 0; n < len(pdu); n += 1 + n/8 {
		if _, err := DecodeMMS(pdu[:n]); !errors.Is(err, ErrBadMMS) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	if _, err := Deposit(testStore(t), "u", bytes.NewReader(pdu[:40]), Options{}); !errors.Is(err, vmstore.ErrInvalid) {
		t.Fatalf("deposit of a truncated PDU: %v", err)
	}
}

// FuzzDecodeMMS: any input decodes or is refused, without panic; what
// decodes maps to a message the store parses.
func FuzzDecodeMMS(f *testing.F) {
	pdu := samplePDU()
	f.Add(pdu)
	f.Add(pdu[:200])
	f.Add([]byte{0x8C, 0x80, 0x84, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMMS(b)
		if err != nil {
			if !errors.Is(err, ErrBadMMS) {
				t.Fatal(err)
			}
			return
		}
		mail := m.Mail("example.net")
		if !bytes.Contains(mail, []byte("Message-Context: multimedia-message\r\n")) {
			t.Fatal("no Message-Context")
		}
	})
}
