package transcode

// ITU-T G.722 sub-band ADPCM at 64 kbit/s (mode 1): 16 kHz PCM is split by
// a 24-tap QMF into two 8 kHz bands, the low band coded with 6 bits and the
// high band with 2 bits a sample; one byte per pair of input samples. Block
// names in comments follow the Recommendation (s3 encoder, s4 decoder,
// s6 tables).

var (
	// QMF coefficients (G.722 Table 11), one half of the symmetric filter.
	g722QMF = [12]int{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
	// Low-band quantizer decision levels and code mapping (Table 6).
	g722Q6  = [32]int{0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0}
	g722ILN = [32]int{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0}
	g722ILP = [32]int{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0}
	// Low-band scale factor adaptation (Table 14) and inverse quantizers.
	g722WL   = [8]int{-60, -30, 58, 172, 334, 538, 1198, 3042}
	g722RL42 = [16]int{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	g722ILB  = [32]int{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008}
	g722QM4  = [16]int{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	g722QM6  = [64]int{-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136}
	// g722Q6 with levels 30 and 31 out of reach (for QUANTL's search).
	g722Q6pad = func() (t [32]int) {
		copy(t[:], g722Q6[:30])
		t[30], t[31] = 1<<30, 1<<30
		return t
	}()
	// High band (Tables 7, 9, 15).
	g722IHN = [3]int{0, 1, 0}
	g722IHP = [3]int{0, 3, 2}
	g722QM2 = [4]int{-7408, -1616, 7408, 1616}
	g722WH  = [3]int{0, -214, 798}
	g722RH2 = [4]int{2, 1, 2, 1}
)

type g722Band struct {
	s, sp, sz int
	r, p      [3]int // reconstructed and partially reconstructed signals, newest first ([0] unused between calls)
	a         [3]int // pole predictor coefficients a[1], a[2]
	d, b      [7]int // quantized differences (newest first) and zero predictor coefficients b[1..6]
	nb, det   int
}

type g722State struct {
	// narrow is the 8 kHz mode: the encoder takes 8 kHz PCM straight into
	// the lower sub-band (no QMF, high band left silent) and the decoder
	// returns the lower sub-band alone as 8 kHz PCM. It gives the same
	// result as resampling to 16 kHz and back, for a fraction of the work,
	// whenever the other side is narrowband (G.711 to G.722 and back).
	narrow bool
	// QMF delay line, kept twice over (x[i] == x[i+24]) so that the 24
	// newest samples are always contiguous without shifting: xpos is where
	// the next pair goes.
	x    [48]int
	xpos int
	band [2]g722Band
}

// push adds a pair to the QMF delay line and returns the 24 newest
// samples, oldest first (the layout of G.722 s3.1 with x[22], x[23] newest).
func (s *g722State) push(a, b int) *[24]int {
	p := s.xpos
	s.x[p], s.x[p+1] = a, b
	s.x[p+24], s.x[p+25] = a, b
	s.xpos = (p + 2) % 24
	return (*[24]int)(s.x[s.xpos : s.xpos+24])
}

func newG722() *g722State {
	s := &g722State{}
	s.band[0].det = 32
	s.band[1].det = 8
	return s
}

func sat16(v int) int { return min(max(v, -32768), 32767) }

// block4 is the adaptive predictor of a band (RECONS, PARREC, UPPOL1/2,
// UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC). The steps are fused: UPZERO,
// DELAYA and FILTEZ in one pass over the six zero-predictor taps, and sign
// comparisons (all values are 16-bit, so x>>15 is their sign) done with
// masks rather than branches.
func (b *g722Band) block4(d int) {
	r0 := sat16(b.s + d)
	p0 := sat16(b.sz + d)
	p1, p2 := b.p[1], b.p[2]
	a1, a2 := b.a[1], b.a[2]
	// UPPOL2
	s01 := (p0 ^ p1) >> 63 // -1 when p0 and p1 differ in sign
	s02 := (p0 ^ p2) >> 63
	wd1 := sat16(a1 << 2)
	wd2 := min((wd1^^s01)-^s01, 32767) // -wd1 when the signs agree
	wd3 := (128 ^ s02) - s02           // +128 when p0 and p2 agree, -128 when not
	wd3 += wd2 >> 7
	wd3 += (a2 * 32512) >> 15
	ap2 := min(max(wd3, -12288), 12288)
	// UPPOL1
	wd1 = (192 ^ s01) - s01
	wd2 = (a1 * 32640) >> 15
	ap1 := sat16(wd1 + wd2)
	wd3 = sat16(15360 - ap2)
	ap1 = min(max(ap1, -wd3), wd3)
	// UPZERO, DELAYA, FILTEZ: b[i] moves by +-128 (0 when d is 0) by
	// whether d and the old d[i] agree in sign, then d shifts, and the
	// filter sums the new coefficients with the shifted differences.
	step := 128 & -b2i(d != 0)
	bd := &b.d
	bb := &b.b
	upd := func(i, di int) int {
		sg := (d ^ bd[i]) >> 63
		bi := sat16((step ^ sg) - sg + (bb[i]*32640)>>15)
		bb[i] = bi
		bd[i] = di
		return (bi * sat16(di+di)) >> 15
	}
	sz := upd(6, bd[5])
	sz += upd(5, bd[4])
	sz += upd(4, bd[3])
	sz += upd(3, bd[2])
	sz += upd(2, bd[1])
	sz += upd(1, d)
	b.d[0] = d
	b.r[2], b.r[1] = b.r[1], r0
	b.p[2], b.p[1] = p1, p0
	b.a[2], b.a[1] = ap2, ap1
	// FILTEP
	wd1 = (ap1 * sat16(r0+r0)) >> 15
	wd2 = (ap2 * sat16(b.r[2]+b.r[2])) >> 15
	b.sp = sat16(wd1 + wd2)
	b.sz = sat16(sz)
	// PREDIC
	b.s = sat16(b.sp + b.sz)
}

// scale adapts a band's log scale factor (LOGSCL/LOGSCH) and step (SCALEL/SCALEH).
func (b *g722Band) scale(w, limit, shift int) {
	b.nb = (b.nb*127)>>7 + w
	b.nb = min(max(b.nb, 0), limit)
	wd1 := (b.nb >> 6) & 31
	wd2 := shift - (b.nb >> 11)
	var wd3 int
	if wd2 < 0 {
		wd3 = g722ILB[wd1] << -wd2
	} else {
		wd3 = g722ILB[wd1] >> wd2
	}
	b.det = wd3 << 2
}

func (s *g722State) encodePair(x0, x1 int16) byte {
	// Transmit QMF.
	x := s.push(int(x0), int(x1))
	var sumOdd, sumEven int
	for i := 0; i < 12; i++ {
		sumOdd += x[2*i] * g722QMF[i]
		sumEven += x[2*i+1] * g722QMF[11-i]
	}
	return s.encodeBands((sumEven+sumOdd)>>14, (sumEven-sumOdd)>>14)
}

// encodeBands codes one pair of sub-band samples.
func (s *g722State) encodeBands(xlow, xhigh int) byte {
	// Low band: SUBTL, QUANTL, INVQAL, LOGSCL, SCALEL.
	lo := &s.band[0]
	el := sat16(xlow - lo.s)
	wd := el
	if el < 0 {
		wd = -(el + 1)
	}
	// QUANTL: the first level above wd. The levels grow with the index,
	// so i-1 is the number of levels 1..29 at or below wd: a binary search
	// of five steps. (The compiler makes them branches; on speech they
	// predict well enough that a branch-free form, whose steps wait on
	// each other, measured slower.)
	det := lo.det
	k := 0
	if wd >= (g722Q6pad[16]*det)>>12 {
		k = 16
	}
	if wd >= (g722Q6pad[k+8]*det)>>12 {
		k += 8
	}
	if wd >= (g722Q6pad[k+4]*det)>>12 {
		k += 4
	}
	if wd >= (g722Q6pad[k+2]*det)>>12 {
		k += 2
	}
	if wd >= (g722Q6pad[k+1]*det)>>12 {
		k++
	}
	i := k + 1
	ilow := g722ILP[i]
	if el < 0 {
		ilow = g722ILN[i]
	}
	ril := ilow >> 2
	dlow := (lo.det * g722QM4[ril]) >> 15
	lo.scale(g722WL[g722RL42[ril]], 18432, 8)
	lo.block4(dlow)

	if s.narrow {
		// 8 kHz mode: the high band carries nothing. Code 3 with the step
		// at its minimum reconstructs zero in any decoder (qm2[3]*8 >> 15
		// is 0, and rh2[3] keeps the scale factor at its floor), so the
		// high-band ADPCM need not run.
		return byte(3<<6 | ilow)
	}
	// High band: SUBTH, QUANTH, INVQAH, LOGSCH, SCALEH.
	hi := &s.band[1]
	eh := sat16(xhigh - hi.s)
	wd = eh
	if eh < 0 {
		wd = -(eh + 1)
	}
	mih := 1
	if wd >= (564*hi.det)>>12 {
		mih = 2
	}
	ihigh := g722IHP[mih]
	if eh < 0 {
		ihigh = g722IHN[mih]
	}
	dhigh := (hi.det * g722QM2[ihigh]) >> 15
	hi.scale(g722WH[g722RH2[ihigh]], 22528, 10)
	hi.block4(dhigh)
	return byte(ihigh<<6 | ilow)
}

func (s *g722State) decodePair(code byte) (int16, int16) {
	rlow, rhigh := s.decodeBands(code)
	// Receive QMF.
	x := s.push(rlow+rhigh, rlow-rhigh)
	var out1, out2 int
	for i := 0; i < 12; i++ {
		out2 += x[2*i] * g722QMF[i]
		out1 += x[2*i+1] * g722QMF[11-i]
	}
	return int16(sat16(out1 >> 11)), int16(sat16(out2 >> 11))
}

// decodeBands decodes one code into the two sub-band signals.
func (s *g722State) decodeBands(code byte) (rlow, rhigh int) {
	rlow = s.decodeLow(code)
	ihigh := int(code >> 6)
	hi := &s.band[1]
	dhigh := (hi.det * g722QM2[ihigh]) >> 15
	rhigh = min(max(dhigh+hi.s, -16384), 16383)
	hi.scale(g722WH[g722RH2[ihigh]], 22528, 10)
	hi.block4(dhigh)
	return rlow, rhigh
}

// decodeLow decodes the lower sub-band of one code. The bands' states are
// independent, so the 8 kHz mode, which discards the upper band, does not
// decode it at all.
func (s *g722State) decodeLow(code byte) (rlow int) {
	ilow := int(code & 0x3f)
	lo := &s.band[0]
	rlow = min(max(lo.s+(lo.det*g722QM6[ilow])>>15, -16384), 16383)
	ril := ilow >> 2
	dlow := (lo.det * g722QM4[ril]) >> 15
	lo.scale(g722WL[g722RL42[ril]], 18432, 8)
	lo.block4(dlow)
	return rlow
}

func (s *g722State) decode(dst []int16, src []byte) []int16 {
	if s.narrow {
		dst, out := growPCM(dst, len(src))
		for i, c := range src {
			out[i] = int16(sat16(s.decodeLow(c) << 1))
		}
		return dst
	}
	dst, out := growPCM(dst, 2*len(src))
	for i, c := range src {
		out[2*i], out[2*i+1] = s.decodePair(c)
	}
	return dst
}

func (s *g722State) encode(dst []byte, pcm []int16) []byte {
	if s.narrow {
		for _, v := range pcm {
			dst = append(dst, s.encodeBands(int(v)>>1, 0))
		}
		return dst
	}
	for i := 0; i+1 < len(pcm); i += 2 {
		dst = append(dst, s.encodePair(pcm[i], pcm[i+1]))
	}
	return dst
}

func (s *g722State) unit() (int, int) {
	if s.narrow {
		return 1, 1
	}
	return 1, 2
}
