package notification

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// fastParse decodes a body of the shape Graph sends — exact camelCase keys, string values, no nulls,
// no unknown members — in one pass over the bytes, and returns each item's bytes as sent with its
// clientState member cut out, ready to be queued without re-encoding. ok is false for anything else
// (other key spellings, numbers, nulls, unknown members, malformed JSON): the caller then decodes with
// encoding/json, whose result this one must equal whenever ok is true (FuzzFastParse checks).
//
// Why not encoding/json here: Unmarshal validates the whole body, then scans it again to decode, one
// state-machine step per byte; on a 50-item rich POST (~170 KB, mostly base64) that and the re-encoding
// of every item for the queue were most of the webhook's CPU. Strings are skipped here a word at a time.
func fastParse(body []byte) (c Collection, raws []Raw, ok bool) {
	// The strings decoded are substrings of one copy of the body: one allocation per POST instead of
	// one per key and value (about 1,000 for 50 rich items). The ids the webhook keeps beyond the
	// request — tenant, organization and subscription ids key its caches and counters — are copies of
	// their own (owned), so that no cache entry pins a whole body.
	s := scanner{b: body, text: string(body)}
	s.ws()
	if !s.eat('{') {
		return Collection{}, nil, false
	}
	var haveValue, haveTokens bool
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			break
		}
		if !first {
			if !s.eat(',') {
				return Collection{}, nil, false
			}
			s.ws()
		}
		key, kok := s.key()
		if !kok {
			return Collection{}, nil, false
		}
		s.ws()
		if !s.eat(':') {
			return Collection{}, nil, false
		}
		s.ws()
		switch {
		case key == "value" && !haveValue:
			haveValue = true
			c.Value, raws, ok = s.items()
		case key == "validationTokens" && !haveTokens:
			haveTokens = true
			if ok = s.null(); !ok { // null leaves the slice nil, as encoding/json does
				c.ValidationTokens, ok = s.strings()
			}
		default:
			return Collection{}, nil, false
		}
		if !ok {
			return Collection{}, nil, false
		}
	}
	s.ws()
	if s.i != len(s.b) || !haveValue {
		return Collection{}, nil, false
	}
	return c, raws, true
}

// Raw is one item's bytes as sent, and the span of its clientState member.
type Raw struct {
	item       []byte // aliases the body
	cut0, cut1 int
}

