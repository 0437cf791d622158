package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// RunInfo is written to <data>/run/admin.json while the daemon runs, so that
// the CLI can find the admin API.
type RunInfo struct {
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// CAFile is the appliance certificate, for HTTPS admin URLs.
	CAFile string `json:"caFile,omitempty"`
}

// RunInfoPath is where the run info of a data directory lives.
func RunInfoPath(dataDir string) string { return filepath.Join(dataDir, "run", "admin.json") }

// WriteRunInfo writes the run info atomically, readable by the owner only.
func WriteRunInfo(dataDir string, ri RunInfo) error {
	p := RunInfoPath(dataDir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(ri, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ErrNotRunning: no daemon runs on that data directory.
var ErrNotRunning = errors.New("admin: no daemon running")

// ReadRunInfo returns the run info of a running daemon, or ErrNotRunning
// (also when the file is left over from a daemon that died: the daemon
// holds the data directory's lock while it runs, and the kernel releases
// that lock when the process ends, however it ends).
func ReadRunInfo(dataDir string) (*RunInfo, error) {
	b, err := os.ReadFile(RunInfoPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, err
	}
	var ri RunInfo
	if err := json.Unmarshal(b, &ri); err != nil {
		return nil, fmt.Errorf("admin: %s: %w", RunInfoPath(dataDir), err)
	}
	held, err := DataDirLocked(dataDir)
	if err != nil {
		return nil, err
	}
	if !held {
		return nil, ErrNotRunning
	}
	return &ri, nil
}

// LockPath is the lock file of a data directory.
func LockPath(dataDir string) string { return filepath.Join(dataDir, "lemonvox.lock") }

// ErrLocked: another process (a daemon, or a lemonvox command that opened
// the store itself) uses the data directory.
var ErrLocked = errors.New("admin: the data directory is in use by another process")

// DataLock is a process's exclusive hold on a data directory: an flock(2)
// lock on <data>/lemonvox.lock, which the kernel releases when the process
// exits, killed or not. A leftover run file therefore never blocks a start.
type DataLock struct{ f *os.File }

// LockDataDir takes the data directory's lock without waiting; it returns
// ErrLocked when another process holds it. The directory must exist.
func LockDataDir(dataDir string) (*DataLock, error) {
	f, err := os.OpenFile(LockPath(dataDir), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dataDir)
		}
		return nil, fmt.Errorf("admin: locking %s: %w", LockPath(dataDir), err)
	}
	return &DataLock{f: f}, nil
}

// Release gives the lock up.
func (l *DataLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// DataDirLocked tells whether a process holds the data directory's lock.
func DataDirLocked(dataDir string) (bool, error) {
	f, err := os.Open(LockPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("admin: %s: %w", LockPath(dataDir), err)
	}
	return false, nil
}

// RemoveRunInfo deletes the run info (daemon stopping).
func RemoveRunInfo(dataDir string) { _ = os.Remove(RunInfoPath(dataDir)) }
