//go:build unix

package imap

import (
	"net"
	"syscall"
)

// parkable returns the connection's TCP socket when the session may wait
// for it without a goroutine of its own: nothing is buffered above the
// socket (no TLS, no compression, the decoder holds no read-ahead).
func (c *conn) parkable() *net.TCPConn {
	tcp, ok := c.nc.(*net.TCPConn)
	if !ok || c.zr != nil || !c.dec.Parked() {
		return nil
	}
	return tcp
}

// waitReadable blocks until the socket has data (or end of file, or an
// error, or the read deadline), without reading it. It runs on a new
// goroutine, whose stack stays at the minimum while it waits.
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
