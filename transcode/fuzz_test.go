package transcode

import (
	"bytes"
	"testing"
)

// FuzzDecode: any bytes give a header error or a stream that decodes to
// the end without panicking or allocating beyond bounds.
func FuzzDecode(f *testing.F) {
	for _, c := range []Codec{PCMU, PCMA, L16, G726, G722, GSM} {
		var b bytes.Buffer
		rate := 8000
		if c == G722 {
			rate = 16000
		}
		WriteWAV(&b, speechLike(400, rate), rate, c)
		f.Add(b.Bytes())
		f.Add(b.Bytes()[:50])
	}
	var au bytes.Buffer
	w, _ := NewWriter(&au, AU, PCMU, 8000, 1)
	w.WritePCM(speechLike(200, 8000))
	w.Close()
	f.Add(au.Bytes())
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\x7f"))
	// 24-bit PCM, 32-bit float and 8-bit PCM WAVs (read only).
	for _, w := range []struct{ tag, bits uint16 }{{1, 24}, {3, 32}, {1, 8}, {3, 64}, {1, 32}} {
		var b bytes.Buffer
		b.WriteString("RIFF\x40\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
		b.Write([]byte{byte(w.tag), 0, 2, 0, 0x40, 0x1f, 0, 0, 0, 0, 0, 0, byte(w.bits / 4), 0, byte(w.bits), 0})
		b.WriteString("data\x10\x00\x00\x00")
		b.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe, 0x80, 0x7f, 0, 0, 0x80, 0x3f})
		f.Add(b.Bytes())
	}
	f.Add([]byte(".snd\x00\x00\x00\x18\xff\xff\xff\xff\x00\x00\x00\x01\x00\x00\x1f\x40\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		buf := make([]int16, 512*s.Channels())
		total := 0
		for {
			n, err := s.ReadPCM(buf)
			total += n
			if err != nil || total > 8*len(data)+16 {
				break
			}
		}
		if total > 10*len(data)+16 {
			t.Fatalf("%d samples from %d bytes", total, len(data))
		}
		// Converting must not fail either.
		s2, _ := Decode(bytes.NewReader(data))
		readAll(Convert(s2, 48000, 1))
	})
}

// FuzzCodecs: decoders accept any code bytes.
func FuzzCodecs(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0xff, 0x80, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []Codec{PCMU, PCMA, L16, G726, G722, GSM, PCM8, L24, L32, F32, F64} {
			fc, _ := newFrameCodec(c, false)
			out := fc.decode(nil, data)
			if len(out) > 10*len(data)+16 {
				t.Fatal("too many samples")
			}
			fc.encode(nil, out)
		}
	})
}
