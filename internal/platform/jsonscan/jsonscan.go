// Package jsonscan is the little that the webhook's one-pass JSON readers share (the HTTP envelope in
// azfunc, the notification collection in msgraph/notification): a cursor over the bytes, whitespace,
// literals, objects and arrays, and strings scanned eight bytes at a time and unquoted in runs between
// escapes. It decodes nothing itself; each reader says which shapes it takes and falls back to
// encoding/json for the rest, and each is fuzzed against encoding/json (FuzzDecodeHTTPEnvelope,
// FuzzFastParse).
//
// Why not encoding/json: a 50-item rich notification POST is ~170 KB, mostly base64 inside strings.
// encoding/json validates it, scans it again and unquotes it, a state-machine step per byte each time;
// here a string's plain runs are passed over a word at a time.
package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads JSON from B, at I.
//
// Stops, when not nil, lists in order the offset of every byte of B that a string scan must look at —
// a quote, a backslash, a control character or a byte of a multi-byte UTF-8 sequence — and may list
// other offsets too; strings are then scanned by jumping from stop to stop instead of reading their
// bytes. InPlace makes such a list for the string it unquotes, from the scan that read it: the Body of
// a webhook invocation is then passed over once, not twice (base64 runs of kilobytes in every item).
// A list that misses such a byte misreads B: only InPlace's output, and tests, set it.
type Scanner struct {
	B     []byte
	I     int
	Stops []int32
	stop  int // Stops[:stop] are before the last offset next returned
}

// next returns the offset of the first byte at or after i that a string scan must look at, or len(B).
func (s *Scanner) next(i int) int {
	if s.Stops == nil {
		return SkipPlain(s.B, i)
	}
	k := s.stop
	for k > 0 && int(s.Stops[k-1]) >= i { // the reader went back (a string read again)
		k--
	}
	for k < len(s.Stops) && int(s.Stops[k]) < i {
		k++
	}
	s.stop = k
	if k == len(s.Stops) {
		return len(s.B)
	}
	return int(s.Stops[k])
}

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Eat consumes c if it is next.
func (s *Scanner) Eat(c byte) bool {
	if s.I < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// Null consumes a null literal if it is next.
func (s *Scanner) Null() bool {
	if len(s.B)-s.I >= 4 && string(s.B[s.I:s.I+4]) == "null" {
		s.I += 4
		return true
	}
	return false
}

// Object reads an object, calling member for each member with the bounds of its name's contents (as
// String returns them) and the index of the name's opening quote; member is positioned at the value
// and must consume it.
func (s *Scanner) Object(member func(name Str, nameStart int) bool) bool {
	if !s.Eat('{') {
		return false
	}
	for first := true; ; first = false {
		s.WS()
		if s.Eat('}') {
			return true
		}
		if !first {
			if !s.Eat(',') {
				return false
			}
			s.WS()
		}
		nameStart := s.I
		name, ok := s.String()
		if !ok {
			return false
		}
		s.WS()
		if !s.Eat(':') {
			return false
		}
		s.WS()
		if !member(name, nameStart) {
			return false
		}
	}
}

// Array reads an array, calling elem for each element; elem is positioned at it (whitespace skipped).
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Eat('[') {
		return false
	}
	for first := true; ; first = false {
		s.WS()
		if s.Eat(']') {
			return true
		}
		if !first {
			if !s.Eat(',') {
				return false
			}
			s.WS()
		}
		if !elem() {
			return false
		}
	}
}

// Str is a string literal's contents in Scanner.B: [Start, End), and whether they hold escapes.
type Str struct {
	Start, End int
	Escaped    bool
}

// String reads a string literal. It refuses control characters and invalid UTF-8, which encoding/json
// rejects or replaces; escapes are checked only by Unquote.
func (s *Scanner) String() (Str, bool) { return s.str(false, nil) }

// str reads a string literal; with checkEscapes it also refuses the escapes Unquote refuses, and
// records the offset of each escape and of each byte >= 0x80 in rec when rec is not nil. The check
// costs nothing on the plain runs: it is made only where the scan stops at a backslash anyway.
func (s *Scanner) str(checkEscapes bool, rec *Offsets) (Str, bool) {
	if !s.Eat('"') {
		return Str{}, false
	}
	start := s.I
	ascii, escaped := true, false
	for i := start; ; i++ {
		i = s.next(i)
		if i >= len(s.B) {
			return Str{}, false
		}
		switch c := s.B[i]; {
		case c == '"':
			s.I = i + 1
			if !ascii && !utf8.Valid(s.B[start:i]) {
				return Str{}, false
			}
			return Str{Start: start, End: i, Escaped: escaped}, true
		case c == '\\':
			escaped = true
			if !checkEscapes {
				i++ // the escaped byte; Unquote checks it
				continue
			}
			_, n := escape(s.B[i:])
			if n == 0 {
				return Str{}, false
			}
			if rec != nil {
				rec.add(i)
			}
			i += n - 1
		case c < 0x20:
			return Str{}, false
		case c >= 0x80:
			ascii = false
			if rec != nil {
				rec.add(i)
			}
		}
		// A stop at any other byte (Stops may list more than it must) is passed over.
	}
}

