//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package streaming

// dontWait is not available: sends are bounded by a write deadline.
const dontWait = 0
