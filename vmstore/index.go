package vmstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// The mailbox index keeps an in-memory image of recently used mailboxes:
// the mailbox record and its message records in UID order. Reads (SELECT,
// FETCH, SEARCH, the sessions' views) are served from it instead of
// iterating Badger, whose memtable holds every version of a record that
// churns with each flag change until it is flushed.
//
// Images are immutable once published; a commit that changes a mailbox
// installs a new image (copy-on-write of the pointer slice, records shared).
// Changes are applied in commit order, in the step that publishes the
// commit's events to the hub, so an image and the published journal
// position read together under the index lock always agree: Snapshot's
// LastSeq stays exact.
//
// Loading a mailbox places an empty entry in the index, reads Badger at the
// timestamp of the last commit the index has applied (not at the store's
// read timestamp, which may already include the next one) and installs the
// image; commits applied meanwhile are replayed on top. Commits carry whole
// records, so replaying one that the read already saw is harmless: the last
// writer of a record wins either way.

// DefaultIndexMessages is the default number of message records the index
// keeps in memory (Options.IndexMessages).
const DefaultIndexMessages = 250_000

// errNotIndexed tells a reader to use Badger: the mailbox is too large to
// keep in memory.
var errNotIndexed = errors.New("vmstore: mailbox not indexed")

// mbImage is one mailbox as of a point in the commit order.
type mbImage struct {
	mb   Mailbox
	msgs []*Message // UID order; the records are never modified
}

// find returns the position of uid, or where it would be inserted.
func (img *mbImage) find(uid uint32) (int, bool) {
	i := sort.Search(len(img.msgs), func(i int) bool { return img.msgs[i].UID >= uid })
	return i, i < len(img.msgs) && img.msgs[i].UID == uid
}

// mbChange is what one transaction did to one mailbox.
type mbChange struct {
	mb      *Mailbox            // new record, nil if unchanged
	dropped bool                // the mailbox was deleted
	msgs    map[uint32]*Message // new records; a nil value is an expunge
}

// with returns the image after ch.
func (img *mbImage) with(ch *mbChange) *mbImage {
	n := &mbImage{mb: img.mb, msgs: img.msgs}
	if ch.mb != nil {
		n.mb = *ch.mb
	}
	if len(ch.msgs) == 0 {
		return n
	}
	uids := make([]uint32, 0, len(ch.msgs))
	appendOnly := true
	var last uint32
	if len(img.msgs) > 0 {
		last = img.msgs[len(img.msgs)-1].UID
	}
	for u, m := range ch.msgs {
		uids = append(uids, u)
		if m == nil || u <= last {
			appendOnly = false
		}
	}
	slices.Sort(uids)
	if appendOnly {
		// New messages only (deposits): append after the last UID. The
		// spare capacity of the old slice is beyond every earlier image's
		// length, so no reader sees it change.
		for _, u := range uids {
			n.msgs = append(n.msgs, ch.msgs[u])
		}
		return n
	}
	out := make([]*Message, 0, len(img.msgs)+len(uids))
	i := 0
	for _, u := range uids {
		for i < len(img.msgs) && img.msgs[i].UID < u {
			out = append(out, img.msgs[i])
			i++
		}
		if i < len(img.msgs) && img.msgs[i].UID == u {
			i++ // replaced or expunged
		}
		if m := ch.msgs[u]; m != nil {
			out = append(out, m)
		}
	}
	out = append(out, img.msgs[i:]...)
	n.msgs = out
	return n
}

type idxEntry struct {
	img     *mbImage      // nil while loading, or when big
	big     bool          // too large to index: readers go to Badger
	loading chan struct{} // closed when the load ends
	pending []*mbChange   // changes applied while loading
	lastUse atomic.Int64
}

type index struct {
	mu     sync.RWMutex
	max    int // message records kept at most
	total  int
	pubSeq uint64 // journal sequence of the last applied commit with events
	// appliedTs: the Badger timestamp of the last applied commit; a read
	// at it sees exactly the commits applied so far.
	appliedTs uint64
	entries   map[uint64]*idxEntry
	clock     atomic.Int64
}