// Unquoted reads a string literal as String does and returns its contents with escapes resolved (as
// Unquote), in one pass: the plain runs between escapes are found a word at a time and copied whole.
// The result is always a copy, never a slice of B.
func (s *Scanner) Unquoted() ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	start := s.I
	ascii := true
	var out []byte // nil until the first escape
	run := start   // start of the bytes not yet copied to out
	for i := start; ; {
		i = s.next(i)
		if i >= len(s.B) {
			return nil, false
		}
		switch c := s.B[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(s.B[start:i]) {
				return nil, false
			}
			s.I = i + 1
			if out == nil {
				return append([]byte{}, s.B[start:i]...), true
			}
			return append(out, s.B[run:i]...), true
		case c == '\\':
			if out == nil {
				out = make([]byte, 0, len(s.B)-start) // at most the rest of the input
			}
			out = append(out, s.B[run:i]...)
			n, ok := unescape(s.B[i:], &out)
			if !ok {
				return nil, false
			}
			i += n
			run = i
		case c < 0x20:
			return nil, false
		default: // c >= 0x80, or a plain byte Stops listed
			ascii = ascii && c < 0x80
			i++
		}
	}
}

// Unquotable reads a string literal as String does, and also refuses the escapes Unquote refuses.
func (s *Scanner) Unquotable() (Str, bool) { return s.str(true, nil) }

// Offsets are where a string scan stopped (UnquotableAt), for InPlace: the offsets in B of the string's
// escapes and of its bytes >= 0x80, at most Max of them. Past Max, Over is set and At is incomplete:
// InPlace then finds the escapes itself and lists no stops. Why a bound: a body made of escapes
// ("\"\"\"…") would otherwise cost 4 bytes of offsets per 2 bytes it sends, and as much again in
// stops; Graph's bodies have one escape in some 60 bytes.
type Offsets struct {
	At   []int32
	Max  int
	Over bool
}

func (o *Offsets) add(i int) {
	if len(o.At) < o.Max {
		o.At = append(o.At, int32(i))
	} else {
		o.Over = true
	}
}

// UnquotableAt reads a string literal as Unquotable does and records in o the offsets of its escapes
// and of its bytes >= 0x80 (o.At is appended to), for InPlace, which then cannot fail.
func (s *Scanner) UnquotableAt(o *Offsets) (Str, bool) { return s.str(true, o) }

// InPlace resolves the escapes of v, a string UnquotableAt read from B (o: the offsets it recorded),
// over its own bytes, and returns them as a slice of B: no allocation, and no copy at all for a string
// without escapes. The bytes of the literal past the returned slice are left as they were; nothing
// outside the literal is touched. It appends to stops the offsets in the result of every byte a
// string scan must look at (Scanner.Stops): each comes from an escape or is a byte >= 0x80, both of
// which the scan recorded, so the result is not read again to find them. When o is over its Max,
// InPlace searches for the escapes and returns nil stops.
//
// Why: the Body of a webhook invocation is a JSON string of 60 to 180 KB; unquoted into a buffer of its
// own it cost a large allocation (zeroed, then collected) on every POST. The escapes' offsets come
// from the scan that validated the string, which stopped at each of them anyway: searching for them
// again was a quarter of decoding the envelope. The caller calls it once the whole input is known to
// be read without falling back: a fallback decoder must see B as it was.
func (s *Scanner) InPlace(v Str, o *Offsets, stops []int32) ([]byte, []int32) {
	contents := s.B[v.Start:v.End]
	if o.Over {
		return unquoteInPlace(contents), nil
	}
	w, r := 0, 0 // contents[:w] is unquoted; reading runs ahead of writing, as no escape grows
	for _, k32 := range o.At {
		k := int(k32) - v.Start
		w += copy(contents[w:], contents[r:k])
		if b := contents[k]; b != '\\' { // a byte >= 0x80, kept as it is
			stops = append(stops, int32(w))
			contents[w] = b
			w, r = w+1, k+1
			continue
		}
		var c rune
		var n int
		switch contents[k+1] { // valid: UnquotableAt checked it
		case '"', '\\', '/': // most of a Body's escapes: its quotes
			c, n = rune(contents[k+1]), 2
		default:
			c, n = escape(contents[k:])
		}
		switch {
		case c == '"' || c == '\\' || c < 0x20:
			stops = append(stops, int32(w))
			fallthrough
		case c < utf8.RuneSelf:
			contents[w] = byte(c)
			w++
		default:
			m := utf8.EncodeRune(contents[w:], c) // at most 3 bytes for the 6 of \uXXXX
			for j := range m {
				stops = append(stops, int32(w+j))
			}
			w += m
		}
		r = k + n
	}
	if r == 0 {
		return contents, stops
	}
	w += copy(contents[w:], contents[r:])
	return contents[:w], stops
}

