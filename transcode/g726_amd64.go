//go:build !purego

package transcode

// fmult8AVX2 is fmult8 with AVX2 (exact for coefficients below 2^26 in
// magnitude, far beyond what the predictor's adaptation produces).
//
//go:noescape
func fmult8AVX2(pc, pf *[8]int32) (zero, pole int32)
