//go:build race

package message

// raceEnabled: the race detector makes sync.Pool drop buffers at random,
// so allocation figures mean nothing under it.
const raceEnabled = true
