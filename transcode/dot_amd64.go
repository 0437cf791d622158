//go:build !purego

package transcode

import "golang.org/x/sys/cpu"

// useAVX2 selects the vector dot product on CPUs with AVX2 and FMA.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b *float32, n int) float32

// firAVX2 computes out[t] = sum_{j<k} h[j]*x[t+j] for t < n (n a multiple
// of 32); x must hold n+k-1 values.
//
//go:noescape
func firAVX2(h, x *float32, n, k int, out *float32)
