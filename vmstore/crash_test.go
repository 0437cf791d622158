package vmstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const crashEnv = "LEMONVOX_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestCrashDurability: it deposits in a loop
// and prints every acknowledged message.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashDurability")
	}
	s, err := Open(Options{Dir: dir, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	if _, err := s.GetAccount("crash"); err != nil {
		if _, err := s.CreateAccount(AccountSpec{Name: "crash", Password: "x"}); err != nil {
			fmt.Println("create failed:", err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	for i := 0; ; i++ {
		size := 200 + rng.IntN(64<<10)
		switch {
		case i%7 == 3:
			size = 5<<20 + rng.IntN(1<<20) // past one flush batch; a blob file
		case i%2 == 1:
			size = fileMin + rng.IntN(700<<10) // a voicemail's size: a blob file
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + rng.IntN(26))
			if j%70 == 69 {
				body[j] = '\n'
			}
		}
		msg := append([]byte(fmt.Sprintf("Subject: crash %d\r\nMessage-Context: voice-message\r\n\r\n", i)), body...)
		res, err := s.Deposit(DepositReq{User: "crash", Body: bytes.NewReader(msg)})
		if err != nil {
			fmt.Println("deposit failed:", err)
			os.Exit(3)
		}
		sum := sha256.Sum256(msg)
		fmt.Printf("ack %d %s\n", res.Message.UID, hex.EncodeToString(sum[:]))
	}
}

// TestCrashDurability kills a depositing process with SIGKILL at random
// moments and checks, after each restart, that every acknowledged message
// is present and intact, nothing half-written is visible and the counters
// equal a recount.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	acked := map[uint32]string{}
	blobFilesSeen := 0
	rng := rand.New(rand.NewPCG(42, 7))
	const rounds = 20
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait until the child is ready, then let it run a random while.
		deadline := time.After(30 * time.Second)
	ready:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited before ready", round)
				}
				if l == "ready" {
					break ready
				}
				t.Fatalf("round %d: child said %q", round, l)
			case <-deadline:
				t.Fatalf("round %d: child not ready", round)
			}
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		for l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "ack" {
				t.Fatalf("round %d: child said %q", round, l)
			}
			uid, _ := strconv.Atoi(f[1])
			acked[uint32(uid)] = f[2]
		}
		// Reopen and check.
		s, err := Open(Options{Dir: dir, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		mb, err := s.Mailbox("crash", "INBOX")
		if err != nil {
			s.Close()
			if round == 0 {
				continue // killed before the account was durable
			}
			t.Fatal(err)
		}
		msgs, err := s.Messages(mb.ID, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		have := map[uint32]bool{}
		for i := range msgs {
			m := &msgs[i]
			have[m.UID] = true
			h := sha256.New()
			if _, err := io.Copy(h, s.OpenMessage(m).Reader()); err != nil {
				t.Fatalf("round %d: uid %d unreadable: %v", round, m.UID, err)
			}
			if hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(m.Hash) {
				t.Fatalf("round %d: uid %d content differs from its hash (half-written)", round, m.UID)
			}
			if want, ok := acked[m.UID]; ok && want != hex.EncodeToString(m.Hash) {
				t.Fatalf("round %d: uid %d is not the acknowledged message", round, m.UID)
			}
		}
		for uid := range acked {
			if !have[uid] {
				t.Fatalf("round %d: acknowledged uid %d lost", round, uid)
			}
		}
		if problems, err := s.Verify(t.Context(), false); err != nil || len(problems) > 0 {
			t.Fatalf("round %d: verify: %v %v", round, err, problems)
		}
		// Blob files of deposits the kill interrupted (half written, or
		// synced but never committed) are gone once the startup
		// collection has run; every file left belongs to a blob record.
		<-s.orphansDone
		files, err := blobFiles(s.blobDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range files {
			var meta blobMeta
			if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, blobKey(id), &meta) }); err != nil {
				t.Fatalf("round %d: blob file %016x without its record: %v", round, id, err)
			}
			if fi, err := os.Stat(s.blobPath(id)); err != nil || fi.Size() != meta.Size || !meta.File {
				t.Fatalf("round %d: blob file %016x: %v, size %d, record %+v", round, id, err, fi.Size(), meta)
			}
			blobFilesSeen++
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(acked) < rounds {
		t.Fatalf("only %d messages acknowledged over %d rounds", len(acked), rounds)
	}
	if blobFilesSeen == 0 {
		t.Fatal("no deposit went to a blob file")
	}
	t.Logf("%d acknowledged messages survived %d SIGKILLs (%d blob files checked)", len(acked), rounds, blobFilesSeen)
}
