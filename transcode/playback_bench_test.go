package transcode

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// playbackPath is one stored codec played in one wire codec, the way the
// streaming core pulls it: the stored part decoded (Decode), converted to
// the wire rate (Convert), encoded as raw wire payload (NewWriter Raw),
// one second (fifty 20-ms frames) at a time.
type playbackPath struct {
	name      string
	stored    Codec
	rate      int // stored rate
	wire      Codec
	wireRate  int
	wireBytes int // payload bytes per second on the wire
}

var playbackPaths = []playbackPath{
	{"L16-8k>PCMU", L16, 8000, PCMU, 8000, 8000},
	{"PCMU>PCMU", PCMU, 8000, PCMU, 8000, 8000},
	{"PCMA>PCMU", PCMA, 8000, PCMU, 8000, 8000},
	{"G726>PCMU", G726, 8000, PCMU, 8000, 8000},
	{"GSM>PCMU", GSM, 8000, PCMU, 8000, 8000},
	{"G722>PCMU", G722, 16000, PCMU, 8000, 8000},
	{"G722>G722", G722, 16000, G722, 16000, 8000},
	{"PCMU>G722", PCMU, 8000, G722, 16000, 8000},       // 8 to 16 kHz, then G.722 (what a 16-kHz writer gets)
	{"PCMU>G722-narrow", PCMU, 8000, G722, 8000, 8000}, // straight into the lower sub-band
	{"PCMU>L16-16k", PCMU, 8000, L16, 16000, 32000},    // L16 wide
	{"PCMU>L16-48k", PCMU, 8000, L16, 48000, 96000},    // browsers without G.711 (48 kHz PCM)
	{"G726>L16-48k", G726, 8000, L16, 48000, 96000},    // ... from G.726
	{"L16-16k>G722", L16, 16000, G722, 16000, 8000},
}

const playbackSeconds = 30

// playStream plays stored (a WAV file) through the path, one second at a
// time, and returns the wire bytes produced.
func playStream(tb testing.TB, stored []byte, p playbackPath) int {
	st, err := Decode(bytes.NewReader(stored))
	if err != nil {
		tb.Fatal(err)
	}
	src := Convert(st, p.wireRate, 1)
	var out bytes.Buffer
	w, err := NewWriter(&out, Raw, p.wire, p.wireRate, 1)
	if err != nil {
		tb.Fatal(err)
	}
	pcm := make([]int16, p.wireRate) // one second
	total := 0
	for {
		got := 0
		var rerr error
		for got < len(pcm) && rerr == nil {
			var k int
			k, rerr = src.ReadPCM(pcm[got:])
			got += k
		}
		if err := w.WritePCM(pcm[:got]); err != nil {
			tb.Fatal(err)
		}
		total += out.Len()
		out.Reset()
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				tb.Fatal(rerr)
			}
			break
		}
	}
	return total
}

// BenchmarkPlaybackPath is the in-process cost of one stream-second of
// each playback path (stored codec > wire codec): cpu-ns/stream-s is CPU
// time (user+sys), ns/stream-s wall time, per second of audio streamed.
func BenchmarkPlaybackPath(b *testing.B) {
	for _, p := range playbackPaths {
		b.Run(p.name, func(b *testing.B) {
			var in bytes.Buffer
			pcm := speechLike10s(p.rate)
			long := make([]int16, 0, len(pcm)*playbackSeconds/10)
			for len(long) < cap(long) {
				long = append(long, pcm...)
			}
			if err := WriteWAV(&in, long, p.rate, p.stored); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			c := processCPU()
			for i := 0; i < b.N; i++ {
				if n := playStream(b, in.Bytes(), p); n < p.wireBytes*(playbackSeconds-1) {
					b.Fatalf("%d wire bytes for %d s", n, playbackSeconds)
				}
			}
			secs := float64(b.N * playbackSeconds)
			b.ReportMetric(float64(processCPU()-c)/secs, "cpu-ns/stream-s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/secs, "ns/stream-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// Every playback path gives a whole stream of wire payload.
func TestPlaybackPaths(t *testing.T) {
	speech := map[int][]int16{}
	for _, p := range playbackPaths {
		if speech[p.rate] == nil {
			speech[p.rate] = speechLike(p.rate, p.rate)
		}
		var in bytes.Buffer
		if err := WriteWAV(&in, speech[p.rate], p.rate, p.stored); err != nil {
			t.Fatal(err)
		}
		if n := playStream(t, in.Bytes(), p); n < p.wireBytes-p.wireBytes/50 || n > p.wireBytes+p.wireBytes/50 {
			t.Errorf("%s: %d wire bytes for 1 s, want about %d", p.name, n, p.wireBytes)
		}
	}
}