func newIndex(max int) *index {
	if max <= 0 {
		max = DefaultIndexMessages
	}
	return &index{max: max, entries: map[uint64]*idxEntry{}}
}

func (x *index) touch(e *idxEntry) { e.lastUse.Store(x.clock.Add(1)) }

// apply records the transactions of a group committed at timestamp ts
// (commit order, before their events are published), all at once: a
// mailbox load reads at ts or before it.
func (x *index) apply(ws []*wtx, ts uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.appliedTs = ts
	for _, w := range ws {
		x.applyLocked(w)
	}
	x.evict()
}

func (x *index) applyLocked(w *wtx) {
	if n := len(w.events); n > 0 {
		x.pubSeq = w.events[n-1].Seq
	}
	for id, ch := range w.changes {
		e := x.entries[id]
		if e == nil {
			continue
		}
		if e.big {
			// Forget the verdict once messages go: it may fit now.
			for _, m := range ch.msgs {
				if m == nil {
					delete(x.entries, id)
					break
				}
			}
			if ch.dropped {
				delete(x.entries, id)
			}
			continue
		}
		if e.img == nil {
			e.pending = append(e.pending, ch)
			continue
		}
		if ch.dropped {
			x.total -= len(e.img.msgs)
			delete(x.entries, id)
			continue
		}
		img := e.img.with(ch)
		x.total += len(img.msgs) - len(e.img.msgs)
		e.img = img
	}
}

// reset forgets every image (after a failed commit, or a restore with the
// journal position pubSeq; a negative one keeps the position).
func (x *index) reset(pubSeq int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.entries {
		if e.img != nil || e.big {
			delete(x.entries, id)
		}
	}
	x.total = 0
	if pubSeq >= 0 {
		x.pubSeq = uint64(pubSeq)
	}
}

// evict drops the least recently used images while over budget (x.mu held).
func (x *index) evict() {
	if x.total <= x.max {
		return
	}
	type cand struct {
		id  uint64
		use int64
	}
	var cs []cand
	for id, e := range x.entries {
		if e.img != nil {
			cs = append(cs, cand{id, e.lastUse.Load()})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.use, b.use) })
	for _, c := range cs {
		if x.total <= x.max*9/10 {
			break
		}
		x.total -= len(x.entries[c.id].img.msgs)
		delete(x.entries, c.id)
	}
}

// cached returns the mailbox's image if it is in the index.
func (x *index) cached(mbid uint64) *mbImage {
	x.mu.RLock()
	e := x.entries[mbid]
	var img *mbImage
	if e != nil {
		img = e.img
	}
	x.mu.RUnlock()
	if img != nil {
		x.touch(e)
	}
	return img
}

// image returns the mailbox's image and the journal position it reflects,
// loading it if needed. errNotIndexed means the caller should read Badger.
func (s *Store) image(mbid uint64) (*mbImage, uint64, error) {
	x := s.idx
	for {
		x.mu.RLock()
		e := x.entries[mbid]
		var img *mbImage
		var seq uint64
		big := false
		if e != nil {
			img, seq, big = e.img, x.pubSeq, e.big
		}
		x.mu.RUnlock()
		if big {
			return nil, 0, errNotIndexed
		}
		if img != nil {
			x.touch(e)
			return img, seq, nil
		}
		if e != nil {
			<-e.loading
			continue
		}
		x.mu.Lock()
		if x.entries[mbid] != nil {
			x.mu.Unlock()
			continue
		}
		e = &idxEntry{loading: make(chan struct{})}
		x.entries[mbid] = e
		// Registered under x.mu: discardTs reads appliedTs under it too, so
		// it never passes ts while this read is to come.
		ts := x.appliedTs
		s.beginReadAt(ts)
		x.mu.Unlock()
		img, seq, err := s.loadImage(mbid, e, ts)
		close(e.loading)
		return img, seq, err
	}
}

