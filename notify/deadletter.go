package notify

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// DeadLetter is an event a sink gave up on. The journal seq identifies it
// (and is the id receivers see, so a replayed event is recognisable).
type DeadLetter struct {
	Seq      uint64        `json:"seq"`
	User     string        `json:"user"`
	Type     string        `json:"type"`
	Attempts int           `json:"attempts"`
	Error    string        `json:"error"`
	Time     time.Time     `json:"time"` // of the last attempt
	Event    vmstore.Event `json:"event"`
}

// deadLetterFile is a sink's dead-letter list: one JSON object per line in
// <dir>/<sink>.deadletter.jsonl, appended with fsync before the cursor may
// pass the event, rewritten through a temporary file and rename. A marker
// file <dir>/<sink>.disabled records that the receiver disabled the sink.
//
// The list lives outside the store on purpose: vmstore's cursor API keeps
// one number per consumer, and a list of failures is operator data that
// must survive a journal trim.
type deadLetterFile struct {
	dir  string
	sink string
	mu   sync.Mutex
}

func (f *deadLetterFile) path() string {
	return filepath.Join(f.dir, f.sink+".deadletter.jsonl")
}

func (f *deadLetterFile) markerPath() string {
	return filepath.Join(f.dir, f.sink+".disabled")
}

func (f *deadLetterFile) append(dl DeadLetter) error {
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	_, statErr := os.Stat(f.path())
	fh, err := os.OpenFile(f.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("notify: dead letter: %w", err)
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return fmt.Errorf("notify: dead letter: %w", err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("notify: dead letter: %w", err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("notify: dead letter: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		return syncDir(f.dir)
	}
	return nil
}

func (f *deadLetterFile) list() ([]DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readLocked()
}

func (f *deadLetterFile) readLocked() ([]DeadLetter, error) {
	fh, err := os.Open(f.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notify: dead letters: %w", err)
	}
	defer fh.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var dl DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			// A torn last line after a crash: everything before it is good.
			break
		}
		out = append(out, dl)
	}
	return out, sc.Err()
}

// rewrite replaces the list by fn(list), atomically.
func (f *deadLetterFile) rewrite(fn func([]DeadLetter) []DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dls, err := f.readLocked()
	if err != nil {
		return err
	}
	dls = fn(dls)
	tmp := f.path() + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("notify: dead letters: %w", err)
	}
	w := bufio.NewWriter(fh)
	enc := json.NewEncoder(w)
	for _, dl := range dls {
		if err := enc.Encode(dl); err != nil {
			fh.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.path()); err != nil {
		return fmt.Errorf("notify: dead letters: %w", err)
	}
	return syncDir(f.dir)
}

func (f *deadLetterFile) disabled() bool {
	_, err := os.Stat(f.markerPath())
	return err == nil
}

func (f *deadLetterFile) setDisabled(on bool, reason string) error {
	if !on {
		err := os.Remove(f.markerPath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.WriteFile(f.markerPath(), []byte(time.Now().UTC().Format(time.RFC3339)+" "+reason+"\n"), 0o640); err != nil {
		return err
	}
	return syncDir(f.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
