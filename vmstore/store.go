package vmstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Options configure a Store. The zero value of every field but Dir is usable.
type Options struct {
	// Dir is the database directory. Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory (tests).
	InMemory bool
	// Logger receives the store's logs. If nil, slog.Default is used.
	Logger *slog.Logger
	// MaxMessageSize bounds one message; 0 means 256 MiB.
	MaxMessageSize int64
	// Prober, if set, tells the duration of an audio part from the first bytes
	// of its (transfer-decoded) content and its media type, when the part has
	// no Content-Duration header. cmd wires transcode's prober here.
	Prober func(mediaType string, head []byte, size int64) (time.Duration, bool)
	// Hash sets the argon2id cost; zero fields take the defaults
	// (t=2, m=19 MiB, p=1).
	Hash HashParams
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// GCInterval is how often unreferenced blobs and Badger's value log are
	// collected; 0 means 10 minutes, negative disables the background loop.
	GCInterval time.Duration
	// IndexMessages bounds the message records the in-memory mailbox index
	// keeps (least recently used mailboxes are dropped first); 0 means
	// DefaultIndexMessages. A mailbox larger than a quarter of it is read
	// from disk every time.
	IndexMessages int

	// memTableSize overrides Badger's memtable size (tests: a small one
	// makes Badger's transaction limits small too).
	memTableSize int64
}

// Store is the message store. It is safe for concurrent use.
type Store struct {
	opts Options
	db   *badger.DB
	log  *slog.Logger
	hub  *Hub
	// parts caches parsed MIME structures by content hash.
	parts *partCache
	// auth bounds and caches password checks.
	auth *authCache
	// idx keeps recently used mailboxes in memory (index.go).
	idx *index

	locksMu sync.Mutex
	locks   map[string]*acctLock
	// ids hands out account IDs (identity.go).
	ids idState

	// gcMu: deposits and copies hold it shared while they bind to an existing
	// blob; the collector holds it exclusively while it deletes blobs.
	gcMu sync.RWMutex

	seqMu    sync.Mutex
	nextSeq  uint64        // next journal sequence number
	nextTs   uint64        // next Badger commit timestamp (readts.go)
	lastDone chan struct{} // closed when the last queued commit is finished
	failed   atomic.Bool
	closing  bool      // under seqMu: Close has begun, no more commits
	queue    []*member // commits waiting for the committer, in order
	kick     chan struct{}
	// stopCommitter ends the committer once the queue is empty;
	// committerDone is closed when it has.
	stopCommitter, committerDone chan struct{}
	// readTs: every commit at or below it is applied; reads use it.
	readTs atomic.Uint64
	rd     readers
	// pendingOf: an account's queued commits not yet finished, in order
	// (under seqMu); its next transaction waits for the last.
	pendingOf map[string][]*member
	// groups, grouped and maxGroup count the committer's groups of
	// account transactions (CommitStats).
	groups, grouped, maxGroup atomic.Uint64
	// deletions counts committed account deletions (AccountDeletions).
	deletions atomic.Uint64

	// format is the store's format version (version.go).
	format int
	// orphanBlob: chunks of blobs up to this id that have no blob record
	// are left over from deposits interrupted by a crash; the background
	// collector removes them after Open (gc.go).
	orphanBlob uint64
	// orphansDone is closed when the startup collection has finished.
	orphansDone chan struct{}

	// instance is unique among the stores opened by this process
	// (Instance).
	instance uint64

	// blobDir holds the files of large contents (blobfile.go); "" for a
	// store in memory.
	blobDir string
	// filesMu guards backups (running) and keptFiles (collected blob
	// files whose removal waits for the backups to end).
	filesMu   sync.Mutex
	backups   int
	keptFiles []uint64

	nextBlob        atomic.Uint64
	nextMailbox     atomic.Uint64
	uidValidityMu   sync.Mutex
	lastUIDValidity uint32

	inflightMu sync.Mutex
	inflight   map[uint64]struct{} // blob ids being written by a deposit

	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

type acctLock struct {
	mu   sync.Mutex
	refs int
}

// Open opens (creating if needed) the store.
// instances numbers the stores opened by this process.
var instances atomic.Uint64

// Instance is a number that no other store opened by this process has:
// caches of derived data shared across stores (decoded media, say) key
// their entries with it, since blob ids repeat from store to store.
func (s *Store) Instance() uint64 { return s.instance }

func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 256 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Hash = opts.Hash.withDefaults()
	bo := badger.DefaultOptions(opts.Dir).
		WithSyncWrites(true).
		WithDetectConflicts(false). // account locks serialize writers; see package doc
		WithNumVersionsToKeep(1).
		WithLogger(badgerLogger{opts.Logger}).
		WithLoggingLevel(badger.WARNING)
	if opts.memTableSize > 0 {
		bo = bo.WithMemTableSize(opts.memTableSize) // on disk only: values past 4 KiB go to the value log
	}
	if opts.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
	} else {
		// Message chunks go to the value log, records stay in the LSM tree.
		bo = bo.WithValueThreshold(4 << 10)
	}
	db, err := badger.OpenManaged(bo)
	if err != nil {
		return nil, fmt.Errorf("vmstore: open %s: %w", opts.Dir, err)
	}
	format, err := readFormat(db, opts.Now())
	if err == nil && format > FormatVersion() {
		what := "the store"
		if opts.Dir != "" {
			what = "the store in " + opts.Dir
		}
		err = newerFormatError(what, format)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{instance: instances.Add(1),
		opts:        opts,
		db:          db,
		log:         opts.Logger,
		hub:         newHub(),
		parts:       newPartCache(4096),
		auth:        newAuthCache(),
		idx:         newIndex(opts.IndexMessages),
		locks:       map[string]*acctLock{},
		inflight:    map[uint64]struct{}{},
		stop:        make(chan struct{}),
		lastDone:    closedChan(),
		format:      format,
		orphansDone: make(chan struct{}),
		rd:          readers{open: map[uint64]int{}},
		pendingOf:   map[string][]*member{},
		kick:        make(chan struct{}, 1),

		stopCommitter: make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	if !opts.InMemory {
		s.blobDir = filepath.Join(opts.Dir, blobDirName)
		if _, err := openBlobDir(s.blobDir); err != nil {
			db.Close()
			return nil, fmt.Errorf("vmstore: open %s: %w", s.blobDir, err)
		}
	}
	s.resetClock()
	go s.committer()
	abort := func() {
		close(s.stopCommitter)
		<-s.committerDone
		db.Close()
	}
	if err := s.loadCounters(); err != nil {
		abort()
		return nil, err
	}
	s.idx.pubSeq = s.nextSeq - 1
	if err := s.migrate(format); err != nil {
		abort()
		return nil, err
	}
	// Chunks of deposits that a crash interrupted are collected in the
	// background: scanning every chunk before serving would make the start
	// time grow with the store.
	s.orphanBlob = s.nextBlob.Load()
	s.wg.Add(1)
	go s.startupCollect()
	if opts.GCInterval >= 0 {
		iv := opts.GCInterval
		if iv == 0 {
			iv = 10 * time.Minute
		}
		s.wg.Add(1)
		go s.gcLoop(iv)
	}
	s.wg.Add(1)
	go s.discardLoop(time.Second)
	return s, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Close stops background work and closes the database cleanly.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		// Wait for the last commit to be published.
		s.seqMu.Lock()
		last := s.lastDone
		s.closing = true
		s.seqMu.Unlock()
		<-last
		close(s.stopCommitter)
		<-s.committerDone
		s.hub.closeAll()
		err = s.db.Close()
	})
	return err
}

