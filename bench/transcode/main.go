// Command transcode measures conversion speed in realtime factors (seconds
// of audio converted per second of wall time, one core), side by side in
// the same run with ffmpeg doing the same conversion on the same file:
// whole processes (lemonvox convert vs ffmpeg -threads 1, as an integrator
// calls either) and, for ours, the in-process codec speed. Each is given by
// wall time and by CPU time (user+sys): on a shared machine the CPU ratio
// is the steadier figure. Ours and ffmpeg alternate run by run, so load
// changes touch both alike; the load average is printed before and after.
// Start-up costs (ffmpeg's is large: shared libraries) are measured on a
// 0.1-s file and taken off in a second table, which compares the codec
// work alone.
//
//	go run ./bench/transcode [-seconds 300] [-runs 5] [-baseline path/to/other/lemonvox]
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
	"slices"
	"strings"
	"syscall"
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
	baseline := flag.String("baseline", "", "another build of cmd/lemonvox (e.g. of main) to measure in the same runs, for before/after ratios")
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
	fmt.Printf("input: %d s of speech-like audio; median of %d runs (ours and ffmpeg alternate); one core\n", *secs, *runs)
	fmt.Printf("load average at start: %s\n", loadAvg())
	fmt.Printf("realtime factors: seconds of audio per second of wall time / of CPU time (user+sys)\n\n")
	fmt.Printf("%-22s %9s %9s | %9s %9s | %9s %9s | %7s %7s\n", "", "in-proc", "", "ours", "process", "ffmpeg", "process", "ratio", "ratio")
	fmt.Printf("%-22s %9s %9s | %9s %9s | %9s %9s | %7s %7s\n", "conversion", "wall", "CPU", "wall", "CPU", "wall", "CPU", "wall", "CPU")
	var baseRows, netRows []string
	for _, j := range jobs {
		in := filepath.Join(dir, "in.wav")
		writeInput(in, j.inCodec, j.inRate, *secs)
		out := filepath.Join(dir, j.out)
		audio := float64(*secs)
		var inWall, inCPU, ourWall, ourCPU, ffWall, ffCPU, baseWall, baseCPU, ourStart, ffStart []time.Duration
		args := []string{"convert", in, out, "--codec", j.opts.Codec.String()}
		if j.opts.Rate != 0 {
			args = append(args, "--rate", fmt.Sprint(j.opts.Rate))
		}
		ffArgs := append([]string{"-v", "error", "-threads", "1", "-y", "-i", in}, j.ffArgs...)
		ffArgs = append(ffArgs, "-threads", "1", out)
		// Start-up cost: the same conversion of a 0.1-s file.
		tiny := filepath.Join(dir, "tiny.wav")
		writeInputLen(tiny, j.inCodec, j.inRate, j.inRate/10)
		tinyArgs := append([]string{"convert", tiny, out}, args[3:]...)
		ffTiny := append([]string{"-v", "error", "-threads", "1", "-y", "-i", tiny}, ffArgs[7:]...)
		for r := 0; r < *runs; r++ {
			runtime.GC()
			t, c := time.Now(), selfCPU()
			if err := transcode.ConvertFile(in, out, j.opts); err != nil {
				fatal(err)
			}
			inCPU = append(inCPU, selfCPU()-c)
			inWall = append(inWall, time.Since(t))
			w, c2 := timeCmd(cli, args...)
			ourWall, ourCPU = append(ourWall, w), append(ourCPU, c2)
			if *baseline != "" {
				w, c2 := timeCmd(*baseline, args...)
				baseWall, baseCPU = append(baseWall, w), append(baseCPU, c2)
			}
			_, c2 = timeCmd(cli, tinyArgs...)
			ourStart = append(ourStart, c2)
			if ffErr == nil {
				w, c2 := timeCmd(ff, ffArgs...)
				ffWall, ffCPU = append(ffWall, w), append(ffCPU, c2)
				_, c2 = timeCmd(ff, ffTiny...)
				ffStart = append(ffStart, c2)
			}
		}
		rt := func(d []time.Duration) float64 {
			if len(d) == 0 {
				return math.NaN()
			}
			return audio / median(d).Seconds()
		}
		fmt.Printf("%-22s %8.0fx %8.0fx | %8.0fx %8.0fx | %8.0fx %8.0fx | %6.2fx %6.2fx\n", j.name,
			rt(inWall), rt(inCPU), rt(ourWall), rt(ourCPU), rt(ffWall), rt(ffCPU),
			rt(ourWall)/rt(ffWall), rt(ourCPU)/rt(ffCPU))
		if ffErr == nil {
			net := func(total, start []time.Duration) float64 { return audio / (median(total) - median(start)).Seconds() }
			netRows = append(netRows, fmt.Sprintf("%-22s | %7.1f ms %7.1f ms | %8.0fx %8.0fx | %6.2fx", j.name,
				ms(median(ourStart)), ms(median(ffStart)), net(ourCPU, ourStart), net(ffCPU, ffStart), net(ourCPU, ourStart)/net(ffCPU, ffStart)))
		}
		if *baseline != "" {
			baseRows = append(baseRows, fmt.Sprintf("%-22s | %8.0fx %8.0fx | %6.2fx %6.2fx | %6.2fx %6.2fx", j.name,
				rt(baseWall), rt(baseCPU), rt(baseWall)/rt(ffWall), rt(baseCPU)/rt(ffCPU), rt(ourWall)/rt(ffWall), rt(ourCPU)/rt(ffCPU)))
		}
	}
	if len(netRows) > 0 {
		fmt.Printf("\nstart-up CPU (the same conversion of a 0.1-s file) and CPU realtime factors without it:\n")
		fmt.Printf("%-22s | %10s %10s | %9s %9s | %7s\n", "conversion", "ours", "ffmpeg", "ours net", "ff net", "ratio")
		for _, r := range netRows {
			fmt.Println(r)
		}
	}
	if len(baseRows) > 0 {
		fmt.Printf("\nbaseline %s, measured in the same runs:\n", *baseline)
		fmt.Printf("%-22s | %9s %9s | %7s %7s | %7s %7s\n", "", "baseline", "process", "before", "vs ff", "after", "vs ff")
		fmt.Printf("%-22s | %9s %9s | %7s %7s | %7s %7s\n", "conversion", "wall", "CPU", "wall", "CPU", "wall", "CPU")
		for _, r := range baseRows {
			fmt.Println(r)
		}
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
	if ffErr != nil {
		fmt.Println("\nffmpeg not installed: no reference figures (apt-get install ffmpeg)")
	}
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// selfCPU is this process's user+sys CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeCmd runs a command and returns its wall time and its CPU time
// (user+sys of the process and anything it waited for).
func timeCmd(name string, args ...string) (wall, cpu time.Duration) {
	t := time.Now()
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatal(fmt.Errorf("%s %v: %v %s", name, args, err, out))
	}
	wall = time.Since(t)
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func writeInput(path string, codec transcode.Codec, rate, secs int) {
	writeInputLen(path, codec, rate, rate*secs)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func writeInputLen(path string, codec transcode.Codec, rate, n int) {
	pcm := make([]int16, n)
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
