package notify

// Resource limits of the SIP endpoint: connection limits and deadlines of
// the TCP and TLS listeners (netlimit), and the bounds on MWI
// subscriptions (per account, per source, in all) and on one account's
// NOTIFY fan-out.

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
)

// Defaults of the limits (sized for 10,000 handsets).
const (
	DefaultMaxConns            = 12000
	DefaultMaxConnsPerSource   = 200
	DefaultFirstMessageTimeout = 30 * time.Second
	DefaultMaxSubscriptions    = 50000
	DefaultMaxSubsPerAccount   = 20
	DefaultMaxSubsPerSource    = 100
	DefaultFanOut              = 8
	retryAfterSeconds          = 30
)

func (m *MWIServer) limitDefaults() {
	if m.MaxConns == 0 {
		m.MaxConns = DefaultMaxConns
	}
	if m.MaxConnsPerSource == 0 {
		m.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if m.FirstMessageTimeout <= 0 {
		m.FirstMessageTimeout = DefaultFirstMessageTimeout
	}
	if m.ConnIdleTimeout <= 0 {
		// Longer than any subscription may go without a refresh.
		m.ConnIdleTimeout = m.MaxExpires + 2*time.Minute
	}
	if m.MaxSubscriptions == 0 {
		m.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if m.MaxSubsPerAccount == 0 {
		m.MaxSubsPerAccount = DefaultMaxSubsPerAccount
	}
	if m.MaxSubsPerSource == 0 {
		m.MaxSubsPerSource = DefaultMaxSubsPerSource
	}
	if m.FanOut <= 0 {
		m.FanOut = DefaultFanOut
	}
	if m.MaxRequestRate == 0 {
		m.MaxRequestRate = DefaultMaxRequestRate
	}
}

// limitListener wraps a TCP listener (the TCP transport, or the socket
// under TLS when tlsConf is set) with the connection limits.
func (m *MWIServer) limitListener(ln net.Listener, name string, tlsConf *tls.Config) net.Listener {
	return netlimit.Wrap(ln, netlimit.Config{Name: name, MaxConns: max(m.MaxConns, 0), MaxPerSource: max(m.MaxConnsPerSource, 0),
		Exempt: m.TrustedNetworks, FirstDeadline: m.FirstMessageTimeout, IdleTimeout: m.ConnIdleTimeout,
		Registry: m.Listeners, Logger: m.log,
		Reject: func(c net.Conn) { m.refuseConn(c, tlsConf) }})
}

// refuseConn answers the first request of a connection beyond the limits
// with 503 and Retry-After (RFC 3261 s21.5.4), then it is closed.
func (m *MWIServer) refuseConn(c net.Conn, tlsConf *tls.Config) {
	if tlsConf != nil {
		tc := tls.Server(c, tlsConf)
		if tc.Handshake() != nil {
			return
		}
		c = tc
	}
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for {
		n, err := frameSIP(buf)
		if err != nil {
			return
		}
		if n > 0 {
			msg := buf[:n]
			buf = buf[n:]
			if len(msg) > 0 && (msg[0] == '\r' || msg[0] == '\n') {
				continue // keep-alive
			}
			v := reject(msg, 503, "Service Unavailable (too many connections)", "connection limit",
				"Retry-After: "+strconv.Itoa(retryAfterSeconds))
			if v.reply != nil {
				_, _ = c.Write(v.reply)
			}
			return
		}
		k, err := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			return
		}
	}
}

// admitSub checks the subscription limits for a new dialog; called with
// m.mu held. It returns 0 or the status code and reason to refuse with.
func (m *MWIServer) admitSub(user string, src netip.Addr, trusted bool) (int, string) {
	switch {
	case m.MaxSubscriptions > 0 && len(m.subs) >= m.MaxSubscriptions:
		return 503, "Service Unavailable (too many subscriptions)"
	case !trusted && m.MaxSubsPerSource > 0 && m.bySource[src] >= m.MaxSubsPerSource:
		return 503, "Service Unavailable (too many subscriptions from this address)"
	case m.MaxSubsPerAccount > 0 && m.accounts[user] != nil && len(m.accounts[user].subs) >= m.MaxSubsPerAccount:
		return 403, "Forbidden (too many subscriptions for this account)"
	}
	return 0, ""
}
