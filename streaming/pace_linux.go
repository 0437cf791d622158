//go:build linux

package streaming

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// preciseThread locks the shard's goroutine to its thread and lowers the
// thread's timer slack to 5 us (Linux default 50 us), so that
// preciseSleep wakes within tens of microseconds of the tick; false when
// that is not available. The thread ends with the goroutine.
func (sh *shard) preciseThread() bool {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 5000, 0, 0, 0)
	return true
}

// preciseSleep sleeps d in the kernel (nanosleep), not through the Go
// runtime's poller, whose timeouts are whole milliseconds. The thread is
// in a system call meanwhile; the runtime hands its P to other goroutines
// if they need it.
func preciseSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}
