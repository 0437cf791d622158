package imap

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	c.srv.idleGC.note(c.srv.ctx)
}

// idleDone reads the line that ends IDLE and answers it.
func (c *conn) idleDone() bool {
	line, err := c.dec.ReadLine()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idling = false
	metricIdle.Dec()
	if err != nil {
		if errors.Is(err, wire.ErrLineTooLong) {
			c.writeLine("%s BAD [TOOBIG] line too long", c.idleTag)
			return !c.countBad() && c.flush() == nil
		}
		c.mu.Unlock()
		c.readFailed(err)
		c.mu.Lock()
		return false
	}
	if !strings.EqualFold(strings.TrimSpace(line), "DONE") {
		c.writeLine("%s BAD expected DONE", c.idleTag)
		return !c.countBad() && c.flush() == nil
	}
	c.flushUpdates(true)
	c.writeLine("%s OK IDLE terminated", c.idleTag)
	return c.flush() == nil && !c.closing
}

// idleCollector runs a garbage collection, at most every few seconds, when
// many connections have gone idle since the last one, and returns the freed
// memory to the system: Go shrinks the stacks of blocked goroutines only
// during a collection, so without it the stacks grown while serving
// commands stay allocated until the runtime's periodic collection.
type idleCollector struct {
	once    sync.Once
	entries atomic.Int64
}

func (g *idleCollector) note(ctx context.Context) {
	g.entries.Add(1)
	g.once.Do(func() {
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if g.entries.Swap(0) >= 256 {
						debug.FreeOSMemory()
					}
				}
			}
		}()
	})
}
