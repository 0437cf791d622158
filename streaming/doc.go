// Package streaming plays stored voice messages as RTP: one media core
// (media.go: a part opened, probed and converted to the wire codec once
// per part and codec, shared by every listener), one pacing scheduler for
// every session of the process (scheduler.go: per-shard deadline heaps,
// batched UDP sends), SRTP with SDES keys (srtp.go), sinks that never
// block the scheduler (sink.go), RTCP sender reports and BYE, and what
// playback changes in the store (engine.go: \Seen at the configured share
// of a message, the position where a listener stopped). Front ends (the
// RTSP server here, SIP and WHEP elsewhere) open sessions on an Engine.
package streaming
