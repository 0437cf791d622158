package transcode

// GSM 06.10 full-rate speech decoding (ETSI EN 300 961 / GSM 06.10 s4.3):
// 160 samples a frame from 8 log-area ratios and 4 sub-frames of long-term
// prediction and regular-pulse excitation. Two packings are read: the
// 33-byte frame (4-bit 0xD signature, parameters MSB first) and the 65-byte
// "WAV49" double frame of Microsoft's GSM 6.10 WAV format (tag 0x0031,
// parameters LSB first, two frames back to back). Arithmetic follows the
// Recommendation's 16-bit fixed point (saturating add/sub, rounded
// multiplication) so output matches other conforming decoders.

import "slices"

const (
	gsmMinWord = -32768
	gsmMaxWord = 32767
)

// GSM 06.10 tables (s5: Table 5.1 LAR coding, Table 5.2 LTP gains,
// Table 5.6 RPE normalisation).
var (
	gsmB    = [8]int{0, 0, 2048, -2560, 94, -1792, -341, -1144}
	gsmMIC  = [8]int{-32, -32, -16, -16, -8, -8, -4, -4}
	gsmINVA = [8]int{13107, 13107, 13107, 13107, 19223, 17476, 31454, 29708}
	gsmQLB  = [4]int{3277, 11469, 21299, 32767}
	gsmFAC  = [8]int{18431, 20479, 22527, 24575, 26623, 28671, 30719, 32767}
	// LAR bit widths.
	gsmLARBits = [8]uint{6, 6, 5, 5, 4, 4, 3, 3}
)

func gsmAdd(a, b int) int { return min(max(a+b, gsmMinWord), gsmMaxWord) }
func gsmSub(a, b int) int { return min(max(a-b, gsmMinWord), gsmMaxWord) }

// gsmMultR is the rounded 16x16 multiplication of s2.
func gsmMultR(a, b int) int {
	if a == gsmMinWord && b == gsmMinWord {
		return gsmMaxWord
	}
	return int(int16((a*b + 16384) >> 15))
}

func gsmASR(a, n int) int {
	switch {
	case n >= 16:
		if a < 0 {
			return -1
		}
		return 0
	case n <= -16:
		return 0
	case n < 0:
		return int(int16(a << -n))
	}
	return a >> n
}

func gsmASL(a, n int) int {
	switch {
	case n >= 16:
		return 0
	case n <= -16:
		if a < 0 {
			return -1
		}
		return 0
	case n < 0:
		return gsmASR(a, -n)
	}
	return int(int16(a << n))
}

// gsmFrame holds the 76 parameters of one frame.
type gsmFrame struct {
	larc  [8]int
	nc    [4]int
	bc    [4]int
	mc    [4]int
	xmaxc [4]int
	xmc   [4][13]int
}

// bitReader reads parameters MSB first (33-byte frames) or LSB first
// (WAV49). Parameters are at most 7 bits, so each read takes two bytes at
// once; b holds the frame and a zero byte after it.
type bitReader struct {
	b   [66]byte
	pos uint // bit position
	lsb bool
}

func newBitReader(frame []byte, lsb bool) *bitReader {
	r := &bitReader{lsb: lsb}
	copy(r.b[:len(r.b)-1], frame)
	return r
}

func (r *bitReader) read(n uint) int {
	i := r.pos / 8 % 65
	off := r.pos % 8
	r.pos += n
	mask := uint(1)<<n - 1
	if r.lsb {
		return int((uint(r.b[i])|uint(r.b[i+1])<<8)>>off) & int(mask)
	}
	return int((uint(r.b[i])<<8|uint(r.b[i+1]))>>(16-off-n)) & int(mask)
}

func (f *gsmFrame) unpack(r *bitReader) {
	for i := range f.larc {
		f.larc[i] = r.read(gsmLARBits[i])
	}
	for j := 0; j < 4; j++ {
		f.nc[j] = r.read(7)
		f.bc[j] = r.read(2)
		f.mc[j] = r.read(2)
		f.xmaxc[j] = r.read(6)
		for i := 0; i < 13; i++ {
			f.xmc[j][i] = r.read(3)
		}
	}
}

