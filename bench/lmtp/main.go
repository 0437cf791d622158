// Command lmtp measures durable LMTP deposits of 60-second voicemails
// (8 kHz G.711 in a VPIM message) with 1 and 8 clients, each deposit
// acknowledged with its 250 only once durable, against the disk's
// durable-write rate measured in the same run: dd oflag=dsync writing the
// same bytes in message-sized blocks (one synchronous write per message),
// before and after the LMTP runs.
//
//	go run ./bench/lmtp [-dir DIR] [-seconds 10] [-modes data,bdat] [-clients 1,8]
//
// A client is a plain LMTP client over loopback TCP: LHLO once, then per
// message MAIL FROM (SIZE=), RCPT TO its own account, and DATA (dot-stuffed)
// or BDAT (the whole message in one chunk, BODY=BINARYMIME); it waits for
// the per-recipient reply before the next message.
//
// The store is opened as the daemon opens it (with the audio prober) and
// serves in this process; the clients run in a child process, so that the
// CPU time per deposit reported for the server is the server's alone.
// "group mean/max" is how many deposits one durable commit carried.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// clientEnv, when set, makes the process the clients of a run (the
// benchmark runs them in a child process, so that the server's CPU time is
// its own): "addr mode clients seconds msgfile".
const clientEnv = "LEMONVOX_BENCH_LMTP_CLIENTS"

func main() {
	if v := os.Getenv(clientEnv); v != "" {
		clientMain(v)
		return
	}
	dir := flag.String("dir", "", "directory on the disk to measure (default: a temporary directory)")
	secs := flag.Float64("seconds", 10, "duration of each measurement")
	modes := flag.String("modes", "data,bdat", "transfer modes to measure")
	clientsFlag := flag.String("clients", "1,8", "client counts to measure")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the LMTP runs to `file`")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "lemonvox-bench-lmtp-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	msg := voicemail()
	fmt.Printf("message: 60 s of 8 kHz G.711 in a VPIM message, %d bytes; %d CPUs; load %s\n", len(msg), numCPU(), loadavg())

	dd1, err := ddDsync(*dir, len(msg), *secs)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("dd oflag=dsync bs=%d (before): %.1f writes/s\n\n", len(msg), dd1)

	msgFile := filepath.Join(*dir, "message.eml")
	if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
		fatal(err)
	}
	defer os.Remove(msgFile)
	type row struct {
		mode    string
		clients int
		res     result
		load    string
	}
	var rows []row
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
	}
	for _, mode := range strings.Split(*modes, ",") {
		for _, cs := range strings.Split(*clientsFlag, ",") {
			c, err := strconv.Atoi(cs)
			if err != nil {
				fatal(err)
			}
			res, err := run(filepath.Join(*dir, fmt.Sprintf("store-%s-%d", mode, c)), msgFile, mode, c, *secs)
			if err != nil {
				fatal(err)
			}
			rows = append(rows, row{mode, c, res, loadavg()})
		}
	}
	pprof.StopCPUProfile()
	dd2, err := ddDsync(*dir, len(msg), *secs)
	if err != nil {
		fatal(err)
	}
	dd := (dd1 + dd2) / 2
	fmt.Printf("dd oflag=dsync bs=%d (after): %.1f writes/s; reference: %.1f writes/s (%.1f MB/s)\n\n", len(msg), dd2, dd, dd*float64(len(msg))/1e6)
	fmt.Printf("%-5s %7s %10s %7s %11s %12s %12s %14s  %s\n", "mode", "clients", "deposits/s", "MB/s", "ratio to dd",
		"server ms/dep", "client ms/dep", "group mean/max", "load after")
	for _, r := range rows {
		rate := r.res.rate()
		fmt.Printf("%-5s %7d %10.1f %7.1f %10.2fx %12.2f %12.2f %9.1f / %-3d  %s\n", r.mode, r.clients, rate,
			rate*float64(len(msg))/1e6, rate/dd, r.res.serverCPU/float64(r.res.n)*1000,
			r.res.clientCPU/float64(r.res.n)*1000, float64(r.res.grouped)/float64(max(r.res.groups, 1)), r.res.largest, r.load)
	}
}

// result is one run's outcome.
type result struct {
	n                    int64   // deposits acknowledged
	elapsed              float64 // seconds
	serverCPU, clientCPU float64 // seconds
	groups, grouped      uint64  // durable commits of account transactions, transactions
	largest              uint64
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/lmtp:", err)
	os.Exit(1)
}

// voicemail builds a 60-second µ-law message (random payload: content is
// not compressible).
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
// returns writes per second.
func ddDsync(dir string, n int, secs float64) (float64, error) {
	src := filepath.Join(dir, "dd.in")
	count := 20
	for {
		// The same kind of bytes as the messages (random, from a file).
		if err := writeRandom(src, n*count); err != nil {
			return 0, err
		}
		out, err := exec.Command("dd", "if="+src, "of="+filepath.Join(dir, "dd.out"), "bs="+strconv.Itoa(n),
			"count="+strconv.Itoa(count), "oflag=dsync").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("dd: %v: %s", err, out)
		}
		m := ddRateRe.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("dd output not understood: %s", out)
		}
		el, _ := strconv.ParseFloat(string(m[1]), 64)
		if el >= secs*0.8 || count >= 1<<16 {
			os.Remove(filepath.Join(dir, "dd.out"))
			os.Remove(src)
			return float64(count) / el, nil
		}
		count = int(float64(count) * secs / max(el, 0.01) * 1.1)
	}
}

