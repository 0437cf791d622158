package vmstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Large message contents are kept in files beside the database, one file
// per blob, instead of in chunks in Badger's value log: Badger copies a
// value into a buffer, then into its memory-mapped log (a page fault per
// page), checksums it and syncs the log with msync, which for a 650 kB
// voicemail cost more CPU than everything else a deposit does. A blob file
// is written with plain writes as the content streams in and made durable
// with fdatasync by the depositing session (sessions' syncs run side by
// side and the file system batches them); the committer syncs the
// directory once for a group that creates files, before the group's Badger
// commit: a blob record (R/) is never durable before its file and the
// file's name.
//
//   - A content smaller than fileMin stays in chunks: a file costs an inode
//     and its own sync.
//   - Files are named by blob id (16 hex digits) under <dir>/blobs. A file
//     whose blob has no R/ record is a deposit interrupted by a crash (or
//     refused): the startup collection removes every such file up to the
//     highest id found at Open, and new blobs take ids above it.
//   - Reading tries the file first for a content of at least fileMin and
//     falls back to chunks (a restored store, or one written before).
//   - Backup sends a file's content as chunks (B/ keys) after Badger's
//     stream, so that a backup is self-contained and restores into chunks.

// fileMin is the size from which a deposit's content goes to a file.
const fileMin = 64 << 10

const blobDirName = "blobs"

func (s *Store) blobPath(blob uint64) string {
	return filepath.Join(s.blobDir, fmt.Sprintf("%016x", blob))
}

// openBlobDir creates the blob directory and returns the highest blob id
// of a file in it.
func openBlobDir(dir string) (uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return 0, err
	}
	ids, err := blobFiles(dir)
	var top uint64
	for _, id := range ids {
		top = max(top, id)
	}
	return top, err
}

// blobFiles lists the blob ids that have a file in dir.
func blobFiles(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range ents {
		if len(e.Name()) != 16 {
			continue
		}
		id, err := strconv.ParseUint(e.Name(), 16, 64)
		if err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// toFile moves the sink's content so far into a new file of its own; what
// follows is written there.
func (c *chunkSink) toFile() error {
	f, err := os.OpenFile(c.s.blobPath(c.blob), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vmstore: creating blob file: %w", err)
	}
	c.file = f
	for _, ch := range c.pending {
		if err := c.writeFile(ch); err != nil {
			return err
		}
	}
	putChunks(c.pending)
	c.pending, c.pendLen, c.n = nil, 0, 0
	if len(c.cur) > 0 {
		if err := c.writeFile(c.cur); err != nil {
			return err
		}
		c.cur = c.cur[:0]
	}
	return nil
}

func (c *chunkSink) writeFile(p []byte) error {
	if _, err := c.file.Write(p); err != nil {
		return fmt.Errorf("vmstore: writing blob file: %w", err)
	}
	// (Starting the writeback of each piece at once with
	// sync_file_range, so that the final fdatasync waits less, measured
	// 25-40% fewer deposits per second: the file system then allocates
	// and journals piece by piece.)
	return nil
}

// finishFile writes the rest and makes the file durable.
func (c *chunkSink) finishFile() error {
	if len(c.cur) > 0 {
		if err := c.writeFile(c.cur); err != nil {
			return err
		}
		c.cur = c.cur[:0]
	}
	if err := fdatasync(c.file); err != nil {
		return fmt.Errorf("vmstore: syncing blob file: %w", err)
	}
	err := c.file.Close()
	c.file = nil
	c.inFile = true
	return err
}

// dropFile removes the sink's file (a failed, refused or deduplicated
// deposit).
func (c *chunkSink) dropFile() {
	if c.file != nil {
		c.file.Close()
		c.file = nil
	} else if !c.inFile {
		return
	}
	c.inFile = false
	if err := os.Remove(c.s.blobPath(c.blob)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.s.log.Warn("vmstore: removing the blob file of a failed deposit", "blob", c.blob, "err", err)
	}
}

// readFileAt reads a blob's content from its file; ok is false when the
// blob has no file (its content is in chunks).
func (s *Store) readFileAt(blob uint64, p []byte, off int64) (n int, ok bool, err error) {
	f, err := os.Open(s.blobPath(blob))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	defer f.Close()
	n, err = f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("vmstore: blob %d file short", blob)
	}
	return n, true, err
}

// removeBlobFiles removes the files of collected blobs; while a backup
// runs, it keeps them until the backup ends (the backup may be reading a
// file whose record is in its snapshot).
func (s *Store) removeBlobFiles(blobs []uint64) {
	s.filesMu.Lock()
	if s.backups > 0 {
		s.keptFiles = append(s.keptFiles, blobs...)
		s.filesMu.Unlock()
		return
	}
	s.filesMu.Unlock()
	for _, b := range blobs {
		if err := os.Remove(s.blobPath(b)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("vmstore: removing a collected blob file", "blob", b, "err", err)
		}
	}
}

// backupBegins keeps collected blob files until backupEnds.
func (s *Store) backupBegins() {
	s.filesMu.Lock()
	s.backups++
	s.filesMu.Unlock()
}

func (s *Store) backupEnds() {
	s.filesMu.Lock()
	s.backups--
	var kept []uint64
	if s.backups == 0 {
		kept, s.keptFiles = s.keptFiles, nil
	}
	s.filesMu.Unlock()
	if len(kept) > 0 {
		s.removeBlobFiles(kept)
	}
}
