// Command streaming measures concurrent SRTP G.711 playback: sessions
// started the way a handset plays a message (-path rtsps, the default:
// UID CHANNEL on an IMAP connection, then the URL over RTSPS: TLS,
// DESCRIBE with the SDES key, SETUP over UDP, PLAY; or -path engine: a
// grant issued and opened and the engine started directly with a UDP
// sink on one server socket),
// paced by the one playback engine, and received on loopback by a child
// process that records every packet's arrival and checks SRTP
// authentication on a sample of streams with the keys from the SDP.
//
// For each step (number of concurrent sessions) it reports the packets'
// inter-arrival jitter (|gap - 20 ms|, p50/p99/p99.9/max), loss, the
// server's CPU per 1,000 sessions, the time from the CHANNEL command (or
// the grant's issue) to the stream's first packet (p50/p99), and the server's packets per
// CPU-second against a reference measured in the same run: a tight loop
// doing only SRTP protect + one UDP send per packet to the same receiver.
// A step is sustained in real time with p99 jitter <= 2 ms and no loss.
// It also prints the CPU per stream-second of each codec path.
//
//	go run ./bench/streaming [-path rtsps|engine] [-steps 250,500,1000,2000,5000] [-window 10s]
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

func main() {
	role := flag.String("role", "", "internal: receiver")
	sockets := flag.Int("receivers", 4, "receiver UDP sockets")
	stepsFlag := flag.String("steps", "250,500,1000,2000,3000,5000,7500,10000", "concurrent sessions per step")
	window := flag.Duration("window", 10*time.Second, "measurement window per step")
	ramp := flag.Duration("ramp", 2*time.Second, "sessions of a step start spread over this time")
	messages := flag.Int("messages", 8, "distinct voice messages played")
	voice := flag.Duration("voice", 60*time.Second, "length of each message")
	loopFor := flag.Duration("loop", 3*time.Second, "duration of the reference loop")
	keepGoing := flag.Int("after-fail", 1, "steps still run after the first one not sustained")
	codecs := flag.Bool("codecs", true, "also measure the codec paths (CPU per stream-second)")
	starts := flag.Int("starts", 100, "unloaded CHANNEL-to-first-packet runs over RTSPS with interleaved TCP (0: none)")
	profDir := flag.String("profile", "", "directory for a CPU profile (cpu-N.pprof) and a 2-s execution trace (trace-N.out) of each step's window")
	path := flag.String("path", "rtsps", "how sessions start: engine (grant opened, engine started with a UDP sink) or rtsps (CHANNEL URL over RTSPS: TLS, DESCRIBE, SETUP UDP, PLAY)")
	probePort := flag.Int("probe-port", 0, "internal: the probe's destination")
	rt := flag.Int("rt", 0, "real-time priority (SCHED_FIFO) of the engine's pacing threads and of the probe (0: normal priority)")
	flag.Parse()
	switch *role {
	case "receiver":
		runReceiver(*sockets)
		return
	case "probe":
		runProbe(*probePort, *rt)
		return
	}
	var steps []int
	for _, s := range strings.Split(*stepsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-steps: %q", s))
		}
		steps = append(steps, n)
	}
	if *voice < *ramp+*window+3*time.Second {
		fatal(fmt.Errorf("-voice must outlast ramp + window + 3 s"))
	}

	fmt.Printf("bench/streaming: %d CPUs (GOMAXPROCS %d), load average %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), loadavg())
	if *codecs {
		codecPaths()
	}
	if *starts > 0 {
		startLatency(*starts)
	}
	b := newBench(*messages, *voice, *sockets, *rt)
	b.profDir = *profDir
	defer b.close()
	switch *path {
	case "engine":
	case "rtsps":
		b.startRTSPS()
	default:
		fatal(fmt.Errorf("-path %q: engine or rtsps", *path))
	}
	fmt.Printf("sessions start through: %s; pacing threads: %s\n", *path, map[bool]string{false: "normal priority", true: fmt.Sprintf("SCHED_FIFO %d (probe too)", *rt)}[*rt > 0])

	ref1 := b.referenceLoop(*loopFor)
	fmt.Printf("reference loop (SRTP protect AES_CM_128_HMAC_SHA1_80 + one UDP send per packet, one goroutine): %.2f us/packet, %.0f packets per CPU-second; load %s\n",
		1e6/ref1, ref1, loadavg())
	fmt.Printf("\n%7s %6s %9s %9s %9s %9s %9s %7s %6s %10s %10s %9s %9s %7s %5s  %s\n",
		"sessions", "rt", "jit p50", "jit p90", "jit p99", "jit p99.9", "jit max", "lost", "rcvbuf", "CPU/1000", "us/packet", "start p50", "start p99", "vs loop", "ok", "load average")
	fmt.Printf("%7s %s\n", "", "(second line: allocations per packet, GC cycles and total GC pause in the window, the machine's jitter floor, receiver)")
	var results []stepResult
	fails := 0
	for _, n := range steps {
		r := b.step(n, *ramp, *window)
		r.ratio = r.ppsPerCPU / ref1
		results = append(results, r)
		ok := "yes"
		if !r.sustained() {
			ok = "NO"
			fails++
		}
		fmt.Printf("%7d %5.1f%% %7.0fus %7.0fus %7.0fus %7.0fus %7.0fus %7d %6d %8.3f c %10.2f %7.2fms %7.2fms %6.2fx %5s  %s -> %s\n",
			n, r.realtime*100, r.rep.JitterP50US, r.rep.JitterP90US, r.rep.JitterP99US, r.rep.JitterP999US, r.rep.JitterMaxUS, r.lost, r.rep.RcvbufErrors,
			r.cpuPer1000, 1e6/r.ppsPerCPU, r.startP50, r.startP99, r.ratio, ok, r.loadBefore, r.loadAfter)
		fmt.Printf("        %.3f allocs/packet, %d GC cycles, %.2f ms GC pause; floor (probe, %d streams): jitter p50 %.0fus p90 %.0fus p99 %.0fus max %.0fus, %d lost; %s\n",
			r.allocsPerPacket, r.gcCycles, r.gcPauseMS, probeStreams, r.rep.ProbeJitterP50US, r.rep.ProbeJitterP90US, r.rep.ProbeJitterP99US, r.rep.ProbeJitterMaxUS, r.rep.ProbeLost, r.note)
		if fails > *keepGoing {
			break
		}
	}
	ref2 := b.referenceLoop(*loopFor)
	fmt.Printf("\nreference loop again: %.2f us/packet (%.0f packets per CPU-second); load %s\n", 1e6/ref2, ref2, loadavg())
	best := 0
	for _, r := range results {
		if r.sustained() {
			best = max(best, r.n)
		}
	}
	fmt.Printf("sustained (real time, p99 jitter <= 2 ms, no loss): %d sessions\n", best)
	var bestCost float64
	for _, r := range results {
		if r.ppsPerCPU > 0 && r.n >= 1000 && (bestCost == 0 || 1/r.ppsPerCPU < bestCost) {
			bestCost = 1 / r.ppsPerCPU
		}
	}
	if bestCost > 0 {
		fmt.Printf("server CPU alone allows %.0f real-time sessions per core (%.2f us/packet at 50 packets/s, steps of >= 1,000 sessions)\n",
			1/(bestCost*50), bestCost*1e6)
	}
	fmt.Printf("columns: rt = packets received / packets due (sessions x window / 20 ms); jitter = |inter-arrival - 20 ms| per stream; CPU/1000 = server CPU-seconds per 1,000 stream-seconds delivered, i.e. cores per 1,000 real-time sessions (receiver excluded);\n" +
		"us/packet = server CPU per packet sent; start = CHANNEL command sent (engine path: grant issued) -> first RTP packet received; vs loop = server packets per CPU-second / reference loop's\n")
}

