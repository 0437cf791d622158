package transcode

import (
	"bytes"
	"io"
	"math"
	"os"
	"os/exec"
	"testing"
)

// Round-trip quality of each codec on test signals generated here.
func TestCodecQuality(t *testing.T) {
	cases := []struct {
		codec  Codec
		rate   int
		minSNR float64 // full-scale tone SNR (G.711) or segmental SNR on speech
		tone   bool
	}{
		{PCMU, 8000, 35, true},
		{PCMA, 8000, 35, true},
		{G726, 8000, 20, false},
		{G722, 16000, 20, false},
		{L16, 8000, 90, true},
	}
	// GSM 06.10 is a vocoder-like codec: waveform SNR is low by design, so
	// check intelligibility by the correlation of the envelopes.
	t.Run("gsm", func(t *testing.T) {
		in := speechLike(16000, 8000)
		var buf bytes.Buffer
		if err := WriteWAV(&buf, in, 8000, GSM); err != nil {
			t.Fatal(err)
		}
		_, out := decodeAll(t, buf.Bytes())
		if c := envelopeCorrelation(in, out, 80); c < 0.9 {
			t.Fatalf("GSM envelope correlation %.3f", c)
		}
	})
	for _, tc := range cases {
		t.Run(tc.codec.String(), func(t *testing.T) {
			var in []int16
			if tc.tone {
				in = tone(tc.rate, tc.rate, 1004, 32000) // full-scale 1 kHz tone
			} else {
				in = speechLike(tc.rate*2, tc.rate)
			}
			var buf bytes.Buffer
			if err := WriteWAV(&buf, in, tc.rate, tc.codec); err != nil {
				t.Fatal(err)
			}
			_, out := decodeAll(t, buf.Bytes())
			s, lag := snr(in, out, 40)
			var q float64
			if tc.tone {
				q = s
			} else {
				q = segSNR(in, out, tc.rate, lag)
			}
			t.Logf("%s: SNR %.1f dB, segmental %.1f dB (lag %d)", tc.codec, s, segSNR(in, out, tc.rate, lag), lag)
			if q < tc.minSNR {
				t.Fatalf("%s quality %.1f dB < %.1f dB", tc.codec, q, tc.minSNR)
			}
		})
	}
}

// Real speech from espeak-ng, when installed, through each codec.
func TestCodecQualityOnSpeech(t *testing.T) {
	es := needTool(t, "espeak-ng")
	wav, err := exec.Command(es, "--stdout", "-s", "150", "You have two new voice messages. First message, received today at nine fifteen.").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, pcm22 := decodeAll(t, wav)
	for _, tc := range []struct {
		codec Codec
		rate  int
		min   float64
	}{{PCMU, 8000, 20}, {PCMA, 8000, 20}, {G726, 8000, 14}, {G722, 16000, 14}} {
		src, _ := Decode(bytes.NewReader(wav))
		ref := readAll(Convert(src, tc.rate, 1))
		var buf bytes.Buffer
		if err := WriteWAV(&buf, ref, tc.rate, tc.codec); err != nil {
			t.Fatal(err)
		}
		_, out := decodeAll(t, buf.Bytes())
		_, lag := snr(ref, out, 40)
		q := segSNR(ref, out, tc.rate, lag)
		t.Logf("espeak-ng speech, %s: segmental SNR %.1f dB", tc.codec, q)
		if q < tc.min {
			t.Errorf("%s on speech: %.1f dB", tc.codec, q)
		}
	}
	_ = pcm22
}

func readAll(s Source) []int16 {
	var out []int16
	buf := make([]int16, 4096*s.Channels())
	for {
		n, err := s.ReadPCM(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

type sliceSource struct {
	pcm  []int16
	rate int
	ch   int
}

func (s *sliceSource) Rate() int     { return s.rate }
func (s *sliceSource) Channels() int { return s.ch }
func (s *sliceSource) ReadPCM(p []int16) (int, error) {
	if len(s.pcm) == 0 {
		return 0, errEOF
	}
	n := copy(p, s.pcm)
	s.pcm = s.pcm[n:]
	return n, nil
}

func rms(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(p), 1)))
}

