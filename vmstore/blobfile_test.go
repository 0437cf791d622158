package vmstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func largeBody(t *testing.T, subject string, n int) []byte {
	t.Helper()
	audio := make([]byte, n)
	if _, err := rand.Read(audio); err != nil {
		t.Fatal(err)
	}
	return append([]byte("Subject: "+subject+"\r\nContent-Type: audio/basic\r\nContent-Transfer-Encoding: binary\r\n\r\n"), audio...)
}

func blobFileExists(t *testing.T, s *Store, blob uint64) bool {
	t.Helper()
	_, err := os.Stat(s.blobPath(blob))
	return err == nil
}

// A large content goes to its own file (no chunks), reads back, is shared
// by a deduplicated copy, and the collector removes the file once no
// message refers to it; a small one stays in chunks.
func TestBlobFileLifecycle(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "f")
	body := largeBody(t, "file", 700<<10)
	res, err := s.Deposit(DepositReq{User: "f", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	blob := res.Message.Blob
	if !blobFileExists(t, s, blob) {
		t.Fatal("no blob file for a large content")
	}
	if n := s.chunkCount(t, blob); n != 0 {
		t.Fatalf("%d chunks in Badger for a blob in a file", n)
	}
	got, err := io.ReadAll(s.OpenMessage(&res.Message).Reader())
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back: %v (equal %v)", err, bytes.Equal(got, body))
	}
	part := make([]byte, 1000)
	if _, err := s.OpenMessage(&res.Message).ReadAt(part, 300<<10); err != nil || !bytes.Equal(part, body[300<<10:300<<10+1000]) {
		t.Fatalf("ReadAt inside the file: %v", err)
	}
	// The same bytes again: bound to the first blob, the second file goes.
	res2, err := s.Deposit(DepositReq{User: "f", Body: bytes.NewReader(body), InternalDate: time.Unix(1, 0)})
	if err != nil || res2.Message.Blob != blob {
		t.Fatalf("dedupe: %v blob %d vs %d", err, res2.Message.Blob, blob)
	}
	if blobFileExists(t, s, res2.Message.Blob+1) || s.countFiles(t) != 1 {
		t.Fatalf("%d blob files after a deduplicated deposit, want 1", s.countFiles(t))
	}
	small := deposit(t, s, "f", "", "Subject: small\r\n\r\nsmall")
	if blobFileExists(t, s, small.Message.Blob) || s.chunkCount(t, small.Message.Blob) != 1 {
		t.Fatal("a small content is not in one chunk")
	}
	if p, err := s.Verify(t.Context(), true); err != nil || len(p) > 0 {
		t.Fatal(p, err)
	}
	if _, err := s.Remove("f", res.Mailbox.ID, []uint32{res.Message.UID, res2.Message.UID}); err != nil {
		t.Fatal(err)
	}
	st, err := s.CollectGarbage(context.Background())
	if err != nil || st.BlobsRemoved != 1 {
		t.Fatalf("collect: %+v %v", st, err)
	}
	if blobFileExists(t, s, blob) {
		t.Fatal("the collected blob's file is still there")
	}
}

// A file without a blob record (a deposit interrupted before its commit,
// half written) is removed by the startup collection, and its id is not
// handed out again.
func TestBlobFileOrphanRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "o")
	body := largeBody(t, "kept", 200<<10)
	res, err := s.Deposit(DepositReq{User: "o", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	orphan := res.Message.Blob + 5
	if err := os.WriteFile(s.blobPath(orphan), body[:1000], 0o600); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openTest(t, dir)
	if next := s2.nextBlob.Load(); next < orphan {
		t.Fatalf("next blob id %d would reuse the orphan's %d", next, orphan)
	}
	select {
	case <-s2.orphansDone:
	case <-time.After(time.Minute):
		t.Fatal("startup collection did not finish")
	}
	if blobFileExists(t, s2, orphan) {
		t.Fatal("orphan blob file still there")
	}
	m, err := s2.Message(res.Mailbox.ID, res.Message.UID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(s2.OpenMessage(m).Reader())
	if !bytes.Equal(got, body) || !blobFileExists(t, s2, res.Message.Blob) {
		t.Fatal("the committed blob's file was touched")
	}
	res2, err := s2.Deposit(DepositReq{User: "o", Body: bytes.NewReader(largeBody(t, "after", 100<<10))})
	if err != nil || res2.Message.Blob <= orphan {
		t.Fatalf("deposit after reopen: %v, blob %d (orphan %d)", err, res2.Message.Blob, orphan)
	}
}

// A backup carries the contents of blob files; the restored store has them
// in chunks, reads and verifies them, and collects them.
func TestBlobFileBackupRestore(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "b")
	body := largeBody(t, "backed up", 600<<10+7)
	res, err := s.Deposit(DepositReq{User: "b", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, t.TempDir())
	if err := s2.Restore(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil); err != nil {
		t.Fatal(err)
	}
	m, err := s2.Message(res.Mailbox.ID, res.Message.UID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s2.OpenMessage(m).Reader())
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("restored content: %v (equal %v)", err, bytes.Equal(got, body))
	}
	if p, err := s2.Verify(t.Context(), true); err != nil || len(p) > 0 {
		t.Fatal(p, err)
	}
	// A backup of the restored store holds it too.
	var buf2 bytes.Buffer
	if _, err := s2.Backup(&buf2, nil); err != nil {
		t.Fatal(err)
	}
	s3 := openTest(t, t.TempDir())
	if err := s3.Restore(bytes.NewReader(buf2.Bytes()), int64(buf2.Len()), nil); err != nil {
		t.Fatal(err)
	}
	if p, err := s3.Verify(t.Context(), true); err != nil || len(p) > 0 {
		t.Fatal(p, err)
	}
	if _, err := s2.Remove("b", res.Mailbox.ID, []uint32{res.Message.UID}); err != nil {
		t.Fatal(err)
	}
	if st, err := s2.CollectGarbage(context.Background()); err != nil || st.BlobsRemoved != 1 || st.ChunksRemoved < 3 {
		t.Fatalf("collect in the restored store: %+v %v", st, err)
	}
	if n := s2.chunkCount(t, res.Message.Blob); n != 0 {
		t.Fatalf("%d chunks left after collection", n)
	}
}

// A file collected while a backup runs stays until the backup ends.
func TestBlobFileKeptDuringBackup(t *testing.T) {
	s := openTest(t, t.TempDir())
	s.backupBegins()
	s.removeBlobFiles([]uint64{42})
	f := s.blobPath(42)
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f); err != nil {
		t.Fatal("removed during a backup")
	}
	s.backupEnds()
	if _, err := os.Stat(f); err == nil {
		t.Fatal("not removed after the backup")
	}
}

func (s *Store) chunkCount(t *testing.T, blob uint64) uint32 {
	t.Helper()
	var n uint32
	if err := s.view(func(txn *badger.Txn) error { n = countChunks(txn, blob); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *Store) countFiles(t *testing.T) int {
	t.Helper()
	ids, err := blobFiles(s.blobDir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}
