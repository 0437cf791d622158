package notify

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Subscriptions are bounded per account (403), per untrusted source (503
// with Retry-After) and in all; Expires is capped.
func TestMWISubscriptionLimits(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "kim", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("kim", "vm.test", "pw")}})
	mustAccount(t, s, "lou", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("lou", "vm.test", "pw")}})
	m, _ := startMWI(t, s, false, func(m *MWIServer) {
		m.NotifyTimeout = 300 * time.Millisecond
		m.MaxSubsPerAccount = 2
		m.MaxSubsPerSource = 3
		m.MaxExpires = time.Hour
	})
	c := dialSIP(t, "udp", m.Addr())
	nonces := map[string]string{}
	nc := 0
	sub := func(user string, expires int) *sipMsg {
		t.Helper()
		if nonces[user] == "" {
			nonces[user] = c.challengeNonce(subReq{user: user, expires: expires}, m.Addr())
		}
		nc++
		auth := digestHeader(user, "vm.test", "pw", "SUBSCRIBE", "sip:"+user+"@"+m.Addr(), nonces[user], "auth", nc)
		c.send(c.build(subReq{user: user, expires: expires, auth: auth}, m.Addr()))
		return c.response(5 * time.Second)
	}
	res := sub("kim", 100000)
	if res.status() != 200 || res.get("Expires") != "3600" {
		t.Fatalf("first: %q Expires %q", res.start, res.get("Expires"))
	}
	if st := sub("kim", 600).status(); st != 200 {
		t.Fatalf("second: %d", st)
	}
	if st := sub("kim", 600).status(); st != 403 {
		t.Fatalf("third for one account: %d, want 403", st)
	}
	if st := sub("lou", 600).status(); st != 200 {
		t.Fatalf("other account: %d", st)
	}
	res = sub("lou", 600)
	if res.status() != 503 || res.get("Retry-After") == "" {
		t.Fatalf("fourth from one source: %q Retry-After %q", res.start, res.get("Retry-After"))
	}
	if n := m.Subscriptions(""); n != 3 {
		t.Fatalf("%d subscriptions", n)
	}
	// Another source still subscribes.
	c2 := dialSIPFrom(t, "udp", "127.0.0.2", m.Addr())
	n2 := c2.challengeNonce(subReq{user: "lou", expires: 60}, m.Addr())
	c2.send(c2.build(subReq{user: "lou", expires: 60, auth: digestHeader("lou", "vm.test", "pw", "SUBSCRIBE", "sip:lou@"+m.Addr(), n2, "auth", 1)}, m.Addr()))
	if st := c2.response(5 * time.Second).status(); st != 200 {
		t.Fatalf("second source: %d", st)
	}
}

// TCP connections beyond the per-source limit get 503 with Retry-After;
// connections that say nothing (or never finish TLS) are closed at the
// first-message deadline.
func TestSIPConnectionLimitsAndDeadlines(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	s := openStore(t, "")
	mustAccount(t, s, "max", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, false, func(m *MWIServer) {
		m.MaxConnsPerSource = 1
		m.FirstMessageTimeout = 300 * time.Millisecond
		m.ListenTLS = "127.0.0.1:0"
		m.TLSConfig = &tls.Config{Certificates: hs.TLS.Certificates}
	})
	c1 := dialSIP(t, "tcp", m.Addr())
	c1.send(c1.build(subReq{user: "max", expires: 60}, m.Addr()))
	if st := c1.response(5 * time.Second).status(); st != 401 {
		t.Fatalf("first connection: %d", st)
	}
	c2 := dialSIP(t, "tcp", m.Addr())
	c2.send(c2.build(subReq{user: "max", expires: 60}, m.Addr()))
	res := c2.response(5 * time.Second)
	if res.status() != 503 || res.get("Retry-After") == "" {
		t.Fatalf("second connection from one source: %q Retry-After %q", res.start, res.get("Retry-After"))
	}
	// Silent TCP and stalled TLS connections are closed by the server.
	for _, addr := range []string{m.Addr(), m.tlsLn.Addr().String()} {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if addr == m.Addr() {
			// From another source: the limit above is per source.
			nc.Close()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
			if nc, err = d.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
		}
		start := time.Now()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, nc)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: silent connection still open after 5 s", addr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: closed after %v", addr, d)
		}
	}
}

// After the process ran out of descriptors, the SIP TCP listener accepts
// again once descriptors are free (it used to stop for good). Runs in a
// child process whose descriptor limit is lowered.
func TestSIPListenerSurvivesEMFILE(t *testing.T) {
	if os.Getenv("LEMONVOX_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSIPListenerSurvivesEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "LEMONVOX_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func emfileChild(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "ned", vmstore.AccountOptions{})
	reg := &netlimit.Registry{}
	m, _ := startMWI(t, s, true, func(m *MWIServer) { m.Listeners = reg })
	// Lower the limit to what is open now plus a few.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	low := lim
	low.Cur = uint64(len(ents) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	// Exhaust descriptors with connections to the listener (each takes two:
	// ours and the accepted one, until accept fails with EMFILE).
	var hogs []net.Conn
	for i := 0; i < 64; i++ {
		c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond)
		if err != nil {
			break
		}
		hogs = append(hogs, c)
	}
	waitFor(t, 5*time.Second, "the listener to report EMFILE", func() bool {
		for _, st := range reg.NotAccepting() {
			if st.Name == "sip-tcp" {
				return true
			}
		}
		return false
	})
	for _, c := range hogs {
		c.Close()
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	c := dialSIP(t, "tcp", m.Addr())
	c.send(c.build(subReq{user: "ned", expires: 60}, m.Addr()))
	if st := c.response(5 * time.Second).status(); st != 200 {
		t.Fatalf("SUBSCRIBE after EMFILE: %d", st)
	}
	fmt.Println("accepting after EMFILE:", strconv.Itoa(len(hogs)), "connections had been opened")
}

// One account whose subscribers do not answer (every NOTIFY runs to its
// timeout) does not hold up another account's NOTIFY: fan-out is bounded
// per account, not shared.
func TestMWIFanOutDoesNotDelayOthers(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "busy", vmstore.AccountOptions{})
	mustAccount(t, s, "calm", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, func(m *MWIServer) {
		m.NotifyTimeout = time.Second
		m.FanOut = 2
		m.MaxSubsPerAccount = 20
	})
	hole, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	c := dialSIP(t, "udp", m.Addr())
	for i := 0; i < 20; i++ {
		c.send(c.build(subReq{user: "busy", expires: 600, contact: "<sip:busy@" + hole.LocalAddr().String() + ">"}, m.Addr()))
		if st := c.response(5 * time.Second).status(); st != 200 {
			t.Fatalf("busy subscription %d: %d", i, st)
		}
	}
	calm := dialSIP(t, "udp", m.Addr())
	calm.send(calm.build(subReq{user: "calm", expires: 600}, m.Addr()))
	first := true
	for first {
		msg := calm.read(5 * time.Second)
		if msg.status() == 0 {
			calm.answer(msg, 200) // the initial NOTIFY
			first = false
		}
	}
	deposit(t, s, "busy")
	start := time.Now()
	deposit(t, s, "calm")
	for {
		msg := calm.read(5 * time.Second)
		if strings.HasPrefix(msg.start, "NOTIFY ") {
			calm.answer(msg, 200)
			if strings.Contains(msg.body, "Voice-Message: 1/0") {
				break
			}
		}
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Fatalf("calm account's NOTIFY took %v while another account's fan-out was stuck", d)
	}
}
