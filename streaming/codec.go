package streaming

import (
	"fmt"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
)

// Codec is an RTP wire codec.
type Codec struct {
	Name      string // rtpmap encoding name: PCMU, PCMA, G722, L16
	PT        uint8  // payload type (static, or dynamic for L16)
	ClockRate uint32 // RTP clock (8000 for G.722, RFC 3551)
	Channels  int
}

// Wire codecs. L16 takes a dynamic payload type; its rate is the stored
// audio's (8 or 16 kHz).
var (
	PCMU    = Codec{Name: "PCMU", PT: 0, ClockRate: 8000, Channels: 1}
	PCMA    = Codec{Name: "PCMA", PT: 8, ClockRate: 8000, Channels: 1}
	G722    = Codec{Name: "G722", PT: 9, ClockRate: 8000, Channels: 1}
	L16     = Codec{Name: "L16", PT: 96, ClockRate: 8000, Channels: 1}
	L16Wide = Codec{Name: "L16", PT: 97, ClockRate: 16000, Channels: 1}
)

// FrameTime is the audio carried by one RTP packet.
const FrameTime = 20 * time.Millisecond

const framesPerSecond = int(time.Second / FrameTime)

// String is the rtpmap value, e.g. "PCMU/8000".
func (c Codec) String() string {
	if c.Channels > 1 {
		return fmt.Sprintf("%s/%d/%d", c.Name, c.ClockRate, c.Channels)
	}
	return fmt.Sprintf("%s/%d", c.Name, c.ClockRate)
}

// Same reports whether c and d are the same encoding at the same clock
// (payload types aside).
func (c Codec) Same(d Codec) bool {
	return strings.EqualFold(c.Name, d.Name) && c.ClockRate == d.ClockRate && max(c.Channels, 1) == max(d.Channels, 1)
}

// ParseRTPMap finds the wire codec of an rtpmap value ("PCMU/8000");
// ok is false for a codec we do not send.
func ParseRTPMap(pt uint8, v string) (Codec, bool) {
	f := strings.Split(v, "/")
	if len(f) < 2 {
		return Codec{}, false
	}
	var rate uint32
	if _, err := fmt.Sscanf(f[1], "%d", &rate); err != nil {
		return Codec{}, false
	}
	ch := 1
	if len(f) > 2 && f[2] != "1" {
		return Codec{}, false
	}
	c := Codec{Name: strings.ToUpper(f[0]), PT: pt, ClockRate: rate, Channels: ch}
	for _, k := range []Codec{PCMU, PCMA, G722, L16, L16Wide} {
		if k.Same(c) {
			return c, true
		}
	}
	return Codec{}, false
}

// StaticCodec returns the codec of a static payload type we send (0, 8, 9).
func StaticCodec(pt uint8) (Codec, bool) {
	switch pt {
	case 0:
		return PCMU, true
	case 8:
		return PCMA, true
	case 9:
		return G722, true
	}
	return Codec{}, false
}

// sampleRate is the rate of the audio the codec carries.
func (c Codec) sampleRate() int {
	if strings.EqualFold(c.Name, "G722") {
		return 16000
	}
	return int(c.ClockRate)
}

// coder is the transcode codec that encodes the wire format.
func (c Codec) coder() transcode.Codec {
	switch strings.ToUpper(c.Name) {
	case "PCMU":
		return transcode.PCMU
	case "PCMA":
		return transcode.PCMA
	case "G722":
		return transcode.G722
	}
	return transcode.L16
}

// frameBytes is the payload size of one 20-ms packet.
func (c Codec) frameBytes() int {
	n := c.sampleRate() / framesPerSecond
	switch c.coder() {
	case transcode.G722:
		return n / 2
	case transcode.L16:
		return 2 * n
	}
	return n
}

// frameClock is the RTP timestamp increment of one packet.
func (c Codec) frameClock() uint32 { return c.ClockRate / uint32(framesPerSecond) }

// key names the codec in the conversion cache.
func (c Codec) key() string { return fmt.Sprintf("%s/%d", strings.ToUpper(c.Name), c.sampleRate()) }

// cost orders the wire codecs by the work to produce them from stored
// audio of codec from at rate: 0 copies, 1 maps samples one by one, 2
// decodes, 3 resamples, 4 resamples and runs an ADPCM encoder.
func cost(from transcode.Codec, rate int, to Codec) int {
	toRate := to.sampleRate()
	switch {
	case from == to.coder() && rate == toRate:
		return 0
	case rate == toRate && (from == transcode.PCMU || from == transcode.PCMA || from == transcode.L16) &&
		to.coder() != transcode.G722:
		return 1
	case rate == toRate && to.coder() != transcode.G722:
		return 2
	case from == transcode.G722 && toRate == 8000:
		// G.722's lower sub-band is 8 kHz audio: no resampler needed.
		return 2
	case to.coder() != transcode.G722:
		return 3
	}
	return 4
}