// unquoteInPlace resolves the escapes of contents, valid as Unquotable checked them, over its own bytes,
// finding them by search.
func unquoteInPlace(contents []byte) []byte {
	w := 0 // contents[:w] is unquoted; reading runs ahead of writing, as no escape grows
	for r := 0; ; {
		k := indexBackslash(contents[r:])
		if k < 0 {
			w += copy(contents[w:], contents[r:])
			return contents[:w]
		}
		w += copy(contents[w:], contents[r:r+k])
		c, n := escape(contents[r+k:])
		if c < utf8.RuneSelf {
			contents[w] = byte(c)
			w++
		} else {
			w += utf8.EncodeRune(contents[w:], c) // at most 3 bytes for the 6 of \uXXXX
		}
		r += k + n
	}
}

// unescape appends the escape at the start of b (its backslash first) to *dst and returns its length.
func unescape(b []byte, dst *[]byte) (int, bool) {
	r, n := escape(b)
	if n == 0 {
		return 0, false
	}
	if r < utf8.RuneSelf {
		*dst = append(*dst, byte(r))
	} else {
		*dst = utf8.AppendRune(*dst, r)
	}
	return n, true
}

// escape decodes the escape at the start of b (its backslash first): what it stands for and its length,
// or length 0 for an invalid escape and for a \u escape of a UTF-16 surrogate.
func escape(b []byte) (rune, int) {
	if len(b) < 2 {
		return 0, 0
	}
	switch e := b[1]; e {
	case '"', '\\', '/':
		return rune(e), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(b) < 6 {
			return 0, 0
		}
		var r rune
		for _, h := range b[2:6] {
			switch {
			case h >= '0' && h <= '9':
				r = r<<4 | rune(h-'0')
			case h >= 'a' && h <= 'f':
				r = r<<4 | rune(h-'a'+10)
			case h >= 'A' && h <= 'F':
				r = r<<4 | rune(h-'A'+10)
			default:
				return 0, 0
			}
		}
		if utf16.IsSurrogate(r) {
			return 0, 0
		}
		return r, 6
	default:
		return 0, 0
	}
}

// Unquote appends the contents of a string literal (between its quotes, as String bounds them) to dst
// with escapes resolved. ok is false for an invalid escape, and for a \u escape of a UTF-16 surrogate,
// which encoding/json pairs or replaces in ways not worth repeating: callers fall back to it.
func Unquote(dst, contents []byte) (_ []byte, ok bool) {
	for {
		k := indexBackslash(contents)
		if k < 0 {
			return append(dst, contents...), true
		}
		dst = append(dst, contents[:k]...)
		n, ok := unescape(contents[k:], &dst)
		if !ok {
			return nil, false
		}
		contents = contents[k+n:]
	}
}

// indexBackslash is bytes.IndexByte(b, '\\'), a word at a time without the call's setup, which
// dominates for the short runs between escapes in a JSON-in-JSON body.
func indexBackslash(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		y := binary.LittleEndian.Uint64(b[i:]) ^ (lsb * '\\')
		if m := (y - lsb) &^ y & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if b[i] == '\\' {
			return i
		}
	}
	return -1
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// SkipPlain returns the index of the first byte at or after i that a string scan must look at — a
// quote, a backslash, a control character or a byte of a multi-byte UTF-8 sequence — or len(b). With
// AVX2 it tests 32 bytes an instruction (skipPlainAVX2); otherwise, and for the last few bytes, eight
// bytes at a time (special), four words a round: the four tests are independent, so the CPU runs them
// side by side (BenchmarkSkipPlain, base64: words 4.0-4.7 GB/s).
func SkipPlain(b []byte, i int) int {
	if haveAVX2 && len(b)-i >= 32 {
		// In JSON's structure, strings are short: the first word answers them before the call.
		if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		n := (len(b) - i) &^ 31
		if k := skipPlainAVX2(b[i : i+n]); k < n {
			return i + k
		}
		i += n
	}
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32]
		m0 := special(binary.LittleEndian.Uint64(w[0:]))
		m1 := special(binary.LittleEndian.Uint64(w[8:]))
		m2 := special(binary.LittleEndian.Uint64(w[16:]))
		m3 := special(binary.LittleEndian.Uint64(w[24:]))
		if m0|m1|m2|m3 != 0 {
			for k, m := range [4]uint64{m0, m1, m2, m3} {
				if m != 0 {
					return i + 8*k + bits.TrailingZeros64(m)>>3
				}
			}
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// special flags (0x80) the bytes of x that a string scan must look at. In each of the masks the lowest
// flagged byte is a true one (a borrow only runs upwards from a byte that matched), so the lowest flag
// of them all is the first such byte.
func special(x uint64) uint64 {
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	return (x | // bytes >= 0x80
		(q-lsb)&^q | // '"'
		(bs-lsb)&^bs | // '\\'
		(x-lsb*0x20)&^x) & msb // bytes < 0x20
}

// StopsOf lists the offset of every byte of b a string scan must look at, one byte at a time: the
// Scanner.Stops of b when no scan found them (tests check the lists InPlace makes against it).
func StopsOf(b []byte) []int32 {
	var out []int32
	for i, c := range b {
		if !plain[c] {
			out = append(out, int32(i))
		}
	}
	return out
}

// plain marks the bytes SkipPlain passes over.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
