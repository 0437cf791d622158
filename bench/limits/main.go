// Command limits measures the daemon under its connection and subscription
// limits: memory with many idle IMAP connections (logged in), idle SIP TCP
// connections and MWI subscriptions, and the deposit-to-NOTIFY latency of
// a normal account, unloaded and while one address floods SUBSCRIBEs.
//
// It builds and starts lemonvoxd on a temporary data directory with
// loopback listeners. Client connections are spread over source addresses
// 127.0.1.1-127.0.1.N (per-source limits stay at their defaults and
// [limits] exempt_networks is emptied, so the limits are in force); the
// PBX that holds the MWI subscriptions is 127.0.0.1 (a trusted network),
// the flooding source 127.0.2.1 (untrusted, digest-authenticated).
//
//	go run ./bench/limits [-imap 10000] [-siptcp 10000] [-subs 50000] [-seconds 15] [-rate 20]
package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
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

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/vmstore"
)

var (
	nIMAP     = flag.Int("imap", 10000, "idle IMAP connections (logged in)")
	nSIPTCP   = flag.Int("siptcp", 10000, "idle SIP TCP connections")
	nSubs     = flag.Int("subs", 50000, "MWI subscriptions held by the PBX")
	nAccounts = flag.Int("accounts", 500, "accounts holding the connections and subscriptions")
	nSources  = flag.Int("sources", 64, "client source addresses 127.0.1.1..N for the connections")
	seconds   = flag.Float64("seconds", 30, "duration of each latency phase")
	// Below 5/s each deposit gets its own NOTIFY: the MWI notifier sends
	// one account at most one NOTIFY per 200 ms (notify.MWIServer.Coalesce),
	// which would otherwise dominate the latency.
	rate    = flag.Float64("rate", 4, "deposits per second to the normal account")
	phonesN = flag.Int("phones", 5, "subscribed phones of the normal account")
	floodW  = flag.Int("flood-workers", 32, "concurrent SUBSCRIBE streams of the flooding source")
)

const (
	subsPerAccount = 100
	maxSubs        = 60000
	realm          = "127.0.0.1"
	floodAccounts  = 10
	floodSecret    = "flood-secret"
	fdReserve      = 1000
	// UDP server transactions live 64*T1 = 32 s after their final
	// response (RFC 3261 s17.2.2); memory is measured after they end.
	settle = 35 * time.Second
)

