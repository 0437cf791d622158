package transcode

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ffmpegDecode decodes a file with ffmpeg to 16-bit mono PCM at rate.
func ffmpegDecode(t *testing.T, ff, path string, rate int) []int16 {
	t.Helper()
	out, err := exec.Command(ff, "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", fmt.Sprint(rate), "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode %s: %v", filepath.Base(path), err)
	}
	return bytesPCM(out)
}

// ffmpegEncode encodes pcm with ffmpeg.
func ffmpegEncode(t *testing.T, ff string, pcm []int16, rate int, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(in, pcmBytes(pcm), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out"+args[len(args)-1])
	cmd := append([]string{"-v", "error", "-f", "s16le", "-ar", fmt.Sprint(rate), "-ac", "1", "-i", in}, args[:len(args)-1]...)
	cmd = append(cmd, out)
	if b, err := exec.Command(ff, cmd...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v %s", cmd, err, b)
	}
	return out
}

// Interoperability in both directions with ffmpeg, for every codec and
// container: our files decode in ffmpeg to what we decode ourselves, and
// ffmpeg's files decode in ours to what ffmpeg decodes.
func TestInteropFFmpeg(t *testing.T) {
	ff := needTool(t, "ffmpeg")
	cases := []struct {
		c      Container
		codec  Codec
		rate   int
		ffArgs []string // ffmpeg encoder arguments, last = extension
		minSNR float64  // ours vs ffmpeg decoding of the same file
	}{
		{WAV, PCMU, 8000, []string{"-c:a", "pcm_mulaw", ".wav"}, 90},
		{WAV, PCMA, 8000, []string{"-c:a", "pcm_alaw", ".wav"}, 90},
		{WAV, L16, 16000, []string{"-c:a", "pcm_s16le", ".wav"}, 90},
		// ffmpeg's G.726 is its own fixed-point formulation, not bit-exact
		// with the Recommendation's reference arithmetic we follow; both
		// decode the same codes to within ~33 dB.
		{WAV, G726, 8000, []string{"-c:a", "adpcm_g726", "-b:a", "32k", ".wav"}, 25},
		{WAV, G722, 16000, []string{"-c:a", "g722", ".wav"}, 60},
		{AU, PCMU, 8000, []string{"-c:a", "pcm_mulaw", ".au"}, 90},
		{AU, PCMA, 8000, []string{"-c:a", "pcm_alaw", ".au"}, 90},
		{AU, L16, 8000, []string{"-c:a", "pcm_s16be", ".au"}, 90},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%s", tc.c, tc.codec), func(t *testing.T) {
			pcm := speechLike(tc.rate*2, tc.rate)
			// Ours -> ffmpeg.
			path := filepath.Join(t.TempDir(), "ours."+tc.c.String())
			encodeFile(t, path, tc.c, tc.codec, tc.rate, pcm)
			theirs := ffmpegDecode(t, ff, path, tc.rate)
			b, _ := os.ReadFile(path)
			info, mine := decodeAll(t, b)
			if info.Codec != tc.codec || info.Rate != tc.rate {
				t.Fatalf("we read back %v", info)
			}
			if s, lag := snr(mine, theirs, 2); s < tc.minSNR || lag != 0 {
				t.Errorf("our file: ffmpeg decodes it %.1f dB from our decoder (lag %d)", s, lag)
			}
			// ffmpeg -> ours.
			fpath := ffmpegEncode(t, ff, pcm, tc.rate, tc.ffArgs...)
			fb, _ := os.ReadFile(fpath)
			finfo, fmine := decodeAll(t, fb)
			if finfo.Codec != tc.codec {
				t.Fatalf("ffmpeg's file read as %v", finfo)
			}
			ftheirs := ffmpegDecode(t, ff, fpath, tc.rate)
			if s, lag := snr(fmine, ftheirs, 2); s < tc.minSNR || lag != 0 {
				t.Errorf("ffmpeg's file: our decoding is %.1f dB from ffmpeg's (lag %d)", s, lag)
			}
			// And the coded signal resembles the original.
			s, lag := snr(pcm, fmine, 64)
			t.Logf("%s %s: ffmpeg-coded SNR vs original %.1f dB (lag %d)", tc.c, tc.codec, s, lag)
		})
	}
}

