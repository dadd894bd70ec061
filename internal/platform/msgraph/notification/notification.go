// Package notification holds the wire types of Microsoft Graph change notifications and the pure functions the
// webhook and the queue workers need around them: parsing, tenant resolution, the dedupe key and the ordering key.
//
// The types follow what Graph sends (see /work/shared/reference/graph-notifications.md). JSON keys match
// case-insensitively because encoding/json does so; the Event Grid Outlook sample uses PascalCase keys.
package notification

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrNotCollection means the body is not a change notification collection at all; the webhook answers 400.
var ErrNotCollection = errors.New("not a change notification collection")

// ErrTooManyItems means the body holds more items than the caller accepts (ParseAtMost); the webhook
// answers 413.
var ErrTooManyItems = errors.New("too many items in one notification collection")

// Collection is the body Graph POSTs to a notification URL.
type Collection struct {
	Value []Notification `json:"value"`
	// ValidationTokens are present when any item carries resource data: one JWT per app and tenant.
	ValidationTokens []string `json:"validationTokens,omitzero"`
}

// Notification is one changeNotification. Fields are strings as Graph sends them; nothing here is trusted until
// the subscription, clientState and (for rich notifications) validation tokens have been checked.
type Notification struct {
	ID                             string           `json:"id,omitzero"`
	SubscriptionID                 string           `json:"subscriptionId,omitzero"`
	SubscriptionExpirationDateTime string           `json:"subscriptionExpirationDateTime,omitzero"`
	ClientState                    string           `json:"clientState,omitzero"`
	ChangeType                     string           `json:"changeType,omitzero"`
	Resource                       string           `json:"resource,omitzero"`
	ResourceData                   ResourceData     `json:"resourceData,omitzero"`
	TenantID                       string           `json:"tenantId,omitzero"`
	OrganizationID                 string           `json:"organizationId,omitzero"`
	LifecycleEvent                 string           `json:"lifecycleEvent,omitzero"`
	EncryptedContent               EncryptedContent `json:"encryptedContent,omitzero"`
}

// ResourceData identifies the changed resource. OrganizationID, EventTime and SequenceNumber appear in
// notifications delivered through Event Grid.
type ResourceData struct {
	ODataType      string      `json:"@odata.type,omitzero"`
	ODataID        string      `json:"@odata.id,omitzero"`
	ODataEtag      string      `json:"@odata.etag,omitzero"`
	ID             string      `json:"id,omitzero"`
	OrganizationID string      `json:"organizationId,omitzero"`
	EventTime      string      `json:"eventTime,omitzero"`
	SequenceNumber LooseString `json:"sequenceNumber,omitzero"`
}

// EncryptedContent is the encrypted resource of a rich notification; package graphcrypto decrypts it.
type EncryptedContent struct {
	Data                            string `json:"data,omitzero"`
	DataKey                         string `json:"dataKey,omitzero"`
	DataSignature                   string `json:"dataSignature,omitzero"`
	EncryptionCertificateID         string `json:"encryptionCertificateId,omitzero"`
	EncryptionCertificateThumbprint string `json:"encryptionCertificateThumbprint,omitzero"`
}

// LooseString accepts a JSON string or number (kept as its literal text). The only published sample of
// sequenceNumber is a string placeholder; accepting a number too keeps one unexpected encoding from turning a
// whole delivery into a 400.
type LooseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *LooseString) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decode string: %w", err)
		}
		*s = LooseString(v)
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*s = LooseString(b)
		return nil
	default:
		return errors.New("decode loose string: want a string or a number")
	}
}

// Parse decodes a notification POST body. It returns an error wrapping ErrNotCollection unless the body is a JSON
// object whose "value" is an array of notification objects (an empty array is a valid, empty collection).
// Items are returned as sent, including items without a subscriptionId: the caller rejects and counts them.
// A field of the wrong JSON type anywhere makes the whole body invalid: Graph never sends that, and a partial
// parse would hide which items were dropped.
func Parse(body []byte) (Collection, error) { return ParseAtMost(body, 0) }

