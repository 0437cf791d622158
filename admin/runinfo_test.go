package admin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

const lockChildEnv = "LEMONVOX_LOCK_CHILD_DIR"

// TestLockChild is the child of TestDataLockDiesWithProcess: it takes the
// lock and waits to be killed.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("helper process of TestDataLockDiesWithProcess")
	}
	if _, err := LockDataDir(dir); err != nil {
		fmt.Println("lock failed:", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
}

func TestDataLock(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if held, err := DataDirLocked(dir); !held || err != nil {
		t.Fatalf("locked: %v %v", held, err)
	}
	// A run file names a live process (this one): it counts only while the
	// lock is held.
	ri := RunInfo{URL: "http://127.0.0.1:1", Token: "t", PID: os.Getpid(), Started: time.Now()}
	if err := WriteRunInfo(dir, ri); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadRunInfo(dir); err != nil || got.PID != ri.PID {
		t.Fatalf("run info while locked: %+v %v", got, err)
	}
	l.Release()
	if _, err := ReadRunInfo(dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stale run info of a live PID taken for a daemon: %v", err)
	}
	l2, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

func TestDataLockDiesWithProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "locked" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q", sc.Text())
	}
	if _, err := LockDataDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock held by the child: %v", err)
	}
	cmd.Process.Kill() // SIGKILL: no cleanup runs
	cmd.Wait()
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock of a killed process not released: %v", err)
	}
	l.Release()
}
