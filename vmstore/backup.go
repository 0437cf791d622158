package vmstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// backupMagic starts a Lemonvox backup file. Version 2 files then say the
// store's format version on one line ("format N\n"); version 1 files, made
// before formats were versioned, hold a store of format 1. The Badger
// backup stream follows.
const (
	backupMagic   = "LEMONVOX-BACKUP\x00v2\n"
	backupMagicV1 = "LEMONVOX-BACKUP\x00v1\n"
)

// Progress is called during backup and restore with bytes done so far and
// the expected total (0 when unknown).
type Progress func(done, total int64)

type countWriter struct {
	w     io.Writer
	n     int64
	total int64
	p     Progress
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if c.p != nil {
		c.p(c.n, c.total)
	}
	return n, err
}

// Backup writes a consistent snapshot of the whole store to w. It can run
// while the store serves traffic.
func (s *Store) Backup(w io.Writer, progress Progress) (int64, error) {
	lsm, vlog := s.db.Size()
	cw := &countWriter{w: w, total: lsm + vlog, p: progress}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if _, err := fmt.Fprintf(bw, "%sformat %d\n", backupMagic, s.format); err != nil {
		return 0, err
	}
	// A stream at one read timestamp: every transaction is either wholly in
	// the backup or not at all. The files of blobs collected after it stay
	// until the backup ends.
	s.backupBegins()
	defer s.backupEnds()
	ts := s.beginRead()
	defer s.endRead(ts)
	stream := s.db.NewStreamAt(ts)
	stream.LogPrefix = "vmstore.Backup"
	stream.NumGo = 4
	if _, err := stream.Backup(bw, 0); err != nil {
		return cw.n, fmt.Errorf("vmstore: backup: %w", err)
	}
	if err := s.backupFiles(bw, ts); err != nil {
		return cw.n, fmt.Errorf("vmstore: backup: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countReader struct {
	r     io.Reader
	n     int64
	total int64
	p     Progress
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.p != nil {
		c.p(c.n, c.total)
	}
	return n, err
}

// ErrNotBackup: the file is not a Lemonvox backup.
var ErrNotBackup = errors.New("vmstore: not a Lemonvox backup file")

// Restore loads a backup into an empty store. The store must not have any
// account yet (restore into a fresh data directory).
func (s *Store) Restore(r io.Reader, size int64, progress Progress) error {
	accts, err := s.ListAccounts()
	if err != nil {
		return err
	}
	if len(accts) > 0 {
		return fmt.Errorf("%w: the store is not empty (%d accounts); restore into a new data directory", ErrNotPermitted, len(accts))
	}
	cr := &countReader{r: r, total: size, p: progress}
	br := bufio.NewReaderSize(cr, 1<<20)
	format, err := readBackupHeader(br)
	if err != nil {
		return err
	}
	if format > FormatVersion() {
		return newerFormatError("the backup", format)
	}
	// Badger's Load moves its timestamps without a lock: nothing else may
	// use the database meanwhile (the startup collection is quick on an
	// empty store).
	<-s.orphansDone
	if err := s.db.Load(br, 256); err != nil {
		return fmt.Errorf("vmstore: restore: %w", err)
	}
	// Timestamps continue after the restored ones; the restored data is
	// of the backup's format (this write supersedes the record Open
	// stamped on the empty store); older ones are migrated now.
	s.resetClock()
	fb, _ := json.Marshal(formatRecord{Version: format, Written: s.now().UTC()})
	if err := s.blindUpdate(func(txn *badger.Txn) error { return txn.Set([]byte(keyFormat), fb) }); err != nil {
		return err
	}
	s.format = format
	// Ids and the journal sequence continue after the restored ones.
	if err := s.loadCounters(); err != nil {
		return err
	}
	s.idx.reset(int64(s.nextSeq - 1))
	return s.migrate(format)
}

// readBackupHeader reads the magic and the format version of a backup.
func readBackupHeader(br *bufio.Reader) (int, error) {
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return 0, ErrNotBackup
	}
	switch string(magic) {
	case backupMagicV1:
		return legacyFormat, nil
	case backupMagic:
	default:
		return 0, ErrNotBackup
	}
	line, err := br.ReadString('\n')
	if err != nil || len(line) > 32 {
		return 0, ErrNotBackup
	}
	var v int
	if _, err := fmt.Sscanf(line, "format %d\n", &v); err != nil || v < legacyFormat {
		return 0, fmt.Errorf("%w: bad format line %q", ErrNotBackup, line)
	}
	return v, nil
}

// BackupFormat reads the header of a backup and returns the store format
// version it holds.
func BackupFormat(r io.Reader) (int, error) { return readBackupHeader(bufio.NewReader(r)) }

// Verify checks the store's invariants: every message's blob and structure
// exist and its content hash matches, counters equal a recount, the modseq
// index agrees with the messages. It returns the problems found.
func (s *Store) Verify(ctx context.Context, checkContent bool) ([]string, error) {
	var problems []string
	accts, err := s.ListAccounts()
	if err != nil {
		return nil, err
	}
	for _, a := range accts {
		mbs, err := s.Mailboxes(a.Name)
		if err != nil {
			return nil, err
		}
		for _, mb := range mbs {
			if ctx.Err() != nil {
				return problems, ctx.Err()
			}
			msgs, err := s.Messages(mb.ID, 1, 0)
			if err != nil {
				return nil, err
			}
			var c Counts
			for i := range msgs {
				m := &msgs[i]
				c.apply(m, +1)
				if m.UID >= mb.UIDNext || m.ModSeq > mb.HighestModSeq {
					problems = append(problems, fmt.Sprintf("%s/%s uid %d: uid/modseq beyond mailbox", a.Name, mb.Name, m.UID))
				}
				if _, err := s.Structure(m); err != nil {
					problems = append(problems, fmt.Sprintf("%s/%s uid %d: %v", a.Name, mb.Name, m.UID, err))
				}
				if checkContent {
					if err := s.checkBlob(m); err != nil {
						problems = append(problems, fmt.Sprintf("%s/%s uid %d: %v", a.Name, mb.Name, m.UID, err))
					}
				}
			}
			if c != mb.Counts {
				problems = append(problems, fmt.Sprintf("%s/%s: counters %+v, recount %+v", a.Name, mb.Name, mb.Counts, c))
			}
			changed, err := s.ChangedSince(mb.ID, 0)
			if err != nil {
				return nil, err
			}
			if len(changed) != len(msgs) {
				problems = append(problems, fmt.Sprintf("%s/%s: modseq index has %d entries for %d messages", a.Name, mb.Name, len(changed), len(msgs)))
			}
		}
	}
	return problems, nil
}

func (s *Store) checkBlob(m *Message) error {
	h := newHash()
	if _, err := io.Copy(h, s.OpenMessage(m).Reader()); err != nil {
		return err
	}
	if string(h.Sum(nil)) != string(m.Hash) {
		return errors.New("content hash mismatch")
	}
	return nil
}

// Stats are sizes for metrics.
type Stats struct {
	LSMBytes, VLogBytes int64
	JournalSeq          uint64
}

// Stats returns database sizes.
func (s *Store) Stats() Stats {
	lsm, vlog := s.db.Size()
	return Stats{LSMBytes: lsm, VLogBytes: vlog, JournalSeq: s.LastSeq()}
}

// backupFiles appends to a backup the contents that are in blob files, as
// the chunks (B/ keys, at their blob record's version) that Restore loads
// with the rest: a restored store has them in chunks. The frames are
// Badger's backup framing (little-endian length, KVList).
func (s *Store) backupFiles(w io.Writer, ts uint64) error {
	if s.blobDir == "" {
		return nil
	}
	type fileBlob struct {
		blob, version uint64
		size          int64
	}
	var blobs []fileBlob
	err := s.viewAt(ts, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kBlob), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var m blobMeta
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &m) }); err != nil {
				return err
			}
			if m.File {
				blobs = append(blobs, fileBlob{blobOfChunkKey(it.Item().Key()), it.Item().Version(), m.Size})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for _, b := range blobs {
		f, err := os.Open(s.blobPath(b.blob))
		if errors.Is(err, fs.ErrNotExist) {
			continue // restored: in chunks, already in the stream
		}
		if err != nil {
			return err
		}
		for i, off := uint32(0), int64(0); off < b.size; i++ {
			n, err := f.ReadAt(buf[:min(int64(chunkSize), b.size-off)], off)
			if err != nil {
				f.Close()
				return fmt.Errorf("blob %d file: %w", b.blob, err)
			}
			list := &pb.KVList{Kv: []*pb.KV{{Key: chunkKey(b.blob, i), Value: buf[:n], Version: b.version,
				UserMeta: []byte{0}, Meta: []byte{0}}}}
			out, err := proto.Marshal(list)
			if err == nil {
				err = binary.Write(w, binary.LittleEndian, uint64(len(out)))
			}
			if err == nil {
				_, err = w.Write(out)
			}
			if err != nil {
				f.Close()
				return err
			}
			off += int64(n)
		}
		f.Close()
	}
	return nil
}