func main() {
	flag.Parse()
	if *nSubs > *nAccounts*subsPerAccount {
		fail(fmt.Errorf("-subs %d needs at least %d accounts", *nSubs, (*nSubs+subsPerAccount-1)/subsPerAccount))
	}
	limit := raiseNOFILE(uint64(*nIMAP+*nSIPTCP) + 20000)
	// The daemon keeps fdReserve descriptors out of the listeners' budget;
	// this process holds the client side of every connection.
	if budget := int(limit) - fdReserve - 500; *nIMAP+*nSIPTCP > budget {
		ni, ns := *nIMAP*budget/(*nIMAP+*nSIPTCP), *nSIPTCP*budget/(*nIMAP+*nSIPTCP)
		fmt.Printf("scaled: %d descriptors per process allow %d connections, not %d: measuring %d IMAP + %d SIP TCP\n",
			limit, budget, *nIMAP+*nSIPTCP, ni, ns)
		*nIMAP, *nSIPTCP = ni, ns
	}
	dir, err := os.MkdirTemp("", "lemonvox-bench-limits-")
	fail(err)
	defer os.RemoveAll(dir)
	d := startDaemon(dir)
	defer d.stop()

	fmt.Printf("lemonvoxd pid %d; IMAP %s, SIP %s (UDP+TCP)\n", d.pid, d.imap, d.sip)
	fmt.Printf("config: per-source connection limits at their defaults (200), exempt_networks = [] and connections spread over %d source addresses;\n", *nSources)
	fmt.Printf("        imap/sip max_connections = connections + 2000, limits.fd_reserve = %d\n", fdReserve)
	fmt.Printf("        sip.trusted_networks = [127.0.0.1/32] (the PBX), max_subscriptions raised to %d, max_subscriptions_per_account to %d\n\n", maxSubs, subsPerAccount)

	t0 := time.Now()
	for i := 0; i < *nAccounts; i++ {
		p := "pw" + strconv.Itoa(i)
		_, err := d.cl.CreateAccount(admin.AccountRequest{Name: acct(i), Password: &p})
		fail(err)
	}
	for i := 0; i < floodAccounts; i++ {
		p := "x"
		name := "flood" + strconv.Itoa(i)
		ha1 := md5hex(name + ":" + realm + ":" + floodSecret)
		_, err := d.cl.CreateAccount(admin.AccountRequest{Name: name, Password: &p,
			Options: &vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": ha1}}})
		fail(err)
	}
	np := "normal"
	_, err = d.cl.CreateAccount(admin.AccountRequest{Name: "normal", Password: &np})
	fail(err)
	fmt.Printf("created %d accounts in %v\n", *nAccounts+floodAccounts+1, time.Since(t0).Round(time.Millisecond))

	phones := newUA("127.0.0.1")
	defer phones.conn.Close()
	for k := 0; k < *phonesN; k++ {
		phones.subscribe(d.sip, "normal", "phone-"+strconv.Itoa(k), "", 0)
	}
	if n := phones.waitSubscribed(*phonesN, 10*time.Second); n < *phonesN {
		fail(fmt.Errorf("only %d of %d phones subscribed", n, *phonesN))
	}
	phones.waitNotifies(*phonesN, 10*time.Second)

	type row struct {
		what     string
		rss, pss int64
		info     string
	}
	var rows []row
	measure := func(what string) row {
		time.Sleep(time.Second)
		info := d.quiesce()
		rss, pss := memKiB(d.pid)
		r := row{what, rss, pss, info}
		rows = append(rows, r)
		fmt.Printf("  memory %-32s RSS %7.1f MiB  PSS %7.1f MiB  (%s)\n", what, float64(rss)/1024, float64(pss)/1024, info)
		return r
	}

	fmt.Printf("\ndeposit -> NOTIFY: %.0f deposits/s through the admin API to account normal, %d phones subscribed from 127.0.0.1;\n", *rate, *phonesN)
	fmt.Printf("        timed from sending the deposit to the first NOTIFY at each phone with the new Voice-Message count\n")
	fmt.Println("\nphase 1: unloaded")
	base := measure("baseline")
	unloaded := depositLoop(d, phones, 0)
	unloaded.print("deposit -> NOTIFY, unloaded")

	fmt.Println("\nphase 2: idle connections and subscriptions")
	t0 = time.Now()
	imapConns, imapErr := openIMAP(d.imap, *nIMAP)
	fmt.Printf("  IMAP: %d logged-in connections in %v (%d failed: %s)\n", len(imapConns), time.Since(t0).Round(time.Millisecond), *nIMAP-len(imapConns), imapErr)
	afterIMAP := measure(fmt.Sprintf("+ %d IMAP", len(imapConns)))
	t0 = time.Now()
	sipConns, sipErr := openSIPTCP(d.sip, *nSIPTCP)
	fmt.Printf("  SIP TCP: %d connections (OPTIONS answered) in %v (%d failed: %s)\n", len(sipConns), time.Since(t0).Round(time.Millisecond), *nSIPTCP-len(sipConns), sipErr)
	afterSIP := measure(fmt.Sprintf("+ %d SIP TCP", len(sipConns)))
	t0 = time.Now()
	pbx := subscribeMany(d.sip, *nSubs)
	nsub := pbx.subscribedCount()
	fmt.Printf("  MWI: %d subscriptions from the PBX in %v (NOTIFYs answered, retransmissions included: %d); waiting %v for transactions to end\n",
		nsub, time.Since(t0).Round(time.Millisecond), pbx.notifyCount(), settle)
	if r := pbx.refusals(); len(r) > 0 {
		fmt.Printf("  MWI: PBX SUBSCRIBEs refused, by status code: %v\n", r)
	}
	time.Sleep(settle)
	afterSubs := measure(fmt.Sprintf("+ %d MWI subscriptions", nsub))

	fmt.Println("\nphase 3: flood of SUBSCRIBEs from 127.0.2.1 while depositing")
	fl := &flood{}
	stopFlood := make(chan struct{})
	var fwg sync.WaitGroup
	fl.run(d.sip, stopFlood, &fwg)
	time.Sleep(500 * time.Millisecond)
	loaded := depositLoop(d, phones, unloaded.deposits)
	close(stopFlood)
	fwg.Wait()
	fl.dur = time.Since(fl.start)
	loaded.print("deposit -> NOTIFY, loaded + flood")
	fmt.Printf("  flood: %d SUBSCRIBEs in %.1f s (%.0f/s): %d accepted (2xx), %d refused 503 (source/total limit), %d refused 403 (account limit), %d challenged 401, %d other, %d unanswered\n",
		fl.sent.Load(), fl.dur.Seconds(), float64(fl.sent.Load())/fl.dur.Seconds(), fl.ok.Load(), fl.r503.Load(), fl.r403.Load(), fl.r401.Load(), fl.other.Load(), fl.lost.Load())
	measure("just after the flood")
	if r := pbx.refusals(); len(r) > 0 {
		fmt.Printf("  MWI: PBX SUBSCRIBEs refused, by status code: %v\n", r)
	}
	time.Sleep(settle)
	measure(fmt.Sprintf("%v after the flood", settle))
	for _, c := range imapConns {
		c.Close()
	}
	for _, c := range sipConns {
		c.Close()
	}
	pbx.conn.Close()

	fmt.Println("\nsummary")
	fmt.Printf("  %-44s %12s %12s\n", "", "RSS MiB", "PSS MiB")
	for _, r := range rows {
		fmt.Printf("  %-44s %12.1f %12.1f\n", r.what, float64(r.rss)/1024, float64(r.pss)/1024)
	}
	per := func(what string, a, b row, n int) {
		if n > 0 {
			fmt.Printf("  %-44s %9.1f KiB RSS  %9.1f KiB PSS\n", what, float64(b.rss-a.rss)/float64(n), float64(b.pss-a.pss)/float64(n))
		}
	}
	per("per idle IMAP connection (logged in)", base, afterIMAP, len(imapConns))
	per("per idle SIP TCP connection", afterIMAP, afterSIP, len(sipConns))
	per("per MWI subscription", afterSIP, afterSubs, nsub)
	fmt.Printf("\n  %-44s %10s %10s %10s %8s\n", "deposit -> NOTIFY (normal account)", "p50", "p99", "max", "samples")
	fmt.Printf("  %-44s %10v %10v %10v %8d\n", "unloaded", unloaded.pct(50), unloaded.pct(99), unloaded.pct(100), len(unloaded.lat))
	fmt.Printf("  %-44s %10v %10v %10v %8d\n", "idle load + SUBSCRIBE flood", loaded.pct(50), loaded.pct(99), loaded.pct(100), len(loaded.lat))
	up, lp := latency{lat: unloaded.post}, latency{lat: loaded.post}
	fmt.Printf("  %-44s %10v %10v %10v\n", "  after the deposit's response, unloaded", up.pct(50), up.pct(99), up.pct(100))
	fmt.Printf("  %-44s %10v %10v %10v\n", "  after the deposit's response, loaded", lp.pct(50), lp.pct(99), lp.pct(100))
	if u := unloaded.pct(99); u > 0 {
		fmt.Printf("  loaded p99 / unloaded p99 = %.2f\n", float64(loaded.pct(99))/float64(u))
	}
	if unloaded.missing+loaded.missing > 0 {
		fmt.Printf("  missing NOTIFYs: unloaded %d, loaded %d\n", unloaded.missing, loaded.missing)
	}
}

func acct(i int) string { return "u" + strconv.Itoa(i) }

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/limits:", err)
		os.Exit(1)
	}
}

