package streaming

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// Sink is where a session's packets go: RTP (SRTP when the session
// protects) and RTCP (SRTCP), already in their final form. A sink must not
// block and must not keep pkt after returning: it copies, or drops and
// counts.
type Sink interface {
	Send(pkt []byte) error
	SendRTCP(pkt []byte) error
	Close() error
}

// ErrDropped: a sink could not take a packet without blocking.
var ErrDropped = errors.New("streaming: packet dropped (sink full)")

// batchSink is a sink whose packets the scheduler can gather into one
// sendmmsg per wake-up.
type batchSink interface {
	queue(b *sendBatch, pkt []byte)
}

// UDPTransport is a UDP socket shared by many sessions' sinks (one server
// port). Sends from the scheduler are batched (sendmmsg where the
// platform has it) and never wait (MSG_DONTWAIT), so a full socket buffer
// drops packets instead of stalling every session.
type UDPTransport struct {
	Conn *net.UDPConn
	pc   *ipv4.PacketConn
	mu   sync.Mutex // serializes writes of several shards
}

// NewUDPTransport wraps a socket.
func NewUDPTransport(c *net.UDPConn) *UDPTransport {
	_ = c.SetWriteBuffer(4 << 20)
	return &UDPTransport{Conn: c, pc: ipv4.NewPacketConn(c)}
}

// UDPSink sends a session's RTP and RTCP to the client's port pair.
type UDPSink struct {
	RTP, RTCP  *UDPTransport
	To, ToRTCP *net.UDPAddr
}

func (s *UDPSink) queue(b *sendBatch, pkt []byte) { b.add(s.RTP, s.To, pkt) }

// Send writes one packet now (outside the scheduler's batches).
func (s *UDPSink) Send(pkt []byte) error { return s.RTP.writeOne(pkt, s.To) }

// SendRTCP writes one RTCP packet.
func (s *UDPSink) SendRTCP(pkt []byte) error {
	if s.RTCP == nil || s.ToRTCP == nil {
		return nil
	}
	return s.RTCP.writeOne(pkt, s.ToRTCP)
}

// Close does nothing: the transport is shared.
func (s *UDPSink) Close() error { return nil }

func (t *UDPTransport) writeOne(pkt []byte, to *net.UDPAddr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deadline()
	_, err := t.pc.WriteBatch([]ipv4.Message{{Buffers: [][]byte{pkt}, Addr: to}}, dontWait)
	if err != nil {
		metricDropped.WithLabelValues("udp").Inc()
	}
	return err
}

// deadline bounds a blocking send where MSG_DONTWAIT is not available (a
// deadline checked before the send would drop packets of a goroutine that
// was merely preempted, so it is generous).
func (t *UDPTransport) deadline() {
	if dontWait == 0 {
		_ = t.Conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	}
}

// sendBatch gathers one shard's UDP packets of one wake-up.
type sendBatch struct {
	arena []byte
	msgs  []ipv4.Message
	tr    []*UDPTransport
	bufs  [][]byte
	sent  int
}

func (b *sendBatch) add(t *UDPTransport, to *net.UDPAddr, pkt []byte) {
	if cap(b.arena)-len(b.arena) < len(pkt) {
		b.arena = make([]byte, 0, max(64<<10, 2*cap(b.arena)))
	}
	off := len(b.arena)
	b.arena = append(b.arena, pkt...)
	b.bufs = append(b.bufs, b.arena[off:len(b.arena):len(b.arena)])
	b.msgs = append(b.msgs, ipv4.Message{Addr: to})
	b.tr = append(b.tr, t)
}

