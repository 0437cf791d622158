package transcode

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of an external decoder/encoder, skipping the
// test loudly when it is missing outside CI (CI installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install %s)", name, name)
		}
		t.Skipf("SKIPPING: %s not installed; interoperability with it is NOT tested", name)
	}
	return p
}

// speechLike synthesises n samples at rate of a voiced, formant-shaped
// signal with syllable envelopes and pauses (speech-like spectrum and
// dynamics), at about -12 dBFS.
func speechLike(n, rate int) []int16 {
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / float64(rate)
		syl := math.Mod(t, 0.3)
		if syl > 0.22 {
			continue
		}
		env := math.Sin(math.Pi * syl / 0.22)
		k := int(t / 0.3)
		f0 := 120 + 30*math.Sin(2*math.Pi*0.8*t)
		f1 := []float64{700, 400, 550, 300}[k%4]
		f2 := []float64{1200, 2000, 1700, 900}[k%4]
		var v float64
		for h := 1; float64(h)*f0 < math.Min(3400, float64(rate)/2-200); h++ {
			fh := float64(h) * f0
			a := 0.3/float64(h) + math.Exp(-math.Pow((fh-f1)/150, 2)) + 0.6*math.Exp(-math.Pow((fh-f2)/200, 2))
			v += a * math.Sin(2*math.Pi*fh*t+float64(h))
		}
		out[i] = int16(math.Max(-32767, math.Min(32767, 2500*env*v)))
	}
	return out
}

func tone(n, rate int, freq, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// snr in dB of got against ref, after aligning by the best lag in
// [-maxLag, maxLag] (codecs and filters delay the signal).
func snr(ref, got []int16, maxLag int) (float64, int) {
	best, bestLag := math.Inf(-1), 0
	for lag := -maxLag; lag <= maxLag; lag++ {
		var sig, noise float64
		for i := range ref {
			j := i + lag
			if j < 0 || j >= len(got) {
				continue
			}
			r, g := float64(ref[i]), float64(got[j])
			sig += r * r
			noise += (r - g) * (r - g)
		}
		v := 10 * math.Log10(sig/math.Max(noise, 1e-9))
		if v > best {
			best, bestLag = v, lag
		}
	}
	return best, bestLag
}

// segSNR is the segmental SNR over 20 ms frames that carry signal, with
// the lag found by snr.
func segSNR(ref, got []int16, rate, lag int) float64 {
	frame := rate / 50
	var sum float64
	var n int
	for s := 0; s+frame <= len(ref); s += frame {
		var sig, noise float64
		for i := s; i < s+frame; i++ {
			j := i + lag
			if j < 0 || j >= len(got) {
				continue
			}
			r, g := float64(ref[i]), float64(got[j])
			sig += r * r
			noise += (r - g) * (r - g)
		}
		if sig < float64(frame)*100*100 {
			continue // silence
		}
		v := 10 * math.Log10(sig/math.Max(noise, 1))
		sum += math.Max(-10, math.Min(35, v))
		n++
	}
	return sum / float64(max(n, 1))
}

func pcmBytes(p []int16) []byte {
	b := make([]byte, 2*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func bytesPCM(b []byte) []int16 {
	p := make([]int16, len(b)/2)
	for i := range p {
		p[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return p
}

// encodeFile writes pcm (mono) in the container and codec.
func encodeFile(t *testing.T, path string, c Container, codec Codec, rate int, pcm []int16) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, c, codec, rate, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePCM(pcm); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// decodeAll decodes a whole stream.
func decodeAll(t *testing.T, b []byte) (Info, []int16) {
	t.Helper()
	s, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	buf := make([]int16, 1000*s.Channels())
	for {
		n, err := s.ReadPCM(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return s.Info, out
}

var errEOF = io.EOF
