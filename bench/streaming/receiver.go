package main

// The receiver runs as a child process (same binary, -role receiver) so
// that its CPU is not counted as the server's: it records every packet's
// arrival on a few loopback UDP sockets and answers commands on stdin.
//
//	reset          forget every stream
//	key SSRC ATTR  check SRTP authentication of that stream (a=crypto value)
//	on             start the measurement window
//	off            end it; the report is one JSON line

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"

	"github.com/lemonvox/lemonvox/streaming"
)

const (
	frameNS    = int64(20 * time.Millisecond)
	histStepNS = 10_000 // 10 us buckets
	histLen    = 20_000 // up to 200 ms
)

type rxStream struct {
	firstWall int64 // wall clock of the first packet (ns)
	lastMono  int64
	lastSeq   uint16
	ext       int64 // extended sequence number of the last packet
	seen      bool
	// window
	winRecv        int64
	winMin, winMax int64
	winLastMono    int64
	winHas         bool
	reorder        int64
	srtp           *srtp.Context
}

type rxSocket struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	streams map[uint32]*rxStream
	hist    []int64
	over    int64
	maxDev  int64
	packets int64
	rtcp    int64
	authOK  int64
	authBad int64
	buf     []byte
	probe   bool // the probe's socket: reported apart
}

// Report is the receiver's answer to "off".
type Report struct {
	Packets      int64            `json:"packets"`      // RTP packets in the window
	Streams      int              `json:"streams"`      // streams with packets in the window
	Lost         int64            `json:"lost"`         // sequence gaps in the window
	Reordered    int64            `json:"reordered"`    // packets older than one already seen
	JitterP50US  float64          `json:"jitterP50us"`  // |inter-arrival - 20 ms|
	JitterP90US  float64          `json:"jitterP90us"`  //
	JitterP99US  float64          `json:"jitterP99us"`  //
	JitterP999US float64          `json:"jitterP999us"` //
	JitterMaxUS  float64          `json:"jitterMaxUs"`  //
	RTCP         int64            `json:"rtcp"`
	AuthOK       int64            `json:"authOk"`  // SRTP packets checked and authentic
	AuthBad      int64            `json:"authBad"` // failed authentication
	First        map[string]int64 `json:"first"`   // SSRC -> wall ns of first packet
	CPUSeconds   float64          `json:"cpuSeconds"`
	WindowSecs   float64          `json:"windowSeconds"` // from on to off, as the receiver saw it
	RcvbufErrors int64            `json:"rcvbufErrors"`  // kernel UDP receive-buffer drops (whole host)
	// The probe's streams (jitter floor of the machine in the window).
	ProbePackets     int64   `json:"probePackets"`
	ProbeLost        int64   `json:"probeLost"`
	ProbeJitterP50US float64 `json:"probeJitterP50us"`
	ProbeJitterP90US float64 `json:"probeJitterP90us"`
	ProbeJitterP99US float64 `json:"probeJitterP99us"`
	ProbeJitterMaxUS float64 `json:"probeJitterMaxUs"`
}

func runReceiver(n int) {
	var socks []*rxSocket
	var ports []int
	for i := range n + 1 { // the last one is the probe's
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fatal(err)
		}
		forceRcvbuf(c, 32<<20)
		kernelTimestamps(c)
		s := &rxSocket{conn: c, streams: map[uint32]*rxStream{}, hist: make([]int64, histLen), buf: make([]byte, 1500), probe: i == n}
		socks = append(socks, s)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	probePort := ports[n]
	ports = ports[:n]
	// The reference loop's destination: read and dropped.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fatal(err)
	}
	forceRcvbuf(sink, 32<<20)
	go drain(sink)
	var on atomic.Bool
	base := time.Now()
	for _, s := range socks {
		go s.read(&on, base)
	}
	out := bufio.NewWriter(os.Stdout)
	j, _ := json.Marshal(map[string]any{"ports": ports, "sink": sink.LocalAddr().(*net.UDPAddr).Port, "probe": probePort})
	fmt.Fprintf(out, "%s\n", j)
	out.Flush()
	var cpu0 float64
	var drops0 int64
	var onAt time.Time
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "reset":
			for _, s := range socks {
				s.mu.Lock()
				s.streams = map[uint32]*rxStream{}
				s.mu.Unlock()
			}
			fmt.Fprintln(out, "ok")
		case "key":
			ssrc, _ := strconv.ParseUint(f[1], 10, 32)
			k, err := streaming.ParseCrypto(strings.Join(f[2:], " "))
			if err != nil {
				fatal(err)
			}
			ctx, err := streaming.NewUnprotector(k)
			if err != nil {
				fatal(err)
			}
			for _, s := range socks {
				s.mu.Lock()
				st := s.stream(uint32(ssrc))
				st.srtp = ctx
				s.mu.Unlock()
			}
			fmt.Fprintln(out, "ok")
		case "on":
			for _, s := range socks {
				s.mu.Lock()
				for _, st := range s.streams {
					st.winHas, st.winRecv, st.reorder = false, 0, 0
				}
				clear(s.hist)
				s.over, s.maxDev, s.packets, s.rtcp, s.authOK, s.authBad = 0, 0, 0, 0, 0, 0
				s.mu.Unlock()
			}
			cpu0 = cpuSeconds()
			drops0 = rcvbufErrors()
			onAt = time.Now()
			on.Store(true)
			fmt.Fprintln(out, "ok")
		case "off":
			on.Store(false)
			r := Report{First: map[string]int64{}, CPUSeconds: cpuSeconds() - cpu0, RcvbufErrors: rcvbufErrors() - drops0,
				WindowSecs: time.Since(onAt).Seconds()}
			hist := make([]int64, histLen)
			var over, maxDev int64
			for _, s := range socks {
				s.mu.Lock()
				if s.probe {
					r.ProbePackets = s.packets
					for _, st := range s.streams {
						if st.winHas {
							r.ProbeLost += (st.winMax - st.winMin + 1) - st.winRecv
						}
					}
					r.ProbeJitterP50US = quantile(s.hist, s.over, 0.50)
					r.ProbeJitterP90US = quantile(s.hist, s.over, 0.90)
					r.ProbeJitterP99US = quantile(s.hist, s.over, 0.99)
					r.ProbeJitterMaxUS = float64(s.maxDev) / 1000
					s.mu.Unlock()
					continue
				}
				for i, v := range s.hist {
					hist[i] += v
				}
				over += s.over
				maxDev = max(maxDev, s.maxDev)
				r.Packets += s.packets
				r.RTCP += s.rtcp
				r.AuthOK += s.authOK
				r.AuthBad += s.authBad
				for ssrc, st := range s.streams {
					if st.seen {
						r.First[strconv.FormatUint(uint64(ssrc), 10)] = st.firstWall
					}
					if st.winHas {
						r.Streams++
						r.Lost += (st.winMax - st.winMin + 1) - st.winRecv
						r.Reordered += st.reorder
					}
				}
				s.mu.Unlock()
			}
			r.JitterP50US = quantile(hist, over, 0.50)
			r.JitterP90US = quantile(hist, over, 0.90)
			r.JitterP99US = quantile(hist, over, 0.99)
			r.JitterP999US = quantile(hist, over, 0.999)
			r.JitterMaxUS = float64(maxDev) / 1000
			j, _ := json.Marshal(r)
			fmt.Fprintf(out, "%s\n", j)
		case "quit":
			out.Flush()
			return
		}
		out.Flush()
	}
}

