package imap

import (
	"net"
	"sync"
	"time"
)

// AuthLimiter counts failed authentications per client IP and per user name
// in fixed windows. When a key has reached its limit, further attempts are
// refused without checking the password until the window ends, which bounds
// password guessing and the argon2id work an attacker can cause.
type AuthLimiter struct {
	// PerIP and PerUser are the failures allowed per Window; defaults 10 and 5.
	PerIP, PerUser int
	// Window is the counting period; default 5 minutes.
	Window time.Duration
	// Now returns the time; nil means time.Now (tests set it).
	Now func() time.Time

	mu    sync.Mutex
	fails map[string]*failCount
}

type failCount struct {
	n     int
	start time.Time
}

// NewAuthLimiter returns a limiter with the default limits.
func NewAuthLimiter() *AuthLimiter {
	return &AuthLimiter{PerIP: 10, PerUser: 5, Window: 5 * time.Minute}
}

func (l *AuthLimiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *AuthLimiter) count(key string, now time.Time) int {
	f := l.fails[key]
	if f == nil || now.Sub(f.start) >= l.Window {
		return 0
	}
	return f.n
}

// Allowed reports whether an attempt from ip for user may be checked.
func (l *AuthLimiter) Allowed(ip, user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.count("i"+ip, now) < l.PerIP && (user == "" || l.count("u"+user, now) < l.PerUser)
}

// Failed records a failed attempt.
func (l *AuthLimiter) Failed(ip, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		l.fails = map[string]*failCount{}
	}
	now := l.now()
	if len(l.fails) > 100000 {
		for k, f := range l.fails {
			if now.Sub(f.start) >= l.Window {
				delete(l.fails, k)
			}
		}
	}
	for _, k := range []string{"i" + ip, "u" + user} {
		if k == "u" {
			continue
		}
		f := l.fails[k]
		if f == nil || now.Sub(f.start) >= l.Window {
			f = &failCount{start: now}
			l.fails[k] = f
		}
		f.n++
	}
}

// Succeeded clears the user's failures (not the IP's: one valid account must
// not unlock guessing at others from the same address).
func (l *AuthLimiter) Succeeded(user string) {
	l.mu.Lock()
	delete(l.fails, "u"+user)
	l.mu.Unlock()
}

// plaintextAuthAllowed is the policy for LOGIN and AUTHENTICATE PLAIN
// (RFC 9051 s6.2.3, s11.1): allowed under TLS, from loopback, or when the
// administrator configured it.
func plaintextAuthAllowed(tlsActive bool, remote net.Addr, allowInsecure bool) bool {
	if tlsActive || allowInsecure {
		return true
	}
	return isLoopback(remote)
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	case nil:
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