// loadImage reads a mailbox for the placeholder e (already in the index,
// collecting the changes applied meanwhile) at ts, the timestamp of the
// last commit applied when e was placed (registered as a reader there by
// the caller), and installs it.
func (s *Store) loadImage(mbid uint64, e *idxEntry, ts uint64) (*mbImage, uint64, error) {
	x := s.idx
	// The read sees exactly the commits applied before e was placed; every
	// later one is in e.pending.
	var img *mbImage
	err := s.viewAt(ts, func(txn *badger.Txn) error {
		var err error
		img, err = readImage(txn, mbid, x.max/4)
		return err
	})
	s.endRead(ts)
	x.mu.Lock()
	defer x.mu.Unlock()
	if errors.Is(err, errNotIndexed) {
		e.big, e.pending = true, nil
		return nil, 0, err
	}
	if err != nil {
		delete(x.entries, mbid)
		return nil, 0, err
	}
	for _, ch := range e.pending {
		if ch.dropped {
			delete(x.entries, mbid)
			return nil, 0, fmt.Errorf("%w: mailbox id %d", ErrNotFound, mbid)
		}
		img = img.with(ch)
	}
	e.pending = nil
	e.img = img
	x.total += len(img.msgs)
	x.touch(e)
	x.evict()
	return img, x.pubSeq, nil
}

func readImage(txn *badger.Txn, mbid uint64, limit int) (*mbImage, error) {
	img := &mbImage{}
	if err := getMailbox(txn, mbid, &img.mb); err != nil {
		return nil, err
	}
	if int(img.mb.Counts.Messages) > limit {
		return nil, errNotIndexed
	}
	img.msgs = make([]*Message, 0, img.mb.Counts.Messages)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: messagePrefix(mbid), PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		m := new(Message)
		if err := it.Item().Value(func(b []byte) error { return decodeMessage(b, m) }); err != nil {
			return nil, err
		}
		img.msgs = append(img.msgs, m)
	}
	return img, nil
}

// eachMessage calls fn for the mailbox's messages in UID order: the
// index's records when the mailbox is in it (fn must neither keep nor change
// them), else records read from Badger. It copies nothing, unlike Messages.
func (s *Store) eachMessage(mbid uint64, fn func(*Message)) error {
	img, _, err := s.image(mbid)
	if err == nil {
		for _, m := range img.msgs {
			fn(m)
		}
		return nil
	}
	if !errors.Is(err, errNotIndexed) {
		return err
	}
	msgs, err := s.Messages(mbid, 1, 0)
	for i := range msgs {
		fn(&msgs[i])
	}
	return err
}

// syncedImage returns the image of a mailbox of the account whose write
// transaction w is: writeTxn has waited until the account's earlier commits
// (serialized by its lock) were finished, which applies them to the index,
// so the image matches what w reads of the mailbox; only the account's
// commits change it.
func (w *wtx) syncedImage(mbid uint64) (*mbImage, error) {
	img, _, err := w.s.image(mbid)
	return img, err
}

// Recording of changes, called where records are written.

func (w *wtx) change(mbid uint64) *mbChange {
	if w.changes == nil {
		w.changes = map[uint64]*mbChange{}
	}
	c := w.changes[mbid]
	if c == nil {
		c = &mbChange{}
		w.changes[mbid] = c
	}
	return c
}

func (w *wtx) noteMessage(m *Message) {
	c := w.change(m.MailboxID)
	if c.msgs == nil {
		c.msgs = map[uint32]*Message{}
	}
	n := *m
	n.Flags = slices.Clone(m.Flags)
	c.msgs[m.UID] = &n
}

func (w *wtx) noteExpunge(mbid uint64, uid uint32) {
	c := w.change(mbid)
	if c.msgs == nil {
		c.msgs = map[uint32]*Message{}
	}
	c.msgs[uid] = nil
}

func (w *wtx) noteMailbox(mb *Mailbox) {
	n := *mb
	w.change(mb.ID).mb = &n
}

func (w *wtx) noteDrop(mbid uint64) { w.change(mbid).dropped = true }
