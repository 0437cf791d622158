package transcode

import (
	"bytes"
	"math"
	"time"
)

// SampleVoice synthesizes d of a speech-like signal (voiced syllables with a
// moving pitch and two formant-like resonances, separated by pauses) as an
// 8 kHz G.711 µ-law WAV file, and returns the file and its exact duration.
// The daemon's demo message and the CLI's sample verb use it.
func SampleVoice(d time.Duration) ([]byte, time.Duration, error) {
	const rate = 8000
	n := int(d.Seconds() * rate)
	pcm := make([]int16, n)
	syll := 0.22 // seconds per syllable
	for i := range pcm {
		t := float64(i) / rate
		k := int(t / (syll + 0.08))
		in := t - float64(k)*(syll+0.08)
		if in > syll || t > d.Seconds()-0.3 {
			continue // pause between syllables, silence at the end
		}
		env := math.Sin(math.Pi * in / syll)
		f0 := 110 + 25*math.Sin(2*math.Pi*0.7*t) + float64(k%3)*12
		f1 := []float64{700, 400, 550, 300}[k%4]
		f2 := []float64{1200, 2000, 1700, 900}[k%4]
		var v float64
		for h := 1; h*int(f0) < 3400; h++ {
			fh := float64(h) * f0
			a := 1/float64(h) + 1.8*math.Exp(-math.Pow((fh-f1)/120, 2)) + 1.0*math.Exp(-math.Pow((fh-f2)/180, 2))
			v += a * math.Sin(2*math.Pi*fh*t)
		}
		pcm[i] = int16(math.Max(-32767, math.Min(32767, 5200*env*v)))
	}
	var buf bytes.Buffer
	if err := WriteWAV(&buf, pcm, rate, PCMU); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), time.Duration(n) * time.Second / rate, nil
}
