package transcode

import "math/bits"

// GSM 06.10 full-rate encoding (s4.2): pre-processing, LPC analysis with
// Schur recursion, short-term analysis filtering, long-term prediction
// and RPE encoding, in the Recommendation's fixed-point arithmetic.

var (
	gsmA     = [8]int{20480, 20480, 20480, 20480, 13964, 15360, 8534, 9036}
	gsmMAC   = [8]int{31, 31, 15, 15, 7, 7, 3, 3}
	gsmDLB   = [4]int{6554, 16384, 26214, 32767}
	gsmNRFAC = [8]int{29128, 26215, 23832, 21846, 20165, 18725, 17476, 16384}
	gsmH     = [11]int{-134, -374, 0, 2054, 5741, 8192, 5741, 2054, 0, -374, -134}
)

// gsmMult is the truncating 16x16 multiplication.
func gsmMult(a, b int) int {
	if a == gsmMinWord && b == gsmMinWord {
		return gsmMaxWord
	}
	return (a * b) >> 15
}

func gsmAbs(a int) int {
	if a < 0 {
		if a == gsmMinWord {
			return gsmMaxWord
		}
		return -a
	}
	return a
}

func gsmLAdd(a, b int64) int64 {
	return min(max(a+b, -2147483648), 2147483647)
}

// gsmNorm returns the left shifts that normalise a 32-bit value (s2).
func gsmNorm(a int64) int {
	if a < 0 {
		if a <= -1073741824 {
			return 0
		}
		a = ^a
	}
	if a == 0 {
		return 31
	}
	return bits.LeadingZeros32(uint32(a)) - 1
}

// gsmDiv is the Q15 division num/den, 0 <= num <= den (s2).
func gsmDiv(num, den int) int {
	if num == 0 {
		return 0
	}
	div := 0
	ln, ld := int64(num), int64(den)
	for k := 0; k < 15; k++ {
		div <<= 1
		ln <<= 1
		if ln >= ld {
			ln -= ld
			div++
		}
	}
	return div
}

type gsmEncoder struct {
	z1    int
	lz2   int64
	mp    int
	u     [8]int
	larpp [2][8]int
	j     int
	dp    [280]int // dp0: 120 of history then the 160 of this frame
	wav49 bool     // Microsoft WAV49 double frames instead of 33-byte frames
}

func newGSMEncoder(wav49 bool) *gsmEncoder { return &gsmEncoder{wav49: wav49} }

// encodeFrame codes 160 samples.
func (e *gsmEncoder) encodeFrame(in []int16) gsmFrame {
	var f gsmFrame
	var so [160]int
	// Pre-processing (s4.2.1-4.2.3): downscaling, offset compensation,
	// pre-emphasis.
	for k := 0; k < 160; k++ {
		sof := (int(in[k]) >> 3) << 2
		s1 := sof - e.z1
		e.z1 = sof
		ls2 := int64(s1) << 15
		msp := int(e.lz2 >> 15)
		lsp := int(e.lz2 - int64(msp)<<15)
		ls2 += int64(gsmMultR(lsp, 32735))
		e.lz2 = gsmLAdd(int64(msp)*32735, ls2)
		ltemp := gsmLAdd(e.lz2, 16384)
		msp = gsmMultR(e.mp, -28180)
		e.mp = int(ltemp >> 15)
		so[k] = gsmAdd(e.mp, msp)
	}
	e.lpc(&so, &f.larc)
	e.shortTermAnalysis(&f.larc, &so)
	for j := 0; j < 4; j++ {
		d := so[j*40 : j*40+40]
		dp := e.dp[120+j*40:]
		nc, bc := gsmLTPParams(d, e.dp[:], 120+j*40)
		f.nc[j], f.bc[j] = nc, bc
		var ex [50]int // e[-5..44]
		var dpp [40]int
		bp := gsmQLB[bc]
		for k := 0; k < 40; k++ {
			dpp[k] = gsmMultR(bp, e.dp[120+j*40+k-nc])
			ex[5+k] = gsmSub(d[k], dpp[k])
		}
		f.xmaxc[j], f.mc[j] = gsmRPEEncode(&ex, &f.xmc[j])
		for k := 0; k < 40; k++ {
			dp[k] = gsmAdd(ex[5+k], dpp[k])
		}
	}
	copy(e.dp[:120], e.dp[160:280])
	return f
}

