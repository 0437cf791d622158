//go:build unix

package imap

import (
	"net"
	"syscall"
)

// waitForClient blocks until the client sends something (or the read
// deadline passes, or the connection fails). It runs on a fresh goroutine.
// On a plain TCP socket with nothing buffered above it, it waits for
// readability without reading, so its stack stays at the minimum; under TLS
// or COMPRESS, where bytes may already wait above the socket, it reads the
// first octet through them.
func (c *conn) waitForClient() error {
	nc := c.nc
	if u, ok := nc.(interface{ Unwrap() net.Conn }); ok { // netlimit.Conn
		nc = u.Unwrap()
	}
	if tcp, ok := nc.(*net.TCPConn); ok && c.zr == nil {
		return waitReadable(tcp)
	}
	return c.dec.Wait()
}

// waitReadable blocks until the socket has data (or end of file, or an
// error, or the read deadline), without reading it.
func waitReadable(tcp *net.TCPConn) error {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return err
	}
	var one [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing yet: wait for the poller. Otherwise (data, end of file,
		// an error) the reader that follows sees it.
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}
