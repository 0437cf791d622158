// Command streaming measures the playback core on this machine:
//
//   - reference: a tight loop doing only SRTP protect + one UDP send per
//     packet on loopback (packets per CPU-second of the sending process);
//   - engine: N concurrent SRTP PCMU sessions paced by streaming.Engine to
//     a receiver in a child process that records every packet's arrival:
//     loss, p99 inter-packet jitter (|gap - 20 ms|), sender CPU per 1,000
//     sessions, and packets per CPU-second as a ratio of the reference;
//   - codec paths: in-process CPU per stream-second to produce each wire
//     codec from a stored 8 kHz µ-law WAV (once per part: shared by every
//     listener through the part cache);
//   - start: time from Engine.Start to the first packet at the receiver.
//
// Usage: go run ./bench/streaming [-sessions 300,1000,2000] [-seconds 10]
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/transcode"
	"golang.org/x/net/ipv4"
)

func main() {
	recv := flag.Bool("receiver", false, "internal: run as the receiver")
	list := flag.String("sessions", "300,1000,2000", "session counts to run")
	secs := flag.Int("seconds", 10, "measured seconds per run")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the engine runs to `file`")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		profFile = f
	}
	if *recv {
		receiver()
		return
	}
	fmt.Printf("machine: %d CPUs, GOMAXPROCS %d, load %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), loadavg())
	codecPaths()
	ref := reference()
	for _, f := range strings.Split(*list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			continue
		}
		engineRun(n, time.Duration(*secs)*time.Second, ref)
	}
}

var profFile *os.File

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// codecPaths: CPU per stream-second of each wire codec from stored µ-law.
func codecPaths() {
	wav, d, err := transcode.SampleVoice(300 * time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Printf("\ncodec paths (300 s stored 8 kHz PCMU WAV, conversion made once per part and codec):\n")
	for _, c := range []streaming.Codec{streaming.PCMU, streaming.PCMA, streaming.L16, streaming.G722} {
		// Repeat until the CPU clock (tick-granular) has seen enough.
		reps := 0
		t0, c0 := time.Now(), cpuNow()
		for reps < 1000 && (reps < 2 || cpuNow()-c0 < 500*time.Millisecond) {
			md, err := streaming.OpenMediaBytes("audio/wav", nil, wav, streaming.MediaOptions{})
			if err != nil {
				panic(err)
			}
			if err := streaming.Prepare(md, c); err != nil {
				panic(err)
			}
			reps++
		}
		wall, cpu := time.Since(t0), cpuNow()-c0
		fmt.Printf("  %-10s %8.3f µs CPU per stream-second (%d conversions of %v in %v)\n", c.String(),
			float64(cpu.Nanoseconds())/1000/d.Seconds()/float64(reps), reps, d, wall.Round(time.Millisecond))
	}
}

// startReceiver runs the child receiver and returns its address.
func startReceiver() (*exec.Cmd, *bufio.Reader, *net.UDPAddr, func() stats) {
	cmd := exec.Command(os.Args[0], "-receiver")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		panic(err)
	}
	addr, err := net.ResolveUDPAddr("udp", strings.TrimSpace(line))
	if err != nil {
		panic(err)
	}
	finish := func() stats {
		in.Write([]byte("report\n"))
		in.Close()
		var s stats
		l, _ := br.ReadString('\n')
		json.Unmarshal([]byte(l), &s)
		cmd.Wait()
		return s
	}
	return cmd, br, addr, finish
}

type stats struct {
	Packets   int64   `json:"packets"`
	Streams   int     `json:"streams"`
	Lost      int64   `json:"lost"`
	JitterP99 float64 `json:"jitter_p99_ms"`
	JitterP50 float64 `json:"jitter_p50_ms"`
	Drops     string  `json:"kernel_drops"`
}

// reference: protect + send, one packet at a time, packets per CPU-second.
func reference() float64 {
	_, _, addr, finish := startReceiver()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	key, _ := streaming.NewSDESKey(1, streaming.SuiteAES80)
	p, _ := streaming.NewProtector(key)
	pkt := make([]byte, 172)
	pkt[0], pkt[1] = 0x80, 0
	binary.BigEndian.PutUint32(pkt[8:], 0x1234)
	out := make([]byte, 0, 256)
	const n = 300000
	c0 := cpuNow()
	t0 := time.Now()
	for i := range n {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		out, _ = p.RTP(out, pkt)
		conn.WriteToUDP(out, addr)
	}
	cpu := cpuNow() - c0
	wall := time.Since(t0)
	finish()
	conn.Close()
	pps := n / cpu.Seconds()
	fmt.Printf("\nreference loop (SRTP protect + one UDP send per packet): %.2f µs CPU per packet, %.0f packets per CPU-second (wall %v)\n",
		float64(cpu.Nanoseconds())/n/1000, pps, wall.Round(time.Millisecond))
	return pps
}

