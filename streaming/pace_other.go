//go:build !linux

package streaming

func newShardTimer() shardTimer { return newGoTimer() }
