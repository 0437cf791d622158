package vmstore

import (
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Badger runs in managed mode: the store picks every commit timestamp and
// every read timestamp itself (see the package documentation, "Reads").
//
// Commit timestamps are handed out under seqMu, in the same order as the
// commit chain (lastDone), so timestamps, journal sequence numbers and
// publication agree. When a commit's turn in the chain comes and Badger
// has applied it, readTs moves to its timestamp: a read transaction opened
// at readTs sees every commit that has been acknowledged and nothing that
// is still being written, and it never waits.

// readers counts the read transactions open at each timestamp, so that
// Badger keeps the versions they may still read (SetDiscardTs).
type readers struct {
	mu   sync.Mutex
	open map[uint64]int
}

// beginRead returns the timestamp to read at and registers a reader there;
// endRead must follow.
func (s *Store) beginRead() uint64 {
	s.rd.mu.Lock()
	ts := s.readTs.Load()
	s.rd.open[ts]++
	s.rd.mu.Unlock()
	return ts
}

// beginReadAt registers a reader at ts, which must be at or above every
// discard timestamp set so far and to come until it is registered (the
// index's applied timestamp, read under the index lock held across the
// call, is).
func (s *Store) beginReadAt(ts uint64) {
	s.rd.mu.Lock()
	s.rd.open[ts]++
	s.rd.mu.Unlock()
}

func (s *Store) endRead(ts uint64) {
	s.rd.mu.Lock()
	if s.rd.open[ts]--; s.rd.open[ts] <= 0 {
		delete(s.rd.open, ts)
	}
	s.rd.mu.Unlock()
}

// discardTs is the timestamp at or below which Badger may drop versions
// that a newer one hides: below the oldest open reader, else the index's
// applied timestamp (at most readTs; loadImage reads there).
func (s *Store) discardTs() uint64 {
	s.idx.mu.RLock()
	ts := s.idx.appliedTs
	s.idx.mu.RUnlock()
	s.rd.mu.Lock()
	defer s.rd.mu.Unlock()
	for r := range s.rd.open {
		if r <= ts {
			ts = max(r, 1) - 1
		}
	}
	return ts
}

// discardLoop advances Badger's discard timestamp, so that compactions
// drop superseded versions (every flag change writes a record anew).
func (s *Store) discardLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.db.SetDiscardTs(s.discardTs())
		}
	}
}

// view runs fn in a read-only transaction at readTs: it sees every
// acknowledged commit and does not wait for any commit in progress.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	if s.db.IsClosed() {
		return badger.ErrDBClosed
	}
	ts := s.beginRead()
	defer s.endRead(ts)
	txn := s.db.NewTransactionAt(ts, false)
	defer txn.Discard()
	return fn(txn)
}

// viewAt is view at an earlier timestamp, where the caller has registered
// a reader (beginReadAt).
func (s *Store) viewAt(ts uint64, fn func(txn *badger.Txn) error) error {
	if s.db.IsClosed() {
		return badger.ErrDBClosed
	}
	txn := s.db.NewTransactionAt(ts, false)
	defer txn.Discard()
	return fn(txn)
}

// writeTxn opens a write transaction of the account (its lock held) that
// reads what the account's previous transaction wrote: that commit may
// still be on its way to disk when the lock is released, so it waits until
// the chain has passed it, but not for the commits of other accounts
// sequenced after it. Accounts share no record that a transaction reads
// and relies on (blob bindings hold gcMu; a content-hash entry another
// account is committing at the same moment is missed as it would be if
// both transactions had been built at once).
func (s *Store) writeTxn(user string) *badger.Txn {
	if v, ok := s.lastOf.Load(user); ok {
		<-v.(*chainSlot).mine
	}
	return s.db.NewTransactionAt(s.readTs.Load(), true)
}

// afterAccount waits until the account's last commit has passed the
// chain: its records are in the index then.
func (s *Store) afterAccount(user string) {
	if v, ok := s.lastOf.Load(user); ok {
		<-v.(*chainSlot).mine
	}
}

// chainSlot is a commit's place in the commit chain.
type chainSlot struct {
	ts         uint64 // its Badger commit timestamp
	prev, mine chan struct{}
}

// slot takes the next commit timestamp and a place in the commit chain
// (seqMu held). Once the write is applied (or has failed), wait for the
// earlier commits, then finish.
func (s *Store) slot() *chainSlot {
	c := &chainSlot{ts: s.nextTs, prev: s.lastDone, mine: make(chan struct{})}
	s.nextTs++
	s.lastDone = c.mine
	return c
}

// wait returns once every earlier commit is finished.
func (c *chainSlot) wait() { <-c.prev }

// readable makes the commit visible to new read transactions.
func (c *chainSlot) readable(s *Store) { s.readTs.Store(c.ts) }

// finish lets the next commit go.
func (c *chainSlot) finish() { close(c.mine) }

// writeOutside runs a write that carries no events (chunks of a large
// deposit, collection, cursors) in its own slot of the commit chain; fn
// writes with the timestamp it is given.
func (s *Store) writeOutside(fn func(ts uint64) error) error {
	s.seqMu.Lock()
	if s.failed.Load() {
		s.seqMu.Unlock()
		return ErrStoreFailed
	}
	c := s.slot()
	s.seqMu.Unlock()
	err := fn(c.ts)
	c.wait()
	if err == nil {
		c.readable(s)
	}
	c.finish()
	return err
}

// blindUpdate commits one transaction of writes that depend on nothing
// read (chunks, cursors) in its own slot.
func (s *Store) blindUpdate(fn func(txn *badger.Txn) error) error {
	return s.writeOutside(func(ts uint64) error {
		txn := s.db.NewTransactionAt(s.readTs.Load(), true)
		defer txn.Discard()
		if err := fn(txn); err != nil {
			return err
		}
		return txn.CommitAt(ts, nil)
	})
}

// batch writes with a Badger write batch in its own slot.
func (s *Store) batch(fn func(wb *badger.WriteBatch) error) error {
	return s.writeOutside(func(ts uint64) error {
		wb := s.db.NewWriteBatchAt(ts)
		if err := fn(wb); err != nil {
			wb.Cancel()
			return err
		}
		return wb.Flush()
	})
}

// resetClock sets the timestamps after the highest version in the
// database (at open and after a restore).
func (s *Store) resetClock() {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	v := s.db.MaxVersion()
	if v < s.readTs.Load() {
		v = s.readTs.Load()
	}
	s.nextTs = v + 1
	s.readTs.Store(v)
	s.idx.mu.Lock()
	s.idx.appliedTs = v
	s.idx.mu.Unlock()
}
