//go:build !amd64 || purego

package jsonscan

var haveAVX2 = false

func skipPlainAVX2([]byte) int { panic("jsonscan: no AVX2 scan on this platform") }
