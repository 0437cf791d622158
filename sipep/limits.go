package sipep

// Connection limits and deadlines of the TCP and TLS listeners (netlimit).

import (
	"crypto/tls"
	"net"
	"strconv"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
)

// Defaults of the limits (sized for 10,000 handsets).
const (
	DefaultMaxConns            = 12000
	DefaultMaxConnsPerSource   = 200
	DefaultFirstMessageTimeout = 30 * time.Second
	retryAfterSeconds          = 30
)

func (e *Endpoint) limitDefaults() {
	if e.MaxConns == 0 {
		e.MaxConns = DefaultMaxConns
	}
	if e.MaxConnsPerSource == 0 {
		e.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if e.FirstMessageTimeout <= 0 {
		e.FirstMessageTimeout = DefaultFirstMessageTimeout
	}
	if e.ConnIdleTimeout <= 0 {
		e.ConnIdleTimeout = max(e.keepIdle, 2*time.Minute)
	}
	if e.MaxRequestRate == 0 {
		e.MaxRequestRate = DefaultMaxRequestRate
	}
}

// limitListener wraps a TCP listener (the TCP transport, or the socket
// under TLS when tlsConf is set) with the connection limits.
func (e *Endpoint) limitListener(ln net.Listener, name string, tlsConf *tls.Config) net.Listener {
	return netlimit.Wrap(ln, netlimit.Config{Name: name, MaxConns: max(e.MaxConns, 0), MaxPerSource: max(e.MaxConnsPerSource, 0),
		Exempt: e.TrustedNetworks, FirstDeadline: e.FirstMessageTimeout, IdleTimeout: e.ConnIdleTimeout,
		Registry: e.Listeners, Logger: e.log,
		Reject: func(c net.Conn) { e.refuseConn(c, tlsConf) }})
}

// refuseConn answers the first request of a connection beyond the limits
// with 503 and Retry-After (RFC 3261 s21.5.4), then it is closed.
func (e *Endpoint) refuseConn(c net.Conn, tlsConf *tls.Config) {
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