// The resampler keeps in-band tones at their level (pass-band ripple) and
// removes what would alias (stop band >= 60 dB).
func TestResamplerResponse(t *testing.T) {
	rates := []int{8000, 16000, 22050, 32000, 44100, 48000}
	for _, in := range rates {
		for _, out := range rates {
			if in == out {
				continue
			}
			low := min(in, out)
			// Pass band: tones up to 0.4 x the lower rate.
			for _, f := range []float64{300, 1000, 0.4 * float64(low)} {
				x := tone(in, in, f, 10000) // 1 s
				y := readAll(Convert(&sliceSource{pcm: x, rate: in, ch: 1}, out, 1))
				if d := len(y) - out; d < -1 || d > 1 {
					t.Fatalf("%d->%d: %d samples out of %d expected", in, out, len(y), out)
				}
				mid := y[len(y)/4 : 3*len(y)/4]
				g := 20 * math.Log10(rms(mid)/(10000/math.Sqrt2))
				if math.Abs(g) > 0.2 {
					t.Errorf("%d->%d: %.0f Hz tone changed by %.2f dB", in, out, f, g)
				}
			}
			if out < in {
				// Stop band: a tone between the output Nyquist and the input's.
				f := 0.6 * float64(out)
				if f < 0.5*float64(in) {
					x := tone(in, in, f, 10000)
					y := readAll(Convert(&sliceSource{pcm: x, rate: in, ch: 1}, out, 1))
					mid := y[len(y)/4 : 3*len(y)/4]
					att := 20 * math.Log10(rms(mid)/(10000/math.Sqrt2)+1e-9)
					if att > -60 {
						t.Errorf("%d->%d: %.0f Hz aliases at %.1f dB (need <= -60)", in, out, f, att)
					}
				}
			}
		}
	}
}

func TestStereoDownmix(t *testing.T) {
	st := make([]int16, 2*800)
	for i := 0; i < 800; i++ {
		st[2*i], st[2*i+1] = 1000, 3000
	}
	y := readAll(Convert(&sliceSource{pcm: st, rate: 8000, ch: 2}, 8000, 1))
	if len(y) != 800 || y[10] != 2000 {
		t.Fatalf("downmix: %d samples, y[10]=%d", len(y), y[10])
	}
}

func TestConvertFileAndProbe(t *testing.T) {
	dir := t.TempDir()
	in := dir + "/in.wav"
	encodeFile(t, in, WAV, L16, 44100, speechLike(44100, 44100))
	for _, tc := range []struct {
		out   string
		opts  ConvertOptions
		codec Codec
		rate  int
	}{
		{"a.wav", ConvertOptions{Codec: PCMU}, PCMU, 8000},
		{"b.au", ConvertOptions{Codec: PCMA}, PCMA, 8000},
		{"c.wav", ConvertOptions{Codec: G722}, G722, 16000},
		{"d.wav", ConvertOptions{Codec: G726}, G726, 8000},
		{"e.wav", ConvertOptions{Codec: L16, Rate: 16000}, L16, 16000},
		{"f.ul", ConvertOptions{}, PCMU, 8000},
	} {
		out := dir + "/" + tc.out
		if err := ConvertFile(in, out, tc.opts); err != nil {
			t.Fatalf("%s: %v", tc.out, err)
		}
		if tc.out == "f.ul" {
			st, _ := os.Stat(out)
			if st.Size() != 8000 {
				t.Fatalf("raw µ-law of 1 s: %d bytes", st.Size())
			}
			continue
		}
		info, err := ProbeFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if info.Codec != tc.codec || info.Rate != tc.rate || math.Abs(info.Duration.Seconds()-1) > 0.001 {
			t.Fatalf("%s: %v", tc.out, info)
		}
	}
	if err := ConvertFile(dir+"/missing.wav", dir+"/x.wav", ConvertOptions{}); !os.IsNotExist(err) {
		t.Fatalf("missing input: %v", err)
	}
	os.WriteFile(dir+"/junk.wav", []byte("not audio at all"), 0o600)
	if err := ConvertFile(dir+"/junk.wav", dir+"/x.wav", ConvertOptions{}); err == nil {
		t.Fatal("junk input converted")
	}
	if err := ConvertFile(in, dir+"/x.wav", ConvertOptions{Codec: G722, Rate: 8000}); err == nil {
		t.Fatal("G.722 at 8 kHz accepted")
	}
}

