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
// (also when the file is left over from a daemon that died).
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
	if ri.PID <= 0 || syscall.Kill(ri.PID, 0) != nil {
		return nil, ErrNotRunning
	}
	return &ri, nil
}

// RemoveRunInfo deletes the run info (daemon stopping).
func RemoveRunInfo(dataDir string) { _ = os.Remove(RunInfoPath(dataDir)) }
