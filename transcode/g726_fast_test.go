package transcode

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func checkFmult8(t *testing.T, pc, pf *[8]int32) {
	t.Helper()
	z, p := fmult8AVX2(pc, pf)
	gz, gs := fmult8(pc, pf)
	if int(z) != gz || int(z)+int(p) != gs {
		t.Fatalf("pc %v pf %v: AVX2 (%d, %d), generic (%d, %d)", *pc, *pf, z, int(z)+int(p), gz, gs)
	}
}

// The AVX2 predictor kernel gives the generic sums for coefficients over
// the whole 16-bit range and beyond, with any floating-format signal.
func TestFmult8AVX2MatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("SKIPPING: no AVX2+FMA on this CPU (or purego build); the generic predictor alone is in use")
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	var pc, pf [8]int32
	for iter := 0; iter < 200000; iter++ {
		for i := range pc {
			switch iter % 4 {
			case 0:
				pc[i] = int32(rnd.IntN(65536) - 32768)
			case 1:
				pc[i] = int32(rnd.IntN(1<<27) - 1<<26 + 1)
			default:
				pc[i] = int32(rnd.IntN(64)-32) << uint(rnd.IntN(11))
			}
			pf[i] = int32(rnd.Uint32())
			if iter%2 == 0 {
				pf[i] = int32(rnd.IntN(1024)) - 0x400*int32(rnd.IntN(2))
			}
		}
		checkFmult8(t, &pc, &pf)
	}
	// Every coefficient magnitude bit length and signal exponent.
	for c := -(1 << 16); c <= 1<<16; c++ {
		for i := range pc {
			pc[i] = int32(c)
			pf[i] = int32(c*7) & 0x3ff
		}
		pf[3] -= 0x400
		checkFmult8(t, &pc, &pf)
	}
}

func FuzzFmult8(f *testing.F) {
	f.Add(make([]byte, 64))
	f.Add([]byte("\xff\x7f\x00\x00\x00\x80\xff\xff\x01\x00\x00\x00 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !useAVX2 || len(data) < 64 {
			return
		}
		var pc, pf [8]int32
		for i := range pc {
			pc[i] = int32(binary.LittleEndian.Uint32(data[4*i:])) >> 6 // below 2^26
			pf[i] = int32(binary.LittleEndian.Uint32(data[32+4*i:]))
		}
		checkFmult8(t, &pc, &pf)
	})
}
