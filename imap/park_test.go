package imap

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestParkedSessions: sessions waiting for the client (between commands and
// in IDLE) are served again when input comes, pipelined input included,
// and are logged out when the idle timer runs out, parked or not.
func TestParkedSessions(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.IdleTimeout = 700 * time.Millisecond })
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	// IDLE, a deposit pushed while parked, DONE and a command in one write.
	rc.send("i1 IDLE")
	if l := rc.line(); l != "+ idling" {
		t.Fatal(l)
	}
	e.deposit("alice", "INBOX", testMessage("p1", "x"))
	if l := rc.line(); l != "* 1 EXISTS" {
		t.Fatalf("push while parked: %q", l)
	}
	rc.send("DONE\r\nn1 NOOP")
	if _, tagged := rc.until("i1"); tagged != "i1 OK IDLE terminated" {
		t.Fatal(tagged)
	}
	if _, tagged := rc.until("n1"); !strings.HasPrefix(tagged, "n1 OK") {
		t.Fatal(tagged)
	}
	// Not DONE: BAD with IDLE's tag, and the session goes on.
	rc.send("i2 IDLE")
	rc.line()
	rc.send("STOP")
	if _, tagged := rc.until("i2"); !strings.HasPrefix(tagged, "i2 BAD") {
		t.Fatal(tagged)
	}
	rc.ok("NOOP")
	// Waiting sessions are parked: the goroutine that served their last
	// command has ended, and one fresh goroutine each waits for the socket.
	var idle []*rawClient
	for i := 0; i < 20; i++ {
		c := e.raw()
		c.login("bob")
		c.ok("SELECT INBOX")
		idle = append(idle, c)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		parked := strings.Count(dump, "imap.(*conn).waitAndRun(")
		serving := strings.Count(dump, "imap.(*conn).step(")
		if parked == 21 && serving == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions parked, %d in step; want 21 and 0", parked, serving)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The idle timer: autologout, for a parked session as for the others.
	time.Sleep(900 * time.Millisecond)
	for _, c := range append(idle, rc) {
		c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if l := c.line(); l != "* BYE autologout; idle for too long" {
			t.Fatalf("after the idle timeout: %q", l)
		}
	}
}
