//go:build !purego

#include "textflag.h"

DATA g726k<>+0(SB)/4, $0x1fff
DATA g726k<>+4(SB)/4, $126
DATA g726k<>+8(SB)/4, $32
DATA g726k<>+12(SB)/4, $0x3f
DATA g726k<>+16(SB)/4, $0x0f
DATA g726k<>+20(SB)/4, $0x30
DATA g726k<>+24(SB)/4, $19
DATA g726k<>+28(SB)/4, $0x7fff
GLOBL g726k<>(SB), RODATA|NOPTR, $32

// func fmult8AVX2(pc, pf *[8]int32) (zero, pole int32)
// The eight FMULT products of the G.726 predictor at once (see fmult):
// zero is the sum of lanes 0-5, pole of lanes 6-7.
TEXT ·fmult8AVX2(SB), NOSPLIT, $0-24
	MOVQ pc+0(FP), SI
	MOVQ pf+8(FP), DI
	VMOVDQU (SI), Y0
	VPSRAD  $2, Y0, Y0          // an = coefficient >> 2
	VMOVDQU (DI), Y1            // srn, floating format

	// anmag = an > 0 ? an : -an & 0x1fff
	VPXOR          Y2, Y2, Y2
	VPSUBD         Y0, Y2, Y3
	VPBROADCASTD   g726k<>+0(SB), Y15
	VPAND          Y15, Y3, Y3
	VPCMPGTD       Y2, Y0, Y4
	VPBLENDVB      Y4, Y0, Y3, Y5

	// l = bit length of anmag, from the exponent of its float value
	VCVTDQ2PS      Y5, Y6
	VPSRLD         $23, Y6, Y6
	VPBROADCASTD   g726k<>+4(SB), Y15
	VPSUBD         Y15, Y6, Y6
	VPMAXSD        Y2, Y6, Y6

	// anmant = anmag == 0 ? 32 : (anmag << 6) >> l
	VPSLLD         $6, Y5, Y7
	VPSRLVD        Y6, Y7, Y7
	VPCMPEQD       Y2, Y5, Y8
	VPBROADCASTD   g726k<>+8(SB), Y15
	VPBLENDVB      Y8, Y15, Y7, Y7

	// srnmant, srnexp
	VPBROADCASTD   g726k<>+12(SB), Y15
	VPAND          Y15, Y1, Y9
	VPSRAD         $6, Y1, Y10
	VPBROADCASTD   g726k<>+16(SB), Y15
	VPAND          Y15, Y10, Y10

	// wanmant = (anmant*srnmant + 0x30) >> 4
	VPMULLD        Y9, Y7, Y9
	VPBROADCASTD   g726k<>+20(SB), Y15
	VPADDD         Y15, Y9, Y9
	VPSRLD         $4, Y9, Y9

	// r = bits 19..33 of wanmant << (l + srnexp): a left shift by k-19 or
	// a right shift by 19-k (the other count is out of range: zero)
	VPADDD         Y6, Y10, Y10
	VPBROADCASTD   g726k<>+24(SB), Y15
	VPSUBD         Y15, Y10, Y11
	VPSLLVD        Y11, Y9, Y12
	VPSUBD         Y10, Y15, Y11
	VPSRLVD        Y11, Y9, Y13
	VPOR           Y13, Y12, Y12
	VPBROADCASTD   g726k<>+28(SB), Y15
	VPAND          Y15, Y12, Y12

	// negate where the signs of an and srn differ
	VPXOR          Y0, Y1, Y14
	VPSRAD         $31, Y14, Y14
	VPXOR          Y14, Y12, Y12
	VPSUBD         Y14, Y12, Y12

	// zero = lanes 0..5, pole = lanes 6..7
	VEXTRACTI128   $1, Y12, X13
	VPSHUFD        $0xEE, X13, X14
	VMOVQ          X13, X15
	VPADDD         X15, X12, X12
	VPSHUFD        $0x4E, X12, X15
	VPADDD         X15, X12, X12
	VPSHUFD        $0xB1, X12, X15
	VPADDD         X15, X12, X12
	VPSHUFD        $0xB1, X14, X15
	VPADDD         X15, X14, X14
	VZEROUPPER
	MOVL           X12, AX
	MOVL           X14, BX
	MOVL           AX, zero+16(FP)
	MOVL           BX, pole+20(FP)
	RET
