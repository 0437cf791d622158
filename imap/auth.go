package imap

import (
	"net"
)

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
