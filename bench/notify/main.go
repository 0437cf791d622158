// Command notify measures notification latency under a steady deposit load:
// deposit-to-webhook (signed HTTPS POST received by a local endpoint) and
// deposit-to-NOTIFY (SIP MWI, many subscribed phones simulated on one UDP
// socket). Latency is measured from the moment Deposit returns (the message
// is durable) to the arrival at the receiver.
//
//	go run ./bench/notify [-rate 100] [-seconds 10] [-phones 1000] [-dir DIR]
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"crypto/tls"

	"github.com/lemonvox/lemonvox/notify"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

const secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func main() {
	rate := flag.Float64("rate", 100, "deposits per second")
	secs := flag.Float64("seconds", 10, "duration of each load phase")
	hookAccounts := flag.Int("accounts", 100, "accounts for the webhook phase")
	phones := flag.Int("phones", 1000, "subscribed phones (accounts) for the MWI phase")
	dir := flag.String("dir", "", "store directory (default: a temporary directory)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "lemonvox-bench-notify-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	msg := voicemail()
	fmt.Printf("load: %.0f deposits/s for %.0f s per phase, message %d bytes, durable store in %s\n\n", *rate, *secs, len(msg), *dir)

	wh := benchWebhook(filepath.Join(*dir, "hook"), log, msg, *rate, *secs, *hookAccounts)
	report("deposit -> webhook", wh)
	mwi := benchMWI(filepath.Join(*dir, "mwi"), log, msg, *rate, *secs, *phones)
	report(fmt.Sprintf("deposit -> NOTIFY (%d phones)", *phones), mwi)
}

type result struct {
	lat      []time.Duration // per delivered message
	deposits int
	deposit  []time.Duration // Deposit call durations
	missing  int
}

func report(name string, r result) {
	fmt.Printf("%s\n", name)
	fmt.Printf("  deposits %d, delivered %d, missing %d\n", r.deposits, len(r.lat), r.missing)
	fmt.Printf("  deposit call (durable commit): p50 %v  p99 %v\n", pct(r.deposit, 50), pct(r.deposit, 99))
	fmt.Printf("  latency after commit:          p50 %v  p99 %v  max %v\n\n", pct(r.lat, 50), pct(r.lat, 99), pct(r.lat, 100))
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(10 * time.Microsecond)
}

func openStore(dir string, log *slog.Logger, accounts int, opts func(i int) vmstore.AccountOptions) *vmstore.Store {
	s, err := vmstore.Open(vmstore.Options{Dir: dir, Logger: log, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	check(err)
	for i := 0; i < accounts; i++ {
		var o vmstore.AccountOptions
		if opts != nil {
			o = opts(i)
		}
		_, err := s.CreateAccount(vmstore.AccountSpec{Name: "u" + strconv.Itoa(i), Password: "pw", Options: o})
		check(err)
	}
	return s
}

// load deposits at rate, round-robin over accounts, and records when each
// (account, uid) was committed.
func load(s *vmstore.Store, msg []byte, rate, secs float64, accounts int) (acked map[string]time.Time, depDur []time.Duration) {
	acked = map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := int(rate * secs)
	iv := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * iv)))
		user := "u" + strconv.Itoa(i%accounts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			res, err := s.Deposit(vmstore.DepositReq{User: user, Body: bytes.NewReader(msg), Service: "lmtp"})
			check(err)
			t1 := time.Now()
			mu.Lock()
			acked[user+"/"+strconv.Itoa(int(res.Message.UID))] = t1
			depDur = append(depDur, t1.Sub(t0))
			mu.Unlock()
		}()
	}
	wg.Wait()
	return acked, depDur
}

