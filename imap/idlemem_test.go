package imap

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIdleMemory opens many connections that select INBOX and IDLE, and
// reports the Go heap and stacks the server spends per connection. It
// checks a loose bound; the figure is logged.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	n := 500
	if os.Getenv("IMAP_IDLE_CONNS") != "" {
		n = 5000
	}
	e := newTestEnv(t)
	measure := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Client side memory is in this process too: keep it minimal and
	// measure it apart with the same number of idle client sockets.
	before := measure()
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", e.srv.PlainAddr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		r := bufio.NewReaderSize(nc, 256)
		nc.Write([]byte("a LOGIN alice " + testPass + "\r\nb SELECT INBOX\r\nc IDLE\r\n"))
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(l, "+ ") {
				break
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	after := measure()
	per := float64(after-before) / float64(n)
	t.Logf("%d idle connections: %.1f KiB of heap+stack per connection (server and client sides)", n, per/1024)
	start := time.Now()
	e.deposit("alice", "INBOX", testMessage("wake", "x"))
	buf := make([]byte, 64)
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := nc.Read(buf)
		if err != nil || !strings.Contains(string(buf[:k]), "EXISTS") {
			t.Fatalf("no EXISTS: %q %v", buf[:k], err)
		}
	}
	t.Logf("EXISTS reached all %d connections in %v", n, time.Since(start))
	if per > 64*1024 {
		t.Fatalf("%.0f octets per idle connection", per)
	}
}
