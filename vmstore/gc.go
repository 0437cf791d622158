package vmstore

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// GCStats reports a collection.
type GCStats struct {
	BlobsRemoved   int
	BytesRemoved   int64
	ChunksRemoved  int
	ValueLogRounds int
}

// CollectGarbage removes blobs no message refers to, with their chunks,
// content-hash entry and structure, then lets Badger reclaim value-log space.
func (s *Store) CollectGarbage(ctx context.Context) (GCStats, error) {
	var st GCStats
	s.gcMu.Lock()
	type victim struct {
		blob uint64
		meta blobMeta
	}
	var victims []victim
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kBlob), PrefetchValues: true})
		defer it.Close()
		ri := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kRef)})
		defer ri.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			blob := blobOfChunkKey(it.Item().Key())
			p := refPrefix(blob)
			ri.Seek(p)
			if ri.ValidForPrefix(p) {
				continue
			}
			var m blobMeta
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &m) }); err != nil {
				return err
			}
			if m.File {
				// Restored from a backup, its content is in chunks.
				m.Chunks = countChunks(txn, blob)
			}
			victims = append(victims, victim{blob, m})
		}
		return nil
	})
	if err == nil && len(victims) > 0 {
		err = s.batch(func(wb *badger.WriteBatch) error {
			for _, v := range victims {
				keys := [][]byte{blobKey(v.blob), hashKey(v.meta.Hash), partKey(v.meta.Hash)}
				for i := uint32(0); i < v.meta.Chunks; i++ {
					keys = append(keys, chunkKey(v.blob, i))
				}
				for _, k := range keys {
					if err := wb.Delete(k); err != nil {
						return err
					}
				}
				st.BlobsRemoved++
				st.BytesRemoved += v.meta.Size
				st.ChunksRemoved += int(v.meta.Chunks)
			}
			return nil
		})
	}
	if err == nil {
		var files []uint64
		for _, v := range victims {
			if v.meta.File {
				files = append(files, v.blob)
			}
		}
		s.removeBlobFiles(files)
	}
	s.gcMu.Unlock()
	if err != nil {
		return st, err
	}
	if n, err := s.collectOrphans(math.MaxUint64); err == nil {
		st.ChunksRemoved += n
	}
	for ctx.Err() == nil && !s.opts.InMemory {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("vmstore: value log GC", "err", err)
			}
			break
		}
		st.ValueLogRounds++
	}
	if st.BlobsRemoved > 0 {
		s.log.Info("vmstore: collected blobs", "blobs", st.BlobsRemoved, "bytes", st.BytesRemoved)
	}
	return st, nil
}

// startupCollect removes, once and in the background, the chunks that
// deposits interrupted by a crash left without a blob record. Only blobs
// that existed when the store was opened are considered.
func (s *Store) startupCollect() {
	defer s.wg.Done()
	defer close(s.orphansDone)
	if startupCollectHook != nil {
		startupCollectHook()
	}
	if files, err := s.collectOrphanFiles(s.orphanBlob); err != nil {
		s.log.Warn("vmstore: orphan blob file collection failed", "err", err)
	} else if files > 0 {
		s.log.Info("vmstore: removed blob files of interrupted deposits", "files", files)
	}
	n, err := s.collectOrphans(s.orphanBlob)
	switch {
	case errors.Is(err, errStopped):
	case err != nil:
		s.log.Warn("vmstore: orphan chunk collection failed", "err", err)
	case n > 0:
		s.log.Info("vmstore: removed chunks of interrupted deposits", "chunks", n)
	}
}

// startupCollectHook, when set (tests), runs before the startup collection.
var startupCollectHook func()

var errStopped = errors.New("vmstore: stopped")

// collectOrphans removes chunks of blobs (up to id limit) that have no R/
// record and are not being written by a deposit in progress. Candidates
// are checked again just before they go, in a fresh transaction: a deposit
// that committed its blob record after the scan began keeps its chunks.
func (s *Store) collectOrphans(limit uint64) (int, error) {
	stopped := func() bool {
		select {
		case <-s.stop:
			return true
		default:
			return false
		}
	}
	busy := func(blob uint64) bool {
		s.inflightMu.Lock()
		defer s.inflightMu.Unlock()
		_, ok := s.inflight[blob]
		return ok
	}
	var cands []uint64
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kChunk)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Seek(chunkPrefix(nextBlobOf(it))) {
			blob := blobOfChunkKey(it.Item().Key())
			if blob > limit {
				break
			}
			if stopped() {
				return errStopped
			}
			if _, err := txn.Get(blobKey(blob)); errors.Is(err, badger.ErrKeyNotFound) && !busy(blob) {
				cands = append(cands, blob)
			} else if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil || len(cands) == 0 {
		return 0, err
	}
	var keys [][]byte
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for _, blob := range cands {
			if _, err := txn.Get(blobKey(blob)); !errors.Is(err, badger.ErrKeyNotFound) || busy(blob) {
				continue
			}
			p := chunkPrefix(blob)
			for it.Seek(p); it.ValidForPrefix(p); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	err = s.batch(func(wb *badger.WriteBatch) error {
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(keys), nil
}

// nextBlobOf is the chunk prefix of the blob after the iterator's current one:
// the scan visits one key per blob.
func nextBlobOf(it *badger.Iterator) uint64 { return blobOfChunkKey(it.Item().Key()) + 1 }

// countChunks counts the chunks of a blob.
func countChunks(txn *badger.Txn, blob uint64) uint32 {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: chunkPrefix(blob)})
	defer it.Close()
	var n uint32
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// collectOrphanFiles removes the blob files (of ids up to limit) that have
// no blob record: written by a deposit that a crash interrupted before its
// commit, or left by a collection interrupted between its commit and the
// removal. Ids up to limit are not handed out again, so no deposit is
// writing one of them.
func (s *Store) collectOrphanFiles(limit uint64) (int, error) {
	if s.blobDir == "" {
		return 0, nil
	}
	ids, err := blobFiles(s.blobDir)
	if err != nil {
		return 0, err
	}
	var orphans []uint64
	err = s.view(func(txn *badger.Txn) error {
		for _, id := range ids {
			if id > limit {
				continue
			}
			if _, err := txn.Get(blobKey(id)); errors.Is(err, badger.ErrKeyNotFound) {
				orphans = append(orphans, id)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.removeBlobFiles(orphans)
	return len(orphans), nil
}
