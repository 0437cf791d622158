//go:build !linux

package streaming

import "errors"

func newShardTimer(int) shardTimer { return newGoTimer() }

func realtimeThread(int) error { return errors.New("real-time pacing threads need Linux") }
