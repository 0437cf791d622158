package streaming

import (
	"container/heap"
	"sync"
	"time"
)

// The pacing scheduler: every session of an engine lives in one shard, a
// heap of sessions ordered by the deadline of their next packet, served by
// one goroutine. A shard sleeps until its earliest deadline, sends every
// packet that is due, gathers UDP packets into one sendmmsg batch and
// sleeps again; there is no goroutine or ticker per session. Deadlines are
// absolute (start + n x 20 ms), so pacing does not drift with wake-up
// latency.

// lateAfter: a packet sent later than this after its deadline counts as
// late; resyncAfter: a session further behind is re-anchored at now
// instead of bursting to catch up.
const (
	lateAfter   = 10 * time.Millisecond
	resyncAfter = 200 * time.Millisecond
	// sendEarly: packets due within this are sent in the current wake-up.
	sendEarly = 500 * time.Microsecond
)

type shard struct {
	e     *Engine
	mu    sync.Mutex
	h     sessHeap
	wake  chan struct{}
	batch sendBatch
	post  []func()
}

type sessHeap []*Session

func (h sessHeap) Len() int           { return len(h) }
func (h sessHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h sessHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *sessHeap) Push(x any) {
	s := x.(*Session)
	s.idx = len(*h)
	*h = append(*h, s)
}
func (h *sessHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.idx = -1
	return s
}

// schedule puts s in the heap (or moves it) at deadline next; the caller
// holds sh.mu.
func (sh *shard) schedule(s *Session, next int64) {
	s.next = next
	if s.idx >= 0 {
		heap.Fix(&sh.h, s.idx)
	} else {
		heap.Push(&sh.h, s)
	}
	if s.idx == 0 {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule removes s from the heap; the caller holds sh.mu.
func (sh *shard) unschedule(s *Session) {
	if s.idx >= 0 {
		heap.Remove(&sh.h, s.idx)
	}
}

func (sh *shard) run(quit <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		sh.mu.Lock()
		now := sh.e.now()
		for len(sh.h) > 0 && sh.h[0].next <= now+int64(sendEarly) {
			s := sh.h[0]
			if s.step(sh, now) {
				heap.Fix(&sh.h, 0)
			} else {
				heap.Pop(&sh.h)
			}
		}
		wait := time.Hour
		if len(sh.h) > 0 {
			wait = time.Duration(sh.h[0].next - now)
		}
		post := sh.post
		sh.post = nil
		sh.mu.Unlock()
		if len(sh.batch.msgs) > 0 {
			sh.batch.flush()
		}
		for _, f := range post {
			f()
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-sh.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-quit:
			return
		}
	}
}