type bench struct {
	st        *vmstore.Store
	dir       string
	grants    *channel.Grants
	eng       *streaming.Engine
	cache     *streaming.PartCache
	account   uint64
	uidv      uint32
	uids      []uint32
	tr        *streaming.UDPTransport
	rcv       []*net.UDPAddr
	sink      *net.UDPAddr
	child     *exec.Cmd
	probe     *exec.Cmd
	probeIn   io.WriteCloser
	childIn   io.WriteCloser
	childOut  *bufio.Reader
	rng       *rand.Rand
	usedSSRCs map[uint32]bool
	rtsps     *rtspsPath
	profDir   string
}

func newBench(messages int, voice time.Duration, sockets, rt int) *bench {
	dir, err := os.MkdirTemp("", "lemonvox-bench-streaming-")
	if err != nil {
		fatal(err)
	}
	st, err := vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1},
		Logger: slog.New(slog.DiscardHandler), Prober: transcode.PartDuration})
	if err != nil {
		fatal(err)
	}
	b := &bench{st: st, dir: dir, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)), usedSSRCs: map[uint32]bool{}}
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "bench", Password: "bench-pw", PIN: "1234"}); err != nil {
		fatal(err)
	}
	for i := range messages {
		wav, _, err := transcode.SampleVoice(voice + time.Duration(i)*time.Second)
		if err != nil {
			fatal(err)
		}
		res, err := st.Deposit(vmstore.DepositReq{User: "bench", Body: strings.NewReader(voiceMessage(wav)), Service: "bench"})
		if err != nil {
			fatal(err)
		}
		b.uids = append(b.uids, res.Message.UID)
	}
	b.account, _ = st.AccountID("bench")
	mb, err := st.Mailbox("bench", "INBOX")
	if err != nil {
		fatal(err)
	}
	b.uidv = mb.UIDValidity
	if b.grants, err = channel.NewGrants(st); err != nil {
		fatal(err)
	}
	b.eng = streaming.NewEngine(streaming.EngineConfig{Store: st, RealtimePriority: rt, Logger: slog.New(slog.DiscardHandler)})
	b.cache = streaming.NewPartCache(256 << 20)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fatal(err)
	}
	b.tr = streaming.NewUDPTransport(c)

	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	b.child = exec.Command(exe, "-role", "receiver", "-receivers", strconv.Itoa(sockets))
	b.child.Stderr = os.Stderr
	if b.childIn, err = b.child.StdinPipe(); err != nil {
		fatal(err)
	}
	out, err := b.child.StdoutPipe()
	if err != nil {
		fatal(err)
	}
	b.childOut = bufio.NewReaderSize(out, 1<<20)
	if err := b.child.Start(); err != nil {
		fatal(err)
	}
	var hello struct {
		Ports []int `json:"ports"`
		Sink  int   `json:"sink"`
		Probe int   `json:"probe"`
	}
	if err := json.Unmarshal([]byte(b.readLine()), &hello); err != nil {
		fatal(err)
	}
	for _, p := range hello.Ports {
		b.rcv = append(b.rcv, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
	}
	b.sink = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: hello.Sink}
	b.probe = exec.Command(exe, "-role", "probe", "-probe-port", strconv.Itoa(hello.Probe), "-rt", strconv.Itoa(rt))
	b.probe.Stderr = os.Stderr
	if b.probeIn, err = b.probe.StdinPipe(); err != nil {
		fatal(err)
	}
	if err := b.probe.Start(); err != nil {
		fatal(err)
	}
	return b
}

