package imap

import (
	"context"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RFC 2177 IDLE: changes are pushed as soon as the hub reports them; the
// client ends with DONE.
//
// An idling connection costs one goroutine with a small stack and no
// buffers: the connection goroutine waits for the client's next octet
// without a read buffer (wire.Decoder.WaitReadable), its write buffer is
// returned to the pool, and the hub's notification starts a short-lived
// goroutine that writes the updates (under idleMu, which the connection
// goroutine takes back when the client speaks). This is what lets ten
// thousand handsets idle on one appliance.
func cmdIdle(c *conn, tag string, p *parser) {
	p.xend()
	c.flushUpdates(true)
	c.writeLine("+ idling")
	c.xflush()
	metricIdle.Inc()
	defer metricIdle.Dec()

	// Give the buffers back before anything else may write (idlePush).
	c.dec.Release()
	c.enc.Release()
	c.idleMu.Lock()
	c.idling = true
	c.idleMu.Unlock()
	if c.sub != nil {
		c.sub.SetNotify(func() { go c.idlePush() })
	}
	stopBye := context.AfterFunc(c.srv.ctx, func() {
		c.idleMu.Lock()
		defer c.idleMu.Unlock()
		if c.idling {
			c.writeLine("* BYE server shutting down")
			c.flush()
		}
	})
	c.srv.idleGC.note(c.srv.ctx)
	c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	err := c.dec.WaitReadable()
	stopBye()
	if c.sub != nil {
		c.sub.SetNotify(nil)
	}
	c.idleMu.Lock()
	c.idling = false
	werr := c.enc.Err()
	c.idleMu.Unlock()
	if err != nil {
		panic(ioError{err})
	}
	if werr != nil {
		panic(ioError{werr})
	}
	line, err := c.dec.ReadLine()
	if err != nil {
		panic(ioError{err})
	}
	if !strings.EqualFold(strings.TrimSpace(line), "DONE") {
		xsyntaxf("expected DONE")
	}
}

// idlePush writes pending updates to an idling client. Pushes that arrive
// while one runs are folded into it.
func (c *conn) idlePush() {
	if !c.pushing.CompareAndSwap(false, true) {
		c.pushAgain.Store(true)
		return
	}
	defer c.pushing.Store(false)
	for {
		c.pushAgain.Store(false)
		c.idleMu.Lock()
		if !c.idling {
			c.idleMu.Unlock()
			return
		}
		c.nc.SetWriteDeadline(time.Now().Add(time.Minute))
		c.flushUpdates(true)
		if err := c.flush(); err != nil {
			// A client that does not read: end the connection; the
			// connection goroutine sees the error.
			c.nc.Close()
		}
		c.nc.SetWriteDeadline(time.Time{})
		c.enc.Release()
		c.idleMu.Unlock()
		if !c.pushAgain.Load() {
			return
		}
	}
}

// idleState is the part of a connection shared with idlePush.
type idleState struct {
	idleMu    sync.Mutex
	idling    bool
	pushing   atomic.Bool
	pushAgain atomic.Bool
}

// idleCollector runs a garbage collection, at most every few seconds, when
// many connections have gone idle since the last one, and returns the freed
// memory to the system: Go shrinks the stacks
// of blocked goroutines only during a collection, so without it the stacks
// grown while serving commands stay allocated until the runtime's periodic
// collection (two minutes).
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
