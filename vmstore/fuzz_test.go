package vmstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzParseMessage: any input parses (possibly as an opaque body) with
// offsets inside the message, never a panic.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add(voiceMessage("a@b", "s", []byte("RIFF....WAVEfmt ")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\n--a--\r\n"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=\"x\"\n\n--x\n\ntext\n--x\nContent-Type: multipart/mixed; boundary=y\n\n--y\n--y--\n--x--"))
	f.Add([]byte("no header at all\r\n"))
	f.Add([]byte(""))
	f.Add([]byte("Content-Type: audio/basic\r\nContent-Duration: abc\r\n\r\n\xff\xff"))
	f.Add([]byte("Content-Type: multipart/x; boundary=b\r\n\r\n--b\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\nUklGRg==\r\nAAAA\r\n--b\r\nContent-Type: audio/basic\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=FF=00ab=\r\ncd \r\n--b--\r\n"))
	// Long bodies (taken in bulk): base64 audio to measure, text with
	// lines that start with "-" or "--" without being delimiters, binary
	// content with NULs, line ends of both kinds.
	audio := make([]byte, 40000)
	for i := range audio {
		audio[i] = byte(i*7 + i/13)
	}
	var long bytes.Buffer
	long.WriteString("Content-Type: multipart/voice-message; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n")
	for i := 0; i < 300; i++ {
		long.WriteString("- a list item\r\n--b1x not a delimiter\n-\r\nplain line\r\n")
	}
	long.WriteString("--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(audio)
	for len(enc) > 76 {
		long.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	long.WriteString(enc + "\n--b1\r\nContent-Type: audio/basic\r\n\r\n")
	long.Write(audio)
	long.WriteString("\r\n--b1--\r\nepilogue\r\n")
	f.Add(long.Bytes())
	prober := func(mt string, head []byte, size int64) (time.Duration, bool) { return time.Duration(size), true }
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseMessage(bytes.NewReader(data), prober)
		if err != nil {
			t.Fatal(err)
		}
		var check func(pt *Part, depth int)
		check = func(pt *Part, depth int) {
			if pt.Start < 0 || pt.Start > pt.Body || pt.Body > pt.End || pt.End > int64(len(data)) {
				t.Fatalf("bad offsets %d %d %d of %d", pt.Start, pt.Body, pt.End, len(data))
			}
			if depth > maxMIMEDepth+2 {
				t.Fatal("too deep")
			}
			for i := range pt.Parts {
				check(&pt.Parts[i], depth+1)
			}
			// A measured base64 audio part: the size given to the prober
			// is the size of its decoded content.
			if pt.measured && pt.Encoding == "base64" && len(pt.Parts) == 0 {
				clean := bytes.Map(func(r rune) rune {
					if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
						return -1
					}
					return r
				}, data[pt.Body:pt.End])
				if dec, err := base64.StdEncoding.DecodeString(string(clean)); err == nil && int64(pt.Duration*1e9+0.5) != int64(len(dec)) {
					t.Fatalf("measured %v bytes of base64 content that decodes to %d", pt.Duration*1e9, len(dec))
				}
			}
		}
		check(&p.root, 0)
		// Leaf bodies taken in bulk parse as line by line, whatever the
		// buffer size.
		for _, size := range []int{16, 100, 4096} {
			bulk, err1 := parseMessageWith(bytes.NewReader(data), prober, size, false)
			lines, err2 := parseMessageWith(bytes.NewReader(data), prober, size, true)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(bulk, lines) {
				t.Fatalf("buffer %d: bulk parse\n%+v\nline by line\n%+v", size, bulk.root, lines.root)
			}
			if size == 4096 && !reflect.DeepEqual(bulk, p) {
				t.Fatalf("buffer %d: parse\n%+v\ndefault buffer\n%+v", size, bulk.root, p.root)
			}
		}
	})
}

// FuzzBackupHeader: any bytes give ErrNotBackup or a format version of at
// least 1.
func FuzzBackupHeader(f *testing.F) {
	f.Add([]byte(backupMagic + "format 2\n"))
	f.Add([]byte(backupMagicV1 + "\x00\x01"))
	f.Add([]byte(backupMagic + "format -1\n"))
	f.Add([]byte(backupMagic + "format 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := BackupFormat(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrNotBackup) {
				t.Fatalf("error %v is not ErrNotBackup", err)
			}
			return
		}
		if v < legacyFormat {
			t.Fatalf("format %d", v)
		}
	})
}

// FuzzMessageRecord: any bytes decode to an error or a record that
// encodes and decodes to itself.
func FuzzMessageRecord(f *testing.F) {
	f.Add(encodeMessage(&Message{MailboxID: 3, UID: 7, ModSeq: 9, Flags: []string{FlagSeen, "$Heard"}, Size: 1234,
		Hash: []byte("0123456789abcdef0123456789abcdef"), Context: ContextVoice, Duration: 27.5, Urgent: true, From: "a", Subject: "s"}))
	f.Add([]byte(`{"mb":1,"uid":2}`))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if decodeMessage(b, &m) != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		var m2 Message
		if err := decodeMessage(encodeMessage(&m), &m2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// FuzzMailboxRecord: any bytes decode to an error or a record that encodes
// and decodes to itself; JSON records of earlier stores still decode.
func FuzzMailboxRecord(f *testing.F) {
	mb := Mailbox{ID: 4, User: "alice", Name: "INBOX", UIDValidity: 1700000000, UIDNext: 41, HighestModSeq: 77,
		SpecialUse: `\Sent`, Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	mb.Counts = Counts{Messages: 40, Unseen: 3, Recent: 1, Deleted: 2, Bytes: 1 << 33, DeletedBytes: 99}
	mb.Counts.MWI[1] = MWICount{New: 3, Old: 37, UrgentNew: 1}
	f.Add(encodeMailbox(&mb))
	old, _ := json.Marshal(&mb)
	f.Add(old)
	f.Add([]byte{1})
	var got Mailbox
	if err := decodeMailbox(encodeMailbox(&mb), &got); err != nil || got != mb {
		f.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, mb)
	}
	if err := decodeMailbox(old, &got); err != nil || got != mb {
		f.Fatalf("JSON record: %v\n got %+v\nwant %+v", err, got, mb)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Mailbox
		if decodeMailbox(b, &m) != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		var m2 Mailbox
		if err := decodeMailbox(encodeMailbox(&m), &m2); err != nil || m2 != m {
			t.Fatalf("re-decode: %v\n got %+v\nwant %+v", err, m2, m)
		}
	})
}