// Interoperability with sox for the formats sox knows (it cannot read G.722
// or G.726 WAV): sox decodes our files to what we decode, and we decode
// sox's files to what sox decodes.
func TestInteropSox(t *testing.T) {
	sox := needTool(t, "sox")
	decode := func(path string) []int16 {
		out, err := exec.Command(sox, path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-").Output()
		if err != nil {
			t.Fatalf("sox cannot decode %s: %v", filepath.Base(path), err)
		}
		return bytesPCM(out)
	}
	cases := []struct {
		c     Container
		codec Codec
		enc   []string // sox output options
		ext   string
	}{
		{WAV, PCMU, []string{"-e", "u-law"}, ".wav"},
		{WAV, PCMA, []string{"-e", "a-law"}, ".wav"},
		{WAV, L16, []string{"-e", "signed-integer", "-b", "16"}, ".wav"},
		{AU, PCMU, []string{"-e", "u-law"}, ".au"},
		{AU, PCMA, []string{"-e", "a-law"}, ".au"},
		{AU, L16, []string{"-e", "signed-integer", "-b", "16"}, ".au"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%s", tc.c, tc.codec), func(t *testing.T) {
			dir := t.TempDir()
			pcm := speechLike(16000, 8000)
			ours := filepath.Join(dir, "ours"+tc.ext)
			encodeFile(t, ours, tc.c, tc.codec, 8000, pcm)
			b, _ := os.ReadFile(ours)
			_, mine := decodeAll(t, b)
			if s, lag := snr(mine, decode(ours), 2); s < 90 || lag != 0 {
				t.Errorf("sox decodes our file %.1f dB from us (lag %d)", s, lag)
			}
			raw := filepath.Join(dir, "in.raw")
			os.WriteFile(raw, pcmBytes(pcm), 0o600)
			theirs := filepath.Join(dir, "sox"+tc.ext)
			args := append([]string{"-t", "raw", "-r", "8000", "-e", "signed-integer", "-b", "16", "-L", "-c", "1", raw}, tc.enc...)
			if out, err := exec.Command(sox, append(args, theirs)...).CombinedOutput(); err != nil {
				t.Fatalf("sox encode: %v %s", err, out)
			}
			sb, _ := os.ReadFile(theirs)
			info, got := decodeAll(t, sb)
			if info.Codec != tc.codec {
				t.Fatalf("sox's file read as %v", info)
			}
			if s, lag := snr(got, decode(theirs), 2); s < 90 || lag != 0 {
				t.Errorf("we decode sox's file %.1f dB from sox (lag %d)", s, lag)
			}
		})
	}
}

// GSM 06.10 files encoded by libgsm through ffmpeg (33-byte frames and
// Microsoft's WAV49 double frames) decode in ours as in ffmpeg's decoder.
func TestInteropGSM(t *testing.T) {
	ff := needTool(t, "ffmpeg")
	pcm := speechLike(16000, 8000)
	for _, tc := range []struct {
		name string
		args []string
		raw  bool
	}{
		{"wav49", []string{"-c:a", "libgsm_ms", ".wav"}, false},
		{"gsm", []string{"-c:a", "libgsm", "-f", "gsm", ".gsm"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ffmpegEncode(t, ff, pcm, 8000, tc.args...)
			b, _ := os.ReadFile(path)
			var mine []int16
			if tc.raw {
				s, err := DecodeRaw(bytes.NewReader(b), GSM, 8000, 1)
				if err != nil {
					t.Fatal(err)
				}
				mine = readAll(s)
			} else {
				var info Info
				info, mine = decodeAll(t, b)
				if info.Codec != GSM || math.Abs(info.Duration.Seconds()-2) > 0.05 {
					t.Fatalf("read as %v", info)
				}
			}
			theirs := ffmpegDecodeFmt(t, ff, path, tc.raw)
			if s, lag := snr(mine, theirs, 2); s < 60 || lag != 0 {
				t.Errorf("our GSM decoding is %.1f dB from ffmpeg's (lag %d)", s, lag)
			}
			s, lag := snr(pcm, mine, 200)
			t.Logf("%s: decoded vs original %.1f dB (lag %d), correlation-level quality", tc.name, s, lag)
		})
	}
}

func ffmpegDecodeFmt(t *testing.T, ff, path string, raw bool) []int16 {
	t.Helper()
	args := []string{"-v", "error"}
	if raw {
		args = append(args, "-f", "gsm")
	}
	args = append(args, "-i", path, "-f", "s16le", "-ac", "1", "-ar", "8000", "-")
	out, err := exec.Command(ff, args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v", err)
	}
	return bytesPCM(out)
}

// Our GSM encoder's files (WAV49 and 33-byte frames) decode in ffmpeg to
// what we decode, with quality close to libgsm's own.
func TestInteropGSMEncode(t *testing.T) {
	ff := needTool(t, "ffmpeg")
	pcm := speechLike(16000, 8000)
	dir := t.TempDir()
	wav := filepath.Join(dir, "ours.wav")
	encodeFile(t, wav, WAV, GSM, 8000, pcm)
	b, _ := os.ReadFile(wav)
	info, mine := decodeAll(t, b)
	if info.Codec != GSM || len(mine) != 16000 {
		t.Fatalf("read back %v, %d samples", info, len(mine))
	}
	theirs := ffmpegDecode(t, ff, wav, 8000)
	if s, lag := snr(mine, theirs, 2); s < 60 || lag != 0 {
		t.Errorf("ffmpeg decodes our GSM WAV %.1f dB from us (lag %d)", s, lag)
	}
	ref := ffmpegEncode(t, ff, pcm, 8000, "-c:a", "libgsm_ms", ".wav")
	rb, _ := os.ReadFile(ref)
	_, libgsm := decodeAll(t, rb)
	ours, _ := snr(pcm, mine, 10)
	theirsQ, _ := snr(pcm, libgsm, 10)
	t.Logf("GSM quality vs original: ours %.2f dB, libgsm %.2f dB", ours, theirsQ)
	if ours < theirsQ-1 {
		t.Errorf("our GSM encoder is %.1f dB worse than libgsm", theirsQ-ours)
	}
	// 33-byte frames.
	raw := filepath.Join(dir, "ours.gsm")
	encodeFile(t, raw, Raw, GSM, 8000, pcm)
	rawTheirs := ffmpegDecodeFmt(t, ff, raw, true)
	rf, _ := os.ReadFile(raw)
	s, _ := DecodeRaw(bytes.NewReader(rf), GSM, 8000, 1)
	if q, lag := snr(readAll(s), rawTheirs, 2); q < 60 || lag != 0 {
		t.Errorf("ffmpeg decodes our 33-byte GSM %.1f dB from us", q)
	}
}
