package netlimit

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails Accept with EMFILE while fail is set.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	fail bool
	errs int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	for {
		f.mu.Lock()
		fail := f.fail
		if fail {
			f.errs++
		}
		f.mu.Unlock()
		if !fail {
			return f.Listener.Accept()
		}
		time.Sleep(time.Millisecond)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: &osSyscallError{syscall.EMFILE}}
	}
}

type osSyscallError struct{ errno syscall.Errno }

func (e *osSyscallError) Error() string { return "accept4: " + e.errno.Error() }
func (e *osSyscallError) Unwrap() error { return e.errno }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// An accept loop that returns on the first error (as sipgo's does) keeps
// serving through EMFILE, and the registry reports the listener as not
// accepting meanwhile.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	fl := &flakyListener{Listener: listen(t), fail: true}
	reg := &Registry{}
	l := Wrap(fl, Config{Name: "test", Registry: reg})
	loopErr := make(chan error, 1)
	served := make(chan struct{}, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				loopErr <- err
				return
			}
			c.Write([]byte("hi\n"))
			c.Close()
			served <- struct{}{}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(reg.NotAccepting()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("listener never reported as not accepting")
		}
		time.Sleep(time.Millisecond)
	}
	st := reg.NotAccepting()[0]
	if st.Name != "test" || !strings.Contains(st.Error, "too many open files") {
		t.Fatalf("status %+v", st)
	}
	fl.mu.Lock()
	fl.fail = false
	fl.mu.Unlock()
	c, err := net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-served:
	case err := <-loopErr:
		t.Fatalf("accept loop ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection served after the errors")
	}
	if n := len(reg.NotAccepting()); n != 0 {
		t.Fatalf("%d listeners still not accepting", n)
	}
	l.Close()
	if err := <-loopErr; err == nil {
		t.Fatal("closed listener accepted")
	}
}

// Limits per listener and per source, the exemption, the refusal text and
// the shared budget.
func TestConnectionLimits(t *testing.T) {
	reg := &Registry{MaxOpen: 4}
	l := Wrap(listen(t), Config{Name: "lim", MaxConns: 3, MaxPerSource: 2, Registry: reg,
		Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")},
		Reject: func(c net.Conn) { io.WriteString(c, "* BYE [UNAVAILABLE] too many connections\r\n") }})
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			io.WriteString(c, "* OK\r\n")
		}
	}()
	dial := func(local string) string {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	for i, want := range []string{"* OK", "* OK", "* BYE [UNAVAILABLE] too many connections"} {
		if got := dial("127.0.0.2"); got != want {
			t.Fatalf("connection %d from one source: %q, want %q", i, got, want)
		}
	}
	// Exempt source: not limited per source, but by the listener.
	if got := dial("127.0.0.9"); got != "* OK" {
		t.Fatalf("exempt: %q", got)
	}
	if got := dial("127.0.0.9"); !strings.Contains(got, "UNAVAILABLE") {
		t.Fatalf("listener limit: %q", got)
	}
	if l.Open() != 3 || !l.Status().Full {
		t.Fatalf("open %d, status %+v", l.Open(), l.Status())
	}
	// Closing one frees its place.
	mu.Lock()
	open[0].Close()
	mu.Unlock()
	if got := dial("127.0.0.3"); got != "* OK" {
		t.Fatalf("after a close: %q", got)
	}
	// The budget is shared: a second listener gets what is left (4 - 3).
	l2 := Wrap(listen(t), Config{Name: "other", Registry: reg})
	go func() {
		for {
			c, err := l2.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "* OK\r\n")
		}
	}()
	d := net.Dialer{}
	var got []string
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", l2.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		got = append(got, strings.TrimSpace(line))
	}
	if got[0] != "* OK" || got[1] != "" {
		t.Fatalf("budget: %q", got)
	}
}

// A connection that never activates is closed at FirstDeadline, however
// much it trickles; an active one is closed after IdleTimeout of silence.
func TestDeadlines(t *testing.T) {
	l := Wrap(listen(t), Config{Name: "dl", FirstDeadline: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	ended := make(chan time.Duration, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				start := time.Now()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						ended <- time.Since(start)
						return
					}
					if strings.TrimSpace(line) == "hello" {
						c.(*Conn).Activate()
					}
				}
			}()
		}
	}()
	// Trickler: a byte every 50 ms, never a full line.
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	go func() {
		for i := 0; i < 40; i++ {
			if _, err := c1.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case d := <-ended:
		if d > time.Second {
			t.Fatalf("trickler closed after %v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("trickling connection never closed")
	}
	// Active connection: lives past FirstDeadline while it talks, then
	// dies after IdleTimeout of silence.
	c2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("hello\n"))
	for i := 0; i < 4; i++ {
		time.Sleep(100 * time.Millisecond)
		c2.Write([]byte("ping\n"))
	}
	select {
	case d := <-ended:
		if d < 400*time.Millisecond {
			t.Fatalf("active connection closed after %v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("idle connection never closed")
	}
}
