package transcode

import (
	"errors"
	"io"
	"math"
	"slices"
)

// Resampler design: a windowed-sinc low-pass (Kaiser, beta 7, about 70 dB
// of stop-band attenuation) evaluated in polyphase form. For a ratio L/M
// (reduced) there are L phases of taps; the filter spans resampleZeros
// zero crossings on each side at the lower of the two rates and its cutoff
// sits just below the lower Nyquist frequency, so aliasing products land in
// the stop band.
const (
	resampleZeros = 16
	kaiserBeta    = 7.0
	cutoffFrac    = 0.90 // cutoff as a fraction of the lower Nyquist frequency
)

type resampler struct {
	src     Source
	ch      int
	l, m    int
	taps    int
	coef    [][]float32 // [phase][tap]
	buf     [][]float32 // per channel, input samples from base on
	base    int64       // absolute index of buf[c][0]
	n       int64       // next output index
	ni      int64       // input index of output n: n*m/l
	nph     int         // phase of output n: n*m mod l
	eof     bool
	inTotal int64
	tmp     []int16
	blk     []float32 // block path: l phases of up to blockMax outputs
	err     error
}

// resampleBlocks enables the block path (tests compare it with the
// output-by-output path).
var resampleBlocks = true

// blockMax is the most input positions the block path does at once; the
// block path needs at least blockMin (the AVX2 kernel's width).
const (
	blockMax = 512
	blockMin = 32
)

