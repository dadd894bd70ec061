package azfunc

import (
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scanHTTPEnvelope reads an HTTP invocation of the shape devhost and the host send — exact key names
// (others, such as Identities, skipped),
// Query an object of strings, Headers arrays of strings, Body a string, no nulls or repeated members
// in the request — in one pass, validating the rest of the envelope as it skips it. ok is false for
// anything else; decodeHTTPEnvelope then uses encoding/json, whose result this must equal
// (FuzzDecodeHTTPEnvelope checks).
//
// Why: the Body of a 50-item notification POST is a ~170 KB JSON string, every quote in it escaped.
// encoding/json validated it, scanned it again and unquoted it, a state-machine step per byte each
// time (1.5 ms); here strings are scanned once and unquoted in runs between escapes.
func scanHTTPEnvelope(env []byte, binding string) (*HTTPRequest, bool) {
	s := &envScanner{b: env}
	s.ws()
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
	s.ws()
	if !ok || s.i != len(s.b) || out == nil {
		return nil, false
	}
	return out, true
}

func (s *envScanner) request() *HTTPRequest {
	out := &HTTPRequest{Headers: map[string][]string{}, Query: url.Values{}}
	var seen [6]bool
	var query map[string]string
	var body []byte
	haveBody := false
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
			body, ok = s.str()
			haveBody = true
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
	if haveBody {
		out.Body = body
		if out.Body == nil {
			out.Body = []byte{}
		}
	}
	return out
}

// plain marks the bytes a string scan may pass over without a look: not a quote, a backslash, a
// control character or a byte of a multi-byte UTF-8 sequence. A table lookup per byte in a tight loop
// is several times faster than the switch below it.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

type envScanner struct {
	b []byte
	i int
}

func (s *envScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *envScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object calls member for each member, positioned at its value.
func (s *envScanner) object(member func(key string) bool) bool {
	if !s.eat('{') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return true
		}
		if !first {
			if !s.eat(',') {
				return false
			}
			s.ws()
		}
		k, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !member(string(k)) {
			return false
		}
	}
}

func (s *envScanner) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return true
		}
		if !first {
			if !s.eat(',') {
				return false
			}
			s.ws()
		}
		if !elem() {
			return false
		}
	}
}

// skip validates and skips any value; depth bounds nesting as encoding/json does (10,000).
func (s *envScanner) skip(depth int) bool {
	if depth > 10000 || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func(string) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { s.ws(); return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(s.b[s.i:min(len(s.b), s.i+5)]), lit) {
				s.i += len(lit)
				return true
			}
		}
		return false
	}
}

// number skips a JSON number (RFC 8259 grammar).
func (s *envScanner) number() bool {
	s.eat('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.eat('0') {
		// no more integer digits
	} else if digits() == 0 {
		return false
	}
	if s.eat('.') && digits() == 0 {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
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
func (s *envScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	ascii := true
	var out []byte // nil until the first escape: most strings are returned as a slice of the input
	run := start   // start of the bytes not yet copied to out
	for i := start; i < len(s.b); i++ {
		for i < len(s.b) && plain[s.b[i]] {
			i++
		}
		if i == len(s.b) {
			break
		}
		c := s.b[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:i]) {
				return nil, false
			}
			s.i = i + 1
			if out == nil {
				// A copy: the request outlives the envelope's buffer in no caller, but it must not
				// change if that buffer is reused.
				return append([]byte{}, s.b[start:i]...), true
			}
			return append(out, s.b[run:i]...), true
		case c == '\\':
			if out == nil {
				out = make([]byte, 0, len(s.b)-start) // at most the rest of the input
			}
			out = append(out, s.b[run:i]...)
			if i+1 >= len(s.b) {
				return nil, false
			}
			i++
			switch e := s.b[i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if i+4 >= len(s.b) {
					return nil, false
				}
				var r rune
				for _, h := range s.b[i+1 : i+5] {
					switch {
					case h >= '0' && h <= '9':
						r = r<<4 | rune(h-'0')
					case h >= 'a' && h <= 'f':
						r = r<<4 | rune(h-'a'+10)
					case h >= 'A' && h <= 'F':
						r = r<<4 | rune(h-'A'+10)
					default:
						return nil, false
					}
				}
				if utf16.IsSurrogate(r) {
					return nil, false
				}
				out = utf8.AppendRune(out, r)
				i += 4
			default:
				return nil, false
			}
			run = i + 1
		case c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}
