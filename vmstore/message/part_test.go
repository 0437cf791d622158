package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

func openStore(t testing.TB) *vmstore.Store {
	t.Helper()
	s, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-alice", PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func deposit(t testing.TB, s *vmstore.Store, raw []byte) *vmstore.Message {
	t.Helper()
	res, err := s.Deposit(vmstore.DepositReq{User: "alice", Body: bytes.NewReader(raw), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &res.Message
}

// b64Lines encodes data as base64 in lines of 76 characters, each ended
// by CRLF.
func b64Lines(data []byte) string {
	var b strings.Builder
	for i := 0; i < len(data); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(data[i:min(i+57, len(data))]))
		b.WriteString("\r\n")
	}
	return b.String()
}

// presentedB64 is the base64 form present.go gives a binary part: lines
// of 76 characters, CRLF between them, none after the last.
func presentedB64(data []byte) string {
	return strings.TrimSuffix(b64Lines(data), "\r\n")
}

// sample is a message with every kind of part: quoted-printable text,
// base64 audio larger than a store chunk, a message/rfc822 holding a
// multipart with an 8bit part and a part in an unknown encoding, and a
// part with NUL octets (appended with a literal8).
type sample struct {
	raw, presented []byte
	audio, bin     []byte
	pieces         map[string]string // name -> exact octets
}

func newSample() *sample {
	audio := make([]byte, 200_000) // base64 > 256 KiB: spans store chunks
	for i := range audio {
		audio[i] = byte(i*7 + i>>8)
	}
	bin := []byte("RIFF\x00\x00\x01\x00WAVEfmt \x00\x10\x00\x00\x00")
	bin = append(bin, bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	p := map[string]string{
		"hdr":       "From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: sample\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n",
		"1.MIME":    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
		"1":         "caf=C3=A9 =3D soft=\r\nbreak\r\nsecond line",
		"2.MIME":    "Content-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename=msg.wav\r\n\r\n",
		"2":         strings.TrimSuffix(b64Lines(audio), "\r\n"),
		"3.MIME":    "Content-Type: message/rfc822\r\n\r\n",
		"3.HEADER":  "From: <carol@example.net>\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n",
		"3.1.MIME":  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		"3.1":       "h\xc3\xa9llo in 8bit",
		"3.2.MIME":  "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n",
		"3.2":       "begin 644 x\r\n#86)C\r\n`\r\nend",
		"4.MIME":    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n",
		"4":         string(bin),
		"4.MIMEout": "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
	}
	p["3.TEXT"] = "--inner\r\n" + p["3.1.MIME"] + p["3.1"] + "\r\n--inner\r\n" + p["3.2.MIME"] + p["3.2"] + "\r\n--inner--\r\n"
	p["3"] = p["3.HEADER"] + p["3.TEXT"]
	build := func(binPart string) string {
		return "preamble\r\n--outer\r\n" + p["1.MIME"] + p["1"] + "\r\n--outer\r\n" + p["2.MIME"] + p["2"] +
			"\r\n--outer\r\n" + p["3.MIME"] + p["3"] + "\r\n--outer\r\n" + binPart + "\r\n--outer--\r\n"
	}
	p["TEXT"] = build(p["4.MIME"] + p["4"])
	p["TEXTout"] = build(p["4.MIMEout"] + presentedB64(bin))
	return &sample{
		raw:       []byte(p["hdr"] + p["TEXT"]),
		presented: []byte(p["hdr"] + p["TEXTout"]),
		audio:     audio, bin: bin, pieces: p,
	}
}

func mustParse(t testing.TB, s string) Section {
	t.Helper()
	sec, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sec
}

// readAll reads a part three ways (Reader, NewReader, ReadAt) and checks
// they agree with each other and with Size.
func readAll(t *testing.T, p *Part) []byte {
	t.Helper()
	got, err := io.ReadAll(p.Reader())
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	r := p.NewReader()
	defer r.Close()
	got2, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, got2) {
		t.Fatalf("NewReader: %d bytes (err %v), Reader %d", len(got2), err, len(got))
	}
	size, err := p.Size()
	if err != nil || size != int64(len(got)) {
		t.Fatalf("Size = %d, %v; read %d", size, err, len(got))
	}
	buf := make([]byte, size)
	if n, err := p.ReadAt(buf, 0); int64(n) != size || (err != nil && err != io.EOF) || !bytes.Equal(buf, got) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	return got
}

