package notify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// udpPhone answers NOTIFYs on a UDP socket with the status status() picks
// and records the bodies.
type udpPhone struct {
	conn   *net.UDPConn
	status func() int
	mu     sync.Mutex
	bodies []string
	times  []time.Time // arrival of each accepted NOTIFY
	resps  []string
}

func newUDPPhone(t *testing.T, status func() int) *udpPhone {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &udpPhone{conn: c, status: status}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			if strings.HasPrefix(msg, "SIP/2.0 ") {
				p.mu.Lock()
				p.resps = append(p.resps, msg)
				p.mu.Unlock()
				continue
			}
			head, body, _ := strings.Cut(msg, "\r\n\r\n")
			code := p.status()
			var b strings.Builder
			fmt.Fprintf(&b, "SIP/2.0 %d X\r\n", code)
			for _, ln := range strings.Split(head, "\r\n")[1:] {
				name, _, _ := strings.Cut(ln, ":")
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "via", "from", "to", "call-id", "cseq":
					b.WriteString(ln + "\r\n")
				}
			}
			b.WriteString("Content-Length: 0\r\n\r\n")
			c.WriteToUDP([]byte(b.String()), from)
			p.mu.Lock()
			if code/100 == 2 {
				p.bodies = append(p.bodies, body)
				p.times = append(p.times, time.Now())
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *udpPhone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *udpPhone) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bodies...)
}

func (p *udpPhone) arrivals() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.times...)
}

// TestMWICoalescesBursts checks the coalescing rule itself: NOTIFYs of one
// account are at least the window apart, the last one carries the final
// counts, and a burst gets no more NOTIFYs than its length allows. It holds
// on a machine of any speed, so it never skips.
func TestMWICoalescesBursts(t *testing.T) {
	const window = 300 * time.Millisecond
	phone := newUDPPhone(t, func() int { return 200 })
	s := openStore(t, "")
	mustAccount(t, s, "burst", vmstore.AccountOptions{MWITargets: []vmstore.MWITarget{{URI: "sip:burst@127.0.0.1:" + strconv.Itoa(phone.port())}}})
	_, d := startMWI(t, s, false, func(m *MWIServer) { m.Coalesce = window })
	start := time.Now()
	for i := 0; i < 10; i++ {
		deposit(t, s, "burst")
	}
	burst := time.Since(start)
	waitFor(t, 10*time.Second, "last state", func() bool {
		b := phone.got()
		return len(b) > 0 && strings.Contains(b[len(b)-1], "Voice-Message: 10/0 (0/0)")
	})
	waitSettled(t, s, d.Sinks[0].Name())
	times := phone.arrivals()
	for i := 1; i < len(times); i++ {
		// Send times are a window apart; arrival jitter may eat into it,
		// never by half.
		if gap := times[i].Sub(times[i-1]); gap < window/2 {
			t.Fatalf("NOTIFYs %d and %d %v apart, window %v", i, i+1, gap, window)
		}
	}
	// One at once, then at most one per window while the burst lasts, and
	// one for what came in the last window.
	if limit := 2 + int(burst/window); len(times) > limit {
		t.Fatalf("%d NOTIFYs for a burst of 10 changes in %v, want <= %d", len(times), burst, limit)
	}
}

func TestMWI481RemovesSubscription(t *testing.T) {
	var mu sync.Mutex
	code := 200
	phone := newUDPPhone(t, func() int { mu.Lock(); defer mu.Unlock(); return code })
	s := openStore(t, "")
	mustAccount(t, s, "gone", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, nil)
	srv, _ := net.ResolveUDPAddr("udp", m.Addr())
	req := fmt.Sprintf("SUBSCRIBE sip:gone@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-t1\r\n"+
		"From: <sip:gone@127.0.0.1>;tag=p1\r\nTo: <sip:gone@127.0.0.1>\r\nCall-ID: t481@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\n"+
		"Contact: <sip:gone@127.0.0.1:%d>\r\nEvent: message-summary\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n", m.Addr(), phone.port(), phone.port())
	if _, err := phone.conn.WriteToUDP([]byte(req), srv); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "initial NOTIFY", func() bool { return len(phone.got()) == 1 })
	if !strings.Contains(phone.got()[0], "Voice-Message: 0/0 (0/0)") || m.Subscriptions("gone") != 1 {
		t.Fatalf("initial: %q, %d subs", phone.got(), m.Subscriptions("gone"))
	}
	mu.Lock()
	code = 481
	mu.Unlock()
	deposit(t, s, "gone")
	waitFor(t, 5*time.Second, "subscription removed after 481", func() bool { return m.Subscriptions("gone") == 0 })
}
