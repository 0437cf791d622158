package sipep

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// An untrusted source over its request rate is answered 503 with
// Retry-After before the SIP library keeps a transaction for the request;
// its bucket refills; a trusted source is never throttled.
func TestSIPRequestRatePerSource(t *testing.T) {
	m, svc := startEP(t, false, func(e *Endpoint) {
		e.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		e.MaxRequestRate = 10 // burst 20
	})
	svc.setUser("rita", "pw")
	const n = 60
	burst := func(c *siptest.Conn) (throttled, other int) {
		t.Helper()
		for range n {
			c.Send(c.Build(siptest.Req{User: "rita", Expires: 60}, m.Addr()))
		}
		for range n {
			res := c.Response(5 * time.Second)
			if res.Status() == 503 && strings.Contains(res.Start, "request rate") {
				if res.Get("Retry-After") == "" {
					t.Fatalf("throttled without Retry-After: %q", res.Start)
				}
				throttled++
			} else {
				other++
			}
		}
		return throttled, other
	}
	for _, network := range []string{"udp", "tcp"} {
		src := map[string]string{"udp": "127.0.0.2", "tcp": "127.0.0.3"}[network]
		c := siptest.DialFrom(t, network, src, m.Addr())
		th, other := burst(c)
		// The burst allows 20 at once plus what refills while sending.
		if th < n/2 || other < 20 {
			t.Fatalf("%s untrusted burst of %d: %d throttled, %d answered by the server", network, n, th, other)
		}
		time.Sleep(300 * time.Millisecond) // refills about 3 tokens
		c.Send(c.Build(siptest.Req{User: "rita", Expires: 60}, m.Addr()))
		if res := c.Response(5 * time.Second); res.Status() == 503 {
			t.Fatalf("%s: bucket did not refill: %q", network, res.Start)
		}
	}
	c := siptest.DialFrom(t, "udp", "127.0.0.1", m.Addr())
	if th, _ := burst(c); th != 0 {
		t.Fatalf("trusted source throttled %d times", th)
	}
}

func TestSourceRateSweepBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newSourceRate(10, nil)
	r.now = func() time.Time { return now }
	for i := range maxRateSources + 10 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !r.allow(udpAddr(a)) {
			t.Fatalf("first request of a new source refused")
		}
		now = now.Add(time.Microsecond)
	}
	if len(r.buckets) > maxRateSources {
		t.Fatalf("%d buckets kept, bound %d", len(r.buckets), maxRateSources)
	}
}

func udpAddr(a netip.Addr) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 5060)) }