// ParseAtMost is Parse for a body that may hold at most limit items and limit validation tokens
// (limit <= 0: no limit). It refuses a longer list with ErrTooManyItems before decoding anything: a 1 MB body of
// empty items ("{},") would otherwise become some 300,000 Notification values, over 100 MB, before
// anyone counted them.
//
// The count does not look at key names: every array that is a member of the top-level object counts,
// so neither a differently spelt or escaped "value" (encoding/json matches keys case-insensitively
// and after unescaping) nor an ignored member can carry a long list past it. A Graph body has no other
// arrays there.
func ParseAtMost(body []byte, limit int) (Collection, error) {
	c, _, err := ParseRawAtMost(body, limit)
	return c, err
}

// ParseRawAtMost is ParseAtMost that also returns each item's bytes as Graph sent them, minus its
// clientState member (a secret the queue workers do not need), so the webhook can queue them without
// encoding them again. raws is nil when the body had an unusual shape (see fastParse); the caller then
// encodes the decoded items itself.
//
// The strings of c and the raws alias body, which must not change while they are in use.
func ParseRawAtMost(body []byte, limit int) (c Collection, raws []Raw, err error) {
	return ParseScannedAtMost(body, nil, limit)
}

// ParseScannedAtMost is ParseRawAtMost for a body whose string stops are known (stops: the offsets of
// every byte of body a JSON string scan must look at, as azfunc.HTTPRequest.BodyStops; nil when not
// known): the one-pass reader then jumps over the strings' plain runs, most of a rich body, instead of
// reading them.
func ParseScannedAtMost(body []byte, stops []int32, limit int) (c Collection, raws []Raw, err error) {
	tooMany := func() error {
		return fmt.Errorf("parse notification collection: %w (more than %d)", ErrTooManyItems, limit)
	}
	// The one-pass reader counts as it goes and stops at the first item or token over the limit,
	// before decoding it: for the bodies it reads, its arrays are the only members of the top-level
	// object, so it refuses exactly what memberArrayLongerThan would. Other bodies are counted first.
	c, raws, res := fastParse(body, stops, limit)
	switch res {
	case fastOK:
		return c, raws, nil
	case fastTooMany:
		return Collection{}, nil, tooMany()
	}
	if limit > 0 && memberArrayLongerThan(body, limit) {
		return Collection{}, nil, tooMany()
	}
	c, err = parseTolerant(body)
	return c, nil, err
}