// gsmDecoder is the decoder state (s4.3).
type gsmDecoder struct {
	dp    [160]int // long-term synthesis history: drp = dp[120:]
	nrp   int
	larpp [2][8]int
	j     int
	v     [9]int
	msr   int
	wav49 bool
}

func newGSMDecoder(wav49 bool) *gsmDecoder { return &gsmDecoder{nrp: 40, wav49: wav49} }

func (d *gsmDecoder) unit() (int, int) {
	if d.wav49 {
		return 65, 320
	}
	return 33, 160
}

func (d *gsmDecoder) decode(dst []int16, src []byte) []int16 {
	if d.wav49 {
		for len(src) >= 65 {
			r := newBitReader(src[:65], true)
			var f1, f2 gsmFrame
			f1.unpack(r)
			f2.unpack(r)
			dst = d.frame(dst, &f1)
			dst = d.frame(dst, &f2)
			src = src[65:]
		}
		return dst
	}
	for len(src) >= 33 {
		r := newBitReader(src[:33], false)
		r.read(4) // 0xD signature
		var f gsmFrame
		f.unpack(r)
		dst = d.frame(dst, &f)
		src = src[33:]
	}
	return dst
}

func (d *gsmDecoder) encode(dst []byte, _ []int16) []byte { return dst } // decoding only

// frame decodes one 160-sample frame.
func (d *gsmDecoder) frame(dst []int16, f *gsmFrame) []int16 {
	var wt [160]int
	for j := 0; j < 4; j++ {
		var erp [40]int
		gsmRPEDecode(f.xmaxc[j], f.mc[j], &f.xmc[j], &erp)
		// Long-term synthesis (s4.3.2).
		nr := f.nc[j]
		if nr < 40 || nr > 120 {
			nr = d.nrp
		}
		d.nrp = nr
		brp := gsmQLB[f.bc[j]]
		drp := d.dp[120:]
		for k := 0; k < 40; k++ {
			drp[k] = gsmAdd(erp[k], gsmMultR(brp, d.dp[120+k-nr]))
			wt[j*40+k] = drp[k]
		}
		copy(d.dp[:120], d.dp[40:160])
	}
	// Short-term synthesis (s4.3.3-4.3.5).
	var sr [160]int
	gsmShortTerm(&d.larpp, &d.j, &f.larc, func(larp *[8]int, a, b int) { d.synth(larp, wt[a:b], sr[a:b]) })
	// Post-processing: de-emphasis, upscaling, truncation (s4.3.6-4.3.7).
	// (gsmMultR without its saturation case: 28180 is not -32768.)
	n := len(dst)
	dst = slices.Grow(dst, 160)[:n+160]
	out := dst[n:]
	msr := d.msr
	for k, v := range &sr {
		msr = gsmAdd(v, (msr*28180+16384)>>15)
		out[k] = int16(gsmAdd(msr, msr) &^ 7)
	}
	d.msr = msr
	return dst
}

// gsmShortTerm decodes the coded log-area ratios into the current slot of
// larpp (s4.2.8), then, for each of the four segments of the frame (samples
// 0-12, 13-26, 27-39, 40-159), interpolates them with the previous frame's
// (s4.2.9), converts them to reflection coefficients and calls filter.
func gsmShortTerm(larpp *[2][8]int, j *int, larc *[8]int, filter func(rp *[8]int, a, b int)) {
	cur := &larpp[*j]
	*j ^= 1
	prev := &larpp[*j]
	for i := 0; i < 8; i++ {
		t := (larc[i] + gsmMIC[i]) << 10
		t = gsmSub(t, gsmB[i]<<1)
		t = gsmMultR(gsmINVA[i], t)
		cur[i] = gsmAdd(t, t)
	}
	var larp [8]int
	for seg, bounds := range [4][2]int{{0, 13}, {13, 27}, {27, 40}, {40, 160}} {
		for i := 0; i < 8; i++ {
			o, n := prev[i], cur[i]
			switch seg {
			case 0:
				larp[i] = gsmAdd(gsmAdd(o>>2, n>>2), o>>1)
			case 1:
				larp[i] = gsmAdd(o>>1, n>>1)
			case 2:
				larp[i] = gsmAdd(gsmAdd(o>>2, n>>2), n>>1)
			default:
				larp[i] = n
			}
		}
		gsmLARToRP(&larp)
		filter(&larp, bounds[0], bounds[1])
	}
}

