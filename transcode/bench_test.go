package transcode

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
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
func BenchmarkGSMtoG711(b *testing.B)     { benchConvert(b, GSM, 8000, PCMU, 8000) }

// benchConvertFile runs ConvertFile as bench/transcode does (10 s of
// audio per op, files in a temporary directory).
func benchConvertFile(b *testing.B, codec Codec, rate int, opts ConvertOptions) {
	dir := b.TempDir()
	in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav")
	var buf bytes.Buffer
	if err := WriteWAV(&buf, speechLike10s(rate), rate, codec); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c := processCPU()
	for i := 0; i < b.N; i++ {
		if err := ConvertFile(in, out, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-c)/float64(b.N)/10, "cpu-ns/audio-s")
}

var speech10s = map[int][]int16{}

// speechLike10s is 10 s of speechLike at rate, computed once (so that
// profiles show the conversion, not the synthesis).
func speechLike10s(rate int) []int16 {
	if p, ok := speech10s[rate]; ok {
		return p
	}
	p := speechLike(rate*10, rate)
	speech10s[rate] = p
	return p
}

// The conversions of bench/transcode.
func BenchmarkConvertFile(b *testing.B) {
	b.Run("G711-G722", func(b *testing.B) { benchConvertFile(b, PCMU, 8000, ConvertOptions{Codec: G722}) })
	b.Run("G722-G711", func(b *testing.B) { benchConvertFile(b, G722, 16000, ConvertOptions{Codec: PCMU}) })
	b.Run("GSM-G711", func(b *testing.B) { benchConvertFile(b, GSM, 8000, ConvertOptions{Codec: PCMU}) })
	b.Run("G726-L16x16k", func(b *testing.B) { benchConvertFile(b, G726, 8000, ConvertOptions{Codec: L16, Rate: 16000}) })
	b.Run("L16-8k-48k", func(b *testing.B) { benchConvertFile(b, L16, 8000, ConvertOptions{Codec: L16, Rate: 48000}) })
}

// processCPU is the process's user+sys CPU time in nanoseconds: on a
// loaded machine a steadier measure than wall time.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// Codec kernels alone, 10 s of audio per op.
func BenchmarkKernel(b *testing.B) {
	pcm8 := speechLike10s(8000)
	g726 := newG726().encode(nil, pcm8)
	gsm := newGSMEncoder(false).encode(nil, pcm8)
	dst := make([]int16, 0, len(pcm8))
	bdst := make([]byte, 0, len(pcm8))
	b.Run("G726Decode", func(b *testing.B) {
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			newG726().decode(dst[:0], g726)
		}
	})
	b.Run("GSMDecode", func(b *testing.B) {
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			newGSMDecoder(false).decode(dst[:0], gsm)
		}
	})
	b.Run("G722EncodeNarrow", func(b *testing.B) {
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			g := newG722()
			g.narrow = true
			g.encode(bdst[:0], pcm8)
		}
	})
	b.Run("UlawEncode", func(b *testing.B) {
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			ulawCodec{}.encode(bdst[:0], pcm8)
		}
	})
}

// cpuPerOp reports CPU time per op when the returned function runs.
func cpuPerOp(b *testing.B) func() {
	c := processCPU()
	return func() { b.ReportMetric(float64(processCPU()-c)/float64(b.N), "cpu-ns/op") }
}
