package vmstore

import (
	"errors"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Badger runs in managed mode: the store picks every commit timestamp and
// every read timestamp itself (see the package documentation, "Reads").
//
// Commits are queued under seqMu (journal order) and written by one
// committer in that order, a group of them at one timestamp. Once Badger
// has applied a group, readTs moves to its timestamp: a read transaction
// opened at readTs sees every commit that has been acknowledged and
// nothing that is still being written, and it never waits.

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
// still be queued or being written when the lock is released, so it waits
// until it is finished, but not for the commits of other accounts. Accounts
// share no record that a transaction reads and relies on (blob bindings
// hold gcMu; a content-hash entry another account is committing at the
// same moment is missed as it would be if both transactions had been built
// at once). The transaction reads at a registered timestamp: the caller
// calls endRead(ts) once it is discarded.
//
// (Laying the queued writes over the new transaction instead of waiting,
// so that one account's transactions follow each other into the same
// group, was tried: with five sessions per account it measured no faster.)
func (s *Store) writeTxn(user string) (txn *badger.Txn, ts uint64) {
	s.seqMu.Lock()
	var last *member
	if p := s.pendingOf[user]; len(p) > 0 {
		last = p[len(p)-1]
	}
	s.seqMu.Unlock()
	if last != nil {
		<-last.done
	}
	ts = s.beginRead()
	return s.db.NewTransactionAt(ts, true), ts
}

// The committer writes transactions to Badger in groups. Badger makes a
// commit durable request by request (with SyncWrites it syncs its
// write-ahead log once per committed transaction, one after the other), so
// transactions of many sessions committed one by one queue behind each
// other's syncs. Account transactions are built (and sized) in their own
// Badger transaction as before, record their writes, and are queued in
// sequence order; the committer replays everything queued into one Badger
// transaction, commits it at one timestamp with SyncWrites (one sync for
// the group), then, in queue order, makes the group readable, applies it
// to the index, publishes its events and acknowledges each member. A
// transaction is still acknowledged only once it is durable, and atomic:
// a group is one Badger transaction.

// member is one queued write.
type member struct {
	w     *wtx                  // an account transaction, or
	blind func(ts uint64) error // a write outside any account, run alone
	done  chan struct{}         // closed when finished
	err   error
	// glued: the next member must be written in the same group (the
	// transactions of one multi-account deposit, commitAll).
	glued bool
}

// kv is one write of a transaction, replayed into its group.
type kv struct {
	key, val []byte
	del      bool
}

// enqueue adds m to the queue (seqMu held).
func (s *Store) enqueue(m *member) {
	m.done = make(chan struct{})
	s.queue = append(s.queue, m)
	s.lastDone = m.done
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// committer runs until the store closes, writing what is queued.
func (s *Store) committer() {
	defer close(s.committerDone)
	for {
		select {
		case <-s.kick:
		case <-s.stopCommitter:
			s.seqMu.Lock()
			n := len(s.queue)
			s.seqMu.Unlock()
			if n == 0 {
				return
			}
		}
		s.seqMu.Lock()
		q := s.queue
		s.queue = nil
		s.seqMu.Unlock()
		for len(q) > 0 {
			q = q[s.writeGroup(q):]
		}
	}
}

// nextTimestamp returns a fresh commit timestamp.
func (s *Store) nextTimestamp() uint64 {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	ts := s.nextTs
	s.nextTs++
	return ts
}

// writeGroup writes a prefix of q (a blind write alone, or as many account
// transactions as fit in one Badger transaction) and returns its length.
func (s *Store) writeGroup(q []*member) int {
	if s.failed.Load() {
		// Queued behind a commit that failed (and may have read it).
		s.finishGroup(q, 0, ErrStoreFailed)
		return len(q)
	}
	ts := s.nextTimestamp()
	if q[0].blind != nil {
		err := q[0].blind(ts)
		s.finishGroup(q[:1], ts, err)
		return 1
	}
	n := 0
	var txn *badger.Txn
	build := func(upTo int) error {
		txn = s.db.NewTransactionAt(s.readTs.Load(), true)
		for n = 0; n < upTo && q[n].blind == nil; n++ {
			for _, e := range q[n].w.writes {
				var err error
				if e.del {
					err = txn.Delete(e.key)
				} else {
					err = txn.Set(e.key, e.val)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := build(len(q))
	if errors.Is(err, badger.ErrTxnTooBig) && n > 0 {
		// Member n does not fit with the ones before: write those, but
		// never part of a glued run (back off to its start, or write
		// the run alone when it comes first).
		for n > 0 && q[n-1].glued {
			n--
		}
		if n == 0 {
			n = gluedRun(q)
		}
		txn.Discard()
		err = build(n)
	}
	if err == nil && s.blobDir != "" {
		for _, m := range q[:n] {
			if m.w != nil && m.w.newFiles {
				// The names of the group's new blob files are
				// durable before the records that refer to them.
				err = syncDir(s.blobDir)
				break
			}
		}
	}
	if err == nil {
		err = txn.CommitAt(ts, nil)
	}
	txn.Discard()
	if n == 0 {
		n = 1 // a member that fails alone
	}
	if err != nil && q[n-1].glued {
		n += gluedRun(q[n-1:]) - 1 // a glued run fails as a whole
	}
	if err == nil {
		metricCommitGroup.Observe(float64(n))
		s.groups.Add(1)
		s.grouped.Add(uint64(n))
		for {
			m := s.maxGroup.Load()
			if uint64(n) <= m || s.maxGroup.CompareAndSwap(m, uint64(n)) {
				break
			}
		}
	}
	s.finishGroup(q[:n], ts, err)
	return n
}

// CommitStats tells how account transactions were grouped: durable Badger
// commits of them so far, the transactions they wrote, and the most in
// one.
func (s *Store) CommitStats() (groups, transactions, largest uint64) {
	return s.groups.Load(), s.grouped.Load(), s.maxGroup.Load()
}

// gluedRun is the length of the glued run that starts q.
func gluedRun(q []*member) int {
	n := 1
	for n <= len(q)-1 && q[n-1].glued {
		n++
	}
	return n
}

// finishGroup makes a written group readable, indexes and publishes it and
// acknowledges its members, or fails them.
func (s *Store) finishGroup(g []*member, ts uint64, err error) {
	if err != nil {
		s.idx.reset(-1)
		for _, m := range g {
			if m.w != nil && len(m.w.events) > 0 {
				s.failed.Store(true)
				s.log.Error("vmstore: sequenced commit failed; store stopped", "err", err)
				break
			}
		}
	} else {
		// Readable first, then indexed: a reader that finds a record in
		// the index finds what it refers to in Badger too.
		s.readTs.Store(ts)
		var ws []*wtx
		for _, m := range g {
			if m.w != nil {
				ws = append(ws, m.w)
				if m.w.deletesAccount {
					// Visible to readers from now on: holders of the
					// account's identity that check the counter see it.
					s.deletions.Add(1)
				}
			}
		}
		s.idx.apply(ws, ts)
		for _, w := range ws {
			s.hub.publish(w.events)
		}
	}
	s.seqMu.Lock()
	for _, m := range g {
		if m.w != nil && m.w.user != "" {
			// Members finish in queue order: m is its account's first.
			p := s.pendingOf[m.w.user]
			if len(p) > 0 && p[0] == m {
				p = p[1:]
			}
			if len(p) == 0 {
				delete(s.pendingOf, m.w.user)
			} else {
				s.pendingOf[m.w.user] = p
			}
		}
	}
	s.seqMu.Unlock()
	for _, m := range g {
		m.err = err
		close(m.done)
	}
}

// writeOutside runs a write that carries no events (chunks of a large
// deposit, collection, cursors) in its own place in the commit order; fn
// writes with the timestamp it is given.
func (s *Store) writeOutside(fn func(ts uint64) error) error {
	s.seqMu.Lock()
	if s.failed.Load() {
		s.seqMu.Unlock()
		return ErrStoreFailed
	}
	if s.closing {
		s.seqMu.Unlock()
		return ErrClosed
	}
	m := &member{blind: fn}
	s.enqueue(m)
	s.seqMu.Unlock()
	<-m.done
	return m.err
}

// blindUpdate commits one transaction of writes that depend on nothing
// read (chunks, cursors).
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

// batch writes with a Badger write batch.
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
