package transcode

import (
	"bytes"
	"io"
	"testing"
)

func benchConvert(b *testing.B, codec Codec, rate int, to Codec, toRate int) {
	pcm := speechLike(rate*10, rate)
	var in bytes.Buffer
	WriteWAV(&in, pcm, rate, codec)
	b.SetBytes(int64(len(pcm) * 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, _ := Decode(bytes.NewReader(in.Bytes()))
		w, _ := NewWriter(io.Discard, WAV, to, toRate, 1)
		Copy(w, Convert(s, toRate, 1))
		w.Close()
	}
}

// 10 s of audio per op: realtime factor = 10 s / (ns/op).
func BenchmarkG711toG722(b *testing.B)    { benchConvert(b, PCMU, 8000, G722, 16000) }
func BenchmarkG722toG711(b *testing.B)    { benchConvert(b, G722, 16000, PCMU, 8000) }
func BenchmarkG726toL16(b *testing.B)     { benchConvert(b, G726, 8000, L16, 16000) }
func BenchmarkResample8to48(b *testing.B) { benchConvert(b, L16, 8000, L16, 48000) }
func BenchmarkG722Encode(b *testing.B)    { benchConvert(b, L16, 16000, G722, 16000) }
func BenchmarkG722Decode(b *testing.B)    { benchConvert(b, G722, 16000, L16, 16000) }