// DB exposes the Badger database for backup and metrics.
func (s *Store) DB() *badger.DB { return s.db }

// Hub returns the change hub.
func (s *Store) Hub() *Hub { return s.hub }

func (s *Store) now() time.Time { return s.opts.Now() }

// loadCounters reads the highest ids in use so that new ones never repeat.
func (s *Store) loadCounters() error {
	return s.view(func(txn *badger.Txn) error {
		last := func(prefix string) []byte {
			it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefix)})
			defer it.Close()
			seek := append([]byte(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
			it.Seek(seek)
			if it.ValidForPrefix([]byte(prefix)) {
				return it.Item().KeyCopy(nil)
			}
			return nil
		}
		if k := last(kJournal); k != nil {
			s.nextSeq = binary.BigEndian.Uint64(k[2:]) + 1
		} else {
			s.nextSeq = 1
		}
		var blob uint64
		if k := last(kChunk); k != nil {
			blob = binary.BigEndian.Uint64(k[2:10])
		}
		if k := last(kBlob); k != nil {
			blob = max(blob, binary.BigEndian.Uint64(k[2:10]))
		}
		if s.blobDir != "" {
			// A file of a deposit that a crash interrupted: its id
			// is not handed out again (the startup collection
			// removes the file).
			ids, err := blobFiles(s.blobDir)
			if err != nil {
				return err
			}
			for _, id := range ids {
				blob = max(blob, id)
			}
		}
		s.nextBlob.Store(blob)
		// Mailboxes: highest id and highest UIDVALIDITY.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kMailbox), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			id := binary.BigEndian.Uint64(k[2:])
			if id > s.nextMailbox.Load() {
				s.nextMailbox.Store(id)
			}
			var mb Mailbox
			if err := it.Item().Value(func(v []byte) error { return decodeMailbox(v, &mb) }); err != nil {
				return fmt.Errorf("vmstore: mailbox record %d: %w", id, err)
			}
			s.lastUIDValidity = max(s.lastUIDValidity, mb.UIDValidity)
		}
		return nil
	})
}

func (s *Store) newUIDValidity() uint32 {
	s.uidValidityMu.Lock()
	defer s.uidValidityMu.Unlock()
	v := uint32(s.now().Unix())
	if v <= s.lastUIDValidity {
		v = s.lastUIDValidity + 1
	}
	s.lastUIDValidity = v
	return v
}

