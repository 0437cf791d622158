// Package transcode converts audio between codecs, containers and sample
// rates, in pure Go: G.711 µ-law and A-law, G.722, G.726-32, L16 in WAV,
// Sun/NeXT AU and raw streams, with a windowed-sinc resampler.
//
// Implementation notes:
//   - Everything streams: Decode reads a container header and returns a PCM
//     stream that decodes on demand; Convert resamples and down-mixes on
//     demand; Encode writes as it is fed. Nothing holds a whole file.
//   - Containers are recognised by their magic bytes, never by file name.
//   - Codecs are written from the ITU-T Recommendations (G.711, G.722,
//     G.726) and ETSI GSM 06.10; each has an encoder and a decoder to
//     16-bit linear PCM.
package transcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Codec is an audio codec.
type Codec int

// Codecs.
const (
	Unknown Codec = iota
	PCMU          // G.711 µ-law, 8 bits a sample
	PCMA          // G.711 A-law, 8 bits a sample
	G722          // G.722 SB-ADPCM 64 kbit/s, 16 kHz
	G726          // G.726 ADPCM 32 kbit/s, 8 kHz, 4 bits a sample
	GSM           // GSM 06.10 full rate
	L16           // 16-bit linear PCM
)

var codecNames = map[Codec]string{PCMU: "pcmu", PCMA: "pcma", G722: "g722", G726: "g726", GSM: "gsm", L16: "l16"}

func (c Codec) String() string {
	if n, ok := codecNames[c]; ok {
		return n
	}
	return "unknown"
}

// Errors.
var (
	// ErrUnknownCodec: a codec name or tag this package does not know.
	ErrUnknownCodec = errors.New("transcode: unknown codec")
	// ErrUnknownFormat: the data is not a container this package reads.
	ErrUnknownFormat = errors.New("transcode: unknown format")
	// ErrUnsupported: a known codec or combination that is not supported
	// (e.g. GSM in the default build, G.722 at other than 16 kHz).
	ErrUnsupported = errors.New("transcode: unsupported")
	// ErrCorrupt: a header whose fields contradict each other or are out of
	// range.
	ErrCorrupt = errors.New("transcode: corrupt header")
)

// ParseCodec parses pcmu, pcma, g722, g726, gsm, l16 (and common aliases).
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pcmu", "ulaw", "mulaw", "g711u":
		return PCMU, nil
	case "pcma", "alaw", "g711a":
		return PCMA, nil
	case "g722":
		return G722, nil
	case "g726", "g726-32", "32kadpcm":
		return G726, nil
	case "gsm", "gsm610":
		return GSM, nil
	case "l16", "pcm", "s16":
		return L16, nil
	}
	return Unknown, fmt.Errorf("%w %q (pcmu, pcma, g722, g726, gsm, l16)", ErrUnknownCodec, s)
}

// Container is a file format.
type Container int

// Containers.
const (
	NoContainer Container = iota
	WAV
	AU
	Raw
)

func (c Container) String() string {
	switch c {
	case WAV:
		return "wav"
	case AU:
		return "au"
	case Raw:
		return "raw"
	}
	return "unknown"
}

// ParseContainer parses wav, au, raw.
func ParseContainer(s string) (Container, error) {
	switch strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), ".")) {
	case "wav", "wave":
		return WAV, nil
	case "au", "snd":
		return AU, nil
	case "raw", "ul", "al", "ulaw", "alaw", "g722", "g726", "sln", "pcm":
		return Raw, nil
	}
	return NoContainer, fmt.Errorf("%w: container %q (wav, au, raw)", ErrUnknownFormat, s)
}

// Supported lists the codec and container combinations this build reads
// and writes, for capability lists and the CLI.
func Supported() map[Container][]Codec {
	return map[Container][]Codec{
		WAV: {PCMU, PCMA, L16, G722, G726, GSM}, // GSM as WAV49 (tag 0x0031)
		AU:  {PCMU, PCMA, L16, G722},
		Raw: {PCMU, PCMA, L16, G722, G726, GSM}, // GSM as 33-byte frames
	}
}

// frameCodec converts between coded bytes and PCM for one channel.
// Samples per byte: PCMU/PCMA 1, L16 1/2, G.726-32 2, G.722 2.
type frameCodec interface {
	// decode appends the PCM of src (a whole number of code units).
	decode(dst []int16, src []byte) []int16
	// encode appends the code of pcm (a whole number of samples per unit).
	encode(dst []byte, pcm []int16) []byte
	// unit returns bytes and samples of the smallest decodable piece.
	unit() (bytes, samples int)
}

type ulawCodec struct{}

func (ulawCodec) decode(dst []int16, src []byte) []int16 {
	dst, out := growPCM(dst, len(src))
	for i, b := range src {
		out[i] = ulawToLinear[b]
	}
	return dst
}
func (ulawCodec) encode(dst []byte, pcm []int16) []byte {
	dst, out := growBytes(dst, len(pcm))
	for i, s := range pcm {
		out[i] = linearToUlaw(s)
	}
	return dst
}
func (ulawCodec) unit() (int, int) { return 1, 1 }

type alawCodec struct{}

func (alawCodec) decode(dst []int16, src []byte) []int16 {
	dst, out := growPCM(dst, len(src))
	for i, b := range src {
		out[i] = alawToLinear[b]
	}
	return dst
}
func (alawCodec) encode(dst []byte, pcm []int16) []byte {
	dst, out := growBytes(dst, len(pcm))
	for i, s := range pcm {
		out[i] = linearToAlaw(s)
	}
	return dst
}
func (alawCodec) unit() (int, int) { return 1, 1 }

// l16Codec is 16-bit PCM, little-endian (WAV) or big-endian (AU, RTP L16).
type l16Codec struct{ bigEndian bool }

func (c l16Codec) decode(dst []int16, src []byte) []int16 {
	dst, out := growPCM(dst, len(src)/2)
	if c.bigEndian {
		for i := range out {
			out[i] = int16(binary.BigEndian.Uint16(src[2*i:]))
		}
	} else {
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}
	return dst
}
func (c l16Codec) encode(dst []byte, pcm []int16) []byte {
	dst, out := growBytes(dst, 2*len(pcm))
	if c.bigEndian {
		for i, s := range pcm {
			binary.BigEndian.PutUint16(out[2*i:], uint16(s))
		}
	} else {
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
		}
	}
	return dst
}

// growPCM extends dst by n samples and returns it and the new part.
func growPCM(dst []int16, n int) ([]int16, []int16) {
	k := len(dst)
	dst = slices.Grow(dst, n)[:k+n]
	return dst, dst[k:]
}

// growBytes extends dst by n bytes and returns it and the new part.
func growBytes(dst []byte, n int) ([]byte, []byte) {
	k := len(dst)
	dst = slices.Grow(dst, n)[:k+n]
	return dst, dst[k:]
}
func (l16Codec) unit() (int, int) { return 2, 1 }

// newFrameCodec returns a fresh (stateful codecs start from reset state)
// codec for one channel.
func newFrameCodec(c Codec, bigEndian bool) (frameCodec, error) {
	switch c {
	case PCMU:
		return ulawCodec{}, nil
	case PCMA:
		return alawCodec{}, nil
	case L16:
		return l16Codec{bigEndian: bigEndian}, nil
	case G726:
		return newG726(), nil
	case G722:
		return newG722(), nil
	case GSM:
		return newGSMDecoder(false), nil
	case PCM8, L24, L32, F32, F64:
		return widePCM{codec: c, bigEndian: bigEndian}, nil
	}
	return nil, fmt.Errorf("%w: codec %s", ErrUnsupported, c)
}