func TestSections(t *testing.T) {
	s := openStore(t)
	smp := newSample()
	m := deposit(t, s, smp.raw)
	if !m.Binary {
		t.Fatal("sample not marked binary")
	}
	p := smp.pieces
	pres := string(smp.presented)
	qpDecoded := "caf\u00e9 = softbreak\r\nsecond line"
	tests := []struct {
		sec      string
		raw      string // BODY[sec]
		dec      *string
		decErr   error
		nul      bool
		leaf     bool // Decoded: a single-part body
		typ, enc string
	}{
		{sec: "", raw: pres, dec: ptr(string(smp.raw)), nul: true, typ: "multipart/mixed"},
		{sec: "HEADER", raw: p["hdr"]},
		{sec: "TEXT", raw: p["TEXTout"]},
		{sec: "HEADER.FIELDS (Subject FROM)", raw: "From: <+15551234@example.net>\r\nSubject: sample\r\n\r\n"},
		{sec: "HEADER.FIELDS.NOT (subject from date mime-version content-type)", raw: "To: <alice@example.net>\r\n\r\n"},
		{sec: "1", raw: p["1"], dec: &qpDecoded, leaf: true, typ: "text/plain", enc: "quoted-printable"},
		{sec: "1.MIME", raw: p["1.MIME"]},
		{sec: "2", raw: p["2"], dec: ptr(string(smp.audio)), nul: true, leaf: true, typ: "audio/wav", enc: "base64"},
		{sec: "2.MIME", raw: p["2.MIME"]},
		{sec: "3", raw: p["3"], dec: ptr(p["3"]), typ: "message/rfc822"},
		{sec: "3.MIME", raw: p["3.MIME"]},
		{sec: "3.HEADER", raw: p["3.HEADER"]},
		{sec: "3.HEADER.FIELDS (SUBJECT)", raw: "Subject: inner\r\n\r\n"},
		{sec: "3.TEXT", raw: p["3.TEXT"]},
		{sec: "3.1", raw: p["3.1"], dec: ptr(p["3.1"]), leaf: true, typ: "text/plain", enc: "8bit"},
		{sec: "3.1.MIME", raw: p["3.1.MIME"]},
		{sec: "3.2", raw: p["3.2"], decErr: ErrUnknownEncoding, typ: "application/octet-stream", enc: "x-uuencode"},
		{sec: "4", raw: presentedB64(smp.bin), dec: ptr(string(smp.bin)), nul: true, leaf: true, typ: "application/octet-stream", enc: "base64"},
		{sec: "4.MIME", raw: p["4.MIMEout"]},
	}
	h := New(s, m)
	defer h.Release()
	for _, tc := range tests {
		t.Run("BODY["+tc.sec+"]", func(t *testing.T) {
			part, err := h.Open(mustParse(t, tc.sec), Raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, part); string(got) != tc.raw {
				t.Fatalf("raw = %d bytes %.60q, want %d bytes %.60q", len(got), got, len(tc.raw), tc.raw)
			}
			if nul, _ := part.HasNUL(); nul {
				t.Fatal("raw content reported with NUL")
			}
			if tc.typ != "" && part.Node.MediaType() != tc.typ {
				t.Fatalf("type %s, want %s", part.Node.MediaType(), tc.typ)
			}
			if tc.enc != "" && part.Encoding != tc.enc && !(tc.sec == "4" && part.Encoding == "base64") {
				t.Fatalf("encoding %q, want %q", part.Encoding, tc.enc)
			}
		})
		sec, err := Parse(tc.sec)
		if err != nil || !sec.PartOnly() {
			continue
		}
		t.Run("BINARY["+tc.sec+"]", func(t *testing.T) {
			part, err := h.Open(sec, Decoded)
			if tc.decErr != nil {
				if !errors.Is(err, tc.decErr) {
					t.Fatalf("err = %v, want %v", err, tc.decErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, part); string(got) != *tc.dec {
				t.Fatalf("decoded = %d bytes %.60q, want %d bytes %.60q", len(got), got, len(*tc.dec), *tc.dec)
			}
			if nul, err := part.HasNUL(); nul != tc.nul || err != nil {
				t.Fatalf("HasNUL = %v, %v", nul, err)
			}
			if part.Leaf != tc.leaf {
				t.Fatalf("Leaf = %v", part.Leaf)
			}
			if tc.typ != "" && part.Type+"/"+part.Subtype != tc.typ {
				t.Fatalf("type %s/%s, want %s", part.Type, part.Subtype, tc.typ)
			}
			leaf, err := h.Open(sec, DecodedLeaf)
			if tc.leaf != (err == nil) || !tc.leaf && !errors.Is(err, ErrNotLeaf) {
				t.Fatalf("DecodedLeaf: %v", err)
			}
			if err == nil {
				if got := readAll(t, leaf); string(got) != *tc.dec {
					t.Fatalf("DecodedLeaf read %d bytes", len(got))
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// A section the message lacks, BINARY with a section-text, the whole of a
// single-part message as DecodedLeaf.
func TestOpenErrors(t *testing.T) {
	s := openStore(t)
	smp := newSample()
	h := New(s, deposit(t, s, smp.raw))
	for _, sec := range []string{"5", "2.2", "3.3", "3.1.2", "1.TEXT", "2.HEADER", "5.MIME"} {
		if _, err := h.Open(mustParse(t, sec), Raw); !errors.Is(err, ErrNoSuchPart) {
			t.Errorf("Raw %s: %v", sec, err)
		}
	}
	for _, sec := range []string{"5", "2.2", "3.3"} {
		if _, err := h.Open(mustParse(t, sec), Decoded); !errors.Is(err, ErrNoSuchPart) {
			t.Errorf("Decoded %s: %v", sec, err)
		}
	}
	if _, err := h.Open(mustParse(t, "1.MIME"), Decoded); !errors.Is(err, ErrSyntax) {
		t.Errorf("Decoded 1.MIME: %v", err)
	}
	if _, err := h.Open(Section{}, DecodedLeaf); !errors.Is(err, ErrNotLeaf) {
		t.Errorf("DecodedLeaf of a multipart message: %v", err)
	}
	single := deposit(t, s, []byte("Subject: one\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"))
	part, err := New(s, single).Open(Section{}, DecodedLeaf)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, part); string(got) != "hello" {
		t.Fatalf("single-part body %q", got)
	}
	bad2 := deposit(t, s, []byte("Subject: bad\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naG=Vsbm8=\r\n--b--\r\n"))
	part, err = New(s, bad2).Open(mustParse(t, "1"), Decoded)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Size(); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("Size of undecodable base64: %v", err)
	}
	if _, err := io.ReadAll(part.NewReader()); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("reading undecodable base64: %v", err)
	}
	if _, err := Open(s, "alice", "INBOX", 999, Section{}, Raw); !errors.Is(err, vmstore.ErrNotFound) {
		t.Fatalf("Open of a missing UID: %v", err)
	}
}

// Partial ranges at the edges of every section, raw and decoded: Range,
// ReadAt and Seek+Read give the same slice of the whole.
func TestPartialRanges(t *testing.T) {
	s := openStore(t)
	smp := newSample()
	m := deposit(t, s, smp.raw)
	h := New(s, m)
	defer h.Release()
	for _, c := range []struct {
		sec  string
		mode Mode
	}{{"", Raw}, {"1", Raw}, {"1", Decoded}, {"2", Raw}, {"2", Decoded}, {"3", Decoded}, {"4", Raw}, {"4", Decoded},
		{"HEADER.FIELDS (FROM)", Raw}, {"3.TEXT", Raw}} {
		part, err := h.Open(mustParse(t, c.sec), c.mode)
		if err != nil {
			t.Fatal(err)
		}
		whole := readAll(t, part)
		size := int64(len(whole))
		offs := []int64{0, 1, size / 2, size - 1, size, size + 1}
		if c.sec == "2" && c.mode == Raw {
			// The edge of the first 256 KiB store chunk (part 2 comes
			// before the binary part: presented and stored offsets agree).
			edge := int64(256<<10) - part.start
			if edge <= 0 || edge >= size {
				t.Fatalf("part 2 at %d..%d does not span the chunk edge", part.start, part.end)
			}
			offs = append(offs, edge-1, edge, edge+1)
		}
		for _, off := range offs {
			lengths := []int64{1, 2, 57, size - off, size, -1}
			if c.mode != Raw && size > 64<<10 {
				lengths = []int64{1, size - off, -1} // each read decodes from the start
			}
			for _, n := range lengths {
				if off < 0 || n == 0 {
					continue
				}
				end := size
				if n >= 0 && off+n < size {
					end = off + n
				}
				want := []byte{}
				if off < size {
					want = whole[off:end]
				}
				name := fmt.Sprintf("%s mode %d <%d.%d>", c.sec, c.mode, off, n)
				r, err := part.Range(off, n)
				if err != nil {
					t.Fatalf("%s: Range: %v", name, err)
				}
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: Range read %d bytes (%v), want %d", name, len(got), err, len(want))
				}
				if n > 0 && n < 1<<20 {
					buf := make([]byte, n)
					k, err := part.ReadAt(buf, off)
					if !bytes.Equal(buf[:k], want) || (k < len(buf) && err != io.EOF) {
						t.Fatalf("%s: ReadAt = %d, %v", name, k, err)
					}
				}
				rd := part.NewReader()
				if _, err := rd.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				var src io.Reader = rd
				if n >= 0 {
					src = io.LimitReader(rd, n)
				}
				got, err = io.ReadAll(src)
				rd.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: Seek+Read %d bytes (%v), want %d", name, len(got), err, len(want))
				}
			}
		}
	}
}

// A reader seeks backwards and forwards in decoded content.
func TestReaderSeek(t *testing.T) {
	s := openStore(t)
	smp := newSample()
	part, err := New(s, deposit(t, s, smp.raw)).Open(mustParse(t, "2"), Decoded)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	r := part.NewReader()
	defer r.Close()
	buf := make([]byte, 100)
	for _, pos := range []int64{150_000, 10, 199_950, 0, 100_000} {
		if _, err := r.Seek(pos, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadFull(r, buf)
		want := smp.audio[pos:min(pos+100, int64(len(smp.audio)))]
		if !bytes.Equal(buf[:n], want) || (n < 100 && err != io.ErrUnexpectedEOF) {
			t.Fatalf("at %d: read %d (%v)", pos, n, err)
		}
	}
	if end, err := r.Seek(-10, io.SeekEnd); err != nil || end != int64(len(smp.audio))-10 {
		t.Fatalf("SeekEnd = %d, %v", end, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative position accepted")
	}
}

// A message without binary parts is served as stored: BODY[] is the blob.
func TestPlainMessageRawIsStored(t *testing.T) {
	s := openStore(t)
	raw := []byte("Subject: plain\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
	m := deposit(t, s, raw)
	part, err := Open(s, "alice", "INBOX", m.UID, Section{}, Raw)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if got := readAll(t, part); !bytes.Equal(got, raw) {
		t.Fatalf("BODY[] = %q", got)
	}
	text, err := Open(s, "alice", "INBOX", m.UID, Section{Spec: SpecText}, Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, text); string(got) != "hello\r\n" || !text.Leaf || text.Type != "text" {
		t.Fatalf("TEXT = %q leaf %v type %s", got, text.Leaf, text.Type)
	}
}
