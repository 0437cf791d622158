package vmstore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

const (
	chunkSize = 256 << 10
	// flushBytes: a deposit keeps at most this much in memory; beyond it,
	// chunks are written in their own transactions as they arrive.
	flushBytes = 4 << 20
	kRef       = "Q/" // Q/<blob:8><mbid:8><uid:4>: a message's reference to a blob
)

// blobMeta is the R/ record of a blob.
type blobMeta struct {
	Size   int64  `json:"size"`
	Hash   []byte `json:"hash"`
	Chunks uint32 `json:"chunks"`
	// File: the content is in the blob's file (blobfile.go), not in
	// chunks (a restored store has it in chunks again).
	File bool `json:"file,omitempty"`
}

func refKey(blob, mb uint64, uid uint32) []byte {
	return be32(be64(be64([]byte(kRef), blob), mb), uid)
}

func refPrefix(blob uint64) []byte { return be64([]byte(kRef), blob) }

func (w *wtx) addRef(blob, mb uint64, uid uint32) error  { return w.set(refKey(blob, mb, uid), nil) }
func (w *wtx) dropRef(blob, mb uint64, uid uint32) error { return w.del(refKey(blob, mb, uid)) }

// chunkSink collects a deposit's bytes into chunks, flushing them to the
// database once more than flushBytes are pending.
type chunkSink struct {
	s       *Store
	blob    uint64
	cur     []byte
	pending [][]byte
	pendLen int
	n       uint32 // chunks so far (flushed + pending + cur)
	flushed uint32 // chunks already written
	size    int64
	err     error
	// file is the blob's file while it is written (blobfile.go); inFile
	// says the content is in it, complete and durable.
	file   *os.File
	inFile bool
}

func (c *chunkSink) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	c.size += int64(n)
	if c.file == nil && c.flushed == 0 && c.s.blobDir != "" && c.size >= fileMin {
		if c.err = c.toFile(); c.err != nil {
			return 0, c.err
		}
	}
	if c.file != nil {
		if c.err = c.writeBuffered(p); c.err != nil {
			return 0, c.err
		}
		return n, nil
	}
	for len(p) > 0 {
		if c.cur == nil {
			c.cur = (*chunkPool.Get().(*[]byte))[:0]
		}
		k := min(len(p), chunkSize-len(c.cur))
		c.cur = append(c.cur, p[:k]...)
		p = p[k:]
		if len(c.cur) == chunkSize {
			c.pending = append(c.pending, c.cur)
			c.pendLen += len(c.cur)
			c.cur = nil
			c.n++
			if c.pendLen >= flushBytes {
				if c.err = c.flush(); c.err != nil {
					return 0, c.err
				}
			}
		}
	}
	return n, nil
}

// writeBuffered writes p to the blob's file through a chunk-sized buffer
// (a piece at least that large goes straight through).
func (c *chunkSink) writeBuffered(p []byte) error {
	if len(c.cur) == 0 && len(p) >= chunkSize {
		return c.writeFile(p)
	}
	for len(p) > 0 {
		if c.cur == nil {
			c.cur = (*chunkPool.Get().(*[]byte))[:0]
		}
		k := min(len(p), chunkSize-len(c.cur))
		c.cur = append(c.cur, p[:k]...)
		p = p[k:]
		if len(c.cur) == chunkSize {
			if err := c.writeFile(c.cur); err != nil {
				return err
			}
			c.cur = c.cur[:0]
		}
	}
	return nil
}

