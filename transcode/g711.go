package transcode

import "math/bits"

// ITU-T G.711 µ-law and A-law. Decoding uses 256-entry tables built from
// the segment formulas of G.711 s2 and s3; encoding computes the segment
// directly (a 64 Ki-entry table would not pay for itself).

var (
	ulawToLinear [256]int16
	alawToLinear [256]int16
)

func init() {
	for i := 0; i < 256; i++ {
		ulawToLinear[i] = decodeUlaw(byte(i))
		alawToLinear[i] = decodeAlaw(byte(i))
	}
}

// decodeUlaw: G.711 s3.2 (bias 0x84, 8 segments, bits inverted).
func decodeUlaw(u byte) int16 {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// decodeAlaw: G.711 s2 (even bits inverted, 13-bit magnitude scaled to 16).
func decodeAlaw(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// linearToUlaw encodes one sample (G.711 s3). The segment is the
// position of the highest set bit of the biased magnitude (bit 7 and
// below: segment 0), found without a loop.
func linearToUlaw(s int16) byte {
	const bias = 0x84
	x := int(s)
	sign := (x >> 63) & 0x80
	x = min((x^(x>>63))-(x>>63), 32635) + bias // |s|, clipped, biased
	exp := max(bits.Len(uint(x))-8, 0)
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// linearToAlaw encodes one sample (G.711 s2). The segment is the
// position of the highest set bit of the 13-bit magnitude above bit 4.
func linearToAlaw(s int16) byte {
	x := int(s) >> 3 // 13-bit
	mask := byte(0xd5)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	seg := max(bits.Len(uint(x))-5, 0)
	if seg >= 8 {
		return 0x7f ^ mask
	}
	v := byte(seg<<4) | byte(x>>max(seg, 1))&0x0f
	return v ^ mask
}
