package sipep

import (
	"crypto/tls"
	"fmt"
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
)

// TCP connections beyond the per-source limit get 503 with Retry-After;
// connections that say nothing (or never finish TLS) are closed at the
// first-message deadline.
func TestSIPConnectionLimitsAndDeadlines(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	m, svc := startEP(t, false, func(e *Endpoint) {
		e.MaxConnsPerSource = 1
		e.FirstMessageTimeout = 300 * time.Millisecond
		e.ListenTLS = "127.0.0.1:0"
		e.TLSConfig = &tls.Config{Certificates: hs.TLS.Certificates}
	})
	svc.setUser("max", "pw")
	c1 := siptest.Dial(t, "tcp", m.Addr())
	c1.Send(c1.Build(siptest.Req{User: "max", Expires: 60}, m.Addr()))
	if st := c1.Response(5 * time.Second).Status(); st != 401 {
		t.Fatalf("first connection: %d", st)
	}
	c2 := siptest.Dial(t, "tcp", m.Addr())
	c2.Send(c2.Build(siptest.Req{User: "max", Expires: 60}, m.Addr()))
	res := c2.Response(5 * time.Second)
	if res.Status() != 503 || res.Get("Retry-After") == "" {
		t.Fatalf("second connection from one source: %q Retry-After %q", res.Start, res.Get("Retry-After"))
	}
	// Silent TCP and stalled TLS connections are closed by the server.
	for _, addr := range []string{m.Addr(), m.TLSAddr()} {
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
		if d := time.Since(start); d > 4*time.Second {
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
	reg := &netlimit.Registry{}
	m, _ := startEP(t, true, func(e *Endpoint) { e.Listeners = reg })
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
	c := siptest.Dial(t, "tcp", m.Addr())
	c.Send(c.Build(siptest.Req{User: "ned", Expires: 60}, m.Addr()))
	if st := c.Response(5 * time.Second).Status(); st != 200 {
		t.Fatalf("SUBSCRIBE after EMFILE: %d", st)
	}
	fmt.Println("accepting after EMFILE:", strconv.Itoa(len(hogs)), "connections had been opened")
}