// Convert returns src at rate and channels (resampled and mixed as
// needed). Stereo is down-mixed by averaging; mono is duplicated.
func Convert(src Source, rate, channels int) Source {
	if st, ok := src.(*Stream); ok && rate > 0 && rate <= 8000 && src.Rate() == 16000 && st.narrowG722() {
		// G.722 to narrowband: decode the lower sub-band only.
	}
	if channels > 0 && channels != src.Channels() {
		src = &mixer{src: src, ch: channels}
	}
	if rate <= 0 || rate == src.Rate() {
		return src
	}
	return newResampler(src, rate)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newResampler(src Source, rate int) *resampler {
	in := src.Rate()
	g := gcd(in, rate)
	r := &resampler{src: src, ch: src.Channels(), l: rate / g, m: in / g}
	// Filter span in input samples: resampleZeros crossings of the lower rate.
	low := float64(min(in, rate))
	scale := float64(in) / low // input samples per lower-rate sample
	r.taps = 2 * int(math.Ceil(resampleZeros*scale))
	fc := cutoffFrac * 0.5 * low / float64(in) // cycles per input sample
	half := float64(r.taps) / 2
	r.coef = make([][]float32, r.l)
	i0b := besselI0(kaiserBeta)
	for p := 0; p < r.l; p++ {
		c := make([]float32, r.taps)
		frac := float64(p) / float64(r.l)
		var sum float64
		for k := 0; k < r.taps; k++ {
			tau := frac + half - 1 - float64(k)
			x := tau / half
			if x < -1 || x > 1 {
				continue
			}
			w := besselI0(kaiserBeta*math.Sqrt(1-x*x)) / i0b
			v := 2 * fc * sinc(2*fc*tau) * w
			c[k] = float32(v)
			sum += v
		}
		// Normalise each phase to unity DC gain.
		for k := range c {
			c[k] = float32(float64(c[k]) / sum)
		}
		r.coef[p] = c
	}
	// The input before the first sample is silence: keep half-1 zeros
	// ahead of it so that every window lies inside the buffer.
	r.buf = make([][]float32, r.ch)
	for c := range r.buf {
		r.buf[c] = make([]float32, r.taps/2-1, 4096)
	}
	r.base = -int64(r.taps/2 - 1)
	return r
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}

func (r *resampler) Rate() int     { return r.src.Rate() * r.l / r.m }
func (r *resampler) Channels() int { return r.ch }

func (r *resampler) fill() {
	if r.tmp == nil {
		r.tmp = make([]int16, 2048*r.ch)
	}
	n, err := r.src.ReadPCM(r.tmp)
	frames := n / r.ch
	for c := range r.buf {
		b := slices.Grow(r.buf[c], frames)
		b = b[:len(b)+frames]
		dst := b[len(b)-frames:]
		for i := range dst {
			dst[i] = float32(r.tmp[i*r.ch+c])
		}
		r.buf[c] = b
	}
	r.inTotal += int64(frames)
	if err != nil {
		// And so is the input after the last: taps zeros after it.
		for c := range r.buf {
			r.buf[c] = append(r.buf[c], make([]float32, r.taps)...)
		}
		r.eof = true
		if !errors.Is(err, io.EOF) {
			r.err = err
		}
	}
}

func (r *resampler) ReadPCM(p []int16) (int, error) {
	frames := len(p) / r.ch
	out := 0
	half := int64(r.taps / 2)
	for out < frames {
		i, ph := r.ni, r.nph
		for !r.eof && r.base+int64(len(r.buf[0])) <= i+half {
			r.fill()
		}
		if r.eof && i >= r.inTotal {
			break
		}
		if r.m == 1 && ph == 0 && frames-out >= r.l*blockMin && resampleBlocks {
			if n := r.block(p[out*r.ch:], (frames-out)/r.l); n > 0 {
				out += n * r.l
				continue
			}
		}
		first := i - half + 1
		co := r.coef[ph]
		for c := 0; c < r.ch; c++ {
			b := r.buf[c]
			var acc float32
			start := first - r.base
			if start >= 0 && start+int64(r.taps) <= int64(len(b)) {
				w := b[start : start+int64(r.taps)]
				co := co[:len(w)]
				if useAVX2 && len(w)%8 == 0 {
					p[out*r.ch+c] = roundSat16(dotAVX2(&w[0], &co[0], len(w)))
					continue
				}
				var a0, a1, a2, a3 float32
				k := 0
				for ; k+4 <= len(w); k += 4 {
					a0 += w[k] * co[k]
					a1 += w[k+1] * co[k+1]
					a2 += w[k+2] * co[k+2]
					a3 += w[k+3] * co[k+3]
				}
				for ; k < len(w); k++ {
					a0 += w[k] * co[k]
				}
				acc = a0 + a1 + a2 + a3
			} else {
				for k := 0; k < r.taps; k++ {
					j := start + int64(k)
					if j >= 0 && j < int64(len(b)) {
						acc += b[j] * co[k]
					}
				}
			}
			p[out*r.ch+c] = roundSat16(acc)
		}
		out++
		r.n++
		r.nph += r.m
		for r.nph >= r.l {
			r.nph -= r.l
			r.ni++
		}
		// Drop input no longer needed, in batches.
		if drop := first - r.base; drop > 4096 {
			for c := range r.buf {
				r.buf[c] = r.buf[c][:copy(r.buf[c], r.buf[c][drop:])]
			}
			r.base += drop
		}
	}
	if out == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	return out * r.ch, nil
}

// block computes the outputs of up to n whole input positions from r.ni
// on (all l phases of each; r.m is 1 and r.nph 0) into p, evaluating each
// phase's filter for many consecutive positions at once, and returns the
// positions done (0: too few inputs buffered for a block).
func (r *resampler) block(p []int16, n int) int {
	half := int64(r.taps / 2)
	// Refill while the buffer holds less than a full block.
	for !r.eof && r.base+int64(len(r.buf[0]))-half-r.ni < blockMax {
		r.fill()
	}
	avail := r.base + int64(len(r.buf[0])) - half - r.ni // windows inside the buffer
	avail = min(avail, r.inTotal-r.ni, int64(n), blockMax)
	if avail < blockMin {
		return 0
	}
	nb := int(avail)
	if useAVX2 {
		nb = nb / blockMin * blockMin
	}
	if len(r.blk) < r.l*blockMax {
		r.blk = make([]float32, r.l*blockMax)
	}
	start := r.ni - half + 1 - r.base
	for c := 0; c < r.ch; c++ {
		x := r.buf[c][start : start+int64(nb+r.taps-1)]
		for ph := 0; ph < r.l; ph++ {
			fir(r.coef[ph], x, r.blk[ph*blockMax:ph*blockMax+nb])
		}
		interleave(p, r.blk, nb, r.l, r.ch, c)
	}
	r.ni += int64(nb)
	r.n += int64(nb * r.l)
	if drop := r.ni - half + 1 - r.base; drop > 4096 {
		for c := range r.buf {
			r.buf[c] = r.buf[c][:copy(r.buf[c], r.buf[c][drop:])]
		}
		r.base += drop
	}
	return nb
}

// fir sets out[t] = sum_j h[j]*x[t+j] for t < len(out); x holds
// len(out)+len(h)-1 values. With AVX2, len(out) must be a multiple of 32.
func fir(h, x, out []float32) {
	if len(out) == 0 {
		return
	}
	if useAVX2 {
		_ = x[len(out)+len(h)-2]
		firAVX2(&h[0], &x[0], len(out), len(h), &out[0])
		return
	}
	firGeneric(h, x, out)
}

func firGeneric(h, x, out []float32) {
	for t := range out {
		w := x[t : t+len(h)]
		w = w[:len(h)]
		var a0, a1, a2, a3 float32
		k := 0
		for ; k+4 <= len(h); k += 4 {
			a0 += w[k] * h[k]
			a1 += w[k+1] * h[k+1]
			a2 += w[k+2] * h[k+2]
			a3 += w[k+3] * h[k+3]
		}
		for ; k < len(h); k++ {
			a0 += w[k] * h[k]
		}
		out[t] = (a0 + a1) + (a2 + a3)
	}
}

// interleave rounds the phases' outputs (l rows of blockMax in blk, nb
// each) into channel c of p in output order.
func interleave(p []int16, blk []float32, nb, l, ch, c int) {
	if l == 2 && ch == 1 {
		p = p[:2*nb]
		b0, b1 := blk[:nb], blk[blockMax:blockMax+nb]
		for i := range b0 {
			p[2*i] = roundSat16(b0[i])
			p[2*i+1] = roundSat16(b1[i])
		}
		return
	}
	for ph := 0; ph < l; ph++ {
		row := blk[ph*blockMax : ph*blockMax+nb]
		o := ph*ch + c
		for _, v := range row {
			p[o] = roundSat16(v)
			o += l * ch
		}
	}
}

// mixer converts between channel counts.
type mixer struct {
	src Source
	ch  int
	tmp []int16
}

func (m *mixer) Rate() int     { return m.src.Rate() }
func (m *mixer) Channels() int { return m.ch }

func (m *mixer) ReadPCM(p []int16) (int, error) {
	in := m.src.Channels()
	frames := len(p) / m.ch
	if cap(m.tmp) < frames*in {
		m.tmp = make([]int16, frames*in)
	}
	n, err := m.src.ReadPCM(m.tmp[:frames*in])
	f := n / in
	for i := 0; i < f; i++ {
		frame := m.tmp[i*in : (i+1)*in]
		if m.ch == 1 {
			var s int
			for _, v := range frame {
				s += int(v)
			}
			p[i] = int16(s / in)
			continue
		}
		for c := 0; c < m.ch; c++ {
			p[i*m.ch+c] = frame[c%in]
		}
	}
	return f * m.ch, err
}

// roundSat16 rounds to the nearest integer (halves away from zero) and
// saturates to 16 bits, without branches: adding 0.5 with v's sign and
// truncating rounds, and clamping after the addition saturates alike.
func roundSat16(v float32) int16 {
	v += math.Float32frombits(math.Float32bits(v)&(1<<31) | 0x3f000000) // ±0.5
	return int16(int32(min(max(v, -32768), 32767)))
}