func (s *Store) lockAccount(user string) func() {
	s.locksMu.Lock()
	l := s.locks[user]
	if l == nil {
		l = &acctLock{}
		s.locks[user] = l
	}
	l.refs++
	s.locksMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.locksMu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, user)
		}
		s.locksMu.Unlock()
	}
}

// wtx is one write transaction of one account, with the events it records.
type wtx struct {
	s       *Store
	user    string // the account whose lock is held
	txn     *badger.Txn
	writes  []kv // what txn wrote, in order (committed by the group commit)
	events  []Event
	now     time.Time
	changes map[uint64]*mbChange // for the mailbox index
	// modseqIdx holds the modseq index entries changed so far, written at
	// commit (message.go).
	modseqIdx map[string]*[]uint32
	// deletesAccount: the transaction deletes an account (AccountDeletions).
	deletesAccount bool
	// newFiles: the transaction records a blob whose file was created
	// (the committer syncs the blob directory before the group commits).
	newFiles bool
}

func (w *wtx) get(key []byte, v any) error {
	it, err := w.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func (w *wtx) exists(key []byte) (bool, error) {
	_, err := w.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (w *wtx) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.set(key, b)
}

// set and del write in the transaction (which checks its size and serves
// its later reads) and record the write for the group commit.
func (w *wtx) set(key, val []byte) error {
	if err := w.txn.Set(key, val); err != nil {
		return err
	}
	w.writes = append(w.writes, kv{key: key, val: val})
	return nil
}

func (w *wtx) del(key []byte) error {
	if err := w.txn.Delete(key); err != nil {
		return err
	}
	w.writes = append(w.writes, kv{key: key, del: true})
	return nil
}

func (w *wtx) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = w.now
	}
	w.events = append(w.events, ev)
}

// update runs fn in a write transaction under the account's lock, commits it
// with its journal events, waits until it is durable and published, and
// returns the events as committed.
func (s *Store) update(user string, fn func(w *wtx) error) ([]Event, error) {
	if s.failed.Load() {
		return nil, ErrStoreFailed
	}
	unlock := s.lockAccount(user)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	txn, ts := s.writeTxn(user)
	defer s.endRead(ts)
	defer txn.Discard()
	w := &wtx{s: s, txn: txn, now: s.now(), user: user}
	if err := fn(w); err != nil {
		return nil, err
	}
	wait, err := s.commit(w)
	// The next transaction of this account may start now: writeTxn makes
	// it wait until this commit is applied before it reads.
	unlock()
	locked = false
	if err != nil {
		return nil, err
	}
	if err := wait(); err != nil {
		return nil, err
	}
	return w.events, nil
}

// commit sequences the transaction's events and hands it to Badger. The
// returned function waits until the commit is durable and published.
func (s *Store) commit(w *wtx) (func() error, error) {
	return s.commitAll([]*wtx{w})
}

// commitAll sequences several transactions (of distinct accounts, their
// locks held) one after the other and queues them glued together: the
// committer writes them in one Badger transaction, so they become durable
// and visible together or not at all. The returned function waits until
// all of them are durable and published.
func (s *Store) commitAll(ws []*wtx) (func() error, error) {
	for _, w := range ws {
		if err := w.flushModseqIndex(); err != nil {
			return nil, err
		}
		if err := w.fillAccountIDs(); err != nil {
			return nil, err
		}
	}
	s.seqMu.Lock()
	if s.failed.Load() {
		s.seqMu.Unlock()
		return nil, ErrStoreFailed
	}
	if s.closing {
		s.seqMu.Unlock()
		return nil, ErrClosed
	}
	seq := s.nextSeq
	for _, w := range ws {
		for i := range w.events {
			w.events[i].Seq = seq
			seq++
			b, err := json.Marshal(&w.events[i])
			if err == nil {
				err = w.set(journalKey(w.events[i].Seq), b)
			}
			if err != nil {
				s.seqMu.Unlock()
				return nil, fmt.Errorf("vmstore: journal: %w", err)
			}
		}
	}
	s.nextSeq = seq
	ms := make([]*member, len(ws))
	for i, w := range ws {
		m := &member{w: w, glued: i < len(ws)-1}
		ms[i] = m
		s.enqueue(m)
		if w.user != "" {
			s.pendingOf[w.user] = append(s.pendingOf[w.user], m)
		}
	}
	s.seqMu.Unlock()
	return func() error {
		var first error
		for _, m := range ms {
			<-m.done
			if err := m.err; err != nil && first == nil {
				if errors.Is(err, badger.ErrDBClosed) {
					first = ErrClosed
				} else {
					first = fmt.Errorf("%w: %w", ErrStoreFailed, err)
				}
			}
		}
		return first
	}, nil
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func (s *Store) gcLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.CollectGarbage(context.Background()); err != nil {
				s.log.Warn("vmstore: garbage collection", "err", err)
			}
		}
	}
}

// prefixEnd returns the smallest key greater than every key with the prefix.
func prefixEnd(p []byte) []byte {
	e := bytes.Clone(p)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   {}
