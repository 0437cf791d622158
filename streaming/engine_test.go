package streaming

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// payloadPCM decodes a session's captured RTP payloads (PCMU) to PCM.
func payloadPCM(t *testing.T, pkts [][]byte) []int16 {
	t.Helper()
	var coded []byte
	for _, p := range pkts {
		var r rtp.Packet
		if err := r.Unmarshal(p); err != nil {
			t.Fatal(err)
		}
		coded = append(coded, r.Payload...)
	}
	st, err := transcode.DecodeRaw(bytes.NewReader(coded), transcode.PCMU, 8000, 1)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, st)
}

// TestPlayToEndSRTP plays a stored message through the scheduler with
// SRTP; the receiver's decrypted audio equals the stored audio, sequence
// numbers and timestamps advance by one packet each, the stream ends with
// an SRTCP BYE, and the message is marked \Seen.
func TestPlayToEndSRTP(t *testing.T) {
	st := openStore(t)
	msg, wav := depositVoice(t, st, "alice", 1500*time.Millisecond)
	md := openPart(t, st, "alice", msg.UID)
	if d := md.Duration(); d != 1500*time.Millisecond {
		t.Fatalf("duration %v", d)
	}
	if p := md.Playable(); p[0].Name != "PCMU" || p[1].Name != "PCMA" {
		t.Fatalf("playable order %v", p)
	}
	e := NewEngine(EngineConfig{Store: st, Workers: 2, Logger: quiet})
	defer e.Close()
	key, err := NewSDESKey(1, SuiteAES80)
	if err != nil {
		t.Fatal(err)
	}
	sink := newCapture()
	acct, _ := st.AccountID("alice")
	ended := make(chan string, 4)
	s, err := e.Start(PlayRequest{Media: md, Codec: PCMU, Sink: sink, SRTP: key, Account: acct, User: "alice",
		Mailbox: "INBOX", UID: msg.UID, Section: "2", OnEnd: func(r string) { ended <- r }})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-ended; r != "end" {
		t.Fatalf("ended %q", r)
	}
	start := s.Started()
	dec, err := NewUnprotector(key)
	if err != nil {
		t.Fatal(err)
	}
	var plain [][]byte
	for i, p := range sink.packets() {
		var h rtp.Header
		out, err := dec.DecryptRTP(nil, p, &h)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if h.SequenceNumber != start.Seq+uint16(i) || h.Timestamp != start.RTPTime+uint32(160*i) || h.PayloadType != 0 {
			t.Fatalf("packet %d: seq %d ts %d pt %d", i, h.SequenceNumber, h.Timestamp, h.PayloadType)
		}
		plain = append(plain, out)
	}
	if len(plain) != 75 {
		t.Fatalf("%d packets, want 75", len(plain))
	}
	got, want := payloadPCM(t, plain), decodePCM(t, wav)
	if !slices.Equal(got, want) {
		t.Fatalf("audio differs (%d vs %d samples, correlation %.4f)", len(got), len(want), correlation(got, want))
	}
	sink.mu.Lock()
	last := sink.rtcp[len(sink.rtcp)-1]
	sink.mu.Unlock()
	b, err := dec.DecryptRTCP(nil, last, nil)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := rtcp.Unmarshal(b)
	if err != nil || len(pk) != 2 {
		t.Fatalf("rtcp %v %v", pk, err)
	}
	if _, ok := pk[1].(*rtcp.Goodbye); !ok {
		t.Fatalf("last RTCP is not SR+BYE: %T", pk[1])
	}
	waitFor(t, `\Seen`, func() bool {
		m, err := st.Message(msg.MailboxID, msg.UID)
		return err == nil && m.Has(`\Seen`)
	})
	s.Stop()
}

