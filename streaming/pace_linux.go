//go:build linux

package streaming

import (
	"os"
	"runtime"
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

// newShardTimer returns the shard's timer; with a real-time priority
// (> 0) the timerfd is read blocking, so that the shard's own thread,
// locked and scheduled SCHED_FIFO (realtimeThread), is the one the kernel
// wakes.
func newShardTimer(rtPriority int) shardTimer {
	flags := unix.TFD_CLOEXEC
	if rtPriority <= 0 {
		flags |= unix.TFD_NONBLOCK
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, flags)
	if err != nil {
		return newGoTimer()
	}
	return &fdTimer{f: os.NewFile(uintptr(fd), "pacing-timer"), fd: fd}
}

// realtimeThread locks the calling goroutine to its thread and schedules
// the thread SCHED_FIFO at prio (needs CAP_SYS_NICE; the kernel's
// real-time throttling still leaves 5 % of each second to other tasks).
// The thread ends with the goroutine.
func realtimeThread(prio int) error {
	runtime.LockOSThread()
	return unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}, 0)
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
