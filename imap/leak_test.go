package imap

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCloseEndsSessions: Close ends idle, notifying and compressed sessions
// and leaves no goroutine behind.
func TestCloseEndsSessions(t *testing.T) {
	e := newTestEnv(t)
	before := runtime.NumGoroutine()
	var rcs []*rawClient
	for i := 0; i < 3; i++ {
		rc := e.raw()
		rc.login("alice")
		rc.ok("SELECT INBOX")
		rcs = append(rcs, rc)
	}
	rcs[0].send("i IDLE")
	rcs[0].line()
	rcs[1].ok("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
	rcs[2].ok("COMPRESS DEFLATE")
	e.srv.Close()
	if l := rcs[0].line(); l != "* BYE server shutting down" {
		t.Fatalf("idle session: %q", l)
	}
	for _, rc := range rcs {
		rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := rc.r.ReadString('\n'); err != nil {
				if strings.Contains(err.Error(), "timeout") {
					t.Fatal("session not closed")
				}
				break
			}
		}
		rc.conn.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (before %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
