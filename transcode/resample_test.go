package transcode

import (
	"math"
	"testing"
)

// roundSat16Ref is the rounding the resampler has always had.
func roundSat16Ref(v float32) int16 {
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

func TestRoundSat16(t *testing.T) {
	vals := []float32{0, -0, 0.5, -0.5, 1.5, -1.5, 2.5, 0.49999997, -0.49999997, 32766.5, 32767, 32767.4, 40000, -32767.5, -32768, -32768.5, -40000,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1e-30, -1e-30}
	for i := -70000; i <= 70000; i++ {
		vals = append(vals, float32(i)/2, float32(i)/2+0.25, math.Nextafter32(float32(i)/2, 0))
	}
	for _, v := range vals {
		if got, want := roundSat16(v), roundSat16Ref(v); got != want {
			t.Errorf("roundSat16(%v) = %d, want %d", v, got, want)
		}
	}
}

func TestFIRAVX2MatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("SKIPPING: no AVX2+FMA on this CPU (or purego build); the generic FIR alone is in use")
	}
	rnd := uint32(1)
	next := func() float32 { rnd = rnd*1664525 + 1013904223; return float32(int32(rnd)>>8) / (1 << 23) }
	for _, k := range []int{1, 2, 7, 32, 33, 64, 96} {
		for _, n := range []int{32, 64, 512} {
			h := make([]float32, k)
			x := make([]float32, n+k-1)
			for i := range h {
				h[i] = next()
			}
			for i := range x {
				x[i] = 32768 * next()
			}
			a, b := make([]float32, n), make([]float32, n)
			fir(h, x, a)
			firGeneric(h, x, b)
			for i := range a {
				if d := math.Abs(float64(a[i] - b[i])); d > 1e-5*32768*float64(k) {
					t.Fatalf("k=%d n=%d: out[%d] AVX2 %v, generic %v", k, n, i, a[i], b[i])
				}
			}
		}
	}
}

// resampleBoth resamples pcm (ch channels at from Hz) to to Hz with and
// without the block path, reading in the given sizes (cycled).
func resampleBoth(pcm []int16, ch, from, to int, sizes []int) (block, scalar []int16) {
	run := func(blocks bool) []int16 {
		defer func(v bool) { resampleBlocks = v }(resampleBlocks)
		resampleBlocks = blocks
		r := newResampler(&sliceSource{pcm: pcm, rate: from, ch: ch}, to)
		var out []int16
		for i := 0; ; i++ {
			buf := make([]int16, sizes[i%len(sizes)]*ch)
			n, err := r.ReadPCM(buf)
			out = append(out, buf[:n]...)
			if err != nil || (n == 0 && len(buf) > 0 && i > 1<<20) {
				return out
			}
		}
	}
	return run(true), run(false)
}

// The block path (many outputs of a phase at once) gives what the
// output-by-output path gives, within rounding (float sums in another
// order), for every integer up-sampling ratio, channel count and read size.
func TestResamplerBlockMatchesScalar(t *testing.T) {
	for _, tc := range []struct{ from, to, ch int }{
		{8000, 16000, 1}, {8000, 48000, 1}, {16000, 48000, 1}, {8000, 32000, 2}, {8000, 16000, 2}, {11025, 44100, 1}, {8000, 44100, 1},
	} {
		pcm := speechLike(tc.from/2*tc.ch, tc.from)
		for i := 0; i < len(pcm); i += 97 {
			pcm[i] = 32767 // full-scale clicks: saturation
		}
		for _, sizes := range [][]int{{4096}, {1, 7, 100, 333, 4096}, {192}, {5000, 3}} {
			block, scalar := resampleBoth(pcm, tc.ch, tc.from, tc.to, sizes)
			if len(block) != len(scalar) || len(block) == 0 {
				t.Fatalf("%+v sizes %v: %d samples by blocks, %d one by one", tc, sizes, len(block), len(scalar))
			}
			for i := range block {
				if d := int(block[i]) - int(scalar[i]); d < -1 || d > 1 {
					t.Fatalf("%+v sizes %v: sample %d: %d by blocks, %d one by one", tc, sizes, i, block[i], scalar[i])
				}
			}
		}
	}
}

func FuzzResampleBlock(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 4, 0xff, 0x7f, 0, 0x80})
	f.Add(make([]byte, 3000))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		pairs := [][2]int{{8000, 16000}, {8000, 48000}, {16000, 48000}, {8000, 24000}}
		pr := pairs[int(data[0])%len(pairs)]
		ch := 1 + int(data[0]>>7)
		sizes := []int{1 + int(data[1])*7, 4096, 1 + int(data[1])}
		data = data[2:]
		pcm := make([]int16, len(data)/2/ch*ch)
		for i := range pcm {
			pcm[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		block, scalar := resampleBoth(pcm, ch, pr[0], pr[1], sizes)
		if len(block) != len(scalar) {
			t.Fatalf("%d samples by blocks, %d one by one", len(block), len(scalar))
		}
		for i := range block {
			if d := int(block[i]) - int(scalar[i]); d < -1 || d > 1 {
				t.Fatalf("sample %d: %d by blocks, %d one by one", i, block[i], scalar[i])
			}
		}
	})
}