// raiseNOFILE raises the descriptor limit of this process (and so of the
// daemon it starts) to want, as far as it is allowed to.
func raiseNOFILE(want uint64) uint64 {
	var l syscall.Rlimit
	fail(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l))
	if l.Max < want {
		nl := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err == nil {
			l = nl
		}
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	fmt.Printf("RLIMIT_NOFILE %d (inherited by the daemon)\n", l.Cur)
	if l.Cur < want {
		fmt.Printf("warning: %d descriptors wanted, the hard limit cannot be raised here (needs CAP_SYS_RESOURCE)\n", want)
	}
	return l.Cur
}

// daemon is a running lemonvoxd.
type daemon struct {
	pid            int
	imap, sip      string
	cl             *admin.Client
	stop           func()
	cmd            *exec.Cmd
	out            *bytes.Buffer
	quiesceCounter int
}

func freePort(network string) string {
	if network == "udp+tcp" {
		for i := 0; i < 50; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			fail(err)
			addr := l.Addr().String()
			u, err := net.ListenPacket("udp", addr)
			l.Close()
			if err == nil {
				u.Close()
				return addr
			}
		}
		fail(fmt.Errorf("no free port for UDP and TCP"))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	fail(err)
	defer l.Close()
	return l.Addr().String()
}