// Bytes returns a copy of the item without its clientState member (valid JSON), or nil for a zero Raw.
// It copies only when asked, so items the webhook drops cost nothing here.
func (r Raw) Bytes() []byte {
	if r.item == nil {
		return nil
	}
	out := make([]byte, 0, len(r.item)-(r.cut1-r.cut0))
	out = append(out, r.item[:r.cut0]...)
	return append(out, r.item[r.cut1:]...)
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

type scanner struct {
	b    []byte
	text string // b as a string: strings without escapes are its substrings
	i    int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// null consumes a null literal.
func (s *scanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// known reports whether key names a field of an item or of its nested objects, exactly spelt.
func known(key string) bool {
	switch key {
	case "id", "subscriptionId", "subscriptionExpirationDateTime", "clientState", "changeType", "resource",
		"tenantId", "organizationId", "lifecycleEvent", "resourceData", "encryptedContent",
		"@odata.type", "@odata.id", "@odata.etag", "eventTime", "sequenceNumber",
		"data", "dataKey", "dataSignature", "encryptionCertificateId", "encryptionCertificateThumbprint":
		return true
	}
	return false
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads a member name; names with escapes are left to encoding/json.
func (s *scanner) key() (string, bool) {
	start, end, escaped, ok := s.str()
	if !ok || escaped {
		return "", false
	}
	return s.text[start:end], true
}

// str reads a string literal and returns the bounds of its contents. It refuses control characters
// and invalid UTF-8, which encoding/json rejects or replaces.
func (s *scanner) str() (start, end int, escaped, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	start = s.i
	ascii := true
	for i := start; i < len(s.b); i++ {
		for i < len(s.b) && plain[s.b[i]] {
			i++
		}
		if i == len(s.b) {
			break
		}
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			if !ascii && !utf8.Valid(s.b[start:i]) {
				return 0, 0, false, false
			}
			return start, i, escaped, true
		case c == '\\':
			escaped = true
			i++ // the escaped byte; its validity is checked by the unquoting
		case c < 0x20:
			return 0, 0, false, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, 0, false, false
}

// stringValue reads a string value.
func (s *scanner) stringValue() (string, bool) {
	q := s.i
	start, end, escaped, ok := s.str()
	if !ok {
		return "", false
	}
	if !escaped {
		return s.text[start:end], true
	}
	var v string
	if json.Unmarshal(s.b[q:s.i], &v) != nil {
		return "", false
	}
	return v, true
}

func (s *scanner) strings() ([]string, bool) {
	if !s.eat('[') {
		return nil, false
	}
	out := []string{}
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return out, true
		}
		if !first {
			if !s.eat(',') {
				return nil, false
			}
			s.ws()
		}
		v, ok := s.stringValue()
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
}

// items reads the value array: each item decoded, and its bytes without the clientState member.
func (s *scanner) items() ([]Notification, []Raw, bool) {
	if !s.eat('[') {
		return nil, nil, false
	}
	out := []Notification{}
	var raws []Raw
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return out, raws, true
		}
		if !first {
			if !s.eat(',') {
				return nil, nil, false
			}
			s.ws()
		}
		start := s.i
		n, cut0, cut1, ok := s.item()
		if !ok {
			return nil, nil, false
		}
		if cut1 == 0 { // no clientState
			cut0, cut1 = s.i, s.i
		}
		raws = append(raws, Raw{item: s.b[start:s.i], cut0: cut0 - start, cut1: cut1 - start})
		out = append(out, n)
	}
}

// object calls member for each member of an object, positioned at its value; keyStart is where the
// member's name begins.
func (s *scanner) object(member func(key string, keyStart int) bool) bool {
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
		keyStart := s.i
		key, ok := s.key()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if s.null() {
			// encoding/json leaves the field as it is; unknown members still go to it.
			if !known(key) {
				return false
			}
			continue
		}
		if !member(key, keyStart) {
			return false
		}
	}
}

// item decodes one notification object and returns the byte span [cut0, cut1) of its clientState
// member together with one adjacent comma, so that cutting it leaves valid JSON.
func (s *scanner) item() (n Notification, cut0, cut1 int, ok bool) {
	stateSeen := false
	ok = s.object(func(key string, keyStart int) bool {
		var dst *string
		owned := false
		switch key {
		case "id":
			dst = &n.ID
		case "subscriptionId":
			dst, owned = &n.SubscriptionID, true
		case "subscriptionExpirationDateTime":
			dst = &n.SubscriptionExpirationDateTime
		case "clientState":
			if stateSeen {
				return false
			}
			stateSeen = true
			v, ok := s.stringValue()
			if !ok {
				return false
			}
			n.ClientState = v
			lastComma := -1 // the comma before this member, if it is not the first
			for j := keyStart - 1; j >= 0 && s.b[j] != '{'; j-- {
				if s.b[j] == ',' {
					lastComma = j
					break
				}
			}
			save := s.i
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				cut0, cut1 = keyStart, s.i+1
			} else if lastComma >= 0 {
				cut0, cut1 = lastComma, save
			} else {
				cut0, cut1 = keyStart, save
			}
			s.i = save
			return true
		case "changeType":
			dst = &n.ChangeType
		case "resource":
			dst = &n.Resource
		case "tenantId":
			dst, owned = &n.TenantID, true
		case "organizationId":
			dst, owned = &n.OrganizationID, true
		case "lifecycleEvent":
			dst = &n.LifecycleEvent
		case "resourceData":
			return s.resourceData(&n.ResourceData)
		case "encryptedContent":
			return s.encryptedContent(&n.EncryptedContent)
		default:
			return false
		}
		v, ok := s.stringValue()
		if owned {
			v = strings.Clone(v)
		}
		*dst = v
		return ok
	})
	return n, cut0, cut1, ok
}

func (s *scanner) resourceData(r *ResourceData) bool {
	return s.object(func(key string, _ int) bool {
		var dst *string
		switch key {
		case "@odata.type":
			dst = &r.ODataType
		case "@odata.id":
			dst = &r.ODataID
		case "@odata.etag":
			dst = &r.ODataEtag
		case "id":
			dst = &r.ID
		case "organizationId":
			v, ok := s.stringValue()
			r.OrganizationID = strings.Clone(v) // owned, as the item's
			return ok
		case "eventTime":
			dst = &r.EventTime
		case "sequenceNumber":
			v, ok := s.stringValue()
			r.SequenceNumber = LooseString(v)
			return ok
		default:
			return false
		}
		v, ok := s.stringValue()
		*dst = v
		return ok
	})
}

func (s *scanner) encryptedContent(e *EncryptedContent) bool {
	return s.object(func(key string, _ int) bool {
		var dst *string
		switch key {
		case "data":
			dst = &e.Data
		case "dataKey":
			dst = &e.DataKey
		case "dataSignature":
			dst = &e.DataSignature
		case "encryptionCertificateId":
			dst = &e.EncryptionCertificateID
		case "encryptionCertificateThumbprint":
			dst = &e.EncryptionCertificateThumbprint
		default:
			return false
		}
		v, ok := s.stringValue()
		*dst = v
		return ok
	})
}
