package sipep

import (
	"errors"
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
)

// Malformed requests get the RFC 3261 s8.2 answer over UDP and TCP, and a
// stream goes on serving after one.
func TestSIPMalformedRequests(t *testing.T) {
	m, _ := startEP(t, true, nil)
	cases := []struct {
		name string
		req  siptest.Req
		want int
	}{
		{"SIP/3.0", siptest.Req{Version: "SIP/3.0"}, 505},
		{"bad version", siptest.Req{Version: "SIP/2"}, 400},
		{"lower-case method", siptest.Req{Method: "subscribe"}, 501},
		{"unknown method", siptest.Req{Method: "FROB"}, 501},
		{"known method not served", siptest.Req{Method: "INVITE"}, 405},
		{"CSeq method differs", siptest.Req{CSeqMethod: "OPTIONS"}, 400},
		{"CSeq method case", siptest.Req{CSeqMethod: "subscribe"}, 400},
		{"garbage Request-URI", siptest.Req{RURI: "sip:@"}, 400},
		{"Request-URI bad host", siptest.Req{RURI: "sip:ivan@ho^st"}, 400},
		{"Request-URI bad port", siptest.Req{RURI: "sip:ivan@127.0.0.1:99999"}, 400},
		{"Request-URI no scheme", siptest.Req{RURI: "garbage"}, 400},
		{"Request-URI other scheme", siptest.Req{RURI: "http:ivan@example.net"}, 416},
	}
	for _, network := range []string{"udp", "tcp"} {
		c := siptest.Dial(t, network, m.Addr())
		for _, tc := range cases {
			tc.req.User = "ivan"
			tc.req.Expires = 60
			c.Send(c.Build(tc.req, m.Addr()))
			res := c.Response(5 * time.Second)
			if res.Status() != tc.want || !strings.HasPrefix(res.Start, "SIP/2.0 ") {
				t.Errorf("%s %s: %q, want %d", network, tc.name, res.Start, tc.want)
			}
			if tc.want == 501 && res.Get("Allow") == "" {
				t.Errorf("%s %s: 501 without Allow", network, tc.name)
			}
		}
		// The same connection still serves a good request.
		c.Send(c.Build(siptest.Req{User: "ivan", Expires: 60}, m.Addr()))
		if res := c.Response(5 * time.Second); res.Status() != 200 {
			t.Fatalf("%s: good SUBSCRIBE after the bad ones: %q", network, res.Start)
		}
	}
}

func FuzzCheckSIP(f *testing.F) {
	c := &siptest.Conn{Local: "127.0.0.1:5062"}
	for _, r := range []siptest.Req{{User: "a"}, {User: "a", Version: "SIP/3.0"}, {User: "a", Method: "subscribe"}, {User: "b", RURI: "sip:@"},
		{User: "c", CSeqMethod: "NOTIFY"}, {User: "d", RURI: "sips:d@[::1]:5061;transport=tls?x=y"}} {
		f.Add([]byte(c.Build(r, "127.0.0.1:5060")))
	}
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := (&checker{allow: "OPTIONS, SUBSCRIBE"}).check(b)
		if v.ok && v.reply != nil {
			t.Fatal("passed and answered")
		}
		if v.reply != nil && !strings.HasPrefix(string(v.reply), "SIP/2.0 ") {
			t.Fatalf("reply %q", v.reply)
		}
		n, err := frameSIP(b)
		if err == nil && (n < 0 || n > len(b)) {
			t.Fatalf("frame %d of %d", n, len(b))
		}
	})
}

// errPacketConn fails its first reads, then reads from the real socket.
type errPacketConn struct {
	net.PacketConn
	fails int
}

func (e *errPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if e.fails > 0 {
		e.fails--
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: errors.New("no buffer space available")}
	}
	return e.PacketConn.ReadFrom(b)
}

// A UDP read error does not end the SIP UDP reader (sipgo's loop would
// stop for good); the failure shows in the registry until a read works.
func TestSIPUDPReadErrorsRetried(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	reg := &netlimit.Registry{}
	h := reg.Watch("sip-udp", pc.LocalAddr().String())
	defer h.Close()
	done := make(chan struct{})
	defer close(done)
	c := &sipPacketConn{PacketConn: &errPacketConn{PacketConn: pc, fails: 3}, check: &checker{}, health: h, closed: done}
	sawDown := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if len(reg.NotAccepting()) == 1 {
				sawDown <- true
				return
			}
			time.Sleep(time.Millisecond)
		}
		sawDown <- false
	}()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 2048)
		n, _, err := c.ReadFrom(b)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b[:n])
	}()
	if !<-sawDown {
		t.Fatal("read errors not reported")
	}
	cl, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("\r\n\r\n"))
	select {
	case s := <-got:
		if s != "\r\n\r\n" {
			t.Fatalf("read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader never recovered")
	}
	if n := len(reg.NotAccepting()); n != 0 {
		t.Fatalf("still reported down: %d", n)
	}
}
