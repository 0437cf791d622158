package transcode

import (
	"encoding/binary"
	"math"
)

// Linear PCM of other widths and IEEE float, as WAV (and AU) files carry
// them. They are read (decoded to 16-bit PCM, as every codec is) but not
// written: telephony has no use for them as targets.
const (
	PCM8 Codec = iota + 100 // 8-bit linear PCM (unsigned in WAV, signed in AU)
	L24                     // 24-bit linear PCM
	L32                     // 32-bit linear PCM
	F32                     // 32-bit IEEE float
	F64                     // 64-bit IEEE float
)

func init() {
	codecNames[PCM8] = "pcm8"
	codecNames[L24] = "l24"
	codecNames[L32] = "l32"
	codecNames[F32] = "f32"
	codecNames[F64] = "f64"
}

// ReadOnly lists the codecs this build reads but does not write.
func ReadOnly() []Codec { return []Codec{PCM8, L24, L32, F32, F64} }

// widePCM decodes linear PCM and float samples to 16 bits.
type widePCM struct {
	codec     Codec
	bigEndian bool
}

func (c widePCM) width() int {
	switch c.codec {
	case PCM8:
		return 1
	case L24:
		return 3
	case L32, F32:
		return 4
	}
	return 8
}

func (c widePCM) decode(dst []int16, src []byte) []int16 {
	w := c.width()
	var order binary.ByteOrder = binary.LittleEndian
	if c.bigEndian {
		order = binary.BigEndian
	}
	for i := 0; i+w <= len(src); i += w {
		b := src[i : i+w]
		var s int16
		switch c.codec {
		case PCM8:
			if c.bigEndian { // AU: signed
				s = int16(int8(b[0])) << 8
			} else { // WAV: unsigned, 128 is silence
				s = int16(int(b[0])-128) << 8
			}
		case L24:
			// The upper 16 bits of the 24-bit sample.
			if c.bigEndian {
				s = int16(uint16(b[0])<<8 | uint16(b[1]))
			} else {
				s = int16(uint16(b[2])<<8 | uint16(b[1]))
			}
		case L32:
			s = int16(order.Uint32(b) >> 16)
		case F32:
			s = floatToInt16(float64(math.Float32frombits(order.Uint32(b))))
		case F64:
			s = floatToInt16(math.Float64frombits(order.Uint64(b)))
		}
		dst = append(dst, s)
	}
	return dst
}

func floatToInt16(f float64) int16 {
	if math.IsNaN(f) {
		return 0
	}
	v := math.Round(f * 32767)
	return int16(math.Max(-32768, math.Min(32767, v)))
}

// encode is never called: NewWriter refuses these codecs.
func (c widePCM) encode(dst []byte, pcm []int16) []byte { return dst }
func (c widePCM) unit() (int, int)                      { return c.width(), 1 }
