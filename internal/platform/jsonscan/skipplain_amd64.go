//go:build !purego

package jsonscan

import "golang.org/x/sys/cpu"

// haveAVX2 selects skipPlainAVX2 for SkipPlain's long runs; tests turn it off to check the portable
// path on the same machine.
var haveAVX2 = cpu.X86.HasAVX2

// skipPlainAVX2 tests 32 bytes an instruction where SkipPlain's words test 8: on the kilobytes of base64
// in every Graph notification item, most of a webhook body.
//
//go:noescape
func skipPlainAVX2(b []byte) int
