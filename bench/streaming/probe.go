package main

// The probe is the jitter floor of the machine at the time of each step:
// a child process (-role probe) that does nothing but pace probeStreams
// plain RTP streams, one packet each per 20 ms, to a receiver socket of
// its own, waking with a kernel sleep on a locked thread. Its p99 jitter,
// measured by the receiver in the same window as the sessions', is what
// the operating system lets any pacer on this machine achieve then (other
// processes, the receiver, the server all share the CPUs). With -rt it
// runs at the same real-time priority as the engine's pacing threads.

import (
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

const (
	probeStreams = 20
	probeSSRC    = 0x7e570000
)

func runProbe(port, rt int) {
	runtime.LockOSThread()
	if rt > 0 {
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(rt)}, 0); err != nil {
			fatal(err)
		}
	}
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 5000, 0, 0, 0)
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		fatal(err)
	}
	go func() { // ends with the parent
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		os.Exit(0)
	}()
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	t0 := time.Now()
	for n := 0; ; n++ {
		if d := time.Until(t0.Add(time.Duration(n) * 20 * time.Millisecond)); d > 0 {
			ts := unix.NsecToTimespec(int64(d))
			for unix.Nanosleep(&ts, &ts) == unix.EINTR {
			}
		}
		for i := range probeStreams {
			binary.BigEndian.PutUint16(pkt[2:], uint16(n))
			binary.BigEndian.PutUint32(pkt[4:], uint32(n*160))
			binary.BigEndian.PutUint32(pkt[8:], probeSSRC+uint32(i))
			_, _ = c.Write(pkt)
		}
	}
}
