//go:build !purego

#include "textflag.h"

// func dotAVX2(a, b *float32, n int) float32
// n is a multiple of 8.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

loop16:
	CMPQ CX, $16
	JL   tail8
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VFMADD231PS (DI), Y2, Y0
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  loop16

tail8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0

reduce:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func firAVX2(h, x *float32, n, k int, out *float32)
// out[t] = sum_{j<k} h[j]*x[t+j] for t < n; n is a multiple of 32, k >= 1.
// Vectorised across 32 consecutive outputs (four accumulators), so no
// horizontal sums are needed.
TEXT ·firAVX2(SB), NOSPLIT, $0-40
	MOVQ h+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), DX
	MOVQ out+32(FP), R8

outer:
	CMPQ   CX, $32
	JL     done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   DX, R11

inner:
	VBROADCASTSS (R9), Y4
	VFMADD231PS  (R10), Y4, Y0
	VFMADD231PS  32(R10), Y4, Y1
	VFMADD231PS  64(R10), Y4, Y2
	VFMADD231PS  96(R10), Y4, Y3
	ADDQ         $4, R9
	ADDQ         $4, R10
	DECQ         R11
	JNZ          inner
	VMOVUPS      Y0, (R8)
	VMOVUPS      Y1, 32(R8)
	VMOVUPS      Y2, 64(R8)
	VMOVUPS      Y3, 96(R8)
	ADDQ         $128, R8
	ADDQ         $128, DI
	SUBQ         $32, CX
	JMP          outer

done:
	VZEROUPPER
	RET
