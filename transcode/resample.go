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
	err     error
}

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
	r.buf = make([][]float32, r.ch)
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

// roundSat16 rounds to the nearest integer and saturates to 16 bits.
func roundSat16(v float32) int16 {
	if v >= 0 {
		v += 0.5
	} else {
		v -= 0.5
	}
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(v)
}
