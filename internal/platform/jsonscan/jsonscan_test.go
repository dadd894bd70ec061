package jsonscan

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// skipPlainByByte is SkipPlain one byte at a time, its reference.
func skipPlainByByte(b []byte, i int) int {
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// cpuHasAVX2 is what the CPU offers, whatever a test selected since.
var cpuHasAVX2 = haveAVX2

// scans names SkipPlain's scans this CPU has: the words always, AVX2 where present.
func scans() []string {
	if cpuHasAVX2 {
		return []string{"words", "avx2"}
	}
	return []string{"words"}
}

// selectScan makes SkipPlain use the named scan until tb ends. Not for parallel tests: it sets a
// package variable, which no parallel test runs beside (they wait for the sequential ones).
func selectScan(tb testing.TB, name string) {
	haveAVX2 = name == "avx2"
	tb.Cleanup(func() { haveAVX2 = cpuHasAVX2 })
}

func TestSkipPlainStopsWhereAByteScanStops(t *testing.T) {
	// 100 bytes: three 32-byte blocks and a tail, so every special byte is met in a block at every
	// position of one, and in the tail.
	base := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+/="), 2)[:100]
	for _, scan := range scans() {
		t.Run(scan, func(t *testing.T) {
			selectScan(t, scan)
			for _, special := range []byte{'"', '\\', 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff, ' ', '~', '!', '#', '[', ']', 0x21, 0x5b, 0x5d} {
				for pos := range len(base) {
					b := bytes.Clone(base)
					b[pos] = special
					for start := 0; start <= pos; start++ {
						if got, want := SkipPlain(b, start), skipPlainByByte(b, start); got != want {
							t.Fatalf("SkipPlain(%q, %d) = %d, want %d", b, start, got, want)
						}
					}
					// Every byte value, not only the chosen ones, one position in each block.
					if pos%37 == 0 {
						for c := range 256 {
							b[pos] = byte(c)
							if got, want := SkipPlain(b, 0), skipPlainByByte(b, 0); got != want {
								t.Fatalf("SkipPlain with %#x at %d = %d, want %d", c, pos, got, want)
							}
						}
					}
				}
				if got := SkipPlain(base, 0); got != len(base) {
					t.Fatalf("SkipPlain(plain) = %d, want %d", got, len(base))
				}
			}
		})
	}
}

func TestStringAndUnquote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"plain", `"hello"`, true},
		{"escapes", `"a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC end"`, true},
		{"json in json", `"{\"value\":[{\"id\":\"1\",\"data\":\"QUJD\"}]}"`, true},
		{"utf8", `"ünïcödé ✓"`, true},
		{"control", "\"a\x01b\"", false},
		{"invalid utf8", "\"a\xffb\"", false},
		{"unterminated", `"abc`, false},
		{"bad escape", `"a\xb"`, false},
		{"short unicode", `"\u12"`, false},
		{"surrogate", `"\ud83d\ude00"`, false},
		{"not a string", `abc`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Scanner{B: []byte(tc.in)}
			str, ok := s.String()
			var got []byte
			if ok {
				got, ok = Unquote(nil, s.B[str.Start:str.End])
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			one := Scanner{B: []byte(tc.in)}
			if got1, ok1 := one.Unquoted(); ok1 != ok || string(got1) != string(got) || ok && one.I != s.I {
				t.Fatalf("Unquoted = %q, %v at %d; String and Unquote %q, %v at %d", got1, ok1, one.I, got, ok, s.I)
			}
			checkInPlace(t, []byte(tc.in), got, ok, s.I)
			if !ok {
				return
			}
			var want string
			if err := json.Unmarshal([]byte(tc.in), &want); err != nil {
				t.Fatal(err)
			}
			if string(got) != want || s.I != len(tc.in) {
				t.Errorf("got %q at %d, want %q at %d", got, s.I, want, len(tc.in))
			}
		})
	}
}

