//go:build !purego

#include "textflag.h"

// func skipPlainAVX2(b []byte) int
//
// len(b) is a positive multiple of 32. Returns the offset of the first byte that is a quote, a
// backslash, below 0x20 or at least 0x80, or len(b). One signed compare covers the last two: as signed
// bytes, 0x80-0xff are negative, so "0x20 > x" holds for exactly the control characters and the bytes
// of multi-byte UTF-8 sequences.
TEXT ·skipPlainAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVQ SI, DI
	LEAQ (SI)(CX*1), DX
	MOVL $0x22, AX
	MOVD AX, X1
	VPBROADCASTB X1, Y1 // '"'
	MOVL $0x5c, AX
	MOVD AX, X2
	VPBROADCASTB X2, Y2 // '\\'
	MOVL $0x20, AX
	MOVD AX, X3
	VPBROADCASTB X3, Y3 // 0x20

loop:
	VMOVDQU  (SI), Y0
	VPCMPEQB Y0, Y1, Y4
	VPCMPEQB Y0, Y2, Y5
	VPCMPGTB Y0, Y3, Y6
	VPOR     Y4, Y5, Y4
	VPOR     Y4, Y6, Y4
	VPMOVMSKB Y4, AX
	TESTL    AX, AX
	JNZ      found
	ADDQ     $32, SI
	CMPQ     SI, DX
	JB       loop
	VZEROUPPER
	MOVQ     CX, ret+24(FP)
	RET

found:
	VZEROUPPER
	BSFL AX, AX
	SUBQ DI, SI
	ADDQ AX, SI
	MOVQ SI, ret+24(FP)
	RET
