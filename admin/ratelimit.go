package admin

import (
	"net"
	"sync"
	"time"
)

// authLimiter refuses a client address for a while after too many failed
// token checks in a window, so the token cannot be guessed at speed.
type authLimiter struct {
	mu       sync.Mutex
	window   time.Duration
	max      int
	failures map[string][]time.Time
	now      func() time.Time
}

func newAuthLimiter(max int, window time.Duration) *authLimiter {
	return &authLimiter{window: window, max: max, failures: map[string][]time.Time{}, now: time.Now}
}

func hostOf(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return h
}

// blocked reports whether the address has failed too often recently.
func (l *authLimiter) blocked(remote string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(hostOf(remote))) >= l.max
}

func (l *authLimiter) recent(h string) []time.Time {
	cut := l.now().Add(-l.window)
	f := l.failures[h]
	i := 0
	for i < len(f) && f[i].Before(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, h)
	} else {
		l.failures[h] = f
	}
	return f
}

func (l *authLimiter) fail(remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := hostOf(remote)
	l.failures[h] = append(l.recent(h), l.now())
	if len(l.failures) > 100000 { // bound memory under a scan from many addresses
		for k := range l.failures {
			delete(l.failures, k)
			break
		}
	}
}