// FuzzString: whatever String and Unquote accept, encoding/json reads as the same string; what SkipPlain
// passes over, a byte-by-byte scan passes over too.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"hello"`, `"a\"b\\c\u00e9"`, "\"\x80\"", `"\ud800"`, `"{\"a\":\"b\"}"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range min(len(b), 9) {
			if got, want := SkipPlain(b, i), skipPlainByByte(b, i); got != want {
				t.Fatalf("SkipPlain(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
		if k, want := indexBackslash(b), bytes.IndexByte(b, '\\'); k != want {
			t.Fatalf("indexBackslash(%q) = %d, want %d", b, k, want)
		}
		s := Scanner{B: b}
		str, ok := s.String()
		// With Stops, exactly those bytes or every byte, strings read the same.
		every := make([]int32, len(b))
		for i := range every {
			every[i] = int32(i)
		}
		for _, stops := range [][]int32{StopsOf(b), every} {
			idx := Scanner{B: b, Stops: stops}
			if str2, ok2 := idx.String(); ok2 != ok || ok && (str2 != str || idx.I != s.I) {
				t.Fatalf("String(%q) with Stops %v = %v, %v at %d; without %v, %v at %d", b, stops, str2, ok2, idx.I, str, ok, s.I)
			}
			idx = Scanner{B: b, Stops: stops}
			u, uok := idx.Unquoted()
			plain := Scanner{B: b}
			u2, uok2 := plain.Unquoted()
			if uok != uok2 || string(u) != string(u2) || idx.I != plain.I {
				t.Fatalf("Unquoted(%q) with Stops %v = %q, %v; without %q, %v", b, stops, u, uok, u2, uok2)
			}
		}
		var got []byte
		if ok {
			got, ok = Unquote(nil, b[str.Start:str.End])
		}
		one := Scanner{B: b}
		if got1, ok1 := one.Unquoted(); ok1 != ok || string(got1) != string(got) || ok && one.I != s.I {
			t.Fatalf("Unquoted(%q) = %q, %v at %d; String and Unquote %q, %v at %d", b, got1, ok1, one.I, got, ok, s.I)
		}
		checkInPlace(t, b, got, ok, s.I)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(b[:s.I], &want); err != nil {
			t.Fatalf("String and Unquote accepted %q, encoding/json refuses it: %v", b[:s.I], err)
		}
		if string(got) != want || !utf8.Valid(got) {
			t.Fatalf("Unquote(%q) = %q, encoding/json %q", b[:s.I], got, want)
		}
		if str.Escaped != bytes.Contains(b[str.Start:str.End], []byte{'\\'}) {
			t.Fatalf("Escaped = %v for %q", str.Escaped, b[str.Start:str.End])
		}
	})
}

func BenchmarkSkipPlain(b *testing.B) {
	buf := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/"), 4096)
	for _, scan := range scans() {
		b.Run(scan, func(b *testing.B) {
			selectScan(b, scan)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if SkipPlain(buf, 0) != len(buf) {
					b.Fatal("stopped early")
				}
			}
		})
	}
}

// checkInPlace: UnquotableAt (as Unquotable) and InPlace on a copy of in read what Unquoted reads (want,
// ok, ending at end), as a slice of the copy, which changes nowhere else; with room for every offset
// it lists the result's stops exactly, and with too little room (Max 1) it unquotes all the same and
// lists none.
func checkInPlace(t *testing.T, in, want []byte, ok bool, end int) {
	t.Helper()
	for _, max := range []int{len(in), 1} {
		b := bytes.Clone(in)
		s := Scanner{B: b}
		offs := Offsets{Max: max}
		str, gotOK := s.UnquotableAt(&offs)
		if gotOK != ok || ok && s.I != end {
			t.Fatalf("Unquotable(%q) = %v at %d; Unquoted %q, %v at %d", in, gotOK, s.I, want, ok, end)
		}
		plain := Scanner{B: in}
		if str2, ok2 := plain.Unquotable(); ok2 != gotOK || ok2 && (str2 != str || plain.I != s.I) {
			t.Fatalf("Unquotable(%q) = %v, %v at %d; UnquotableAt %v, %v at %d", in, str2, ok2, plain.I, str, gotOK, s.I)
		}
		if !ok {
			if !bytes.Equal(b, in) {
				t.Fatalf("Unquotable(%q) changed it to %q", in, b)
			}
			return
		}
		for _, k := range offs.At {
			if int(k) < str.Start || int(k) >= str.End || in[k] != '\\' && in[k] < 0x80 {
				t.Fatalf("UnquotableAt(%q): offset %d is neither a backslash nor a byte >= 0x80 of the string", in, k)
			}
		}
		if len(offs.At) > max {
			t.Fatalf("UnquotableAt(%q) kept %d offsets, at most %d", in, len(offs.At), max)
		}
		got, stops := s.InPlace(str, &offs, nil)
		if string(got) != string(want) {
			t.Fatalf("InPlace(%q) = %q, want %q (Max %d)", in, got, want, max)
		}
		if w := StopsOf(got); offs.Over && stops != nil || !offs.Over && !slices.Equal(stops, w) {
			t.Fatalf("InPlace(%q) stops %v, want %v (over Max: %v)", in, stops, w, offs.Over)
		}
		if len(got) > 0 && &got[0] != &b[str.Start] || !bytes.Equal(b[:str.Start], in[:str.Start]) ||
			!bytes.Equal(b[str.Start+len(got):], in[str.Start+len(got):]) {
			t.Fatalf("InPlace(%q): not in place, or bytes past the result changed: %q", in, b)
		}
	}
}
