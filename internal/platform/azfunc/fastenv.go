package azfunc

import (
	"net/url"
	"strings"
	"sync"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// scanHTTPEnvelope reads an HTTP invocation of the shape devhost and the host send — exact key names
// (others, such as Identities, skipped),
// Query an object of strings, Headers arrays of strings, Params strings (each of the three may be
// null), Body a string, no other nulls or repeated members in the request — in one pass, validating the rest of the envelope as it skips it. ok is false for
// anything else; decodeHTTPEnvelope then uses encoding/json, whose result this must equal
// (FuzzDecodeHTTPEnvelope checks).
//
// Why: the Body of a 50-item notification POST is a ~170 KB JSON string, every quote in it escaped.
// encoding/json validated it, scanned it again and unquoted it, a state-machine step per byte each
// time (1.5 ms); here strings are scanned once, a word at a time, and unquoted in runs between escapes
// (package jsonscan, shared with the notification reader). The Body is unquoted in place: the request's
// Body is a slice of env, which the caller must not reuse while the request is in use.
func scanHTTPEnvelope(env []byte, binding string) (*HTTPRequest, bool) {
	s := &envScanner{Scanner: jsonscan.Scanner{B: env}}
	defer s.release()
	s.WS()
	var out *HTTPRequest
	ok := s.object(func(key string) bool {
		switch {
		case key == "Data":
			if out != nil {
				return false
			}
			return s.object(func(name string) bool {
				if name != binding {
					return s.skip(0)
				}
				if out != nil {
					return false
				}
				out = s.request()
				return out != nil
			})
		case strings.EqualFold(key, "Data"):
			return false // encoding/json would read it as Data too
		default:
			return s.skip(0)
		}
	})
	s.WS()
	if !ok || s.I != len(s.B) || out == nil {
		return nil, false
	}
	if s.haveBody {
		// Only now that nothing falls back to encoding/json, which must read env as it came.
		var stops []int32
		if !s.offs.Over {
			stops = make([]int32, 0, len(s.offs.At))
		}
		out.Body, out.BodyStops = s.InPlace(s.body, &s.offs, stops)
	}
	return out, true
}

func (s *envScanner) request() *HTTPRequest {
	out := &HTTPRequest{Headers: map[string][]string{}, Query: url.Values{}}
	var seen [6]bool
	var query map[string]string
	ok := s.object(func(key string) bool {
		idx := -1
		for i, k := range [...]string{"Url", "Method", "Query", "Headers", "Params", "Body"} {
			if key == k {
				idx = i
			} else if strings.EqualFold(key, k) {
				return false // encoding/json would read it into that field
			}
		}
		if idx < 0 {
			return s.skip(0) // Identities and whatever else the host adds: ignored, as encoding/json does
		}
		if seen[idx] {
			return false
		}
		seen[idx] = true
		if idx >= 2 && idx <= 4 && s.Null() {
			// Query, Headers or Params null, as devhost writes a request without route parameters:
			// encoding/json leaves the map nil (Query then comes from the Url, Headers stays empty).
			return true
		}
		var ok bool
		switch idx {
		case 0:
			var v []byte
			v, ok = s.str()
			out.URL = string(v)
		case 1:
			var v []byte
			v, ok = s.str()
			out.Method = strings.ToUpper(string(v))
		case 2:
			query = map[string]string{}
			ok = s.object(func(k string) bool {
				v, ok := s.str()
				query[k] = string(v)
				return ok
			})
		case 3:
			ok = s.object(func(k string) bool {
				var vals []string
				ok := s.array(func() bool {
					v, ok := s.str()
					vals = append(vals, string(v))
					return ok
				})
				if vals == nil {
					vals = []string{}
				}
				out.Headers[k] = vals
				return ok
			})
		case 4:
			out.Params = map[string]string{}
			ok = s.object(func(k string) bool {
				v, ok := s.str()
				out.Params[k] = string(v)
				return ok
			})
		case 5:
			// Unquoted over its own bytes in env once the whole envelope is read (scanHTTPEnvelope):
			// the body is most of the envelope, and a copy of it was a large allocation per POST.
			if s.pool, _ = escapeOffsets.Get().(*[]int32); s.pool == nil {
				s.pool = new([]int32)
			}
			s.offs.At = (*s.pool)[:0]
			// One offset per 16 bytes of envelope at most: Graph's bodies need one per 60 or so; past
			// it the body is unquoted by search and its stops are not listed (jsonscan.Offsets).
			s.offs.Max = len(s.B)/16 + 64
			s.body, ok = s.UnquotableAt(&s.offs)
			s.haveBody = true
		}
		return ok
	})
	if !ok || isBinaryContent(firstHeader(out.Headers, "Content-Type")) {
		return nil
	}
	for k, v := range query {
		out.Query.Set(k, v)
	}
	if query == nil {
		if u, err := url.Parse(out.URL); err == nil {
			out.Query = u.Query()
		}
	}
	return out
}

type envScanner struct {
	jsonscan.Scanner
	body     jsonscan.Str     // the request's Body, when haveBody
	offs     jsonscan.Offsets // where body's scan stopped (UnquotableAt), for InPlace
	haveBody bool
	pool     *[]int32 // where offs.At came from (escapeOffsets), when a body was read
}

// release gives offs.At back to escapeOffsets. The slice travels in a pointer of the pool's own, not
// the address of offs.At: that would move every envScanner to the heap, the handshake's included.
func (s *envScanner) release() {
	if s.pool != nil && cap(s.offs.At) <= maxPooledEscapes {
		*s.pool = s.offs.At[:0]
		escapeOffsets.Put(s.pool)
	}
}

// escapeOffsets keeps the envScanners' escape offset slices between invocations: a 50-item body has
// some 3,000 escapes (every quote of the notification JSON), a slice grown afresh for each POST.
// Nothing outside scanHTTPEnvelope sees one.
var escapeOffsets sync.Pool

// maxPooledEscapes: a slice grown past this (a body of escapes, made to measure) is left to the GC.
const maxPooledEscapes = 64 << 10

// object calls member for each member, positioned at its value.
func (s *envScanner) object(member func(key string) bool) bool {
	return s.Object(func(name jsonscan.Str, _ int) bool {
		k, ok := s.unquote(name)
		return ok && member(string(k))
	})
}

func (s *envScanner) array(elem func() bool) bool { return s.Array(elem) }

// skip validates and skips any value; depth bounds nesting as encoding/json does (10,000).
func (s *envScanner) skip(depth int) bool {
	if depth > 10000 || s.I >= len(s.B) {
		return false
	}
	switch c := s.B[s.I]; {
	case c == '{':
		return s.object(func(string) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.Unquotable() // refuses what str refuses, without copying
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(s.B[s.I:min(len(s.B), s.I+5)]), lit) {
				s.I += len(lit)
				return true
			}
		}
		return false
	}
}

// number skips a JSON number (RFC 8259 grammar).
func (s *envScanner) number() bool {
	s.Eat('-')
	digits := func() int {
		n := 0
		for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
			s.I++
			n++
		}
		return n
	}
	if s.Eat('0') {
		// no more integer digits
	} else if digits() == 0 {
		return false
	}
	if s.Eat('.') && digits() == 0 {
		return false
	}
	if s.Eat('e') || s.Eat('E') {
		if !s.Eat('+') {
			s.Eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// str reads a string literal and returns its unquoted bytes. It refuses (ok false) control characters,
// invalid UTF-8 and surrogate escapes, which encoding/json replaces or rejects in ways not worth
// repeating here: the caller falls back to it.
func (s *envScanner) str() ([]byte, bool) { return s.Unquoted() }

// unquote returns a string's contents with escapes resolved, always a copy: the request outlives the
// envelope's buffer in no caller, but it must not change if that buffer is reused.
func (s *envScanner) unquote(v jsonscan.Str) ([]byte, bool) {
	contents := s.B[v.Start:v.End]
	if !v.Escaped {
		return append([]byte{}, contents...), true
	}
	return jsonscan.Unquote(make([]byte, 0, len(contents)), contents)
}