func (b *bench) close() {
	if b.rtsps != nil {
		b.rtsps.ic.c.Close()
		b.rtsps.imap.Close()
		_ = b.rtsps.srv.Close()
	}
	b.probeIn.Close()
	_ = b.probe.Wait()
	fmt.Fprintln(b.childIn, "quit")
	_ = b.child.Wait()
	b.eng.Close()
	b.st.Close()
	os.RemoveAll(b.dir)
}

func (b *bench) readLine() string {
	l, err := b.childOut.ReadString('\n')
	if err != nil {
		fatal(fmt.Errorf("receiver: %w", err))
	}
	return strings.TrimSpace(l)
}

func (b *bench) cmd(c string) string {
	fmt.Fprintln(b.childIn, c)
	return b.readLine()
}

// referenceLoop is the limit: SRTP protect + one UDP send per packet, in
// one goroutine, to the receiver process; packets per CPU-second.
func (b *bench) referenceLoop(d time.Duration) float64 {
	key, err := streaming.NewSDESKey(1, streaming.SuiteAES80)
	if err != nil {
		fatal(err)
	}
	prot, err := streaming.NewProtector(key)
	if err != nil {
		fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fatal(err)
	}
	defer c.Close()
	_ = c.SetWriteBuffer(4 << 20)
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0
	binary.BigEndian.PutUint32(pkt[8:], 0x1234)
	for i := 12; i < len(pkt); i++ {
		pkt[i] = byte(i * 7)
	}
	out := make([]byte, 0, 256)
	runtime.GC()
	cpu0, t0 := cpuSeconds(), time.Now()
	n := 0
	for time.Since(t0) < d {
		for range 256 {
			n++
			binary.BigEndian.PutUint16(pkt[2:], uint16(n))
			binary.BigEndian.PutUint32(pkt[4:], uint32(n*160))
			out, err = prot.RTP(out[:0], pkt)
			if err != nil {
				fatal(err)
			}
			if _, err := c.WriteToUDP(out, b.sink); err != nil {
				fatal(err)
			}
		}
	}
	return float64(n) / (cpuSeconds() - cpu0)
}

