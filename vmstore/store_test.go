package vmstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	opts := Options{Dir: dir, InMemory: dir == "", Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAccount(t testing.TB, s *Store, name string) {
	t.Helper()
	if _, err := s.CreateAccount(AccountSpec{Name: name, Password: "pw-" + name, PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
}

// voiceMessage builds a VPIM-style message with a fake WAV part.
func voiceMessage(from, subject string, audio []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: <demo@example.net>\r\nSubject: %s\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%d@example.net>\r\nMIME-Version: 1.0 (Voice 2.0)\r\nContent-Type: multipart/voice-message; boundary=\"b1\"; version=2.0\r\n\r\n", from, subject, len(audio))
	b.WriteString("preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nCall me back.\r\n--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; voice=Voice-Message; filename=msg.wav\r\nContent-Duration: 3\r\n\r\n")
	enc := make([]byte, 0)
	const line = 57
	for i := 0; i < len(audio); i += line {
		j := min(i+line, len(audio))
		enc = append(enc, []byte(b64(audio[i:j]))...)
		enc = append(enc, '\r', '\n')
	}
	b.Write(enc)
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

func TestDepositAndRead(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "alice")
	audio := bytes.Repeat([]byte{0x7f, 0xff, 0x00, 0x80}, 2000)
	raw := voiceMessage("\"Bob\" <+15551234@example.net>", "Voice message", audio)
	res, err := s.Deposit(DepositReq{User: "alice", Body: bytes.NewReader(raw), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Message
	if m.UID != 1 || m.Size != int64(len(raw)) || m.Context != ContextVoice || m.Duration != 3 {
		t.Fatalf("message = %+v", m)
	}
	got, err := io.ReadAll(s.OpenMessage(&m).Reader())
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}
	p, err := s.Structure(&m)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "multipart" || p.Subtype != "voice-message" || len(p.Parts) != 2 {
		t.Fatalf("structure %+v", p)
	}
	txt := p.Parts[0]
	if body := string(raw[txt.Body:txt.End]); body != "Call me back." {
		t.Fatalf("text part body %q", body)
	}
	au := p.Parts[1]
	if au.MediaType() != "audio/wav" || au.Encoding != "base64" || au.DispParams["voice"] != "Voice-Message" {
		t.Fatalf("audio part %+v", au)
	}
	if !strings.HasPrefix(string(raw[au.Start:]), "Content-Type: audio/wav") || !strings.HasPrefix(string(raw[au.End:]), "\r\n--b1--") {
		t.Fatalf("audio offsets wrong")
	}
	if p.Envelope == nil || p.Envelope.Subject != "Voice message" || len(p.Envelope.From) != 1 || p.Envelope.From[0].Mailbox != "+15551234" {
		t.Fatalf("envelope %+v", p.Envelope)
	}
	mwi, err := s.AccountMWI("alice")
	if err != nil || mwi.Counts[ContextVoice] != (MWICount{New: 1}) {
		t.Fatalf("mwi %+v %v", mwi, err)
	}
	// Mark read: MWI moves to old.
	if _, err := s.StoreFlags(StoreReq{User: "alice", MailboxID: m.MailboxID, UIDs: []uint32{1}, Op: FlagsAdd, Flags: []string{`\SEEN`}}); err != nil {
		t.Fatal(err)
	}
	mwi, _ = s.AccountMWI("alice")
	if mwi.Counts[ContextVoice] != (MWICount{Old: 1}) || mwi.Waiting() {
		t.Fatalf("mwi after read %+v", mwi)
	}
	evs, err := s.ReadJournal(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, string(e.Type))
	}
	if got := strings.Join(types, ","); !strings.HasSuffix(got, "MessageNew,MessageRead") {
		t.Fatalf("journal %s", got)
	}
}

func TestQuotaRejectsWithoutPartialWrite(t *testing.T) {
	s := openTest(t, "")
	if _, err := s.CreateAccount(AccountSpec{Name: "q", Password: "x", Quota: Quota{Bytes: 1000}}); err != nil {
		t.Fatal(err)
	}
	small := []byte("Subject: hi\r\n\r\nhello\r\n")
	if _, err := s.Deposit(DepositReq{User: "q", Body: bytes.NewReader(small)}); err != nil {
		t.Fatal(err)
	}
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("x"), 2000)...)
	_, err := s.Deposit(DepositReq{User: "q", Body: bytes.NewReader(big)})
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("err = %v", err)
	}
	mb, _ := s.Mailbox("q", "INBOX")
	if mb.Counts.Messages != 1 || mb.UIDNext != 2 {
		t.Fatalf("mailbox after refused deposit: %+v", mb.Counts)
	}
	evs, _ := s.ReadJournal(0, 100)
	if evs[len(evs)-1].Type != EventQuotaExceed {
		t.Fatalf("last event %s", evs[len(evs)-1].Type)
	}
	// Blob of the refused message is not referenced: collector finds nothing
	// to do beyond it, and the message count is untouched.
	if _, err := s.Expunge("q", mb.ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	st, err := s.CollectGarbage(t.Context())
	if err != nil || st.BlobsRemoved != 0 {
		// message 1 is not \Deleted, so Expunge keeps it
		t.Fatalf("gc %+v %v", st, err)
	}
	if _, err := s.Remove("q", mb.ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	st, _ = s.CollectGarbage(t.Context())
	if st.BlobsRemoved != 1 {
		t.Fatalf("gc after remove %+v", st)
	}
	evs, _ = s.ReadJournal(0, 100)
	if evs[len(evs)-1].Type != EventQuotaWithin {
		t.Fatalf("last event %s", evs[len(evs)-1].Type)
	}
}

func TestLargeDepositStreams(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "big")
	body := append([]byte("Subject: large\r\nContent-Type: audio/basic\r\n\r\n"), bytes.Repeat([]byte{0xd5}, 9<<20+123)...)
	res, err := s.Deposit(DepositReq{User: "big", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(s.OpenMessage(&res.Message).Reader())
	if !bytes.Equal(got, body) {
		t.Fatal("large message differs")
	}
	// Same content again is deduplicated: the flushed chunks of the second
	// copy are dropped.
	res2, err := s.Deposit(DepositReq{User: "big", Body: bytes.NewReader(body), InternalDate: time.Unix(1, 0)})
	if err != nil || res2.Message.Blob != res.Message.Blob {
		t.Fatalf("dedupe: %v blob %d vs %d", err, res2.Message.Blob, res.Message.Blob)
	}
	n, _ := s.collectOrphans(math.MaxUint64)
	if n != 0 {
		t.Fatalf("%d orphan chunks left", n)
	}
}
