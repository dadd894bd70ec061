package notification

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// fastParse decodes a body of the shape Graph sends — exact camelCase keys, string values, no nulls,
// no unknown members — in one pass over the bytes, and returns each item's bytes as sent with its
// clientState member cut out, ready to be queued without re-encoding. ok is false for anything else
// (other key spellings, numbers, nulls, unknown members, malformed JSON): the caller then decodes with
// encoding/json, whose result this one must equal whenever ok is true (FuzzFastParse checks).
//
// Why not encoding/json here: Unmarshal validates the whole body, then scans it again to decode, one
// state-machine step per byte; on a 50-item rich POST (~170 KB, mostly base64) that and the re-encoding
// of every item for the queue were most of the webhook's CPU. Strings are skipped here a word at a time
// (package jsonscan, shared with azfunc's envelope reader).
//
// limit > 0 bounds the items and the validation tokens: the first one over it ends the scan with
// fastTooMany, before it is decoded.
//
// stops, when not nil, are the offsets of the body's bytes a string scan must look at (jsonscan.Scanner
// Stops; azfunc found them while it unquoted the body): its strings are then passed over, not read.
func fastParse(body []byte, stops []int32, limit int) (c Collection, raws []Raw, res fastResult) {
	// The strings decoded are substrings of the body itself, read as a string without a copy (the
	// caller does not change it while they are in use; ParseRawAtMost says so): no allocation per key
	// and value (about 1,000 for 50 rich items), and no copy of the body (60 to 180 KB). The ids the
	// webhook keeps beyond the request — tenant, organization and subscription ids key its caches and
	// counters — are copies of their own (owned), so that no cache entry pins a whole body.
	s := scanner{Scanner: jsonscan.Scanner{B: body, Stops: stops}, text: unsafe.String(unsafe.SliceData(body), len(body)), limit: limit}
	s.WS()
	var haveValue, haveTokens bool
	ok := s.Object(func(name jsonscan.Str, _ int) bool {
		key, ok := s.key(name)
		switch {
		case !ok:
			return false
		case key == "value" && !haveValue:
			haveValue = true
			c.Value, raws, ok = s.items()
			return ok
		case key == "validationTokens" && !haveTokens:
			haveTokens = true
			if s.Null() { // null leaves the slice nil, as encoding/json does
				return true
			}
			c.ValidationTokens, ok = s.strings()
			return ok
		default:
			return false
		}
	})
	s.WS()
	if s.tooMany {
		return Collection{}, nil, fastTooMany
	}
	if !ok || s.I != len(s.B) || !haveValue {
		return Collection{}, nil, fastRefused
	}
	return c, raws, fastOK
}

// fastResult is what fastParse made of a body.
type fastResult int

const (
	fastRefused fastResult = iota // not of the shape it reads: encoding/json decides
	fastOK
	fastTooMany // an array with more elements than the limit
)

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

// AppendTo appends the item without its clientState member to dst, as Bytes returns it, so that the
// items of a POST can share one buffer.
func (r Raw) AppendTo(dst []byte) []byte {
	dst = append(dst, r.item[:r.cut0]...)
	return append(dst, r.item[r.cut1:]...)
}

type scanner struct {
	jsonscan.Scanner
	text    string // B as a string: strings without escapes are its substrings
	limit   int    // elements an array may hold (0: any number)
	tooMany bool   // an array held more

	owned     [4]string // the last copies own made
	nextOwned int
}

// own returns a copy of v that does not alias the body. The items of a POST mostly share their
// subscription, tenant and organization ids, so the copies made last are handed out again when equal.
func (s *scanner) own(v string) string {
	for _, o := range s.owned {
		if o == v && o != "" {
			return o
		}
	}
	o := strings.Clone(v)
	s.owned[s.nextOwned] = o
	s.nextOwned = (s.nextOwned + 1) % len(s.owned)
	return o
}

// over reports (and notes) that an array already holding n elements is about to get one more than
// the limit.
func (s *scanner) over(n int) bool {
	if s.limit > 0 && n >= s.limit {
		s.tooMany = true
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

// key is a member name; names with escapes are left to encoding/json.
func (s *scanner) key(name jsonscan.Str) (string, bool) {
	if name.Escaped {
		return "", false
	}
	return s.text[name.Start:name.End], true
}

// stringValue reads a string value.
func (s *scanner) stringValue() (string, bool) {
	q := s.I
	v, ok := s.String()
	if !ok {
		return "", false
	}
	if !v.Escaped {
		return s.text[v.Start:v.End], true
	}
	if u, ok := jsonscan.Unquote(make([]byte, 0, v.End-v.Start), s.B[v.Start:v.End]); ok {
		return unsafe.String(unsafe.SliceData(u), len(u)), true // u is this string's alone
	}
	// Surrogate escapes, which encoding/json pairs or replaces.
	var out string
	if json.Unmarshal(s.B[q:s.I], &out) != nil {
		return "", false
	}
	return out, true
}

func (s *scanner) strings() ([]string, bool) {
	out := []string{}
	ok := s.Array(func() bool {
		if s.over(len(out)) {
			return false
		}
		v, ok := s.stringValue()
		out = append(out, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// items reads the value array: each item decoded, and its bytes without the clientState member.
func (s *scanner) items() ([]Notification, []Raw, bool) {
	// Sized up front: a Notification is some 370 bytes, and 50 of them grown by appending cost as much
	// again in copies. A Graph item holds two objects (itself and resourceData) or three (and
	// encryptedContent), and base64 has no braces: half the braces is a guess at most 1.5 times the
	// items, counted at memory speed.
	hint := bytes.Count(s.B[s.I:], []byte{'{'})/2 + 1
	if s.limit > 0 {
		hint = min(hint, s.limit)
	}
	out := make([]Notification, 0, hint)
	raws := make([]Raw, 0, hint)
	ok := s.Array(func() bool {
		if s.over(len(out)) {
			return false
		}
		start := s.I
		n, cut0, cut1, ok := s.item()
		if !ok {
			return false
		}
		if cut1 == 0 { // no clientState
			cut0, cut1 = s.I, s.I
		}
		raws = append(raws, Raw{item: s.B[start:s.I], cut0: cut0 - start, cut1: cut1 - start})
		out = append(out, n)
		return true
	})
	if !ok {
		return nil, nil, false
	}
	return out, raws, true
}

// object calls member for each member of an object, positioned at its value; keyStart is where the
// member's name begins.
func (s *scanner) object(member func(key string, keyStart int) bool) bool {
	return s.Object(func(name jsonscan.Str, keyStart int) bool {
		key, ok := s.key(name)
		if !ok {
			return false
		}
		if s.Null() {
			// encoding/json leaves the field as it is; unknown members still go to it.
			return known(key)
		}
		return member(key, keyStart)
	})
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
			for j := keyStart - 1; j >= 0 && s.B[j] != '{'; j-- {
				if s.B[j] == ',' {
					lastComma = j
					break
				}
			}
			save := s.I
			s.WS()
			if s.I < len(s.B) && s.B[s.I] == ',' {
				cut0, cut1 = keyStart, s.I+1
			} else if lastComma >= 0 {
				cut0, cut1 = lastComma, save
			} else {
				cut0, cut1 = keyStart, save
			}
			s.I = save
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
			v = s.own(v)
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
			r.OrganizationID = s.own(v) // owned, as the item's
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
