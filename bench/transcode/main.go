// Command transcode measures conversion speed in realtime factors (seconds
// of audio converted per second of wall time, one core), side by side in
// the same run with ffmpeg doing the same conversion on the same file:
// whole processes (lemonvox convert vs ffmpeg -threads 1, as an integrator
// calls either) and, for ours, the in-process codec speed.
//
//	go run ./bench/transcode [-seconds 300] [-runs 5]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
)

type job struct {
	name    string
	inCodec transcode.Codec
	inRate  int
	out     string // output file name (extension picks the container)
	opts    transcode.ConvertOptions
	ffArgs  []string
}

func main() {
	secs := flag.Int("seconds", 300, "length of the test recording")
	runs := flag.Int("runs", 5, "repetitions (median reported)")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	dir, err := os.MkdirTemp("", "lemonvox-bench-transcode-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	cli := filepath.Join(dir, "lemonvox")
	if out, err := exec.Command("go", "build", "-o", cli, "./cmd/lemonvox").CombinedOutput(); err != nil {
		fatal(fmt.Errorf("build: %v %s", err, out))
	}
	ff, ffErr := exec.LookPath("ffmpeg")
	jobs := []job{
		{"G.711 -> G.722", transcode.PCMU, 8000, "out.wav", transcode.ConvertOptions{Codec: transcode.G722}, []string{"-c:a", "g722"}},
		{"G.722 -> G.711", transcode.G722, 16000, "out.wav", transcode.ConvertOptions{Codec: transcode.PCMU}, []string{"-c:a", "pcm_mulaw", "-ar", "8000"}},
		{"GSM -> G.711", transcode.GSM, 8000, "out.wav", transcode.ConvertOptions{Codec: transcode.PCMU}, []string{"-c:a", "pcm_mulaw"}},
		{"G.726 -> L16 16 kHz", transcode.G726, 8000, "out.wav", transcode.ConvertOptions{Codec: transcode.L16, Rate: 16000}, []string{"-c:a", "pcm_s16le", "-ar", "16000"}},
		{"8 -> 48 kHz resample", transcode.L16, 8000, "out.wav", transcode.ConvertOptions{Codec: transcode.L16, Rate: 48000}, []string{"-c:a", "pcm_s16le", "-ar", "48000"}},
	}
	fmt.Printf("input: %d s of speech-like audio; median of %d runs; one core\n\n", *secs, *runs)
	fmt.Printf("%-22s %14s %14s %14s %10s\n", "conversion", "ours in-proc", "ours process", "ffmpeg process", "ratio")
	for _, j := range jobs {
		in := filepath.Join(dir, "in.wav")
		writeInput(in, j.inCodec, j.inRate, *secs)
		out := filepath.Join(dir, j.out)
		audio := float64(*secs)
		inproc := median(*runs, func() time.Duration {
			t := time.Now()
			if err := transcode.ConvertFile(in, out, j.opts); err != nil {
				fatal(err)
			}
			return time.Since(t)
		})
		args := []string{"convert", in, out, "--codec", j.opts.Codec.String()}
		if j.opts.Rate != 0 {
			args = append(args, "--rate", fmt.Sprint(j.opts.Rate))
		}
		proc := median(*runs, func() time.Duration { return timeCmd(cli, args...) })
		ffRT := math.NaN()
		if ffErr == nil {
			ffArgs := append([]string{"-v", "error", "-threads", "1", "-y", "-i", in}, j.ffArgs...)
			ffArgs = append(ffArgs, "-threads", "1", out)
			ffRT = audio / median(*runs, func() time.Duration { return timeCmd(ff, ffArgs...) }).Seconds()
		}
		ourRT := audio / proc.Seconds()
		fmt.Printf("%-22s %13.0fx %13.0fx %13.0fx %9.2fx\n", j.name, audio/inproc.Seconds(), ourRT, ffRT, ourRT/ffRT)
	}
	if ffErr != nil {
		fmt.Println("\nffmpeg not installed: no reference figures (apt-get install ffmpeg)")
	}
}

func timeCmd(name string, args ...string) time.Duration {
	t := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("%s %v: %v %s", name, args, err, out))
	}
	return time.Since(t)
}

func median(n int, f func() time.Duration) time.Duration {
	var d []time.Duration
	for i := 0; i < n; i++ {
		d = append(d, f())
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func writeInput(path string, codec transcode.Codec, rate, secs int) {
	pcm := make([]int16, rate*secs)
	for i := range pcm {
		t := float64(i) / float64(rate)
		env := math.Abs(math.Sin(math.Pi * t / 0.3))
		pcm[i] = int16(6000 * env * (math.Sin(2*math.Pi*220*t) + 0.5*math.Sin(2*math.Pi*710*t) + 0.3*math.Sin(2*math.Pi*1530*t)))
	}
	var b bytes.Buffer
	if err := transcode.WriteWAV(&b, pcm, rate, codec); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/transcode:", err)
	os.Exit(1)
}