func (s *rxSocket) stream(ssrc uint32) *rxStream {
	st := s.streams[ssrc]
	if st == nil {
		st = &rxStream{}
		s.streams[ssrc] = st
	}
	return st
}

func (s *rxSocket) read(on *atomic.Bool, base time.Time) {
	pc := ipv4.NewPacketConn(s.conn)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		msgs[i].OOB = make([]byte, 128)
	}
	baseNS := base.UnixNano()
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		now := time.Now()
		measuring := on.Load()
		s.mu.Lock()
		for i := range n {
			// The kernel's receive time of each packet, not the time
			// this goroutine got to read the batch.
			wall := arrival(msgs[i].OOB[:msgs[i].NN])
			if wall == 0 {
				wall = now.UnixNano()
			}
			b := msgs[i].Buffers[0][:msgs[i].N]
			s.packet(b, wall, wall-baseNS, measuring)
		}
		s.mu.Unlock()
	}
}

func (s *rxSocket) packet(b []byte, wall, mono int64, measuring bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return
	}
	if b[1] >= 200 && b[1] <= 204 {
		if measuring {
			s.rtcp++
		}
		return
	}
	ssrc := binary.BigEndian.Uint32(b[8:])
	seq := binary.BigEndian.Uint16(b[2:])
	st := s.stream(ssrc)
	if !st.seen {
		st.seen, st.firstWall, st.lastSeq, st.ext, st.lastMono = true, wall, seq, int64(seq), mono
	} else {
		d := int64(int16(seq - st.lastSeq))
		if d <= 0 {
			if measuring {
				st.reorder++
			}
			return
		}
		st.ext += d
		st.lastSeq = seq
	}
	if st.srtp != nil && measuring {
		if _, err := st.srtp.DecryptRTP(s.buf, b, nil); err != nil {
			s.authBad++
		} else {
			s.authOK++
		}
	}
	if measuring {
		s.packets++
		if st.winHas {
			dev := mono - st.winLastMono - frameNS*(st.ext-st.winMax)
			if dev < 0 {
				dev = -dev
			}
			if idx := dev / histStepNS; idx < histLen {
				s.hist[idx]++
			} else {
				s.over++
			}
			s.maxDev = max(s.maxDev, dev)
			st.winMax = st.ext
		} else {
			st.winHas, st.winMin, st.winMax = true, st.ext, st.ext
		}
		st.winRecv++
		st.winLastMono = mono
	}
	st.lastMono = mono
}

func drain(c *net.UDPConn) {
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	for {
		if _, err := pc.ReadBatch(msgs, 0); err != nil {
			return
		}
	}
}

// quantile of the |gap - 20 ms| histogram, in microseconds.
func quantile(hist []int64, over int64, q float64) float64 {
	var total int64 = over
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	want := int64(q * float64(total))
	var acc int64
	for i, v := range hist {
		acc += v
		if acc > want {
			return float64((int64(i)+1)*histStepNS) / 1000
		}
	}
	return float64(histLen*histStepNS) / 1000
}

// forceRcvbuf raises the receive buffer beyond net.core.rmem_max when
// allowed (root), else as far as permitted.
func forceRcvbuf(c *net.UDPConn, n int) {
	_ = c.SetReadBuffer(n)
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
		})
	}
}

// rcvbufErrors is the host's UDP RcvbufErrors counter (/proc/net/snmp).
func rcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "Udp: ") {
			continue
		}
		f := strings.Fields(l)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// kernelTimestamps asks for each packet's receive time (SO_TIMESTAMPNS).
func kernelTimestamps(c *net.UDPConn) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		})
	}
}

// arrival is the SCM_TIMESTAMPNS time in oob (wall clock ns), or 0.
func arrival(oob []byte) int64 {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return sec*1e9 + nsec
		}
	}
	return 0
}
