package transcode

import (
	"math/bits"
	"slices"
)

// ITU-T G.726 ADPCM at 32 kbit/s (4-bit codes, 8 kHz), the codec of VPIM's
// audio/32kadpcm (RFC 3802). Block names in comments are those of the
// Recommendation's s4 (FMULT, ACCUM, QUAN, RECONST, ADAPT, TRANS, ...).
// The reconstructed signal is 14-bit; PCM in and out is 16-bit.

// G.726 Table 7 (32 kbit/s): quantizer decision levels (log domain),
// inverse quantizer outputs, scale factor multipliers W(I) and F(I).
var (
	g726Qtab = [7]int{-124, 80, 178, 246, 300, 349, 400}
	g726Dqln = [16]int{-2048, 4, 135, 213, 273, 323, 373, 425, 425, 373, 323, 273, 213, 135, 4, -2048}
	g726Wi   = [16]int{-12, 18, 41, 64, 112, 198, 355, 1122, 1122, 355, 198, 112, 64, 41, 18, -12}
	g726Fi   = [16]int{0, 0, 0, 0x200, 0x200, 0x200, 0x600, 0xe00, 0xe00, 0x600, 0x200, 0x200, 0x200, 0, 0, 0}
)

type g726State struct {
	yl  int // locked scale factor (s4.2.3 YL)
	yu  int // unlocked scale factor (YU)
	dms int // short-term average of F(I)
	dml int // long-term average of F(I)
	ap  int // speed control (AP)
	// The predictor's eight coefficients and the eight past signals they
	// multiply, side by side for the vector kernel: pc holds the zero
	// predictor's B1..B6 then the pole predictor's A2, A1; pf holds, in
	// floating format, the past quantized differences DQ1..DQ6 then the
	// past reconstructed signals SR2, SR1.
	pc [8]int32
	pf [8]int32
	pk [2]int // signs of DQ+SEZ
	td int    // tone detected
	// bigEndianPack: first code in the high nibble (AAL2 / X.420 order)
	// instead of the low nibble (RFC 3551 G726-32 order).
	bigEndianPack bool
}

func newG726() *g726State {
	s := &g726State{yl: 34816, yu: 544}
	for i := range s.pf {
		s.pf[i] = 32
	}
	return s
}

// log2q returns how many entries of the powers-of-two table are <= val
// (the QUAN helper used for exponents): the bit length of val.
func log2q(val int) int {
	if val <= 0 {
		return 0
	}
	return min(bits.Len(uint(val)), 15)
}

// quan returns how many table entries are <= val (s4.2.2 log quantizer helper).
func quan(val int, table []int) int {
	i := 0
	for i < len(table) && val >= table[i] {
		i++
	}
	return i
}

// fmult multiplies a predictor coefficient by a floating-format signal
// (FMULT), without branches on the exponents: the product's exponent
// (anexp + srnexp - 19) is applied as one shift.
func fmult(an, srn int) int {
	anmag := an
	if an <= 0 {
		anmag = -an & 0x1fff
	}
	l := uint(bits.Len(uint(anmag)))
	anmant := (anmag << 6) >> l
	if anmag == 0 {
		anmant = 32
	}
	wanmant := (anmant*(srn&0x3f) + 0x30) >> 4
	r := int((uint64(wanmant)<<(l+uint(srn>>6)&0xf))>>19) & 0x7fff
	sg := (an ^ srn) >> 63 // -1 when the signs differ
	return (r ^ sg) - sg
}

// b2i is 1 for true, 0 for false (compiled without a branch).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// predict returns the zero predictor's sum (SEZI) and the whole
// prediction (SEI = SEZI + the pole predictor's sum).
func (s *g726State) predict() (sezi, sei int) {
	if useAVX2 {
		z, p := fmult8AVX2(&s.pc, &s.pf)
		return int(z), int(z) + int(p)
	}
	return fmult8(&s.pc, &s.pf)
}

// fmult8 is predict's generic form.
func fmult8(pc, pf *[8]int32) (sezi, sei int) {
	for i := 0; i < 6; i++ {
		sezi += fmult(int(pc[i]>>2), int(pf[i]))
	}
	return sezi, sezi + fmult(int(pc[6]>>2), int(pf[6])) + fmult(int(pc[7]>>2), int(pf[7]))
}

// stepSize mixes the locked and unlocked scale factors (MIX).
func (s *g726State) stepSize() int {
	if s.ap >= 256 {
		return s.yu
	}
	y := s.yl >> 6
	dif := s.yu - y
	al := s.ap >> 2
	// A negative product rounds up: +0x3f before the shift.
	return y + (dif*al+(0x3f&(dif>>63)))>>6
}

// quantize maps the difference signal to a 4-bit code (QUAN).
func quantize(d, y int) int {
	dqm := d
	if dqm < 0 {
		dqm = -dqm
	}
	exp := log2q(dqm >> 1)
	mant := ((dqm << 7) >> exp) & 0x7f
	dl := (exp << 7) + mant
	dln := dl - (y >> 2)
	i := quan(dln, g726Qtab[:])
	switch {
	case d < 0:
		return 15 - i
	case i == 0:
		return 15
	}
	return i
}

// reconstruct is the inverse quantizer (RECONST + ANTILOG).
func reconstruct(sign bool, dqln, y int) int {
	dql := dqln + (y >> 2)
	dex := (dql >> 7) & 15
	dqt := 128 + (dql & 127)
	dq := (dqt << 7) >> uint(14-dex)
	dq &^= dql >> 63 // a negative log magnitude is zero
	return dq - 0x8000*b2i(sign)
}

func toFloat(mag int) int {
	exp := log2q(mag)
	return (exp << 6) + ((mag << 6) >> exp)
}