// lpc computes and codes the log-area ratios (s4.2.4-4.2.7).
func (e *gsmEncoder) lpc(s *[160]int, larc *[8]int) {
	// Autocorrelation with dynamic scaling.
	smax := 0
	for _, v := range s {
		smax = max(smax, gsmAbs(v))
	}
	scal := 0
	if smax != 0 {
		scal = 4 - gsmNorm(int64(smax)<<16)
	}
	var w [160]int
	for k, v := range s {
		if scal > 0 && scal <= 4 {
			w[k] = gsmMultR(v, 16384>>(scal-1))
		} else {
			w[k] = v
		}
	}
	var acf [9]int64
	for k := 0; k <= 8; k++ {
		var sum int64
		for i := k; i < 160; i++ {
			sum += int64(w[i]) * int64(w[i-k])
		}
		acf[k] = sum << 1
	}
	// Reflection coefficients by Schur recursion (s4.2.5).
	var r [8]int
	if acf[0] != 0 {
		t := gsmNorm(acf[0])
		var a [9]int
		for i := range a {
			a[i] = int((acf[i] << t) >> 16)
		}
		var kk [9]int
		var p [9]int
		for i := 1; i <= 7; i++ {
			kk[i] = a[i]
		}
		copy(p[:], a[:])
		for n := 1; n <= 8; n++ {
			temp := gsmAbs(p[1])
			if p[0] < temp {
				break // the remaining coefficients stay 0
			}
			rn := gsmDiv(temp, p[0])
			if p[1] > 0 {
				rn = -rn
			}
			r[n-1] = rn
			if n == 8 {
				break
			}
			p[0] = gsmAdd(p[0], gsmMultR(p[1], rn))
			for m := 1; m <= 8-n; m++ {
				p[m] = gsmAdd(p[m+1], gsmMultR(kk[m], rn))
				kk[m] = gsmAdd(kk[m], gsmMultR(p[m+1], rn))
			}
		}
	}
	// Transformation to log-area ratios (s4.2.6) and coding (s4.2.7).
	for i, v := range r {
		t := gsmAbs(v)
		switch {
		case t < 22118:
			t >>= 1
		case t < 31130:
			t -= 11059
		default:
			t = (t - 26112) << 2
		}
		if v < 0 {
			t = -t
		}
		q := gsmMult(gsmA[i], t)
		q = gsmAdd(q, gsmB[i])
		q = gsmAdd(q, 256)
		q >>= 9
		switch {
		case q > gsmMAC[i]:
			larc[i] = gsmMAC[i] - gsmMIC[i]
		case q < gsmMIC[i]:
			larc[i] = 0
		default:
			larc[i] = q - gsmMIC[i]
		}
	}
}

// shortTermAnalysis filters s into the short-term residual d (s4.2.8-4.2.10).
func (e *gsmEncoder) shortTermAnalysis(larc *[8]int, s *[160]int) {
	gsmShortTerm(&e.larpp, &e.j, larc, func(larp *[8]int, a, b int) {
		for k := a; k < b; k++ {
			di, sav := s[k], s[k]
			for i := 0; i < 8; i++ {
				ui := e.u[i]
				e.u[i] = sav
				sav = gsmAdd(ui, gsmMultR(larp[i], di))
				di = gsmAdd(di, gsmMultR(larp[i], ui))
			}
			s[k] = di
		}
	})
}

// gsmLTPParams finds the long-term lag and gain (s4.2.11). dp is the
// history buffer; at is the index of the sub-frame's first sample in it.
func gsmLTPParams(d []int, dp []int, at int) (nc, bc int) {
	dmax := 0
	for _, v := range d {
		dmax = max(dmax, gsmAbs(v))
	}
	scal := 0
	if dmax != 0 {
		if t := gsmNorm(int64(dmax) << 16); t <= 6 {
			scal = 6 - t
		}
	}
	var wt [40]int
	for k, v := range d {
		wt[k] = v >> scal
	}
	var lmax int64
	nc = 40
	for lambda := 40; lambda <= 120; lambda++ {
		var l int64
		base := at - lambda
		for k := 0; k < 40; k++ {
			l += int64(wt[k]) * int64(dp[base+k])
		}
		if l > lmax {
			nc, lmax = lambda, l
		}
	}
	lmax <<= 1
	lmax >>= 6 - scal
	var lpower int64
	for k := 0; k < 40; k++ {
		t := int64(dp[at+k-nc] >> 3)
		lpower += t * t
	}
	lpower <<= 1
	if lmax <= 0 {
		return nc, 0
	}
	if lmax >= lpower {
		return nc, 3
	}
	t := gsmNorm(lpower)
	r := int((lmax << t) >> 16)
	s := int((lpower << t) >> 16)
	for bc = 0; bc <= 2; bc++ {
		if r <= gsmMult(s, gsmDLB[bc]) {
			break
		}
	}
	return nc, bc
}