// flush sends the gathered packets, one WriteBatch per run of packets of
// the same transport (64 at most a call).
func (b *sendBatch) flush() {
	n := len(b.msgs)
	for i := range n {
		b.msgs[i].Buffers = b.bufs[i : i+1]
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && b.tr[j] == b.tr[i] && j-i < 64 {
			j++
		}
		t := b.tr[i]
		t.mu.Lock()
		t.deadline()
		for k := i; k < j; {
			m, err := t.pc.WriteBatch(b.msgs[k:j], dontWait)
			if err != nil {
				// Skip the packet that failed (buffer full, unreachable).
				metricDropped.WithLabelValues("udp").Inc()
				m++
			}
			k += max(m, 1)
		}
		t.mu.Unlock()
		i = j
	}
	b.sent += n
	clear(b.msgs)
	b.msgs, b.bufs, b.tr = b.msgs[:0], b.bufs[:0], b.tr[:0]
	b.arena = b.arena[:0]
}

// ConnWriter serializes what goes out on one stream connection (an RTSP
// connection: responses and interleaved $ frames). Frames are dropped when
// more than MaxQueued octets wait; messages are always queued. One writer
// goroutine per connection; Close stops it.
type ConnWriter struct {
	MaxQueued int

	conn   io.Writer
	setDL  func(time.Time) error
	mu     sync.Mutex
	q      [][]byte
	queued int
	closed bool
	err    error
	signal chan struct{}
	done   chan struct{}
}

// NewConnWriter starts the writer of c.
func NewConnWriter(c net.Conn) *ConnWriter {
	w := &ConnWriter{MaxQueued: 256 << 10, conn: c, setDL: c.SetWriteDeadline,
		signal: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// Message queues bytes that must not be dropped (a response).
func (w *ConnWriter) Message(b []byte) error {
	return w.push(append([]byte(nil), b...), false)
}

// Frame queues an interleaved frame ($, channel, length, packet), or drops
// it when the queue is full.
func (w *ConnWriter) Frame(channel byte, pkt []byte) error {
	if len(pkt) > 0xffff {
		return ErrDropped
	}
	b := make([]byte, 4+len(pkt))
	b[0], b[1], b[2], b[3] = '$', channel, byte(len(pkt)>>8), byte(len(pkt))
	copy(b[4:], pkt)
	return w.push(b, true)
}

func (w *ConnWriter) push(b []byte, droppable bool) error {
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return err
	}
	if droppable && w.queued+len(b) > w.MaxQueued {
		w.mu.Unlock()
		metricDropped.WithLabelValues("tcp").Inc()
		return ErrDropped
	}
	w.q = append(w.q, b)
	w.queued += len(b)
	select { // under mu: Close closes signal under mu
	case w.signal <- struct{}{}:
	default:
	}
	w.mu.Unlock()
	return nil
}

func (w *ConnWriter) run() {
	defer close(w.done)
	var out net.Buffers
	for range w.signal {
		for {
			w.mu.Lock()
			if len(w.q) == 0 {
				closed := w.closed
				w.mu.Unlock()
				if closed {
					return
				}
				break
			}
			out = append(out[:0], w.q...)
			clear(w.q)
			w.q = w.q[:0]
			w.queued = 0
			w.mu.Unlock()
			_ = w.setDL(time.Now().Add(30 * time.Second))
			if _, err := out.WriteTo(w.conn); err != nil {
				w.mu.Lock()
				w.closed, w.err = true, err
				w.q = nil
				w.mu.Unlock()
				return
			}
		}
	}
}

// Close stops the writer after what is queued has been written (or the
// write deadline passed).
func (w *ConnWriter) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.signal)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}

// Closed reports whether the connection failed or was closed.
func (w *ConnWriter) Closed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// InterleavedSink sends a session's packets as $ frames on an RTSP
// connection (RFC 2326 s10.12).
type InterleavedSink struct {
	W         *ConnWriter
	RTP, RTCP byte
}

// Send queues an RTP frame.
func (s *InterleavedSink) Send(pkt []byte) error { return s.W.Frame(s.RTP, pkt) }

// SendRTCP queues an RTCP frame.
func (s *InterleavedSink) SendRTCP(pkt []byte) error { return s.W.Frame(s.RTCP, pkt) }

// Close does nothing: the connection belongs to the RTSP server.
func (s *InterleavedSink) Close() error { return nil }
