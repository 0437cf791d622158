// Command startup measures how long lemonvoxd takes from its start to every
// listener accepting connections, on stores of growing size. The goal is
// under one second whatever the store holds: nothing that grows with the
// store may run before the listeners open.
//
// The stores are built once through the store API (small distinct messages,
// deposited with DepositMany in batches, several accounts at a time) and
// kept under -dir, so later runs only measure the start. The build time is
// reported too.
//
//	go run ./bench/startup [-sizes 10000,100000,1000000] [-runs 3] [-bin bin/lemonvoxd]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func main() {
	sizesFlag := flag.String("sizes", "10000,100000,1000000", "store sizes in messages, comma-separated")
	dir := flag.String("dir", "bench/startup/data", "where the stores are built and kept")
	bin := flag.String("bin", "", "lemonvoxd binary (default: built from ./cmd/lemonvoxd)")
	runs := flag.Int("runs", 3, "starts measured per store")
	perAccount := flag.Int("per-account", 1000, "messages per account")
	flag.Parse()
	var sizes []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("bad size %q", f))
		}
		sizes = append(sizes, n)
	}
	if *bin == "" {
		tmp, err := os.MkdirTemp("", "lemonvox-startup-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(tmp)
		*bin = filepath.Join(tmp, "lemonvoxd")
		cmd := exec.Command("go", "build", "-o", *bin, "./cmd/lemonvoxd")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fatal(fmt.Errorf("go build: %w", err))
		}
	}
	fmt.Printf("%-10s %12s %12s %12s %12s %12s\n", "messages", "build", "store size", "start min", "start median", "start max")
	for _, n := range sizes {
		data := filepath.Join(*dir, strconv.Itoa(n))
		build, err := ensureStore(data, n, *perAccount)
		if err != nil {
			fatal(err)
		}
		size := dirSize(filepath.Join(data, "store"))
		var times []time.Duration
		for i := 0; i < *runs; i++ {
			d, err := startOnce(*bin, data)
			if err != nil {
				fatal(fmt.Errorf("%d messages: %w", n, err))
			}
			times = append(times, d)
		}
		slices.Sort(times)
		fmt.Printf("%-10d %12s %11.0fM %12s %12s %12s\n", n, build, float64(size)/1e6,
			times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/startup:", err)
	os.Exit(1)
}

// ensureStore builds a store of n messages in data/store unless a complete
// one is there; it returns the build time ("kept" when it was there).
func ensureStore(data string, n, perAccount int) (string, error) {
	done := filepath.Join(data, "built")
	if b, err := os.ReadFile(done); err == nil {
		return "kept (" + strings.TrimSpace(string(b)) + ")", nil
	}
	if err := os.RemoveAll(data); err != nil {
		return "", err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", err
	}
	start := time.Now()
	st, err := vmstore.Open(vmstore.Options{Dir: filepath.Join(data, "store"), GCInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		return "", err
	}
	accounts := max(1, (n+perAccount-1)/perAccount)
	var next atomic.Int64
	var deposited atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	const batch = 500
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				a := int(next.Add(1)) - 1
				if a >= accounts {
					return
				}
				user := fmt.Sprintf("sub%06d", a)
				if _, err := st.CreateAccount(vmstore.AccountSpec{Name: user, Password: "bench-" + user}); err != nil && !errors.Is(err, vmstore.ErrExists) {
					errOnce.Do(func() { firstErr = err })
					return
				}
				count := min(perAccount, n-a*perAccount)
				for i := 0; i < count; i += batch {
					var reqs []vmstore.DepositReq
					for j := i; j < min(i+batch, count); j++ {
						reqs = append(reqs, vmstore.DepositReq{User: user, Service: "bench", Body: bytes.NewReader(message(user, j))})
					}
					if _, err := st.DepositMany(reqs); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					if d := deposited.Add(int64(len(reqs))); d%100000 < int64(len(reqs)) {
						fmt.Fprintf(os.Stderr, "  %d/%d messages, %s\n", d, n, time.Since(start).Round(time.Second))
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		st.Close()
		return "", firstErr
	}
	// A store that served for a while has its notification cursors at the
	// journal's end (the MWI sink of the default configuration).
	if err := st.SetCursor("notify/mwi", st.LastSeq()); err != nil {
		st.Close()
		return "", err
	}
	if err := st.MarkInitialized(); err != nil {
		st.Close()
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	took := time.Since(start).Round(time.Second).String()
	return took, os.WriteFile(done, []byte(took+"\n"), 0o600)
}

// message is a small voice message of its own content (no two share a
// blob, as in a real store).
func message(user string, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <+1555%07d@pbx.example>\r\nTo: <%s@vm.example>\r\nSubject: Voice message %d\r\n"+
		"Message-Context: voice-message\r\nContent-Duration: 3\r\nMIME-Version: 1.0\r\nContent-Type: audio/basic\r\n\r\n", i, user, i)
	body := make([]byte, 200)
	for k := range body {
		body[k] = byte('a' + (i*7+k)%26)
	}
	fmt.Fprintf(&b, "%s %s %d\r\n", body, user, i)
	return b.Bytes()
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startOnce starts lemonvoxd on data and returns the time until the admin
// API answers /healthz and the IMAP, IMAPS and SIP TCP listeners accept.
func startOnce(bin, data string) (time.Duration, error) {
	var addrs []string
	for i := 0; i < 4; i++ {
		a, err := freePort()
		if err != nil {
			return 0, err
		}
		addrs = append(addrs, a)
	}
	conf := fmt.Sprintf(`[imap]
listen = %q
listen_tls = %q
[sip]
listen = %q
[admin]
listen = %q
[lmtp]
listen = ""
[submission]
listen = ""
[rtsp]
listen = ""
[demo]
enabled = false
`, addrs[0], addrs[1], addrs[2], addrs[3])
	cfg := filepath.Join(data, "bench.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return 0, err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-config", cfg, "-data", data)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	up := map[string]bool{}
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < 120*time.Second {
		for i, a := range addrs {
			if up[a] {
				continue
			}
			if i == 3 {
				resp, err := client.Get("http://" + a + "/healthz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						up[a] = true
					}
				}
				continue
			}
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				up[a] = true
			}
		}
		if len(up) == len(addrs) {
			return time.Since(start), nil
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("listeners not up after %s (up: %v)\n%s", time.Since(start).Round(time.Millisecond), up, out.String())
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