// gsmRPEEncode weights, selects the grid, quantises (s4.2.13-4.2.15) and
// leaves the quantised excitation in ex[5:45] for the long-term history.
func gsmRPEEncode(ex *[50]int, xmc *[13]int) (xmaxc, mc int) {
	var x [40]int
	for k := 0; k < 40; k++ {
		l := int64(4096)
		for i := 0; i < 11; i++ {
			l += int64(ex[k+i]) * int64(gsmH[i])
		}
		x[k] = int(min(max(l>>13, gsmMinWord), gsmMaxWord))
	}
	var em int64
	for m := 0; m < 4; m++ {
		var l int64
		for i := 0; i < 13; i++ {
			t := int64(x[m+3*i] >> 2)
			l += t * t
		}
		l <<= 1
		if l > em {
			mc, em = m, l
		}
	}
	var xm [13]int
	xmax := 0
	for i := range xm {
		xm[i] = x[mc+3*i]
		xmax = max(xmax, gsmAbs(xm[i]))
	}
	exp := 0
	temp := xmax >> 9
	itest := false
	for i := 0; i <= 5; i++ {
		itest = itest || temp <= 0
		temp >>= 1
		if !itest {
			exp++
		}
	}
	xmaxc = gsmAdd(xmax>>(exp+5), exp<<3)
	// Quantise the sequence with the exponent and mantissa of xmaxc.
	e2, mant := gsmExpMant(xmaxc)
	t1 := 6 - e2
	t2 := gsmNRFAC[mant]
	for i := range xm {
		t := gsmMult(int(int16(xm[i]<<t1)), t2) >> 12
		xmc[i] = t + 4
	}
	// Reconstruct the excitation as the decoder will (s4.2.16-4.2.18).
	var erp [40]int
	gsmRPEDecode(xmaxc, mc, xmc, &erp)
	copy(ex[5:45], erp[:])
	return xmaxc, mc
}

func gsmExpMant(xmaxc int) (exp, mant int) {
	if xmaxc > 15 {
		exp = (xmaxc >> 3) - 1
	}
	mant = xmaxc - exp<<3
	if mant == 0 {
		return -4, 7
	}
	for mant <= 7 {
		mant = mant<<1 | 1
		exp--
	}
	return exp, mant - 8
}

// bitWriter packs parameters like bitReader reads them.
type bitWriter struct {
	b   []byte
	pos uint
	lsb bool
}

func (w *bitWriter) write(v int, n uint) {
	for i := uint(0); i < n; i++ {
		if w.pos/8 >= uint(len(w.b)) {
			w.b = append(w.b, 0)
		}
		var bit int
		if w.lsb {
			bit = (v >> i) & 1
			w.b[w.pos/8] |= byte(bit << (w.pos % 8))
		} else {
			bit = (v >> (n - 1 - i)) & 1
			w.b[w.pos/8] |= byte(bit << (7 - w.pos%8))
		}
		w.pos++
	}
}

func (f *gsmFrame) pack(w *bitWriter) {
	for i := range f.larc {
		w.write(f.larc[i], gsmLARBits[i])
	}
	for j := 0; j < 4; j++ {
		w.write(f.nc[j], 7)
		w.write(f.bc[j], 2)
		w.write(f.mc[j], 2)
		w.write(f.xmaxc[j], 6)
		for i := 0; i < 13; i++ {
			w.write(f.xmc[j][i], 3)
		}
	}
}

func (e *gsmEncoder) encode(dst []byte, pcm []int16) []byte {
	_, n := e.unit()
	for len(pcm) >= n {
		if e.wav49 {
			f1 := e.encodeFrame(pcm[:160])
			f2 := e.encodeFrame(pcm[160:320])
			w := &bitWriter{b: make([]byte, 0, 65), lsb: true}
			f1.pack(w)
			f2.pack(w)
			dst = append(dst, w.b...)
		} else {
			f := e.encodeFrame(pcm[:160])
			w := &bitWriter{b: make([]byte, 0, 33)}
			w.write(0xd, 4)
			f.pack(w)
			dst = append(dst, w.b...)
		}
		pcm = pcm[n:]
	}
	return dst
}

func (e *gsmEncoder) decode(dst []int16, _ []byte) []int16 { return dst }

func (e *gsmEncoder) unit() (int, int) {
	if e.wav49 {
		return 65, 320
	}
	return 33, 160
}