func startDaemon(dir string) *daemon {
	bin := filepath.Join(dir, "lemonvoxd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lemonvoxd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fail(fmt.Errorf("build lemonvoxd: %v\n%s", err, out))
	}
	d := &daemon{imap: freePort("tcp"), sip: freePort("udp+tcp")}
	conf := fmt.Sprintf(`[log]
level = "error"
[imap]
listen = %q
listen_tls = ""
max_connections = %d
[lmtp]
listen = ""
[submission]
listen = ""
[rtsp]
listen = ""
[sip]
listen = %q
domain = %q
trusted_networks = ["127.0.0.1/32"]
max_connections = %d
max_subscriptions = %d
max_subscriptions_per_account = %d
[limits]
exempt_networks = []
fd_reserve = %d
[admin]
listen = "127.0.0.1:0"
[demo]
enabled = false
`, d.imap, *nIMAP+2000, d.sip, realm, *nSIPTCP+2000, maxSubs, subsPerAccount, fdReserve)
	cfg := filepath.Join(dir, "lemonvox.toml")
	fail(os.WriteFile(cfg, []byte(conf), 0o644))
	data := filepath.Join(dir, "data")
	d.cmd = exec.Command(bin, "-config", cfg, "-data", data)
	d.out = &bytes.Buffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	fail(d.cmd.Start())
	d.pid = d.cmd.Process.Pid
	d.stop = func() {
		_ = d.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
	}
	var ri *admin.RunInfo
	for i := 0; i < 400 && ri == nil; i++ {
		if r, err := admin.ReadRunInfo(data); err == nil {
			ri = r
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if ri == nil {
		d.stop()
		fail(fmt.Errorf("lemonvoxd did not start:\n%s", d.out.String()))
	}
	cl, err := admin.NewClient(ri)
	fail(err)
	d.cl = cl
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", d.imap, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			d.stop()
			fail(fmt.Errorf("lemonvoxd IMAP: %v\n%s", err, d.out.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// quiesce has the daemon return free memory to the system before a
// measurement, so that garbage of earlier work is not counted.
func (d *daemon) quiesce() string {
	m, err := d.cl.FreeMemory()
	if err != nil {
		return "free-memory: " + err.Error()
	}
	return fmt.Sprintf("heap in use %.1f MiB, stacks %.1f MiB, %d goroutines",
		float64(m["heapInuseBytes"])/(1<<20), float64(m["stackInuseBytes"])/(1<<20), m["goroutines"])
}

// memKiB reads Rss and Pss of a process from smaps_rollup.
func memKiB(pid int) (rss, pss int64) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	fail(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}

// source returns the i-th client source address 127.0.1.x.
func source(i int) *net.TCPAddr {
	n := i%*nSources + 1
	return &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+n/250), byte(1+n%250))}
}

// openParallel opens n connections with a few workers; open returns a
// connection ready to stay idle.
func openParallel(n int, open func(i int) (net.Conn, error)) ([]net.Conn, string) {
	var mu sync.Mutex
	var conns []net.Conn
	var firstErr string
	var next atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Minute)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := open(i)
				mu.Lock()
				if err != nil {
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr == "" {
		firstErr = "none"
	}
	return conns, firstErr
}

func dialFrom(i int, addr string) (net.Conn, error) {
	dl := net.Dialer{LocalAddr: source(i), Timeout: 10 * time.Second}
	return dl.Dial("tcp", addr)
}

// openIMAP opens n IMAP connections, each logged in (accounts round-robin)
// and then left idle.
func openIMAP(addr string, n int) ([]net.Conn, string) {
	return openParallel(n, func(i int) (net.Conn, error) {
		c, err := dialFrom(i, addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
			c.Close()
			return nil, fmt.Errorf("greeting %q: %v", l, err)
		}
		a := i % *nAccounts
		fmt.Fprintf(c, "a LOGIN %s pw%d\r\n", acct(a), a)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				c.Close()
				return nil, err
			}
			if strings.HasPrefix(l, "a ") {
				if !strings.HasPrefix(l, "a OK") {
					c.Close()
					return nil, fmt.Errorf("LOGIN: %s", strings.TrimSpace(l))
				}
				break
			}
		}
		_ = c.SetDeadline(time.Time{})
		return c, nil
	})
}

