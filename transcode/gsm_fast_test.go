package transcode

import (
	"math/rand/v2"
	"testing"
)

// The synthesis filter's shortcut (rounded products without the -32768 *
// -32768 case) rests on gsmLARToRP never giving -32768: checked for every
// 16-bit input.
func TestGSMReflectionRange(t *testing.T) {
	for v := -32768; v <= 32767; v++ {
		larp := [8]int{v, v, v, v, v, v, v, v}
		gsmLARToRP(&larp)
		for _, r := range larp {
			if r <= gsmMinWord || r > gsmMaxWord {
				t.Fatalf("gsmLARToRP(%d) = %d", v, r)
			}
		}
	}
}

// bitReader's two-bytes-at-a-time reads agree with reading bit by bit, in
// both bit orders.
func TestGSMBitReader(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		frame := make([]byte, 65)
		for i := range frame {
			frame[i] = byte(rnd.IntN(256))
		}
		lsb := iter%2 == 0
		r := newBitReader(frame, lsb)
		pos := uint(0)
		for pos < 65*8 {
			n := uint(1 + rnd.IntN(7))
			if pos+n > 65*8 {
				n = 65*8 - pos
			}
			want := 0
			for i := uint(0); i < n; i++ {
				p := pos + i
				if lsb {
					want |= int(frame[p/8]>>(p%8)&1) << i
				} else {
					want = want<<1 | int(frame[p/8]>>(7-p%8)&1)
				}
			}
			if got := r.read(n); got != want {
				t.Fatalf("lsb=%v read(%d) at bit %d = %#x, want %#x", lsb, n, pos, got, want)
			}
			pos += n
		}
	}
}
