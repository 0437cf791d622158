// Package transcode converts audio between codecs and containers (pure Go).
package transcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Codec is an audio codec.
type Codec int

// Codecs.
const (
	Unknown Codec = iota
	PCMU
	PCMA
	G722
	G726
	GSM
	L16
)

var codecNames = map[Codec]string{PCMU: "pcmu", PCMA: "pcma", G722: "g722", G726: "g726", GSM: "gsm", L16: "l16"}

func (c Codec) String() string {
	if n, ok := codecNames[c]; ok {
		return n
	}
	return "unknown"
}

// ErrUnknownCodec: a codec name not supported.
var ErrUnknownCodec = errors.New("transcode: unknown codec")

// ErrUnknownFormat: the data is not a container this package reads.
var ErrUnknownFormat = errors.New("transcode: unknown format")

// ParseCodec parses pcmu, pcma, g722, g726, gsm, l16.
func ParseCodec(s string) (Codec, error) {
	for c, n := range codecNames {
		if strings.EqualFold(n, s) {
			return c, nil
		}
	}
	return Unknown, fmt.Errorf("%w %q", ErrUnknownCodec, s)
}

// Info describes an audio stream.
type Info struct {
	Container string
	Codec     Codec
	Rate      int
	Channels  int
	Duration  time.Duration
}

func (i Info) String() string {
	return fmt.Sprintf("%s %s %d Hz %d ch %.3f s", i.Container, i.Codec, i.Rate, i.Channels, i.Duration.Seconds())
}

// linearToUlaw is G.711 µ-law encoding (ITU-T G.711 s2).
func linearToUlaw(s int16) byte {
	const bias = 0x84
	x := int(s)
	sign := 0
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > 32635 {
		x = 32635
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// WriteWAV writes pcm (mono) as a WAV file of the codec (PCMU or L16).
func WriteWAV(w io.Writer, pcm []int16, rate int, codec Codec) error {
	var data []byte
	var tag, bits uint16
	switch codec {
	case PCMU:
		tag, bits = 7, 8
		data = make([]byte, len(pcm))
		for i, s := range pcm {
			data[i] = linearToUlaw(s)
		}
	case L16:
		tag, bits = 1, 16
		data = make([]byte, 2*len(pcm))
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
		}
	default:
		return fmt.Errorf("%w: %s in WAV", ErrUnknownCodec, codec)
	}
	le := binary.LittleEndian
	var h bytes.Buffer
	h.WriteString("RIFF")
	binary.Write(&h, le, uint32(4+26+8+8+len(data)))
	h.WriteString("WAVEfmt ")
	binary.Write(&h, le, uint32(18))
	binary.Write(&h, le, tag)
	binary.Write(&h, le, uint16(1))
	binary.Write(&h, le, uint32(rate))
	binary.Write(&h, le, uint32(rate*int(bits)/8))
	binary.Write(&h, le, bits/8)
	binary.Write(&h, le, bits)
	binary.Write(&h, le, uint16(0))
	h.WriteString("data")
	binary.Write(&h, le, uint32(len(data)))
	if _, err := w.Write(h.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// Probe reads a WAV or AU header and returns the stream's description.
func Probe(r io.Reader) (Info, error) {
	head := make([]byte, 4096)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	switch {
	case n >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return probeWAV(head)
	case n >= 24 && string(head[:4]) == ".snd":
		return probeAU(head)
	}
	return Info{}, ErrUnknownFormat
}

func probeWAV(b []byte) (Info, error) {
	le := binary.LittleEndian
	info := Info{Container: "wav"}
	var blockAlign, bits, tag uint16
	var byteRate uint32
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(le.Uint32(b[off+4:]))
		body := off + 8
		switch id {
		case "fmt ":
			if body+16 > len(b) {
				return info, ErrUnknownFormat
			}
			tag = le.Uint16(b[body:])
			info.Channels = int(le.Uint16(b[body+2:]))
			info.Rate = int(le.Uint32(b[body+4:]))
			byteRate = le.Uint32(b[body+8:])
			blockAlign = le.Uint16(b[body+12:])
			bits = le.Uint16(b[body+14:])
		case "data":
			switch tag {
			case 1:
				if bits == 16 {
					info.Codec = L16
				}
			case 6:
				info.Codec = PCMA
			case 7:
				info.Codec = PCMU
			case 0x31:
				info.Codec = GSM
			case 0x45, 0x64:
				info.Codec = G726
			case 0x28f:
				info.Codec = G722
			}
			if byteRate > 0 && size > 0 && uint32(size) != 0xffffffff {
				info.Duration = time.Duration(float64(size) / float64(byteRate) * float64(time.Second))
			}
			_ = blockAlign
			return info, nil
		}
		off = body + size + size&1
	}
	return info, ErrUnknownFormat
}

func probeAU(b []byte) (Info, error) {
	be := binary.BigEndian
	size, enc, rate, ch := be.Uint32(b[8:]), be.Uint32(b[12:]), be.Uint32(b[16:]), be.Uint32(b[20:])
	info := Info{Container: "au", Rate: int(rate), Channels: int(ch)}
	bps := 0
	switch enc {
	case 1:
		info.Codec, bps = PCMU, 1
	case 3:
		info.Codec, bps = L16, 2
	case 27:
		info.Codec, bps = PCMA, 1
	}
	if bps > 0 && size != 0xffffffff && rate > 0 && ch > 0 {
		info.Duration = time.Duration(float64(size) / float64(bps*int(rate)*int(ch)) * float64(time.Second))
	}
	return info, nil
}

// SniffAudio recognises a WAV or AU file from its first bytes and returns
// its media type and duration.
func SniffAudio(head []byte) (string, time.Duration, bool) {
	info, err := Probe(bytes.NewReader(head))
	if err != nil {
		return "", 0, false
	}
	if info.Container == "au" {
		return "audio/basic", info.Duration, true
	}
	return "audio/wav", info.Duration, true
}

// PartDuration tells the duration of an audio part from its first bytes.
func PartDuration(mediaType string, head []byte, size int64) (time.Duration, bool) {
	if info, err := Probe(bytes.NewReader(head)); err == nil && info.Duration > 0 {
		return info.Duration, true
	}
	switch strings.ToLower(mediaType) {
	case "audio/basic", "audio/pcmu", "audio/pcma":
		return time.Duration(size) * time.Second / 8000, size > 0
	}
	return 0, false
}
