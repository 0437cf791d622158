package main

import (
	"fmt"
	"time"

	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/transcode"
)

// codecPaths prints the in-process CPU per stream-second to produce each
// wire codec from a stored 8 kHz PCMU WAV (made once per part and codec,
// then shared by every listener through the part cache).
func codecPaths() {
	wav, d, err := transcode.SampleVoice(300 * time.Second)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("codec paths (300 s stored 8 kHz PCMU WAV, conversion made once per part and codec):\n")
	for _, c := range []streaming.Codec{streaming.PCMU, streaming.PCMA, streaming.L16, streaming.G722} {
		// Repeat until the CPU clock (tick-granular) has seen enough.
		reps := 0
		t0, c0 := time.Now(), cpuSeconds()
		for reps < 1000 && (reps < 2 || cpuSeconds()-c0 < 0.5) {
			md, err := streaming.OpenMediaBytes("audio/wav", nil, wav, streaming.MediaOptions{})
			if err != nil {
				fatal(err)
			}
			if err := streaming.Prepare(md, c); err != nil {
				fatal(err)
			}
			reps++
		}
		wall, cpu := time.Since(t0), cpuSeconds()-c0
		fmt.Printf("  %-10s %8.3f us CPU per stream-second (%d conversions of %v in %v)\n", c.String(),
			cpu*1e6/d.Seconds()/float64(reps), reps, d, wall.Round(time.Millisecond))
	}
}
