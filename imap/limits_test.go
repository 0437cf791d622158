package imap

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
)

// rawFrom connects from a given loopback address (127.0.0.0/8 is all ours
// on Linux), so that tests can play several sources.
func (e *testEnv) rawFrom(local string) *rawClient {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	nc, err := d.Dial("tcp", e.srv.PlainAddr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	rc := &rawClient{t: e.t, conn: nc, r: bufio.NewReader(nc)}
	rc.line() // greeting
	return rc
}

// Wrong passwords for an account from one address neither lock the
// subscriber out from another address nor lock the guessing address out
// for good: its failures are answered later and later, boundedly.
func TestLoginNotLockedOutByGuessing(t *testing.T) {
	const base = 100 * time.Millisecond
	e := newTestEnv(t, func(s *Server) {
		s.AuthLimiter = authlimit.New(authlimit.Config{FreeFailures: 2, BaseDelay: base, MaxDelay: 4 * base})
	})
	attacker := e.rawFrom("127.0.0.2")
	var slowest time.Duration
	for i := 0; i < 8; i++ {
		start := time.Now()
		_, tagged := attacker.cmd("LOGIN alice wrong%d", i)
		if !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("attempt %d: %s", i, tagged)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest < 4*base {
		t.Fatalf("failures from the guessing address were not slowed down: slowest %v", slowest)
	}
	// The subscriber, from its own address, gets in at once.
	start := time.Now()
	phone := e.rawFrom("127.0.0.3")
	_, tagged := phone.cmd("LOGIN alice %s", testPass)
	if !strings.Contains(tagged, "OK [CAPABILITY") {
		t.Fatalf("subscriber locked out: %s", tagged)
	}
	if d := time.Since(start); d > 2*base {
		t.Fatalf("subscriber delayed %v by guessing elsewhere", d)
	}
	// The guessing address itself is delayed, not locked out.
	_, tagged = attacker.cmd("LOGIN alice %s", testPass)
	if !strings.Contains(tagged, "OK [CAPABILITY") {
		t.Fatalf("correct password from the slowed address: %s", tagged)
	}
}

// The pre-authentication deadline counts from connect: NOOPs do not keep an
// unauthenticated session alive.
func TestPreAuthDeadlineIsAbsolute(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.PreAuthTimeout = 400 * time.Millisecond })
	rc := e.raw()
	start := time.Now()
	bye := make(chan string, 1)
	go func() {
		for {
			l, err := rc.r.ReadString('\n')
			if err != nil {
				close(bye)
				return
			}
			if strings.HasPrefix(l, "* BYE") {
				bye <- strings.TrimSpace(l)
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(3 * time.Second)
	for n := 0; ; n++ {
		select {
		case l, ok := <-bye:
			if !ok {
				t.Fatal("connection closed without BYE")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("BYE after %v", d)
			}
			t.Logf("%q after %v", l, time.Since(start))
			if !strings.Contains(l, "autologout") {
				t.Fatalf("BYE: %q", l)
			}
			return
		case <-tick.C:
			rc.conn.Write([]byte("n" + strings.Repeat("x", n%3) + " NOOP\r\n"))
		case <-giveUp:
			t.Fatal("unauthenticated session kept alive by NOOPs")
		}
	}
}

// Connections beyond the per-source limit get BYE [UNAVAILABLE] as their
// greeting; other sources and exempt ones still get in.
func TestConnectionLimitPerSource(t *testing.T) {
	e := newTestEnv(t, func(s *Server) {
		s.MaxConnsPerSource = 2
		s.LimitExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
	})
	greet := func(local string) string {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		nc, err := d.Dial("tcp", e.srv.PlainAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, _ := bufio.NewReader(nc).ReadString('\n')
		return l
	}
	for i := 0; i < 2; i++ {
		if g := greet("127.0.0.4"); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("connection %d: %q", i, g)
		}
	}
	if g := greet("127.0.0.4"); !strings.HasPrefix(g, "* BYE [UNAVAILABLE]") {
		t.Fatalf("beyond the limit: %q", g)
	}
	if g := greet("127.0.0.5"); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("another source: %q", g)
	}
	for i := 0; i < 3; i++ {
		if g := greet("127.0.0.9"); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("exempt source: %q", g)
		}
	}
}
