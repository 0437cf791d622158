// Command store measures durable deposit throughput of the message store
// against the disk's durable-write limit, measured in the same run with
// dd oflag=dsync writing the same bytes in message-sized blocks.
//
//	go run ./bench/store [-dir DIR] [-seconds 10]
package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func main() {
	dir := flag.String("dir", "", "directory on the disk to measure (default: a temporary directory)")
	secs := flag.Float64("seconds", 10, "duration of each measurement")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "lemonvox-bench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	msg := voicemail()
	fmt.Printf("message: 60 s of 8 kHz G.711 in a VPIM message, %d bytes\n", len(msg))

	ddRate, err := ddDsync(*dir, len(msg), *secs)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("dd oflag=dsync bs=%d: %.1f MB/s (%.1f writes/s)\n\n", len(msg), ddRate/1e6, ddRate/float64(len(msg)))

	fmt.Printf("%-8s %10s %10s %14s\n", "writers", "msgs/s", "MB/s", "ratio to dd")
	for _, writers := range []int{1, 8} {
		rate, mbs, err := deposits(filepath.Join(*dir, fmt.Sprint("store", writers)), msg, writers, *secs)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("%-8d %10.1f %10.1f %13.2fx\n", writers, rate, mbs/1e6, mbs/ddRate)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/store:", err)
	os.Exit(1)
}

// voicemail builds a 60-second µ-law message (random payload: content is
// not compressible and not deduplicated).
func voicemail() []byte {
	audio := make([]byte, 44+60*8000)
	copy(audio, "RIFF")
	_, _ = rand.Read(audio[44:])
	r := vmstore.VoiceMessage{From: "+15551234567@example.net", MediaType: "audio/wav", Duration: 60 * time.Second,
		Media: bytes.NewReader(audio)}.Compose()
	var b bytes.Buffer
	_, _ = b.ReadFrom(r)
	return b.Bytes()
}

var ddRateRe = regexp.MustCompile(`copied, ([0-9.]+) s`)

// ddDsync writes blocks of size n with O_DSYNC for about secs seconds and
// returns bytes per second.
func ddDsync(dir string, n int, secs float64) (float64, error) {
	// Calibrate the count with a short run.
	count := 20
	for {
		out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(dir, "dd.out"), "bs="+strconv.Itoa(n),
			"count="+strconv.Itoa(count), "oflag=dsync").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("dd: %v: %s", err, out)
		}
		m := ddRateRe.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("dd output not understood: %s", out)
		}
		el, _ := strconv.ParseFloat(string(m[1]), 64)
		if el >= secs*0.8 || count >= 1<<20 {
			os.Remove(filepath.Join(dir, "dd.out"))
			return float64(count*n) / el, nil
		}
		count = int(float64(count) * secs / max(el, 0.01) * 1.1)
	}
}

// deposits runs writers concurrent depositors (each its own account) for
// secs seconds and returns messages/s and bytes/s.
func deposits(dir string, msg []byte, writers int, secs float64) (float64, float64, error) {
	st, err := vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Logger: slog.New(slog.DiscardHandler),
		Hash: vmstore.HashParams{Time: 1, MemKiB: 1024, Threads: 1}})
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	defer st.Close()
	for w := 0; w < writers; w++ {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: fmt.Sprint("u", w), Password: "x"}); err != nil {
			return 0, 0, err
		}
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(time.Duration(secs * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			body := bytes.Clone(msg)
			for i := 0; time.Now().Before(stop); i++ {
				// Distinct content each time (no dedupe): vary a run of base64 digits.
				copy(body[len(body)-300:], fmt.Sprintf("%08d%04d", i, w))
				if _, err := st.Deposit(vmstore.DepositReq{User: fmt.Sprint("u", w), Body: bytes.NewReader(body), Service: "bench"}); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return float64(n.Load()) / el, float64(n.Load()) * float64(len(msg)) / el, nil
}
