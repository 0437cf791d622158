package main

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// shaper is a TCP proxy that stands for the handset's link: each direction
// of each connection is serialized at rate octets per second and then
// delayed by half the round-trip time, as a bottleneck link with that
// propagation delay would (a large router buffer: nothing is dropped).
// It counts the octets the client sends and receives (TCP payload; IP and
// TCP headers are not counted).
type shaper struct {
	ln     net.Listener
	target string
	rate   float64       // octets per second, each direction
	delay  time.Duration // one way

	up, down atomic.Int64 // client -> server, server -> client
	wg       sync.WaitGroup
}

// segment is what the link carries in one piece (an Ethernet MSS).
const segment = 1448

func newShaper(target string, bitsPerSecond float64, rtt time.Duration) (*shaper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &shaper{ln: ln, target: target, rate: bitsPerSecond / 8, delay: rtt / 2}
	go s.accept()
	return s, nil
}

func (s *shaper) addr() string { return s.ln.Addr().String() }

// bytes returns the octets counted so far, both directions.
func (s *shaper) bytes() int64 { return s.up.Load() + s.down.Load() }

func (s *shaper) close() { s.ln.Close(); s.wg.Wait() }

func (s *shaper) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		srv, err := net.Dial("tcp", s.target)
		if err != nil {
			c.Close()
			continue
		}
		s.wg.Add(2)
		go s.pipe(srv, c, &s.up)
		go s.pipe(c, srv, &s.down)
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe carries src's octets to dst through the link model: a reader
// stamps their arrival, the sender serializes them at the rate after the
// link is free and delivers each segment a one-way delay later.
func (s *shaper) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer s.wg.Done()
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			k, err := src.Read(buf)
			if k > 0 {
				n.Add(int64(k))
				ch <- chunk{buf[:k], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	var free time.Time // when the link has sent what it was given
	for c := range ch {
		for off := 0; off < len(c.b); off += segment {
			seg := c.b[off:min(off+segment, len(c.b))]
			if free.Before(c.at) {
				free = c.at
			}
			free = free.Add(time.Duration(float64(len(seg)) / s.rate * float64(time.Second)))
			if d := time.Until(free.Add(s.delay)); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(seg); err != nil {
				src.Close()
				for range ch {
				}
				return
			}
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}