// nullSink counts (start measurement).
func engineRun(n int, window time.Duration, refPPS float64) {
	_, _, addr, finish := startReceiver()
	wav, _, _ := transcode.SampleVoice(window + 10*time.Second)
	md, err := streaming.OpenMediaBytes("audio/wav", nil, wav, streaming.MediaOptions{Key: "bench"})
	if err != nil {
		panic(err)
	}
	e := streaming.NewEngine(streaming.EngineConfig{Logger: quietLogger()})
	defer e.Close()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	tr := streaming.NewUDPTransport(c)
	sink := &streaming.UDPSink{RTP: tr, RTCP: tr, To: addr, ToRTCP: addr}
	var starts []time.Duration
	sessions := make([]*streaming.Session, 0, n)
	for i := range n {
		key, _ := streaming.NewSDESKey(1, streaming.SuiteAES80)
		t0 := time.Now()
		s, err := e.Start(streaming.PlayRequest{Media: md, Codec: streaming.PCMU, Sink: sink, SRTP: key, SSRC: uint32(i + 1), Transport: "bench"})
		if err != nil {
			panic(err)
		}
		starts = append(starts, time.Since(t0))
		sessions = append(sessions, s)
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond) // spread the start phases
		}
	}
	time.Sleep(2 * time.Second) // warm-up
	var p0 uint64
	for _, s := range sessions {
		p, _, _ := s.Stats()
		p0 += p
	}
	if profFile != nil {
		pprof.StartCPUProfile(profFile)
	}
	c0, t0 := cpuNow(), time.Now()
	time.Sleep(window)
	cpu, wall := cpuNow()-c0, time.Since(t0)
	if profFile != nil {
		pprof.StopCPUProfile()
		profFile = nil
	}
	var p1, late uint64
	for _, s := range sessions {
		p, _, l := s.Stats()
		p1 += p
		late += l
	}
	for _, s := range sessions {
		s.Stop()
	}
	st := finish()
	sent := float64(p1 - p0)
	pps := sent / cpu.Seconds()
	slices.Sort(starts)
	fmt.Printf("\n%d SRTP PCMU sessions, %v window (load %s):\n", n, wall.Round(time.Millisecond), loadavg())
	fmt.Printf("  sent %.0f packets (%.0f/s, expected %d/s), late at sender %d\n", sent, sent/wall.Seconds(), n*50, late)
	fmt.Printf("  receiver: %d streams, %d packets, lost %d, jitter p50 %.2f ms p99 %.2f ms, kernel drops %s\n",
		st.Streams, st.Packets, st.Lost, st.JitterP50, st.JitterP99, st.Drops)
	fmt.Printf("  sender CPU %.1f%% of one core = %.1f%% per 1,000 sessions; %.2f µs CPU per packet\n",
		100*cpu.Seconds()/wall.Seconds(), 100*cpu.Seconds()/wall.Seconds()*1000/float64(n), cpu.Seconds()*1e6/sent)
	fmt.Printf("  packets per CPU-second: %.0f = %.2fx the reference loop\n", pps, pps/refPPS)
	fmt.Printf("  Engine.Start: p50 %v p99 %v\n", starts[len(starts)/2], starts[len(starts)*99/100])
}

// receiver: one UDP socket, streams told apart by SSRC, every arrival
// recorded until "report" on stdin.
func receiver() {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	c.SetReadBuffer(64 << 20)
	fmt.Println(c.LocalAddr().String())
	type stream struct {
		last    time.Time
		lastSeq uint16
		n       int64
		lost    int64
	}
	var mu sync.Mutex
	streams := map[uint32]*stream{}
	var hist [2000]int64 // |gap - 20 ms| in 0.05 ms buckets
	var total int64
	measuring := false
	go func() {
		pc := ipv4.NewPacketConn(c)
		msgs := make([]ipv4.Message, 64)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		}
		for {
			k, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			for _, m := range msgs[:k] {
				b := m.Buffers[0][:m.N]
				if len(b) < 12 || b[1]&0x7f >= 72 && b[1]&0x7f <= 76 {
					continue // RTCP
				}
				ssrc := binary.BigEndian.Uint32(b[8:])
				seq := binary.BigEndian.Uint16(b[2:])
				s := streams[ssrc]
				if s == nil {
					s = &stream{}
					streams[ssrc] = s
				} else if measuring {
					if d := seq - s.lastSeq; d > 1 && d < 1000 {
						s.lost += int64(d - 1)
					}
					if seq == s.lastSeq+1 {
						g := now.Sub(s.last) - 20*time.Millisecond
						if g < 0 {
							g = -g
						}
						hist[min(int(g/(50*time.Microsecond)), len(hist)-1)]++
					}
				}
				s.last, s.lastSeq = now, seq
				s.n++
				total++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(time.Second)
	mu.Lock()
	measuring = true
	mu.Unlock()
	bufio.NewReader(os.Stdin).ReadString('\n')
	mu.Lock()
	defer mu.Unlock()
	var st stats
	st.Packets, st.Streams = total, len(streams)
	var all int64
	for _, s := range streams {
		st.Lost += s.lost
	}
	for _, h := range hist {
		all += h
	}
	var acc int64
	for i, h := range hist {
		acc += h
		if st.JitterP50 == 0 && acc*2 >= all {
			st.JitterP50 = float64(i) * 0.05
		}
		if acc*100 >= all*99 {
			st.JitterP99 = float64(i) * 0.05
			break
		}
	}
	b, _ := os.ReadFile("/proc/net/udp")
	port := fmt.Sprintf(":%04X ", c.LocalAddr().(*net.UDPAddr).Port)
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		if bytes.Contains(l, []byte(port)) {
			f := strings.Fields(string(l))
			st.Drops = f[len(f)-1]
		}
	}
	json.NewEncoder(os.Stdout).Encode(st)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