// openSIPTCP opens n SIP TCP connections, each sending OPTIONS (its first
// message must come within first_message_timeout) and then left idle.
func openSIPTCP(addr string, n int) ([]net.Conn, string) {
	return openParallel(n, func(i int) (net.Conn, error) {
		c, err := dialFrom(i, addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		la := c.LocalAddr().String()
		fmt.Fprintf(c, "OPTIONS sip:%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-opt-%d\r\n"+
			"From: <sip:idle%d@127.0.0.1>;tag=i%d\r\nTo: <sip:%s>\r\nCall-ID: idle-%d@bench\r\nCSeq: 1 OPTIONS\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", addr, la, i, i, i, addr, i)
		r := bufio.NewReader(c)
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "SIP/2.0 200") {
			c.Close()
			return nil, fmt.Errorf("OPTIONS answered %q: %v", strings.TrimSpace(l), err)
		}
		// Drain the rest of the response head.
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		_ = c.SetDeadline(time.Time{})
		return c, nil
	})
}

// ua is a SIP user agent on one UDP socket: it subscribes, answers every
// NOTIFY with 200 OK and records what it got.
type ua struct {
	conn *net.UDPConn
	mu   sync.Mutex
	ok   map[string]bool        // Call-ID -> SUBSCRIBE answered 2xx
	code map[string]int         // Call-ID -> last final response code
	news map[string][]newsEvent // Call-ID -> Voice-Message new counts seen
	nots int                    // NOTIFYs received
	sent atomic.Int64
}

type newsEvent struct {
	n  int
	at time.Time
}

func newUA(ip string) *ua {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	fail(err)
	_ = c.SetReadBuffer(16 << 20)
	u := &ua{conn: c, ok: map[string]bool{}, code: map[string]int{}, news: map[string][]newsEvent{}}
	go u.serve()
	return u
}

