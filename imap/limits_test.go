package imap

import (
	"bufio"
	"net"
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
	const base = 40 * time.Millisecond
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
