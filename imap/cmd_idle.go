package imap

import (
	"errors"
	"net"
	"strings"
	"time"
)

// RFC 2177 IDLE: while idling, the notifier goroutine pushes changes as
// soon as the hub reports them (the command lock is released while we wait
// for DONE).
func cmdIdle(c *conn, tag string, p *parser) {
	p.xend()
	c.flushUpdates(true)
	c.writeLine("+ idling")
	c.xflush()
	metricIdle.Inc()
	defer metricIdle.Dec()
	c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	c.idling = true
	c.enc.Park()
	c.dec.Park()
	c.mu.Unlock()
	line, err := c.dec.ReadLine()
	c.mu.Lock()
	c.idling = false
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			panic(byeError{"autologout; idle for too long"})
		}
		panic(ioError{err})
	}
	if !strings.EqualFold(strings.TrimSpace(line), "DONE") {
		xsyntaxf("expected DONE")
	}
}
