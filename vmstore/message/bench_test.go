package message

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
)

// voicemail60 is a 60-s voicemail as a handset deposits it: 8 kHz 16-bit
// mono WAV (960 KB of samples), base64 in a multipart/voice-message.
func voicemail60() (raw, wav []byte) {
	const rate, secs = 8000, 60
	pcm := make([]byte, rate*secs*2)
	for i := 0; i < len(pcm); i += 2 {
		binary.LittleEndian.PutUint16(pcm[i:], uint16(i*31))
	}
	var w bytes.Buffer
	w.WriteString("RIFF")
	binary.Write(&w, binary.LittleEndian, uint32(36+len(pcm)))
	w.WriteString("WAVEfmt ")
	binary.Write(&w, binary.LittleEndian, []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(rate * 2), uint16(2), uint16(16)})
	w.WriteString("data")
	binary.Write(&w, binary.LittleEndian, uint32(len(pcm)))
	w.Write(pcm)
	wav = w.Bytes()
	raw = []byte("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: Voice message\r\n" +
		"MIME-Version: 1.0 (Voice 2.0)\r\nContent-Type: multipart/voice-message; boundary=\"b1\"; version=2.0\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nCall me back.\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; voice=Voice-Message; filename=msg.wav\r\nContent-Duration: 60\r\n\r\n" +
		b64Lines(wav) + "--b1--\r\n")
	return raw, wav
}

// readAudio opens the audio part decoded and streams it to w.
func readAudio(h *Message, w io.Writer) (int64, error) {
	part, err := h.Open(Section{Path: []int{2}}, DecodedLeaf)
	if err != nil {
		return 0, err
	}
	r := part.NewReader()
	defer r.Close()
	return io.Copy(w, r)
}

// Reading the decoded audio of a 60-s voicemail streams it: the part
// layer allocates a bounded amount per read, whatever the part's size (the
// content is never held whole). Over the store, the blob reader's own
// copies of each 256 KiB chunk come on top; that figure is logged.
func TestDecodedReadStreams(t *testing.T) {
	s := openStore(t)
	raw, wav := voicemail60()
	m := deposit(t, s, raw)
	var got bytes.Buffer
	if n, err := readAudio(New(s, m), &got); err != nil || n != int64(len(wav)) || !bytes.Equal(got.Bytes(), wav) {
		t.Fatalf("read %d bytes (%v), want the %d of the WAV", n, err, len(wav))
	}
	runs := 20
	if raceEnabled {
		runs = 2
	}
	viaStore := allocPer(t, min(runs, 5), func() {
		if _, err := readAudio(New(s, m), io.Discard); err != nil {
			t.Fatal(err)
		}
	})
	// The same part over the message octets in memory: what the part
	// layer itself allocates.
	part, err := New(s, m).Open(Section{Path: []int{2}}, DecodedLeaf)
	if err != nil {
		t.Fatal(err)
	}
	part.src = bytes.NewReader(raw)
	layer := allocPer(t, runs, func() {
		r := part.NewReader()
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != int64(len(wav)) {
			t.Fatalf("read %d, %v", n, err)
		}
	})
	t.Logf("message %d bytes, audio %d bytes decoded; allocated per read: %d bytes by the part layer, %d bytes over the store",
		len(raw), len(wav), layer, viaStore)
	if raceEnabled {
		t.Log("race detector on: sync.Pool drops buffers at random, allocation not checked")
		return
	}
	if layer > 64<<10 {
		t.Fatalf("the part layer allocates %d bytes per read of a %d-byte part: it does not stream", layer, len(raw))
	}
}

// allocPer returns the bytes allocated per call of f, after a first call
// that fills the buffer pools.
func allocPer(t testing.TB, runs int, f func()) uint64 {
	t.Helper()
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// BenchmarkDecodedVoicemail60 reads the decoded audio part of a 60-s
// voicemail (base64 in the store) from the start to the end.
func BenchmarkDecodedVoicemail60(b *testing.B) {
	s := openStore(b)
	raw, wav := voicemail60()
	m := deposit(b, s, raw)
	b.SetBytes(int64(len(wav)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := readAudio(New(s, m), io.Discard); err != nil || n != int64(len(wav)) {
			b.Fatalf("read %d, %v", n, err)
		}
	}
}

// BenchmarkRawVoicemail60 reads the same part as BODY[2] serves it.
func BenchmarkRawVoicemail60(b *testing.B) {
	s := openStore(b)
	raw, _ := voicemail60()
	m := deposit(b, s, raw)
	b.ReportAllocs()
	for b.Loop() {
		part, err := New(s, m).Open(Section{Path: []int{2}}, Raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, part.NewReader()); err != nil {
			b.Fatal(err)
		}
	}
}