// parseTolerant is encoding/json's reading of the body: every key spelling and value shape it accepts.
func parseTolerant(body []byte) (Collection, error) {
	var wire struct {
		// A pointer tells a missing or null "value" (not a collection) from an empty array (a collection).
		Value            *[]Notification `json:"value"`
		ValidationTokens []string        `json:"validationTokens"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return Collection{}, fmt.Errorf("parse notification collection: %w: %w", ErrNotCollection, err)
	}
	if wire.Value == nil {
		return Collection{}, fmt.Errorf("parse notification collection: %w: no value array", ErrNotCollection)
	}
	return Collection{Value: *wire.Value, ValidationTokens: wire.ValidationTokens}, nil
}

// memberArrayLongerThan reports whether an array directly inside the top-level JSON value has more
// than limit elements. It counts the commas between elements, skipping strings; it is a scan of one byte
// at a time (strings in jumps), far cheaper than the decoder's two passes, so it can run first. On
// malformed JSON its answer does not matter: the decoder refuses the body whatever it says.
func memberArrayLongerThan(body []byte, limit int) bool {
	depth := 0
	inArray := false // the open container at depth 2 is an array
	commas := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end := stringEnd(body, i)
			if end < 0 {
				return false
			}
			i = end
		case '{', '[':
			depth++
			if depth == 2 {
				inArray, commas = body[i] == '[', 0
			}
		case '}', ']':
			depth--
		case ',':
			if depth == 2 && inArray {
				commas++
				if commas >= limit { // commas+1 elements
					return true
				}
			}
		}
	}
	return false
}

// stringEnd returns the index of the quote closing the JSON string that opens at body[start], or -1.
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		k := bytes.IndexByte(body[i:], '"')
		if k < 0 {
			return -1
		}
		i += k
		backslashes := 0
		for j := i - 1; j > start && body[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
	}
	return -1
}

// IsLifecycle reports whether n is a lifecycle notification (reauthorizationRequired, subscriptionRemoved,
// missed), which goes to the lifecycle queue.
func (n Notification) IsLifecycle() bool {
	return n.LifecycleEvent != ""
}

// IsRich reports whether n carries encrypted resource data, which requires validation tokens.
func (n Notification) IsRich() bool {
	return n.EncryptedContent.Data != ""
}

// Tenant resolves the tenant the notification belongs to, used with SubscriptionID to find the subscription record.
//
// Graph names the tenant in up to three places: tenantId (all current webhook payloads), a top-level
// organizationId (presence, next to an equal tenantId) and resourceData.organizationId (Event Grid, next to an
// equal tenantId). The first non-empty of these, in that order, is the tenant. If two non-empty values disagree
// (compared case-insensitively, as GUIDs) the result is "": the item cannot be placed in one tenant partition,
// so the caller must reject it rather than guess.
func (n Notification) Tenant() string {
	tenant := ""
	for _, candidate := range [...]string{n.TenantID, n.OrganizationID, n.ResourceData.OrganizationID} {
		switch {
		case candidate == "":
		case tenant == "":
			tenant = candidate
		case !strings.EqualFold(tenant, candidate):
			return ""
		}
	}
	return tenant
}

// MessageID is the deterministic dedupe key (Service Bus MessageId, 64 hex characters) of n. A replay of the
// same notification by Graph yields the same id; distinct changes yield distinct ids.
//
// It hashes subscriptionId, changeType, resource, resourceData.id, lifecycleEvent and one version marker: the
// first non-empty of resourceData's etag, encryptedContent.dataSignature (rich notifications such as presence
// carry no etag, but every change is encrypted under a fresh key, so its signature differs while a replay
// repeats it byte for byte), resourceData.sequenceNumber and the notification id. Lifecycle events also hash
// subscriptionExpirationDateTime so that a second reauthorizationRequired after a renewal is not taken for a
// replay.
//
// ok is false for a change notification with none of these markers (Graph's basic presence
// notifications, graph-samples/02, have none): nothing in it tells a replay from a second change to
// the same resource, so the id must not be used as a dedupe key; the caller gives such an item an id
// of its own.
func MessageID(n Notification) (id string, ok bool) {
	v := version(n)
	fields := []string{"v1", n.SubscriptionID, n.ChangeType, n.Resource, n.ResourceData.ID, n.LifecycleEvent, v}
	if n.IsLifecycle() {
		fields = append(fields, n.SubscriptionExpirationDateTime)
	}
	return hashFields(fields...), v != "" || n.IsLifecycle()
}

func version(n Notification) string {
	for _, v := range [...]string{
		n.ResourceData.ODataEtag,
		n.EncryptedContent.DataSignature,
		string(n.ResourceData.SequenceNumber),
		n.ID,
	} {
		if v != "" {
			return v
		}
	}
	return ""
}

// OrderingKey is the Service Bus SessionId (64 hex characters, within its 128 limit) that keeps the changes of
// one resource of one subscription in order: one user's presence (resourceData.id is the user id), one room's
// or mailbox's event or message (the item id), and all lifecycle events of one subscription. It depends only
// on the subscription and the resource identity, so replays and later changes of the same resource share it.
// Changes to different items of one mailbox may be processed in parallel; they do not depend on each other.
func OrderingKey(n Notification) string {
	identity := n.ResourceData.ID
	if identity == "" {
		identity = n.Resource
	}
	if n.IsLifecycle() {
		identity = ""
	}
	return hashFields("v1", n.SubscriptionID, identity)
}

// SubscriptionKey is a SessionId shared by every notification of one subscription, whatever resource it
// names: a worker that re-reads the subscribed resource whole (a room's calendar window) gets one delivery at a
// time per subscription from Service Bus's session lock, on every instance, so its reads of one mailbox never
// pile up against Outlook's 4 concurrent requests per app and mailbox (throttling-outlook.md). It is the
// lifecycle events' key: a subscription's lifecycle events and its resources' notifications travel on
// different queues, so sharing it costs nothing.
func SubscriptionKey(n Notification) string {
	return hashFields("v1", n.SubscriptionID, "")
}

// hashFields hashes length-prefixed fields so that no two different field lists share an input. The
// input is gathered in a stack buffer and hashed at once: writing each field to a hash.Hash copied
// every field longer than 32 bytes (every subscription id is 36) to the heap, four times per item.
func hashFields(fields ...string) string {
	var buf [512]byte
	in := buf[:0]
	for _, f := range fields {
		in = binary.BigEndian.AppendUint64(in, uint64(len(f)))
		in = append(in, f...)
	}
	sum := sha256.Sum256(in)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}
