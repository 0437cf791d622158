package imap

import (
	"strings"
	"time"
)

// RFC 2177 IDLE: changes are pushed as soon as the hub reports them; the
// client ends with DONE. The line is read by a helper goroutine so that the
// connection goroutine can wait for both; only the connection goroutine
// writes.
func cmdIdle(c *conn, tag string, p *parser) {
	p.xend()
	c.flushUpdates(true)
	c.writeLine("+ idling")
	c.xflush()
	metricIdle.Inc()
	defer metricIdle.Dec()
	type lineRes struct {
		line string
		err  error
	}
	lines := make(chan lineRes, 1)
	c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	go func() {
		l, err := c.dec.ReadLine()
		lines <- lineRes{l, err}
	}()
	var wake <-chan struct{}
	if c.sub != nil {
		wake = c.sub.C()
	}
	for {
		select {
		case <-wake:
			c.flushUpdates(true)
			if err := c.flush(); err != nil {
				c.nc.Close()
				<-lines
				panic(ioError{err})
			}
		case r := <-lines:
			if r.err != nil {
				panic(ioError{r.err})
			}
			if !strings.EqualFold(strings.TrimSpace(r.line), "DONE") {
				xsyntaxf("expected DONE")
			}
			return
		case <-c.srv.ctx.Done():
			c.writeLine("* BYE server shutting down")
			c.flush()
			c.nc.Close()
			<-lines
			panic(ioError{c.srv.ctx.Err()})
		}
	}
}
