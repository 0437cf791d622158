package vmstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openDir(t *testing.T, dir string) (*Store, error) {
	t.Helper()
	return Open(Options{Dir: dir, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
}

// makeLegacy removes every V/ record, as in a store written before format
// versions existed.
func makeLegacy(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.DropPrefix([]byte(kVersion)); err != nil {
		t.Fatal(err)
	}
}

func TestFormatVersionFreshStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if s.Format() != FormatVersion() {
		t.Fatalf("fresh store format %d, want %d", s.Format(), FormatVersion())
	}
	if ok, _ := s.Initialized(); ok {
		t.Fatal("a fresh store is not initialized")
	}
	if recs, _ := s.Migrations(); len(recs) != 0 {
		t.Fatalf("a fresh store ran migrations: %+v", recs)
	}
	s.Close()
	s2 := openTest(t, dir)
	if s2.Format() != FormatVersion() {
		t.Fatalf("reopened format %d", s2.Format())
	}
}

func TestLegacyStoreIsMigrated(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "old")
	makeLegacy(t, s)
	s.Close()
	s2 := openTest(t, dir)
	if s2.Format() != FormatVersion() {
		t.Fatalf("format after migration %d, want %d", s2.Format(), FormatVersion())
	}
	recs, err := s2.Migrations()
	if err != nil || len(recs) != len(migrations) || recs[0].Version != 2 || recs[0].Name == "" || recs[0].Done.IsZero() {
		t.Fatalf("migration records %+v %v", recs, err)
	}
	// Version 2: a store with accounts has been through its first start.
	if ok, _ := s2.Initialized(); !ok {
		t.Fatal("legacy store with accounts not marked initialized")
	}
	s2.Close()
	// Migrations run once.
	s3 := openTest(t, dir)
	if recs2, _ := s3.Migrations(); len(recs2) != len(recs) || !recs2[0].Done.Equal(recs[0].Done) {
		t.Fatalf("migration ran again: %+v", recs2)
	}
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "x")
	if err := writeFormat(s.db, FormatVersion()+1, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := openDir(t, dir)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("open of a newer store: %v", err)
	}
	want := fmt.Sprintf("has format version %d, this build of Lemonvox reads versions up to %d", FormatVersion()+1, FormatVersion())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("message %q lacks %q or the directory", err, want)
	}
}

func TestBackupCarriesFormat(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "b")
	if err := s.MarkInitialized(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	v, err := BackupFormat(bytes.NewReader(buf.Bytes()))
	if err != nil || v != FormatVersion() {
		t.Fatalf("backup format %d %v", v, err)
	}
	// The first-run mark travels with the backup.
	s2 := openTest(t, "")
	if err := s2.Restore(bytes.NewReader(buf.Bytes()), 0, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s2.Initialized(); !ok {
		t.Fatal("restored store lost its first-run mark")
	}
	if s2.Format() != FormatVersion() {
		t.Fatalf("restored format %d", s2.Format())
	}
	// A backup of a newer format is refused before anything is loaded.
	newer := bytes.Replace(buf.Bytes(), []byte(fmt.Sprintf("format %d\n", FormatVersion())), []byte(fmt.Sprintf("format %d\n", FormatVersion()+1)), 1)
	s3 := openTest(t, "")
	if err := s3.Restore(bytes.NewReader(newer), 0, nil); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("restore of a newer backup: %v", err)
	}
	if has, _ := s3.HasAccounts(); has {
		t.Fatal("a refused restore loaded data")
	}
}

func TestRestoreOfLegacyBackupMigrates(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "l")
	makeLegacy(t, s)
	s.format = legacyFormat
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	// A backup file of the first kind: the old magic, no format line.
	b := buf.Bytes()
	hdr := fmt.Sprintf("%sformat %d\n", backupMagic, legacyFormat)
	if !bytes.HasPrefix(b, []byte(hdr)) {
		t.Fatalf("backup header %q", b[:40])
	}
	old := append([]byte(backupMagicV1), b[len(hdr):]...)
	s2 := openTest(t, "")
	if err := s2.Restore(bytes.NewReader(old), 0, nil); err != nil {
		t.Fatal(err)
	}
	if s2.Format() != FormatVersion() {
		t.Fatalf("format after restoring a legacy backup %d", s2.Format())
	}
	if ok, _ := s2.Initialized(); !ok {
		t.Fatal("legacy backup not migrated (no first-run mark)")
	}
}

// The crash test of migrations: a child process runs a slow migration and is
// killed with SIGKILL in its middle; the next Open finishes it.

const (
	migrateEnv  = "LEMONVOX_MIGRATE_CHILD_DIR"
	migrateKeys = 300
)

func migKey(i int) []byte { return []byte(fmt.Sprintf("T/%05d", i)) }