type stepResult struct {
	n                     int
	rep                   Report
	lost                  int64
	cpuPer1000, ppsPerCPU float64
	startP50, startP99    float64
	ratio                 float64
	realtime              float64 // packets received / packets due in the window
	loadBefore, loadAfter string
	note                  string
	allocsPerPacket       float64
	gcCycles              uint32
	gcPauseMS             float64
}

func (r stepResult) sustained() bool {
	return r.lost == 0 && r.rep.JitterP99US <= 2000 && r.rep.AuthBad == 0 && r.realtime >= 0.995
}

// start plays message i%len as a CHANNEL grant is played and returns the
// session and the wall time the grant was issued.
func (b *bench) start(i int) (*streaming.Session, *streaming.SDESKey, int64, error) {
	uid := b.uids[i%len(b.uids)]
	t0 := time.Now().UnixNano()
	tok, _, err := b.grants.Issue(channel.Grant{AccountID: b.account, User: "bench", Mailbox: "INBOX", UIDValidity: b.uidv, UID: uid, Section: "2"})
	if err != nil {
		return nil, nil, 0, err
	}
	g, err := b.grants.Open(tok)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := b.grants.Use(g); err != nil {
		return nil, nil, 0, err
	}
	m, err := message.Lookup(b.st, g.User, g.Mailbox, g.UID)
	if err != nil {
		return nil, nil, 0, err
	}
	defer m.Release()
	sec, err := message.ParseBinary(g.Section)
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := m.Open(sec, message.DecodedLeaf)
	if err != nil {
		return nil, nil, 0, err
	}
	md, err := streaming.OpenMedia(p, streaming.MediaOptions{Key: fmt.Sprintf("%d/%s", m.Stored().Blob, g.Section), Cache: b.cache})
	p.Close()
	if err != nil {
		return nil, nil, 0, err
	}
	key, err := streaming.NewSDESKey(1, streaming.SuiteAES80)
	if err != nil {
		return nil, nil, 0, err
	}
	var ssrc uint32
	for ssrc == 0 || b.usedSSRCs[ssrc] {
		ssrc = b.rng.Uint32()
	}
	b.usedSSRCs[ssrc] = true
	to := b.rcv[i%len(b.rcv)]
	s, err := b.eng.Start(streaming.PlayRequest{Media: md, Codec: streaming.PCMU, SSRC: ssrc, Sink: &streaming.UDPSink{RTP: b.tr, RTCP: b.tr, To: to, ToRTCP: to},
		SRTP: key, Transport: "udp", Account: g.AccountID, User: g.User, Mailbox: g.Mailbox, UIDValidity: g.UIDValidity, UID: g.UID,
		Section: g.Section, NoSeen: true})
	return s, key, t0, err
}

