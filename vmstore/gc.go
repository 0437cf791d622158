package vmstore

import (
	"context"
	"encoding/json"
	"errors"

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
	s.gcMu.Unlock()
	if err != nil {
		return st, err
	}
	if n, err := s.collectOrphans(); err == nil {
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

// collectOrphanChunks removes chunks without a blob record at startup (a
// deposit interrupted by a crash).
func (s *Store) collectOrphanChunks() error {
	_, err := s.collectOrphans()
	return err
}

// collectOrphans removes chunks of blobs that have no R/ record and are not
// being written by a deposit in progress.
func (s *Store) collectOrphans() (int, error) {
	var keys [][]byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kChunk)})
		defer it.Close()
		var last uint64
		var lastOrphan bool
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			blob := blobOfChunkKey(k)
			if blob != last {
				last = blob
				s.inflightMu.Lock()
				_, busy := s.inflight[blob]
				s.inflightMu.Unlock()
				_, err := txn.Get(blobKey(blob))
				lastOrphan = !busy && errors.Is(err, badger.ErrKeyNotFound)
			}
			if lastOrphan {
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