// update adapts the predictor and scale factors (ADAPT, TRANS, TONE, ...).
// The sign-dependent steps are written as arithmetic on sign masks rather
// than branches: on speech their outcome is a coin toss for the branch
// predictor.
func (s *g726State) update(y, wi, fi, dq, sr, dqsez int) {
	pk0 := int(uint(dqsez) >> 63) // 1 when DQ+SEZ < 0
	mag := dq & 0x7fff
	// TRANS: transition detector.
	ylint := s.yl >> 15
	ylfrac := (s.yl >> 10) & 0x1f
	thr1 := (32 + ylfrac) << ylint
	thr2 := thr1
	if ylint > 9 {
		thr2 = 31 << 10
	}
	dqthr := (thr2 + (thr2 >> 1)) >> 1
	tr := s.td != 0 && mag > dqthr
	// Scale factor adaptation.
	s.yu = y + ((wi - y) >> 5)
	s.yu = min(max(s.yu, 544), 5120)
	s.yl += s.yu + ((-s.yl) >> 6)

	a2p := 0
	if tr {
		s.pc = [8]int32{}
	} else {
		nz := b2i(dqsez != 0)
		pks1 := pk0 ^ s.pk[0]
		// UPA2: F(a1) is a1 with the sign of the product of the signs,
		// limited to +-8191 (so >>5 gives -0x100 and +0xff at the limits).
		a1, a2 := int(s.pc[7]), int(s.pc[6])
		a2p = a2 - (a2 >> 7)
		fa1 := a1
		if pks1 == 0 {
			fa1 = -fa1
		}
		a2p += nz * (min(max(fa1, -8192), 8191) >> 5)
		a2p += nz * (0x80 - 0x100*(pk0^s.pk[1]))
		a2p = min(max(a2p, -12288), 12288)
		s.pc[6] = int32(a2p)
		// UPA1
		a1 -= a1 >> 8
		a1 += nz * (192 - 384*pks1)
		// LIMD
		a1ul := 15360 - a2p
		s.pc[7] = int32(min(max(a1, -a1ul), a1ul))
		// UPB: +-128 by whether DQ and the past DQ have the same sign.
		magm := -b2i(mag != 0)
		for i := 0; i < 6; i++ {
			sg := (dq ^ int(s.pf[i])) >> 63
			bi := int(s.pc[i])
			bi -= bi >> 8
			bi += ((128 ^ sg) - sg) & magm
			s.pc[i] = int32(bi)
		}
	}
	copy(s.pf[1:6], s.pf[:5])
	// FLOAT A (zero is 0x20, and 0xFC20 as an int16 when negative)
	f := toFloat(mag)
	if mag == 0 {
		f = 0x20
	}
	s.pf[0] = int32(f + (-0x400 & (dq >> 63)))
	s.pf[6] = s.pf[7]
	// FLOAT B
	srm := sr
	if sr < 0 {
		srm = -sr
	}
	f = toFloat(srm)
	if sr == 0 || sr <= -32768 {
		f = 0x20
	}
	s.pf[7] = int32(f + (-0x400 & (sr >> 63)))
	s.pk[1], s.pk[0] = s.pk[0], pk0
	// TONE
	s.td = b2i(!tr && a2p < -11776)
	// Adaptation speed control.
	s.dms += (fi - s.dms) >> 5
	s.dml += ((fi << 2) - s.dml) >> 7
	d := (s.dms << 2) - s.dml
	if d < 0 {
		d = -d
	}
	fast := b2i(y < 1536) | s.td | b2i(d >= (s.dml>>3))
	s.ap += (0x200*fast - s.ap) >> 4
	if tr {
		s.ap = 256
	}
}

func (s *g726State) encodeSample(pcm int16) int {
	sl := int(pcm) >> 2
	sezi, sei := s.predict()
	sez := sezi >> 1
	se := sei >> 1
	d := sl - se
	y := s.stepSize()
	i := quantize(d, y)
	dq := reconstruct(i&8 != 0, g726Dqln[i], y)
	var sr int
	if dq < 0 {
		sr = se - (dq & 0x3fff)
	} else {
		sr = se + dq
	}
	s.update(y, g726Wi[i]<<5, g726Fi[i], dq, sr, sr+sez-se)
	return i
}

func (s *g726State) decodeSample(i int) int16 {
	i &= 0x0f
	sezi, sei := s.predict()
	sez := sezi >> 1
	se := sei >> 1
	y := s.stepSize()
	dq := reconstruct(i&8 != 0, g726Dqln[i], y)
	neg := dq >> 63
	sr := se + ((dq & 0x3fff) ^ neg - neg) // sign and magnitude to two's complement
	s.update(y, g726Wi[i]<<5, g726Fi[i], dq, sr, sr-se+sez)
	v := sr << 2
	return int16(min(max(v, -32768), 32767))
}

func (s *g726State) decode(dst []int16, src []byte) []int16 {
	n := len(dst)
	dst = slices.Grow(dst, 2*len(src))[:n+2*len(src)]
	out := dst[n:]
	lo, hi := uint(0), uint(4)
	if s.bigEndianPack {
		lo, hi = 4, 0
	}
	for k, b := range src {
		out[2*k] = s.decodeSample(int(b>>lo) & 15)
		out[2*k+1] = s.decodeSample(int(b>>hi) & 15)
	}
	return dst
}

func (s *g726State) encode(dst []byte, pcm []int16) []byte {
	for i := 0; i+1 < len(pcm); i += 2 {
		a, b := s.encodeSample(pcm[i]), s.encodeSample(pcm[i+1])
		if s.bigEndianPack {
			dst = append(dst, byte(a<<4|b))
		} else {
			dst = append(dst, byte(b<<4|a))
		}
	}
	return dst
}

func (*g726State) unit() (int, int) { return 1, 2 }
