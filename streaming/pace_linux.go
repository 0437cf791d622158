//go:build linux

package streaming

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fdTimer is a timerfd read through the Go runtime's poller: the shard's
// goroutine parks (no thread or P held) and the poller wakes when the
// kernel's high-resolution timer fires, typically within tens of
// microseconds, where a Go timer's wake-up may be a millisecond late (the
// poller's own timeouts are whole milliseconds).
type fdTimer struct {
	f   *os.File
	fd  int
	buf [8]byte
}

func newShardTimer() shardTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newGoTimer()
	}
	return &fdTimer{f: os.NewFile(uintptr(fd), "pacing-timer"), fd: fd}
}

func (t *fdTimer) arm(d time.Duration) {
	// A zero value disarms: at once is 1 ns.
	_ = unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}, nil)
}

func (t *fdTimer) disarm() { _ = unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{}, nil) }

func (t *fdTimer) wait(quit <-chan struct{}) bool {
	_, err := t.f.Read(t.buf[:])
	select {
	case <-quit:
		return false
	default:
	}
	return err == nil
}

func (t *fdTimer) close() { _ = t.f.Close() }
