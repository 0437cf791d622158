package imap

import (
	"errors"
	"strings"

	"github.com/lemonvox/lemonvox/imap/wire"
)

// RFC 2177 IDLE: the command answers "+ idling" and returns; the session
// then waits for DONE like it waits for a command (parked), while the
// notifier pushes changes as soon as the hub reports them. DONE, read by
// the connection loop, ends it with the tagged OK (idleDone).
func cmdIdle(c *conn, tag string, p *parser) {
	p.xend()
	c.flushUpdates(true)
	c.writeLine("+ idling")
	metricIdle.Inc()
	c.idling = true
	c.idleTag = tag
	c.okDone = true
}

// idleDone reads the line that ends IDLE and answers it.
func (c *conn) idleDone() bool {
	line, err := c.dec.ReadLine()
	if err != nil && !errors.Is(err, wire.ErrLineTooLong) {
		c.readFailed(err) // the session ends, and end leaves IDLE
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idling = false
	metricIdle.Dec()
	if err != nil {
		c.writeLine("%s BAD [TOOBIG] line too long", c.idleTag)
		return !c.countBad() && c.flush() == nil
	}
	if !strings.EqualFold(strings.TrimSpace(line), "DONE") {
		c.writeLine("%s BAD expected DONE", c.idleTag)
		return !c.countBad() && c.flush() == nil
	}
	c.flushUpdates(true)
	c.writeLine("%s OK IDLE terminated", c.idleTag)
	return c.flush() == nil && !c.closing
}
