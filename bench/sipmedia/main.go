// Command sipmedia measures the SIP media server: call set-up latency
// (INVITE sent to 200 received: URL resolved, media opened, offer
// answered) against the signalling floor measured in the same run (an
// OPTIONS round trip on the same endpoint), and calls sustained: N
// concurrent SRTP calls of one message, every packet's arrival recorded
// by a receiver in the same process (loss, p99 deviation of the
// inter-packet gap from 20 ms), with the process CPU per call-second.
//
//	go run ./bench/sipmedia [-calls 50,200,400] [-seconds 10] [-setups 200]
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

func main() {
	callsFlag := flag.String("calls", "50,200,400", "concurrent call counts to try")
	secs := flag.Int("seconds", 10, "message length (each call plays it once)")
	setups := flag.Int("setups", 200, "sequential calls for the set-up latency")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{InMemory: true, Logger: log, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	check(err)
	defer st.Close()
	_, err = st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-alice", PIN: "1234"})
	check(err)
	wav, _, err := transcode.SampleVoice(time.Duration(*secs) * time.Second)
	check(err)
	res, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: bytes.NewReader(voiceMessage(wav)), Service: "bench"})
	check(err)
	mb, err := st.Mailbox("alice", "INBOX")
	check(err)
	resolver := channel.NewResolver(st, "")
	u, err := resolver.AuthorizeMessage("alice", "INBOX", mb.UIDValidity, res.Message.UID, "2", channel.Access{Kind: channel.AccessAnonymous}, time.Now().Add(time.Hour))
	check(err)
	eng := streaming.NewEngine(streaming.EngineConfig{Store: st, Logger: log, SeenThreshold: -1})
	defer eng.Close()
	ep := &sipep.Endpoint{Listen: "127.0.0.1:0", Logger: log, TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	srv := &streaming.SIPServer{Endpoint: ep, Store: st, Resolver: resolver, Engine: eng, MaxCalls: 100000, Logger: log}
	check(srv.Initialize())
	check(ep.Start())
	defer ep.Close()
	defer srv.Close()
	ruri := "sip:annc@" + ep.Addr() + ";play=" + escape(u)

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %d CPUs, load average %s", numCPU(), load)
	rx := newReceiver()
	c := newCaller(ep.Addr())

	// Set-up latency, sequential calls, against OPTIONS in the same run.
	var opt, setup []time.Duration
	for i := 0; i < *setups; i++ {
		t0 := time.Now()
		c.options()
		opt = append(opt, time.Since(t0))
		d, took := c.invite(ruri, rx.port())
		setup = append(setup, took)
		c.bye(d)
	}
	waitCalls(srv, 0)
	fmt.Printf("\nset-up (INVITE -> 200, SRTP offer, %d sequential calls): p50 %v p99 %v\n", *setups, pct(setup, 50), pct(setup, 99))
	fmt.Printf("reference OPTIONS round trip, same endpoint:        p50 %v p99 %v\n", pct(opt, 50), pct(opt, 99))
	fmt.Printf("ratio set-up / OPTIONS: p50 %.1fx p99 %.1fx\n", ratio(pct(setup, 50), pct(opt, 50)), ratio(pct(setup, 99), pct(opt, 99)))

	for _, f := range strings.Split(*callsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		check(err)
		rx.reset()
		var ru0 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		t0 := time.Now()
		var dur []time.Duration
		for i := 0; i < n; i++ {
			_, took := c.invite(ruri, rx.port())
			dur = append(dur, took)
		}
		waitCalls(srv, 0)
		wall := time.Since(t0)
		var ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
		time.Sleep(300 * time.Millisecond)
		got, want, p99, late := rx.stats(*secs)
		load, _ := os.ReadFile("/proc/loadavg")
		fmt.Printf("\n%d concurrent SRTP PCMU calls of %d s (load %s)", n, *secs, strings.TrimSpace(string(load)))
		fmt.Printf("\n  set-up under load p50 %v p99 %v; packets %d of %d (loss %.3f%%); inter-packet gap p99 deviation %v, gaps > 22 ms %d",
			pct(dur, 50), pct(dur, 99), got, want, 100*float64(want-got)/float64(max(want, 1)), p99, late)
		fmt.Printf("\n  process CPU %v over %v wall: %.1f ms CPU per call-second (receiver included)\n",
			cpu.Round(time.Millisecond), wall.Round(time.Millisecond), float64(cpu.Milliseconds())/float64(n**secs))
	}
}

