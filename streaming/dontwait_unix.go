//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package streaming

import "syscall"

// dontWait makes sendmmsg/sendmsg return EAGAIN instead of blocking when
// the socket buffer is full: the scheduler drops and counts.
const dontWait = syscall.MSG_DONTWAIT