func (c *chunkSink) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.s.blindUpdate(func(txn *badger.Txn) error {
		for i, ch := range c.pending {
			if err := txn.Set(chunkKey(c.blob, c.flushed+uint32(i)), ch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vmstore: writing message chunks: %w", err)
	}
	c.flushed += uint32(len(c.pending))
	putChunks(c.pending) // committed: Badger holds no reference to them
	c.pending, c.pendLen = nil, 0
	return nil
}

// chunkPool recycles chunk buffers: a deposit's chunks are garbage once
// its transaction is committed or dropped, and fresh 256 KiB buffers cost
// a clearing and page faults for every one.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func putChunks(chs [][]byte) {
	for _, ch := range chs {
		if cap(ch) == chunkSize {
			ch = ch[:0]
			chunkPool.Put(&ch)
		}
	}
}

// recycle returns the sink's buffers to the pool once nothing refers to
// them: after the transaction that wrote them has committed or was
// dropped (the group commit copies values into Badger before it returns).
func (c *chunkSink) recycle() {
	putChunks(c.pending)
	if c.cur != nil {
		putChunks([][]byte{c.cur})
	}
	c.pending, c.cur, c.pendLen = nil, nil, 0
}

// finish moves the last partial chunk to pending, or completes the blob's
// file and makes it durable.
func (c *chunkSink) finish() error {
	if c.file != nil {
		return c.finishFile()
	}
	if len(c.cur) > 0 {
		c.pending = append(c.pending, c.cur)
		c.cur = nil
		c.n++
	}
	return nil
}

// writePending writes the pending chunks inside the final transaction.
func (c *chunkSink) writePending(w *wtx) error {
	for i, ch := range c.pending {
		if err := w.set(chunkKey(c.blob, c.flushed+uint32(i)), ch); err != nil {
			return err
		}
	}
	return nil
}

// discard deletes chunks already flushed, or the blob's file (deposit
// failed or deduplicated).
func (c *chunkSink) discard() {
	c.dropFile()
	if c.flushed == 0 {
		return
	}
	if err := c.s.deleteChunks(c.blob, c.flushed); err != nil {
		c.s.log.Warn("vmstore: dropping chunks of a failed deposit", "blob", c.blob, "err", err)
	}
}

func (s *Store) deleteChunks(blob uint64, n uint32) error {
	return s.batch(func(wb *badger.WriteBatch) error {
		for i := uint32(0); i < n; i++ {
			if err := wb.Delete(chunkKey(blob, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// BlobReader reads a message's raw bytes. It implements io.ReaderAt and,
// through Reader, sequential reading; chunks are fetched as needed.
type BlobReader struct {
	s    *Store
	blob uint64
	size int64
}

// OpenMessage returns a reader of the message's raw RFC 5322 bytes.
func (s *Store) OpenMessage(m *Message) *BlobReader {
	return &BlobReader{s: s, blob: m.Blob, size: m.Size}
}

// Size is the message size in bytes.
func (b *BlobReader) Size() int64 { return b.size }

// ReadAt implements io.ReaderAt.
func (b *BlobReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrInvalid)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	if b.size >= fileMin && b.s.blobDir != "" {
		n, ok, err := b.s.readFileAt(b.blob, p[:min(int64(len(p)), b.size-off)], off)
		if ok {
			if err == nil && n < len(p) {
				err = io.EOF
			}
			return n, err
		}
	}
	n := 0
	err := b.s.view(func(txn *badger.Txn) error {
		for n < len(p) && off < b.size {
			ci := uint32(off / chunkSize)
			it, err := txn.Get(chunkKey(b.blob, ci))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("vmstore: blob %d chunk %d missing: %w", b.blob, ci, ErrNotFound)
			}
			if err != nil {
				return err
			}
			err = it.Value(func(v []byte) error {
				within := off % chunkSize
				if within >= int64(len(v)) {
					return fmt.Errorf("vmstore: blob %d chunk %d short", b.blob, ci)
				}
				k := copy(p[n:], v[within:])
				n += k
				off += int64(k)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Section returns a reader of bytes [off, off+n) of the message.
func (b *BlobReader) Section(off, n int64) *io.SectionReader {
	return io.NewSectionReader(b, off, n)
}

// Reader returns a sequential reader of the whole message.
func (b *BlobReader) Reader() *io.SectionReader { return io.NewSectionReader(b, 0, b.size) }

// Structure returns the parsed MIME tree of a message. The result is
// shared: callers must not modify it.
func (s *Store) Structure(m *Message) (*Part, error) {
	if p := s.parts.get(m.Hash); p != nil {
		return p, nil
	}
	var p Part
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, partKey(m.Hash), &p) })
	if err != nil {
		return nil, fmt.Errorf("vmstore: structure of message %d: %w", m.UID, err)
	}
	s.parts.put(m.Hash, &p)
	return &p, nil
}

func blobOfChunkKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[2:10]) }

func newHash() hash.Hash { return sha256.New() }
