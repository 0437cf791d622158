//go:build !amd64 || purego

package transcode

const useAVX2 = false

// dotAVX2 is never called without AVX2 support.
func dotAVX2(a, b *float32, n int) float32 { panic("transcode: no AVX2") }

func firAVX2(h, x *float32, n, k int, out *float32) { panic("transcode: no AVX2") }

func fmult8AVX2(pc, pf *[8]int32) (zero, pole int32) { panic("transcode: no AVX2") }