func writeRandom(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.Reader, int64(n))
	return err
}

// run starts a store and an LMTP listener and has clients (a child
// process) deposit for secs seconds.
func run(dir, msgFile string, mode string, clients int, secs float64) (result, error) {
	var res result
	// The daemon's store options that bear on a deposit: the prober that
	// measures an audio part's duration as it streams through.
	st, err := vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Logger: slog.New(slog.DiscardHandler),
		Hash: vmstore.HashParams{Time: 1, MemKiB: 1024, Threads: 1}, Prober: transcode.PartDuration})
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	defer st.Close()
	for c := 0; c < clients; c++ {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: fmt.Sprint("u", c), Password: "x"}); err != nil {
			return res, err
		}
	}
	l := smtp.NewLMTP(st, smtp.LMTPConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := l.Start(); err != nil {
		return res, err
	}
	defer l.Close()
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %g %s", clientEnv, l.Addrs()[0], mode, clients, secs, msgFile))
	cmd.Stderr = os.Stderr
	g0, t0, _ := st.CommitStats()
	u0 := cpuSeconds()
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("clients: %v", err)
	}
	res.serverCPU = cpuSeconds() - u0
	g1, t1, largest := st.CommitStats()
	res.groups, res.grouped, res.largest = g1-g0, t1-t0, largest
	if _, err := fmt.Sscan(string(out), &res.n, &res.elapsed); err != nil {
		return res, fmt.Errorf("clients said %q", out)
	}
	ps := cmd.ProcessState
	res.clientCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	return res, nil
}

// clientMain runs a run's clients and prints the deposits acknowledged and
// the seconds taken.
func clientMain(arg string) {
	var addr, mode, msgFile string
	var clients int
	var secs float64
	if _, err := fmt.Sscan(arg, &addr, &mode, &clients, &secs, &msgFile); err != nil {
		fatal(fmt.Errorf("%s=%q: %v", clientEnv, arg, err))
	}
	msg, err := os.ReadFile(msgFile)
	if err != nil {
		fatal(err)
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(time.Duration(secs * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			if err := client(addr, fmt.Sprint("u", c), msg, mode, stop, &n); err != nil {
				once.Do(func() { firstErr = err })
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		fatal(firstErr)
	}
	fmt.Println(n.Load(), el)
}

// client deposits msg (made distinct each time: no deduplication) for
// user until stop.
func client(addr, user string, msg []byte, mode string, stop time.Time, n *atomic.Int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriterSize(conn, 256<<10)
	expect := func(code string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("expected %s, got %q", code, line)
			}
			if len(line) < 4 || line[3] != '-' {
				return nil
			}
		}
	}
	if err := expect("220"); err != nil {
		return err
	}
	fmt.Fprintf(w, "LHLO bench.example\r\n")
	w.Flush()
	if err := expect("250"); err != nil {
		return err
	}
	body := bytes.Clone(msg)
	var stuffed []byte
	for i := 0; time.Now().Before(stop); i++ {
		copy(body[len(body)-300:], fmt.Sprintf("%08d%8s", i, user))
		opt := ""
		if mode == "bdat" {
			opt = " BODY=BINARYMIME"
		}
		fmt.Fprintf(w, "MAIL FROM:<caller@pbx.example> SIZE=%d%s\r\nRCPT TO:<%s@example.net>\r\n", len(body), opt, user)
		switch mode {
		case "data":
			w.WriteString("DATA\r\n")
			w.Flush()
			if err := expect("250"); err != nil {
				return err
			}
			if err := expect("250"); err != nil {
				return err
			}
			if err := expect("354"); err != nil {
				return err
			}
			if bytes.HasPrefix(body, []byte(".")) || bytes.Contains(body, []byte("\n.")) || !bytes.HasSuffix(body, []byte("\r\n")) {
				stuffed = dotStuff(stuffed[:0], body)
				w.Write(stuffed)
			} else {
				w.Write(body) // nothing to stuff (the voicemail has no line starting with ".")
			}
			w.WriteString(".\r\n")
		case "bdat":
			fmt.Fprintf(w, "BDAT %d LAST\r\n", len(body))
			w.Write(body)
		default:
			return errors.New("unknown mode " + mode)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if mode == "bdat" {
			if err := expect("250"); err != nil { // MAIL
				return err
			}
			if err := expect("250"); err != nil { // RCPT
				return err
			}
		}
		if err := expect("250"); err != nil { // the recipient's delivery
			return err
		}
		n.Add(1)
	}
	fmt.Fprintf(w, "QUIT\r\n")
	w.Flush()
	return nil
}

// dotStuff appends msg with leading dots doubled (RFC 5321 s4.5.2),
// ending with CRLF.
func dotStuff(dst, msg []byte) []byte {
	bol := true
	for _, c := range msg {
		if bol && c == '.' {
			dst = append(dst, '.')
		}
		dst = append(dst, c)
		bol = c == '\n'
	}
	if !bytes.HasSuffix(dst, []byte("\r\n")) {
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}