func benchWebhook(dir string, log *slog.Logger, msg []byte, rate, secs float64, accounts int) result {
	s := openStore(filepath.Join(dir, "db"), log, accounts, nil)
	defer s.Close()
	key, _ := notify.DecodeSecret(secret)
	var mu sync.Mutex
	recv := map[string]time.Time{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		if err := notify.Verify([][]byte{key}, r.Header, body, now, 0); err != nil {
			w.WriteHeader(400)
			return
		}
		var m struct {
			Data struct {
				User   string `json:"vnd.lemonvox.user"`
				UIDSet string `json:"uidset"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		k := m.Data.User + "/" + m.Data.UIDSet
		if _, dup := recv[k]; !dup {
			recv[k] = now
		}
		mu.Unlock()
		w.WriteHeader(204)
	}))
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	w := &notify.WebhookSink{ID: "bench", URL: srv.URL, Secrets: []string{secret}, Payload: notify.PayloadBuilder{ServerName: "vm.bench"},
		Events: []vmstore.EventType{vmstore.EventMessageNew}, TLSConfig: &tls.Config{RootCAs: pool}, AllowPrivate: true}
	check(w.Initialize())
	d := &notify.Dispatcher{Store: s, Sinks: []notify.Sink{w}, DeadLetterDir: filepath.Join(dir, "dl"), Logger: log}
	check(d.Initialize())
	defer d.Close()
	acked, depDur := load(s, msg, rate, secs, accounts)
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	r := result{deposits: len(acked), deposit: depDur}
	for k, t1 := range acked {
		t2, ok := recv[k]
		if !ok {
			r.missing++
			continue
		}
		r.lat = append(r.lat, max(0, t2.Sub(t1)))
	}
	return r
}

// phones simulates many SIP phones on one UDP socket: each subscribes to
// its account's message-summary and answers every NOTIFY with 200 OK.
type phones struct {
	conn       *net.UDPConn
	mu         sync.Mutex
	subscribed map[int]bool
	first      map[int]time.Time // account index -> first NOTIFY with Messages-Waiting: yes
	acked      int               // initial NOTIFYs seen
}

func (p *phones) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		now := time.Now()
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			if _, rest, ok := strings.Cut(msg, "Call-ID: bench-"); ok {
				idx, _ := strconv.Atoi(rest[:strings.IndexByte(rest, '@')])
				p.mu.Lock()
				p.subscribed[idx] = true
				p.mu.Unlock()
			}
			continue
		}
		if !strings.HasPrefix(msg, "NOTIFY ") {
			continue
		}
		head, body, _ := strings.Cut(msg, "\r\n\r\n")
		var resp strings.Builder
		resp.WriteString("SIP/2.0 200 OK\r\n")
		callID := ""
		for _, ln := range strings.Split(head, "\r\n")[1:] {
			name, val, _ := strings.Cut(ln, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "via", "v", "from", "f", "to", "t", "cseq":
				resp.WriteString(ln + "\r\n")
			case "call-id", "i":
				resp.WriteString(ln + "\r\n")
				callID = strings.TrimSpace(val)
			}
		}
		resp.WriteString("Content-Length: 0\r\n\r\n")
		_, _ = p.conn.WriteToUDP([]byte(resp.String()), from)
		idx, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(callID, "bench-"), "@127.0.0.1"))
		if err != nil {
			continue
		}
		p.mu.Lock()
		if strings.Contains(body, "Messages-Waiting: yes") {
			if _, ok := p.first[idx]; !ok {
				p.first[idx] = now
			}
		} else {
			p.acked++
		}
		p.mu.Unlock()
	}
}

func benchMWI(dir string, log *slog.Logger, msg []byte, rate, secs float64, n int) result {
	s := openStore(filepath.Join(dir, "db"), log, n, nil)
	defer s.Close()
	ep := &sipep.Endpoint{Listen: "127.0.0.1:0", Logger: log,
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	m := &notify.MWIServer{Store: s, Endpoint: ep, Logger: log}
	check(m.Initialize())
	check(ep.Start())
	defer ep.Close()
	d := &notify.Dispatcher{Store: s, Sinks: []notify.Sink{m}, DeadLetterDir: filepath.Join(dir, "dl"), Logger: log}
	check(d.Initialize())
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	check(err)
	_ = conn.SetReadBuffer(8 << 20)
	p := &phones{conn: conn, first: map[int]time.Time{}, subscribed: map[int]bool{}}
	go p.serve()
	srvAddr, err := net.ResolveUDPAddr("udp", m.Addr())
	check(err)
	lport := conn.LocalAddr().(*net.UDPAddr).Port
	// Phones retransmit their SUBSCRIBE until answered (RFC 3261 s17.1.2).
	deadline := time.Now().Add(60 * time.Second)
	for round := 0; ; round++ {
		sent := 0
		for i := 0; i < n; i++ {
			p.mu.Lock()
			done := p.subscribed[i]
			p.mu.Unlock()
			if done {
				continue
			}
			req := fmt.Sprintf("SUBSCRIBE sip:u%d@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-sub-%d-%d\r\n"+
				"From: <sip:u%d@127.0.0.1>;tag=ph%d\r\nTo: <sip:u%d@127.0.0.1>\r\nCall-ID: bench-%d@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\n"+
				"Contact: <sip:u%d@127.0.0.1:%d>\r\nMax-Forwards: 70\r\nEvent: message-summary\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
				i, m.Addr(), lport, i, round, i, i, i, i, i, lport)
			_, err := conn.WriteToUDP([]byte(req), srvAddr)
			check(err)
			sent++
			if sent%20 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		if sent == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for m.Subscriptions("") < n || func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.acked < n }() {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench/notify: only %d subscriptions\n", m.Subscriptions(""))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let NOTIFY retransmissions settle
	acked, depDur := load(s, msg, rate, secs, n)
	time.Sleep(2 * time.Second)
	p.mu.Lock()
	r := result{deposits: len(acked), deposit: depDur}
	for k, t1 := range acked {
		user, uid, _ := strings.Cut(k, "/")
		idx, _ := strconv.Atoi(strings.TrimPrefix(user, "u"))
		if uid != "1" {
			continue // later deposits to the same account do not change Messages-Waiting
		}
		t2, ok := p.first[idx]
		if !ok {
			r.missing++
			continue
		}
		r.lat = append(r.lat, max(0, t2.Sub(t1)))
	}
	p.mu.Unlock()
	d.Close()
	m.Close()
	conn.Close()
	return r
}

// voicemail is 10 s of 8 kHz G.711 in a VPIM message.
func voicemail() []byte {
	var b bytes.Buffer
	vm := vmstore.VoiceMessage{From: "+15557654321@example.net", MediaType: "audio/wav", Duration: 10 * time.Second,
		Media: bytes.NewReader(make([]byte, 80000))}
	_, _ = io.Copy(&b, vm.Compose())
	return b.Bytes()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/notify:", err)
		os.Exit(1)
	}
}