func header(head, name string) string {
	for _, ln := range strings.Split(head, "\r\n")[1:] {
		k, v, _ := strings.Cut(ln, ":")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// notifyOK is the 200 OK to a NOTIFY (its Via, From, To, Call-ID, CSeq).
func notifyOK(head string) []byte {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, ln := range strings.Split(head, "\r\n")[1:] {
		k, _, _ := strings.Cut(ln, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "v", "from", "f", "to", "t", "cseq", "call-id", "i":
			b.WriteString(ln + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

func (u *ua) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		now := time.Now()
		msg := string(buf[:n])
		head, body, _ := strings.Cut(msg, "\r\n\r\n")
		callID := header(head, "Call-ID")
		if strings.HasPrefix(msg, "SIP/2.0 ") {
			code, _ := strconv.Atoi(msg[8:11])
			if code >= 200 {
				u.mu.Lock()
				u.code[callID] = code
				if code < 300 {
					u.ok[callID] = true
				}
				u.mu.Unlock()
			}
			continue
		}
		if !strings.HasPrefix(msg, "NOTIFY ") {
			continue
		}
		_, _ = u.conn.WriteToUDP(notifyOK(head), from)
		nw := -1
		if _, rest, ok := strings.Cut(body, "Voice-Message:"); ok {
			rest = strings.TrimSpace(rest)
			if i := strings.IndexByte(rest, '/'); i > 0 {
				nw, _ = strconv.Atoi(rest[:i])
			}
		}
		u.mu.Lock()
		u.nots++
		if nw >= 0 && u.news != nil {
			u.news[callID] = append(u.news[callID], newsEvent{nw, now})
		}
		u.mu.Unlock()
	}
}

// subscribe sends one SUBSCRIBE (a retransmission when round > 0).
func (u *ua) subscribe(srv, user, callID, auth string, round int) {
	la := u.conn.LocalAddr().String()
	req := fmt.Sprintf("SUBSCRIBE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=t-%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 SUBSCRIBE\r\n"+
		"Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\nEvent: message-summary\r\nAccept: application/simple-message-summary\r\n"+
		"Expires: 3600\r\n%sContent-Length: 0\r\n\r\n",
		user, srv, la, callID, round, user, callID, user, srv, callID, user, la, auth)
	ra, err := net.ResolveUDPAddr("udp", srv)
	fail(err)
	_, err = u.conn.WriteToUDP([]byte(req), ra)
	fail(err)
	u.sent.Add(1)
}

// refusals counts final responses other than 2xx by code.
func (u *ua) refusals() map[int]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := map[int]int{}
	for _, c := range u.code {
		if c >= 300 {
			r[c]++
		}
	}
	return r
}

func (u *ua) subscribedCount() int { u.mu.Lock(); defer u.mu.Unlock(); return len(u.ok) }
func (u *ua) notifyCount() int     { u.mu.Lock(); defer u.mu.Unlock(); return u.nots }

func (u *ua) waitSubscribed(n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for u.subscribedCount() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return u.subscribedCount()
}

func (u *ua) waitNotifies(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for u.notifyCount() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// subscribeMany has the PBX (127.0.0.1, trusted) hold n subscriptions,
// subsPerAccount per account; SUBSCRIBEs are paced and retransmitted
// until answered (RFC 3261 s17.1.2), for at most two minutes.
func subscribeMany(srv string, n int) *ua {
	u := newUA("127.0.0.1")
	u.mu.Lock()
	u.news = nil // the PBX does not track counts
	u.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for round := 0; time.Now().Before(deadline); round++ {
		sent := 0
		for i := 0; i < n && time.Now().Before(deadline); i++ {
			id := "pbx-" + strconv.Itoa(i)
			u.mu.Lock()
			_, done := u.code[id]
			u.mu.Unlock()
			if done {
				continue
			}
			u.subscribe(srv, acct(i/subsPerAccount), id, "", round)
			sent++
			if sent%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if sent == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	// Let the initial NOTIFYs be answered.
	u.waitNotifies(u.subscribedCount(), 30*time.Second)
	return u
}

// latency is the result of a deposit phase.
type latency struct {
	lat      []time.Duration // per phone and deposit: deposit request sent -> NOTIFY with the new count
	post     []time.Duration // the same from the deposit's response (0 when the NOTIFY came first)
	deposits int
	dep      []time.Duration // deposit call durations
	missing  int
}

func (l latency) pct(p float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	s := slices.Clone(l.lat)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p/100)].Round(10 * time.Microsecond)
}

func (l latency) print(name string) {
	s := latency{lat: l.dep}
	a := latency{lat: l.post}
	fmt.Printf("  %s: %d deposits, %d NOTIFYs timed, %d missing; p50 %v p99 %v max %v (deposit call p50 %v p99 %v; after the deposit's response p50 %v p99 %v)\n",
		name, l.deposits, len(l.lat), l.missing, l.pct(50), l.pct(99), l.pct(100), s.pct(50), s.pct(99), a.pct(50), a.pct(99))
}

// depositLoop deposits to the normal account at -rate for -seconds, one
// at a time (a tick is skipped when the previous deposit is still
// running), and times, for each phone, the first NOTIFY whose new-message
// count reaches the deposit's. prior is the number of messages already
// in the mailbox.
func depositLoop(d *daemon, phones *ua, prior int) latency {
	msg := voicemail()
	iv := time.Duration(float64(time.Second) / *rate)
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	type dep struct {
		count    int
		at, done time.Time
	}
	var deps []dep
	var res latency
	next := time.Now()
	for time.Now().Before(end) {
		time.Sleep(time.Until(next))
		t0 := time.Now()
		_, err := d.cl.Deposit(bytes.NewReader(msg), admin.DepositOptions{User: "normal", AsMessage: true, Size: int64(len(msg))})
		fail(err)
		t1 := time.Now()
		res.dep = append(res.dep, t1.Sub(t0))
		deps = append(deps, dep{prior + len(deps) + 1, t0, t1})
		for next = next.Add(iv); next.Before(time.Now()); next = next.Add(iv) {
		}
	}
	res.deposits = len(deps)
	// Wait for the last count at every phone, up to 5 s.
	last := prior + len(deps)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		phones.mu.Lock()
		for k := 0; k < *phonesN; k++ {
			ev := phones.news["phone-"+strconv.Itoa(k)]
			if len(ev) == 0 || ev[len(ev)-1].n < last {
				all = false
			}
		}
		phones.mu.Unlock()
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	phones.mu.Lock()
	defer phones.mu.Unlock()
	for k := 0; k < *phonesN; k++ {
		ev := phones.news["phone-"+strconv.Itoa(k)]
		for _, dp := range deps {
			i := slices.IndexFunc(ev, func(e newsEvent) bool { return e.n >= dp.count })
			if i < 0 {
				res.missing++
				continue
			}
			res.lat = append(res.lat, ev[i].at.Sub(dp.at))
			res.post = append(res.post, max(0, ev[i].at.Sub(dp.done)))
		}
	}
	return res
}

// voicemail is 1 s of 8 kHz G.711 in a VPIM message.
func voicemail() []byte {
	var b bytes.Buffer
	vm := vmstore.VoiceMessage{From: "+15557654321@example.net", MediaType: "audio/wav", Duration: time.Second,
		Media: bytes.NewReader(make([]byte, 8000))}
	_, _ = io.Copy(&b, vm.Compose())
	return b.Bytes()
}

// flood is one untrusted source (127.0.2.1) sending digest-authenticated
// SUBSCRIBEs, each a new dialog, as fast as its workers get answers.
type flood struct {
	sent, ok, r503, r403, r401, other, lost atomic.Int64
	start                                   time.Time
	dur                                     time.Duration
}

func (f *flood) run(srv string, stop chan struct{}, wg *sync.WaitGroup) {
	f.start = time.Now()
	for w := 0; w < *floodW; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.worker(srv, w, stop)
		}()
	}
}

func (f *flood) worker(srv string, w int, stop chan struct{}) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 2, 1)})
	fail(err)
	defer c.Close()
	ra, err := net.ResolveUDPAddr("udp", srv)
	fail(err)
	user := "flood" + strconv.Itoa(w%floodAccounts)
	ruri := "sip:" + user + "@" + srv
	ha1 := md5hex(user + ":" + realm + ":" + floodSecret)
	la := c.LocalAddr().String()
	nonce, nc := "", 0
	buf := make([]byte, 65536)
	hardEnd := time.Now().Add(time.Duration(*seconds*float64(time.Second)) + 30*time.Second)
	for seq := 0; time.Now().Before(hardEnd); seq++ {
		select {
		case <-stop:
			return
		default:
		}
		callID := fmt.Sprintf("flood-%d-%d", w, seq)
		auth := ""
		if nonce != "" {
			nc++
			cnonce := fmt.Sprintf("c%d%d", w, seq)
			resp := md5hex(fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, nonce, nc, cnonce, md5hex("SUBSCRIBE:"+ruri)))
			auth = fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=%08x, cnonce=\"%s\"\r\n",
				user, realm, nonce, ruri, resp, nc, cnonce)
		}
		req := fmt.Sprintf("SUBSCRIBE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\n"+
			"From: <sip:%s@127.0.0.1>;tag=t-%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 SUBSCRIBE\r\n"+
			"Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\nEvent: message-summary\r\nExpires: 3600\r\n%sContent-Length: 0\r\n\r\n",
			ruri, la, callID, user, callID, user, srv, callID, user, la, auth)
		if _, err := c.WriteToUDP([]byte(req), ra); err != nil {
			f.lost.Add(1)
			continue
		}
		f.sent.Add(1)
		// Wait for the final response to this SUBSCRIBE, answering NOTIFYs
		// of earlier accepted dialogs meanwhile.
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				f.lost.Add(1)
				break
			}
			msg := string(buf[:n])
			head, _, _ := strings.Cut(msg, "\r\n\r\n")
			if strings.HasPrefix(msg, "NOTIFY ") {
				_, _ = c.WriteToUDP(notifyOK(head), from)
				continue
			}
			if !strings.HasPrefix(msg, "SIP/2.0 ") || header(head, "Call-ID") != callID {
				continue
			}
			code, _ := strconv.Atoi(msg[8:11])
			if code < 200 {
				continue
			}
			switch {
			case code < 300:
				f.ok.Add(1)
			case code == 503:
				f.r503.Add(1)
			case code == 403:
				f.r403.Add(1)
			case code == 401:
				f.r401.Add(1)
				if v := header(head, "WWW-Authenticate"); v != "" {
					if _, rest, ok := strings.Cut(v, `nonce="`); ok {
						nonce, _, _ = strings.Cut(rest, `"`)
						nc = 0
					}
				}
			default:
				f.other.Add(1)
			}
			break
		}
	}
}
