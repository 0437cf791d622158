//go:build !linux

package streaming

import "time"

// preciseThread: no precise sleep here; shards wait on Go timers.
func (sh *shard) preciseThread() bool { return false }

func preciseSleep(d time.Duration) { time.Sleep(d) }
