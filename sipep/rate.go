package sipep

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
)

// DefaultMaxRequestRate is the requests per second an untrusted source may
// send (with a burst of twice as many) before it is answered statelessly.
const DefaultMaxRequestRate = 50

// maxRateSources bounds the sources a sourceRate remembers.
const maxRateSources = 65536

// sourceRate is a token bucket per untrusted source address, checked
// before the SIP library sees a message. The library keeps every request
// it answers as a server transaction for 32 s (RFC 3261 Timer J): a source
// that floods requests, even ones refused with 503, would hold memory in
// proportion to its rate. Requests beyond the rate are answered here, with
// no transaction, so what one source can make the server hold is bounded
// by the rate.
type sourceRate struct {
	rate    float64 // tokens per second; <= 0: no limit
	burst   float64
	trusted func(netip.Addr) bool
	now     func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*rateBucket
}

type rateBucket struct {
	tokens float64
	last   time.Time
}

func newSourceRate(rate float64, trusted func(netip.Addr) bool) *sourceRate {
	return &sourceRate{rate: rate, burst: 2 * rate, trusted: trusted, now: time.Now, buckets: map[netip.Addr]*rateBucket{}}
}

// allow takes a token of the sender's bucket; false means over the rate.
func (r *sourceRate) allow(from net.Addr) bool {
	if r == nil || r.rate <= 0 {
		return true
	}
	a := authlimit.AddrOf(from.String())
	if !a.IsValid() || (r.trusted != nil && r.trusted(a)) {
		return true
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[a]
	if b == nil {
		if len(r.buckets) >= maxRateSources {
			r.sweep(now)
		}
		b = &rateBucket{tokens: r.burst, last: now}
		r.buckets[a] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets full buckets (sources quiet long enough to have refilled),
// and, if that frees nothing, the oldest half; called with r.mu held.
func (r *sourceRate) sweep(now time.Time) {
	for a, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.buckets, a)
		}
	}
	if len(r.buckets) < maxRateSources {
		return
	}
	cut := now.Add(-time.Duration(float64(time.Second) * r.burst / r.rate / 2))
	for a, b := range r.buckets {
		if b.last.Before(cut) || len(r.buckets) >= maxRateSources {
			delete(r.buckets, a)
		}
	}
}

// throttled is the stateless answer to a request over its source's rate.
func throttled(msg []byte) sipVerdict {
	return statelessReply(msg, 503, "Service Unavailable (request rate)", "request rate", "throttled", "Retry-After: 5")
}