// registerTestMigration appends a migration that rewrites the T/ keys one
// transaction at a time (idempotent: a key already rewritten is skipped)
// and counts the rewrites it does in T/count (so a key rewritten twice
// shows).
func registerTestMigration(t *testing.T, progress io.Writer, delay time.Duration) {
	saved := migrations
	migrations = append(append([]Migration(nil), saved...), Migration{
		Version: FormatVersion() + 1,
		Name:    "test: rewrite T/ keys",
		Run: func(s *Store) error {
			for i := 0; i < migrateKeys; i++ {
				err := s.blindUpdate(func(txn *badger.Txn) error {
					it, err := txn.Get(migKey(i))
					if err != nil {
						return err
					}
					v, _ := it.ValueCopy(nil)
					if string(v) != "old" {
						return nil
					}
					n := 0
					if c, err := txn.Get([]byte("T/count")); err == nil {
						cv, _ := c.ValueCopy(nil)
						n, _ = strconv.Atoi(string(cv))
					}
					if err := txn.Set([]byte("T/count"), []byte(strconv.Itoa(n+1))); err != nil {
						return err
					}
					return txn.Set(migKey(i), []byte("new"))
				})
				if err != nil {
					return err
				}
				if progress != nil {
					fmt.Fprintf(progress, "migrated %d\n", i)
				}
				time.Sleep(delay)
			}
			return nil
		},
	})
	if t != nil {
		t.Cleanup(func() { migrations = saved })
	}
}

// TestMigrationChild is the child of TestMigrationSurvivesKill.
func TestMigrationChild(t *testing.T) {
	dir := os.Getenv(migrateEnv)
	if dir == "" {
		t.Skip("helper process of TestMigrationSurvivesKill")
	}
	registerTestMigration(t, os.Stdout, 3*time.Millisecond)
	s, err := openDir(t, dir)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	s.Close()
	fmt.Println("finished")
}

func TestMigrationSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "m")
	for i := 0; i < migrateKeys; i++ {
		if err := s.blindUpdate(func(txn *badger.Txn) error { return txn.Set(migKey(i), []byte("old")) }); err != nil {
			t.Fatal(err)
		}
	}
	from := s.Format()
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestMigrationChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), migrateEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		if l := sc.Text(); l == "migrated 100" {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		} else if l == "finished" || strings.HasPrefix(l, "open failed") {
			t.Fatalf("child: %s", l)
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatal("the child never reached the middle of the migration")
	}

	// Killed in the middle: the version did not move, part of the work is
	// done, and a build without that migration still opens the store.
	s2, err := openDir(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Format() != from {
		t.Fatalf("format %d after an interrupted migration, want %d", s2.Format(), from)
	}
	done := countNew(t, s2)
	if done < 100 || done >= migrateKeys {
		t.Fatalf("%d keys migrated before the kill", done)
	}
	s2.Close()

	// The next start finishes it, and records it once.
	registerTestMigration(t, nil, 0)
	s3, err := openDir(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if s3.Format() != from+1 {
		t.Fatalf("format %d after the resumed migration, want %d", s3.Format(), from+1)
	}
	if n := countNew(t, s3); n != migrateKeys {
		t.Fatalf("%d of %d keys migrated", n, migrateKeys)
	}
	var count []byte
	_ = s3.view(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("T/count"))
		if err == nil {
			count, _ = it.ValueCopy(nil)
		}
		return err
	})
	if string(count) != strconv.Itoa(migrateKeys) {
		t.Fatalf("%s rewrites for %d keys", count, migrateKeys)
	}
	recs, _ := s3.Migrations()
	if len(recs) == 0 || recs[len(recs)-1].Version != from+1 {
		t.Fatalf("records %+v", recs)
	}
}

func countNew(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	_ = s.view(func(txn *badger.Txn) error {
		for i := 0; i < migrateKeys; i++ {
			if it, err := txn.Get(migKey(i)); err == nil {
				v, _ := it.ValueCopy(nil)
				if string(v) == "new" {
					n++
				}
			}
		}
		return nil
	})
	return n
}

// TestOpenDoesNotWaitForChunkScan: the collection of chunks left by
// interrupted deposits runs after Open has returned, so the start time
// does not grow with the store.
func TestOpenDoesNotWaitForChunkScan(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustAccount(t, s, "c")
	deposit(t, s, "c", "", "Subject: kept\r\n\r\nkept")
	// Chunks of a deposit that never got its blob record.
	orphan := s.nextBlob.Load() + 1
	if err := s.blindUpdate(func(txn *badger.Txn) error {
		for i := uint32(0); i < 3; i++ {
			if err := txn.Set(chunkKey(orphan, i), []byte("lost")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	release := make(chan struct{})
	entered := make(chan struct{})
	startupCollectHook = func() { close(entered); <-release }
	t.Cleanup(func() { startupCollectHook = nil })
	opened := make(chan *Store, 1)
	go func() {
		s2, err := openDir(t, dir)
		if err != nil {
			t.Error(err)
		}
		opened <- s2
	}()
	var s2 *Store
	select {
	case s2 = <-opened:
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("Open waited for the chunk scan")
	}
	if s2 == nil {
		return
	}
	defer s2.Close()
	<-entered
	close(release)
	select {
	case <-s2.orphansDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the background collection did not finish")
	}
	_ = s2.view(func(txn *badger.Txn) error {
		if _, err := txn.Get(chunkKey(orphan, 0)); !errors.Is(err, badger.ErrKeyNotFound) {
			t.Errorf("orphan chunk still there: %v", err)
		}
		return nil
	})
	if p, err := s2.Verify(t.Context(), true); err != nil || len(p) > 0 {
		t.Fatal(p, err)
	}
}
