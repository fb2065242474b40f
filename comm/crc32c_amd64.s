//go:build amd64 && !noasm

#include "textflag.h"

// CRC32C (Castagnoli, reflected) by carry-less multiplication, after the
// IEEE kernel of Go's hash/crc32 (crc32_amd64.s, ieeeCLMUL: the 16-byte
// folds and the final reduction are that code with Castagnoli constants),
// with four 512-bit accumulators folding 256 bytes per iteration.
// Constants are bitreflect(x^n mod P) << 1 for the n noted; see
// crc32c_amd64.go and TestCastagnoliFold.

// func castagnoliFold(crc uint32, p []byte) uint32
// Requires AVX512F and VPCLMULQDQ, len(p) >= 256 and a multiple of 16;
// crc and the result are not inverted (the caller inverts).
TEXT ·castagnoliFold(SB), NOSPLIT, $0
	MOVL crc+0(FP), X0
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX

	VPXORQ    Z10, Z10, Z10
	VMOVAPS   X0, X10
	VMOVDQU64 (SI), Z1
	VMOVDQU64 64(SI), Z2
	VMOVDQU64 128(SI), Z3
	VMOVDQU64 192(SI), Z4
	VPXORQ    Z10, Z1, Z1         // merge the initial CRC into the first bytes
	ADDQ      $256, SI
	SUBQ      $256, CX
	CMPQ      CX, $256
	JL        fold4

	VMOVDQU64 k256<>+0(SB), Z0

loop256:
	VMOVDQU64  (SI), Z11
	VMOVDQU64  64(SI), Z12
	VMOVDQU64  128(SI), Z13
	VMOVDQU64  192(SI), Z14
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPCLMULQDQ $0x11, Z0, Z2, Z6
	VPCLMULQDQ $0x00, Z0, Z2, Z2
	VPCLMULQDQ $0x11, Z0, Z3, Z7
	VPCLMULQDQ $0x00, Z0, Z3, Z3
	VPCLMULQDQ $0x11, Z0, Z4, Z8
	VPCLMULQDQ $0x00, Z0, Z4, Z4
	VPTERNLOGD $0x96, Z11, Z5, Z1
	VPTERNLOGD $0x96, Z12, Z6, Z2
	VPTERNLOGD $0x96, Z13, Z7, Z3
	VPTERNLOGD $0x96, Z14, Z8, Z4
	ADDQ       $256, SI
	SUBQ       $256, CX
	CMPQ       CX, $256
	JGE        loop256

fold4:
	// Fold the four accumulators into Z1, 64 bytes at a time.
	VMOVDQU64  r2r1<>+0(SB), Z0
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z2, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z3, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z4, Z5, Z1
	CMPQ       CX, $64
	JL         unfold

loop64:
	VMOVDQU64  (SI), Z11
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z11, Z5, Z1
	ADDQ       $64, SI
	SUBQ       $64, CX
	CMPQ       CX, $64
	JGE        loop64

unfold:
	VEXTRACTF32X4 $1, Z1, X2
	VEXTRACTF32X4 $2, Z1, X3
	VEXTRACTF32X4 $3, Z1, X4
	VZEROUPPER

	// Fold X1..X4 into X1.
	MOVOA     r4r3<>+0(SB), X0
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X2, X1
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X3, X1
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X4, X1

	CMPQ CX, $16
	JB   finish

remain16:
	MOVOU     (SI), X10
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X10, X1
	SUBQ      $16, CX
	ADDQ      $16, SI
	CMPQ      CX, $16
	JGE       remain16

finish:
	// Reduce 128 bits to 64, then Barrett-reduce to 32.
	PCMPEQB   X3, X3
	PCLMULQDQ $1, X1, X0
	PSRLDQ    $8, X1
	PXOR      X0, X1

	MOVOA X1, X2
	MOVQ  r5<>+0(SB), X0

	PSRLQ     $32, X3
	PSRLDQ    $4, X2
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	MOVOA     rupoly<>+0(SB), X0
	MOVOA     X1, X2
	PAND      X3, X1
	PCLMULQDQ $0x10, X0, X1
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	PEXTRD $1, X1, AX
	MOVL   AX, ret+32(FP)
	RET

// Fold by 256 bytes: k(2080), k(2016), in each 128-bit lane.
DATA k256<>+0(SB)/8, $0xdcb17aa4
DATA k256<>+8(SB)/8, $0xb9e02b86
DATA k256<>+16(SB)/8, $0xdcb17aa4
DATA k256<>+24(SB)/8, $0xb9e02b86
DATA k256<>+32(SB)/8, $0xdcb17aa4
DATA k256<>+40(SB)/8, $0xb9e02b86
DATA k256<>+48(SB)/8, $0xdcb17aa4
DATA k256<>+56(SB)/8, $0xb9e02b86
GLOBL k256<>(SB), RODATA, $64

// Fold by 64 bytes: k(544), k(480).
DATA r2r1<>+0(SB)/8, $0x740eef02
DATA r2r1<>+8(SB)/8, $0x9e4addf8
DATA r2r1<>+16(SB)/8, $0x740eef02
DATA r2r1<>+24(SB)/8, $0x9e4addf8
DATA r2r1<>+32(SB)/8, $0x740eef02
DATA r2r1<>+40(SB)/8, $0x9e4addf8
DATA r2r1<>+48(SB)/8, $0x740eef02
DATA r2r1<>+56(SB)/8, $0x9e4addf8
GLOBL r2r1<>(SB), RODATA, $64

// Fold by 16 bytes: k(160), k(96).
DATA r4r3<>+0(SB)/8, $0xf20c0dfe
DATA r4r3<>+8(SB)/8, $0x14cd00bd6
GLOBL r4r3<>(SB), RODATA, $16

// The reflected polynomial and Barrett's mu = floor(x^64 / P).
DATA rupoly<>+0(SB)/8, $0x105ec76f1
DATA rupoly<>+8(SB)/8, $0xdea713f1
GLOBL rupoly<>(SB), RODATA, $16

// k(64)
DATA r5<>+0(SB)/8, $0xdd45aab8
GLOBL r5<>(SB), RODATA, $8