// envelopeCorrelation correlates the frame energies (10 ms) of two signals.
func envelopeCorrelation(a, b []int16, frame int) float64 {
	var ea, eb []float64
	for s := 0; s+frame <= min(len(a), len(b)); s += frame {
		var x, y float64
		for i := s; i < s+frame; i++ {
			x += float64(a[i]) * float64(a[i])
			y += float64(b[i]) * float64(b[i])
		}
		ea, eb = append(ea, math.Sqrt(x)), append(eb, math.Sqrt(y))
	}
	var ma, mb float64
	for i := range ea {
		ma += ea[i]
		mb += eb[i]
	}
	ma /= float64(len(ea))
	mb /= float64(len(eb))
	var num, da, db float64
	for i := range ea {
		num += (ea[i] - ma) * (eb[i] - mb)
		da += (ea[i] - ma) * (ea[i] - ma)
		db += (eb[i] - mb) * (eb[i] - mb)
	}
	return num / math.Sqrt(da*db)
}

// oneByteReader hands out data a byte at a time (as decoders of a
// transfer encoding may), to check that partial code units carry over.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestShortReadsKeepPartialUnits(t *testing.T) {
	for _, c := range []Codec{GSM, G722, G726, L16} {
		rate := 8000
		if c == G722 {
			rate = 16000
		}
		var b bytes.Buffer
		WriteWAV(&b, speechLike(rate, rate), rate, c)
		_, whole := decodeAll(t, b.Bytes())
		s, err := Decode(&oneByteReader{b: b.Bytes()})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(s); len(got) != len(whole) {
			t.Fatalf("%s: %d samples from byte-wise reads, %d at once", c, len(got), len(whole))
		}
	}
}

// The 8 kHz G.722 mode (narrowband PCM straight into the lower sub-band,
// lower sub-band alone out) is as good as resampling through 16 kHz.
func TestG722NarrowbandPath(t *testing.T) {
	ref := speechLike(16000, 8000)
	// Narrow: 8 kHz -> G.722 (lower band) -> full decoder -> 8 kHz.
	var narrow bytes.Buffer
	w, _ := NewWriter(&seekBuffer{b: &narrow}, WAV, G722, 8000, 1)
	w.WritePCM(ref)
	w.Close()
	s1, _ := Decode(bytes.NewReader(narrow.Bytes()))
	viaFull := readAll(Convert(&wideOnly{s1}, 8000, 1))
	s2, _ := Decode(bytes.NewReader(narrow.Bytes()))
	viaNarrow := readAll(Convert(s2, 8000, 1))
	// Wide: 8 kHz -> 16 kHz -> G.722 -> 16 kHz -> 8 kHz.
	var wide bytes.Buffer
	w2, _ := NewWriter(&seekBuffer{b: &wide}, WAV, G722, 16000, 1)
	Copy(w2, Convert(&sliceSource{pcm: ref, rate: 8000, ch: 1}, 16000, 1))
	w2.Close()
	s3, _ := Decode(bytes.NewReader(wide.Bytes()))
	wideOut := readAll(Convert(&wideOnly{s3}, 8000, 1))
	for name, out := range map[string][]int16{"narrow encode, full decode": viaFull, "narrow encode, narrow decode": viaNarrow, "through 16 kHz": wideOut} {
		s, lag := snr(ref, out, 64)
		q := segSNR(ref, out, 8000, lag)
		t.Logf("%s: SNR %.1f dB, segmental %.1f dB (lag %d)", name, s, q, lag)
		if q < 15 {
			t.Errorf("%s: segmental SNR %.1f dB", name, q)
		}
	}
}

// wideOnly hides *Stream so Convert cannot take the narrow path.
type wideOnly struct{ Source }

// A streamed WAV (sizes unknown in the header) with an extra chunk before
// its data: ProbeFile takes the duration from the file size after the
// header, wherever the data starts.
func TestProbeFileStreamedWAV(t *testing.T) {
	var b bytes.Buffer
	w, _ := NewWriter(&b, WAV, PCMU, 8000, 1) // not seekable: sizes stay "unknown"
	w.WritePCM(make([]int16, 8000))
	w.Close()
	raw := b.Bytes()
	// Insert a LIST chunk after fmt (12 + 8 + 18 = 38).
	list := append([]byte("LIST\x04\x00\x00\x00INFO"), raw[38:]...)
	data := append(append([]byte{}, raw[:38]...), list...)
	path := t.TempDir() + "/s.wav"
	os.WriteFile(path, data, 0o600)
	info, err := ProbeFile(path)
	if err != nil || info.DataSize != 8000 || info.Duration.Seconds() != 1 {
		t.Fatalf("%v %+v", err, info)
	}
}