// TestPauseResumeSeek: Pause keeps the position for the account; a new
// session started at it sends that audio first; seeking past the end is
// ErrRange; PCMA and G.722 and L16 conversions are made once per part.
func TestPauseResumeSeek(t *testing.T) {
	st := openStore(t)
	msg, wav := depositVoice(t, st, "alice", 3*time.Second)
	md := openPart(t, st, "alice", msg.UID)
	e := NewEngine(EngineConfig{Store: st, Workers: 1, Logger: quiet})
	defer e.Close()
	acct, _ := st.AccountID("alice")
	sink := newCapture()
	s, err := e.Start(PlayRequest{Media: md, Codec: PCMU, Sink: sink, Account: acct, User: "alice", Mailbox: "INBOX", UID: msg.UID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10 packets", func() bool { return len(sink.packets()) >= 10 })
	s.Pause()
	pos := s.Position()
	if pos <= 0 {
		t.Fatal("no position")
	}
	if got := e.ResumePosition(acct, "alice", "INBOX", msg.UID); got != pos {
		t.Fatalf("kept %v, want %v", got, pos)
	}
	if _, err := s.Play(4 * time.Second); err != ErrRange {
		t.Fatalf("seek past end: %v", err)
	}
	s.Stop()
	// Another account identity sees nothing.
	if got := e.ResumePosition(acct+1, "alice", "INBOX", msg.UID); got != 0 {
		t.Fatalf("other identity resumes at %v", got)
	}
	// Resume: the first packet carries the audio at pos.
	sink2 := newCapture()
	md2 := openPart(t, st, "alice", msg.UID) // from the cache
	if md2.src != md.src {
		t.Fatal("second open did not share the cached media")
	}
	s2, err := e.Start(PlayRequest{Media: md2, Codec: PCMU, Sink: sink2, Start: pos, NoSeen: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 packets", func() bool { return len(sink2.packets()) >= 5 })
	s2.Stop()
	got := payloadPCM(t, sink2.packets()[:5])
	want := decodePCM(t, wav)
	off := int(pos.Milliseconds() * 8)
	if !slices.Equal(got, want[off:off+len(got)]) {
		t.Fatalf("resumed audio is not the audio at %v (corr %.3f)", pos, correlation(got, want[off:]))
	}
	for _, c := range []Codec{PCMA, G722, L16} {
		cv, err := md.conv(c)
		if err != nil {
			t.Fatal(err)
		}
		cv2, _ := md2.conv(c)
		if cv != cv2 {
			t.Fatalf("%s converted twice", c)
		}
		n := 0
		for i := 0; cv.frameAt(i) != nil; i++ {
			n++
		}
		if n != md.Frames() || len(cv.frameAt(0)) != c.frameBytes() {
			t.Fatalf("%s: %d frames of %d bytes", c, n, len(cv.frameAt(0)))
		}
	}
	// L16 on the wire is big-endian: its first samples decode to the PCM.
	cv, _ := md.conv(L16)
	f := cv.frameAt(10)
	for i := range 4 {
		if v := int16(binary.BigEndian.Uint16(f[2*i:])); v != want[1600+i] {
			t.Fatalf("L16 sample %d: %d want %d", i, v, want[1600+i])
		}
	}
}

// TestByteMapped: PCMU stored plays as PCMU by slicing the stored bytes,
// and as PCMA through the octet map; both decode to what transcode's
// encoder makes of the decoded audio.
func TestByteMapped(t *testing.T) {
	wav, _, err := transcode.SampleVoice(1234 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	md, err := OpenMediaBytes("audio/wav", nil, wav, MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pcm := decodePCM(t, wav)
	for _, c := range []Codec{PCMU, PCMA} {
		cv, err := md.conv(c)
		if err != nil {
			t.Fatal(err)
		}
		if cv.direct == nil {
			t.Fatalf("%s: not byte-mapped", c)
		}
		var got []byte
		for i := 0; ; i++ {
			f := cv.frameAt(i)
			if f == nil {
				break
			}
			got = append(got, f...)
		}
		var want bytes.Buffer
		w, _ := transcode.NewWriter(&want, transcode.Raw, c.coder(), 8000, 1)
		w.WritePCM(pcm)
		// Octets may differ only where both laws have two codes for one
		// value (µ-law 0x7f and 0xff are both zero): compare decoded.
		dec := func(b []byte) []int16 {
			st, _ := transcode.DecodeRaw(bytes.NewReader(b), c.coder(), 8000, 1)
			return readAll(t, st)
		}
		if len(got) != md.Frames()*160 || !slices.Equal(dec(got[:len(pcm)]), dec(want.Bytes())) {
			t.Fatalf("%s: %d octets, differs from the encoder's", c, len(got))
		}
	}
}