// gsmLARToRP converts interpolated log-area ratios to reflection
// coefficients (s4.2.10).
func gsmLARToRP(larp *[8]int) {
	for i, v := range larp {
		neg := v < 0
		t := v
		if neg {
			if v == gsmMinWord {
				t = gsmMaxWord
			} else {
				t = -v
			}
		}
		switch {
		case t < 11059:
			t <<= 1
		case t < 20070:
			t += 11059
		default:
			t = gsmAdd(t>>2, 26112)
		}
		if neg {
			t = -t
		}
		larp[i] = t
	}
}

// synth is the short-term synthesis lattice filter (s4.3.5). The eight
// stages are unrolled with the state in registers. The reflection
// coefficients are never -32768 (gsmLARToRP yields at most 32767 in
// magnitude), so the rounded products need no saturation case:
// gsmMultR(r, x) is (r*x + 16384) >> 15.
func (d *gsmDecoder) synth(rrp *[8]int, wt, sr []int) {
	r0, r1, r2, r3, r4, r5, r6, r7 := rrp[0], rrp[1], rrp[2], rrp[3], rrp[4], rrp[5], rrp[6], rrp[7]
	v0, v1, v2, v3, v4, v5, v6, v7 := d.v[0], d.v[1], d.v[2], d.v[3], d.v[4], d.v[5], d.v[6], d.v[7]
	sr = sr[:len(wt)]
	for k, x := range wt {
		x = gsmSub(x, (r7*v7+16384)>>15) // v[8] is never read: not kept
		x = gsmSub(x, (r6*v6+16384)>>15)
		v7 = gsmAdd(v6, (r6*x+16384)>>15)
		x = gsmSub(x, (r5*v5+16384)>>15)
		v6 = gsmAdd(v5, (r5*x+16384)>>15)
		x = gsmSub(x, (r4*v4+16384)>>15)
		v5 = gsmAdd(v4, (r4*x+16384)>>15)
		x = gsmSub(x, (r3*v3+16384)>>15)
		v4 = gsmAdd(v3, (r3*x+16384)>>15)
		x = gsmSub(x, (r2*v2+16384)>>15)
		v3 = gsmAdd(v2, (r2*x+16384)>>15)
		x = gsmSub(x, (r1*v1+16384)>>15)
		v2 = gsmAdd(v1, (r1*x+16384)>>15)
		x = gsmSub(x, (r0*v0+16384)>>15)
		v1 = gsmAdd(v0, (r0*x+16384)>>15)
		v0 = x
		sr[k] = x
	}
	d.v = [9]int{v0, v1, v2, v3, v4, v5, v6, v7, d.v[8]}
}

// gsmRPEDecode is RPE decoding: APCM inverse quantisation and grid
// positioning (s4.2.16-4.2.18 as used by the decoder).
func gsmRPEDecode(xmaxc, mc int, xmc *[13]int, erp *[40]int) {
	exp := 0
	if xmaxc > 15 {
		exp = (xmaxc >> 3) - 1
	}
	mant := xmaxc - exp<<3
	if mant == 0 {
		exp, mant = -4, 7
	} else {
		for mant <= 7 {
			mant = mant<<1 | 1
			exp--
		}
		mant -= 8
	}
	temp1 := gsmFAC[mant]
	temp2 := gsmSub(6, exp)
	temp3 := gsmASL(1, gsmSub(temp2, 1))
	for i := 0; i < 13; i++ {
		t := (xmc[i]<<1 - 7) << 12
		t = gsmMultR(temp1, t)
		t = gsmAdd(t, temp3)
		erp[mc+3*i] = gsmASR(t, temp2)
	}
}