func (b *bench) step(n int, ramp, window time.Duration) stepResult {
	r := stepResult{n: n, loadBefore: loadavg()}
	if b.cmd("reset") != "ok" {
		fatal(fmt.Errorf("receiver reset"))
	}
	clear(b.usedSSRCs)
	runtime.GC()
	sessions := make([]*streaming.Session, 0, n)
	var conns []net.Conn
	issued := map[uint32]int64{}
	t0 := time.Now()
	for i := range n {
		if at := t0.Add(ramp * time.Duration(i) / time.Duration(n)); time.Until(at) > time.Millisecond {
			time.Sleep(time.Until(at))
		}
		var ssrc uint32
		var crypto string
		if b.rtsps != nil {
			s, k, ti, c, err := b.startRTSPSOne(i)
			if err != nil {
				fatal(fmt.Errorf("session %d: %w", i, err))
			}
			conns = append(conns, c)
			ssrc, crypto, issued[s] = s, k, ti
		} else {
			s, key, ti, err := b.start(i)
			if err != nil {
				fatal(fmt.Errorf("session %d: %w", i, err))
			}
			sessions = append(sessions, s)
			ssrc, crypto, issued[s.SSRC()] = s.SSRC(), key.Attribute(), ti
		}
		if i%max(n/8, 1) == 0 { // SRTP checked by the receiver on a sample of streams
			if b.cmd(fmt.Sprintf("key %d %s", ssrc, crypto)) != "ok" {
				fatal(fmt.Errorf("receiver key"))
			}
		}
	}
	if len(issued) != n {
		r.note += fmt.Sprintf("%d sessions shared an SSRC; ", n-len(issued))
	}
	time.Sleep(time.Second)
	if b.cmd("on") != "ok" {
		fatal(fmt.Errorf("receiver on"))
	}
	stopProf := b.profile(n)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, w0 := cpuSeconds(), time.Now()
	time.Sleep(window)
	cpu := cpuSeconds() - cpu0
	wall := time.Since(w0).Seconds()
	runtime.ReadMemStats(&ms1)
	stopProf()
	r.gcCycles = ms1.NumGC - ms0.NumGC
	r.gcPauseMS = float64(ms1.PauseTotalNs-ms0.PauseTotalNs) / 1e6
	if err := json.Unmarshal([]byte(b.cmd("off")), &r.rep); err != nil {
		fatal(err)
	}
	for _, s := range sessions {
		s.Stop()
	}
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(30 * time.Second); b.eng.Sessions() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	r.loadAfter = loadavg()
	r.lost = r.rep.Lost
	if missing := n - r.rep.Streams; missing > 0 {
		r.lost += int64(missing) * int64(window/(20*time.Millisecond))
		r.note += fmt.Sprintf("%d streams sent nothing in the window; ", missing)
	}
	// CPU per 1,000 stream-seconds delivered: cores per 1,000 sessions
	// played in real time, also when a starved step fell behind.
	if r.rep.Packets > 0 {
		r.cpuPer1000 = cpu / (float64(r.rep.Packets) * 0.020 / 1000)
	}
	r.realtime = float64(r.rep.Packets) / (float64(n) * r.rep.WindowSecs / 0.020)
	if r.rep.Packets > 0 {
		r.ppsPerCPU = float64(r.rep.Packets) / cpu
		r.allocsPerPacket = float64(ms1.Mallocs-ms0.Mallocs) / float64(r.rep.Packets)
	}
	var starts []float64
	noFirst := 0
	for ssrc, ti := range issued {
		f, ok := r.rep.First[strconv.FormatUint(uint64(ssrc), 10)]
		if !ok {
			noFirst++
			continue
		}
		starts = append(starts, float64(f-ti)/1e6)
	}
	slices.Sort(starts)
	if len(starts) > 0 {
		r.startP50 = starts[len(starts)/2]
		r.startP99 = starts[min(len(starts)-1, len(starts)*99/100)]
	}
	if noFirst > 0 {
		r.note += fmt.Sprintf("%d streams never received; ", noFirst)
	}
	if r.rep.AuthBad > 0 {
		r.note += fmt.Sprintf("%d SRTP packets failed authentication; ", r.rep.AuthBad)
	}
	r.note += fmt.Sprintf("receiver: %d packets, %.2f cores, %d SRTP packets verified, %d RTCP, %d reordered",
		r.rep.Packets, r.rep.CPUSeconds/wall, r.rep.AuthOK, r.rep.RTCP, r.rep.Reordered)
	time.Sleep(time.Second) // the stops' RTCP BYEs drain
	return r
}

// profile starts a CPU profile of the step's window and a 2-s execution
// trace at its start (when -profile is set); the returned func stops them.
func (b *bench) profile(n int) func() {
	if b.profDir == "" {
		return func() {}
	}
	cf, err := os.Create(filepath.Join(b.profDir, fmt.Sprintf("cpu-%d.pprof", n)))
	if err != nil {
		fatal(err)
	}
	if err := pprof.StartCPUProfile(cf); err != nil {
		fatal(err)
	}
	tf, err := os.Create(filepath.Join(b.profDir, fmt.Sprintf("trace-%d.out", n)))
	if err != nil {
		fatal(err)
	}
	if err := trace.Start(tf); err != nil {
		fatal(err)
	}
	tracing := time.AfterFunc(2*time.Second, func() { trace.Stop(); tf.Close() })
	return func() {
		if tracing.Stop() {
			trace.Stop()
			tf.Close()
		}
		pprof.StopCPUProfile()
		cf.Close()
	}
}

// voiceMessage is a voice message whose part 2 is the WAV file.
func voiceMessage(wav []byte) string {
	var s strings.Builder
	s.WriteString("From: <+15551234@example.net>\r\nTo: <bench@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYou have a message.\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(wav); i += 57 {
		s.WriteString(base64.StdEncoding.EncodeToString(wav[i:min(i+57, len(wav))]))
		s.WriteString("\r\n")
	}
	s.WriteString("--b1--\r\n")
	return s.String()
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

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/streaming:", err)
	os.Exit(1)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
