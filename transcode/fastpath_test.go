package transcode

import "testing"

// linearToUlawRef and linearToAlawRef are the segment searches by loop the
// encoders had; the bit-length forms must give the same code for every
// 16-bit sample.
func linearToUlawRef(s int16) byte {
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

func linearToAlawRef(s int16) byte {
	x := int(s) >> 3
	mask := byte(0xd5)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	seg := 0
	for end := 0x1f; seg < 8 && x > end; end = end<<1 | 1 {
		seg++
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	v := byte(seg << 4)
	if seg < 2 {
		v |= byte(x>>1) & 0x0f
	} else {
		v |= byte(x>>seg) & 0x0f
	}
	return v ^ mask
}

func TestG711EncodeExhaustive(t *testing.T) {
	for v := -32768; v <= 32767; v++ {
		s := int16(v)
		if got, want := linearToUlaw(s), linearToUlawRef(s); got != want {
			t.Fatalf("linearToUlaw(%d) = %#x, want %#x", s, got, want)
		}
		if got, want := linearToAlaw(s), linearToAlawRef(s); got != want {
			t.Fatalf("linearToAlaw(%d) = %#x, want %#x", s, got, want)
		}
	}
}

// The 8 kHz G.722 decoder skips the upper band; its output is still the
// lower band of the full decoder's, sample for sample.
func TestG722NarrowDecodeSkipsUpperBand(t *testing.T) {
	codes := newG722().encode(nil, speechLike(32000, 16000))
	narrow := newG722()
	narrow.narrow = true
	got := narrow.decode(nil, codes)
	full := newG722()
	for i, c := range codes {
		rlow, _ := full.decodeBands(c)
		if want := int16(sat16(rlow << 1)); got[i] != want {
			t.Fatalf("sample %d: %d, want %d", i, got[i], want)
		}
	}
}
