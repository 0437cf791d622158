package streaming

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

// countingLimiter records failed grant attempts per address and refuses
// every attempt of an address once it has failed `limit` times.
type countingLimiter struct {
	mu     sync.Mutex
	limit  int
	failed map[netip.Addr]int
	begun  int
}

type countingAttempt struct {
	l   *countingLimiter
	src netip.Addr
}

func (l *countingLimiter) Begin(_ context.Context, service string, src netip.Addr, _ string) (channel.LimitedAttempt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.begun++
	if service != "grant" || l.failed[src] >= l.limit {
		return nil, errors.New("throttled")
	}
	return countingAttempt{l, src}, nil
}

func (a countingAttempt) Failed() time.Duration {
	a.l.mu.Lock()
	a.l.failed[a.src]++
	a.l.mu.Unlock()
	return 0
}

func (a countingAttempt) Abandon() {}

// Invalid grants presented over RTSP count as failed credentials of the
// client's address in the shared limiter; a valid grant does not; once
// the limiter throttles the address, even a valid grant is refused
// unchecked (403), while other addresses are not affected.
func TestRTSPInvalidGrantsLimited(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, time.Second)
	lim := &countingLimiter{limit: 3, failed: map[netip.Addr]int{}}
	env.grants.Limiter = lim
	c := dialRTSP(t, env.tlsAddr, true)
	base := "rtsps://" + env.tlsAddr + "/"
	tok := env.grant(t, channel.Grant{})
	if code, _, _ := c.do("DESCRIBE", base+tok, "Accept: application/sdp"); code != 200 {
		t.Fatalf("valid grant: %d", code)
	}
	bad := []byte(tok)
	bad[12] ^= 4
	for i := range 3 {
		if code, _, _ := c.do("DESCRIBE", base+string(bad), "Accept: application/sdp"); code != 403 {
			t.Fatalf("tampered grant %d: %d", i, code)
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	lim.mu.Lock()
	failed, begun := lim.failed[lo], lim.begun
	lim.mu.Unlock()
	if failed != 3 || begun != 4 {
		t.Fatalf("limiter saw %d failures of %s in %d attempts, want 3 in 4", failed, lo, begun)
	}
	if code, _, _ := c.do("DESCRIBE", base+tok, "Accept: application/sdp"); code != 403 {
		t.Fatalf("valid grant from a throttled address: %d, want 403", code)
	}
	lim.mu.Lock()
	lim.failed[lo] = 0
	lim.mu.Unlock()
	if code, _, _ := c.do("DESCRIBE", base+tok, "Accept: application/sdp"); code != 200 {
		t.Fatalf("valid grant once the address is forgiven: %d", code)
	}
}
