package imap

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
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
	c.srv.idleGC.note(c.srv.ctx)
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