func waitCalls(srv *streaming.SIPServer, n int) {
	for srv.Calls() != n {
		time.Sleep(20 * time.Millisecond)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(strings.Count(string(b), "processor\t:"), 1)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

// caller places calls over one UDP socket; a reader goroutine hands
// responses to the waiting call by Call-ID and answers BYEs.
type caller struct {
	conn  *net.UDPConn
	local string
	srv   string
	mu    sync.Mutex
	wait  map[string]chan string
	n     int
}

type dlg struct{ callID, toTag string }

func newCaller(srv string) *caller {
	ra, err := net.ResolveUDPAddr("udp", srv)
	check(err)
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, ra)
	check(err)
	_ = conn.SetReadBuffer(8 << 20)
	c := &caller{conn: conn, local: conn.LocalAddr().String(), srv: srv, wait: map[string]chan string{}}
	go c.read()
	return c
}

func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (c *caller) read() {
	buf := make([]byte, 65536)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "BYE ") {
			var b strings.Builder
			b.WriteString("SIP/2.0 200 OK\r\n")
			for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
				b.WriteString(h + ": " + header(msg, h) + "\r\n")
			}
			b.WriteString("Content-Length: 0\r\n\r\n")
			_, _ = c.conn.Write([]byte(b.String()))
			continue
		}
		if !strings.HasPrefix(msg, "SIP/2.0 ") || strings.HasPrefix(msg, "SIP/2.0 100") {
			continue
		}
		c.mu.Lock()
		ch := c.wait[header(msg, "Call-ID")+"/"+header(msg, "CSeq")]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- msg:
			default:
			}
		}
	}
}

// request sends a request and waits for its final response (resending
// every 500 ms, as a UDP client does).
func (c *caller) request(method, ruri, callID, toTag string, cseq int, body string) string {
	key := callID + "/" + strconv.Itoa(cseq) + " " + method
	ch := make(chan string, 1)
	c.mu.Lock()
	c.n++
	branch := fmt.Sprintf("z9hG4bK-b%d", c.n)
	c.wait[key] = ch
	c.mu.Unlock()
	to := "<sip:annc@" + c.srv + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nFrom: <sip:bench@%s>;tag=f%s\r\nTo: %s\r\n", method, ruri, c.local, branch, c.local, callID, to)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:bench@%s>\r\nMax-Forwards: 70\r\n", callID, cseq, method, c.local)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	msg := []byte(b.String())
	defer func() {
		c.mu.Lock()
		delete(c.wait, key)
		c.mu.Unlock()
	}()
	for {
		_, err := c.conn.Write(msg)
		check(err)
		select {
		case r := <-ch:
			return r
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *caller) options() {
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("opt-%d", c.n)
	c.mu.Unlock()
	c.request("OPTIONS", "sip:annc@"+c.srv, id, "", 1, "")
}

var keyB64 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 30))

// invite places a call (SRTP offer) and ACKs it; it returns the dialog and
// the time from the INVITE to the 200.
func (c *caller) invite(ruri string, port int) (dlg, time.Duration) {
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("call-%d", c.n)
	c.mu.Unlock()
	offer := fmt.Sprintf("v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0\r\n"+
		"a=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\na=sendrecv\r\n", port, keyB64)
	t0 := time.Now()
	res := c.request("INVITE", ruri, id, "", 1, offer)
	took := time.Since(t0)
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		fmt.Fprintf(os.Stderr, "call refused: %s\n", strings.SplitN(res, "\r\n", 2)[0])
		os.Exit(1)
	}
	_, tag, _ := strings.Cut(header(res, "To"), ";tag=")
	d := dlg{callID: id, toTag: tag}
	ack := fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ack%s;rport\r\nFrom: <sip:bench@%s>;tag=f%s\r\nTo: <sip:annc@%s>;tag=%s\r\n"+
		"Call-ID: %s\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, c.local, id, c.local, id, c.srv, tag, id)
	_, err := c.conn.Write([]byte(ack))
	check(err)
	return d, took
}

func (c *caller) bye(d dlg) {
	c.request("BYE", "sip:annc@"+c.srv, d.callID, d.toTag, 2, "")
}

// receiver records every RTP packet's arrival per SSRC on one socket.
type receiver struct {
	conn *net.UDPConn
	mu   sync.Mutex
	per  map[uint32]*stream
}

type stream struct {
	n    int
	last time.Time
	gaps []time.Duration
}

func newReceiver() *receiver {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	check(err)
	_ = conn.SetReadBuffer(32 << 20)
	r := &receiver{conn: conn, per: map[uint32]*stream{}}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n < 12 || buf[1]&0x7f >= 72 && buf[1]&0x7f <= 76 {
				continue
			}
			ssrc := uint32(buf[8])<<24 | uint32(buf[9])<<16 | uint32(buf[10])<<8 | uint32(buf[11])
			r.mu.Lock()
			s := r.per[ssrc]
			if s == nil {
				s = &stream{}
				r.per[ssrc] = s
			} else {
				s.gaps = append(s.gaps, now.Sub(s.last))
			}
			s.n++
			s.last = now
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *receiver) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *receiver) reset() {
	r.mu.Lock()
	r.per = map[uint32]*stream{}
	r.mu.Unlock()
}

// stats: packets received and expected, p99 |gap - 20 ms|, gaps over 22 ms.
func (r *receiver) stats(secs int) (got, want int, p99 time.Duration, late int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var dev []time.Duration
	for _, s := range r.per {
		got += s.n
		want += secs * 50
		for _, g := range s.gaps {
			d := g - 20*time.Millisecond
			if d < 0 {
				d = -d
			}
			dev = append(dev, d)
			if g > 22*time.Millisecond {
				late++
			}
		}
	}
	return got, want, pct(dev, 99), late
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.!~*'()[]/:&+$", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func voiceMessage(wav []byte) []byte {
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYou have a message.\r\n" +
		"--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(wav); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(wav[i:min(i+57, len(wav))]))
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return []byte(b.String())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
