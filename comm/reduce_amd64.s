//go:build amd64 && !noasm

#include "textflag.h"

// func addAVX2(dst, src []float64)
// dst[i] += src[i] for i < len(dst); len(src) >= len(dst) (checked by the
// caller). 16 values per iteration in four 256-bit lanes, then one at a
// time.
TEXT ·addAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	CMPQ CX, $16
	JL   tail

loop16:
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	VADDPD  (SI), Y0, Y0
	VADDPD  32(SI), Y1, Y1
	VADDPD  64(SI), Y2, Y2
	VADDPD  96(SI), Y3, Y3
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, SI
	SUBQ    $16, CX
	CMPQ    CX, $16
	JGE     loop16
	VZEROUPPER

tail:
	TESTQ CX, CX
	JE    done

loop1:
	MOVSD (DI), X0
	ADDSD (SI), X0
	MOVSD X0, (DI)
	ADDQ  $8, DI
	ADDQ  $8, SI
	DECQ  CX
	JNZ   loop1

done:
	RET
