// Package azfunc is the Azure Functions custom-handler runtime: the host's invocation envelope decoded
// into typed values, the response envelope, the server that answers the host, and the route adapters
// for HTTP, Service Bus and timer triggers. It knows nothing of ConnectHub's functions: handlers/ holds
// the route table and one handler per function.
//
// Encoding facts (shared/reference/customhandler-protocol.md): the host serialises strings and numbers in
// Data and Metadata a second time ("\"abc\"", "4"), objects arrive as nested JSON, byte arrays as base64.
// Every decoder here accepts both the double-encoded and the plain form, so code tested against devhost
// survives the real host and vice versa.
package azfunc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// InvokeRequest is the body the host POSTs to /{FunctionName}.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// InvokeResponse is what the handler answers with status 200. A non-2xx status fails the invocation
// (and abandons a queue message), discarding Outputs.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// HTTPRequest is Data[<httpTrigger binding>] in default (non-forwarding) mode.
type HTTPRequest struct {
	URL     string
	Method  string
	Query   url.Values
	Headers map[string][]string
	Params  map[string]string
	Body    []byte
	// BodyStops, when not nil, are the offsets in Body of every byte a JSON string scan must look at
	// (jsonscan.Scanner.Stops), found while the envelope was read: a JSON body's strings can then be
	// passed over without reading them again. nil when the envelope was read another way.
	BodyStops []int32
}

// Header returns the first value of a header, case-insensitively.
func (r *HTTPRequest) Header(name string) string { return firstHeader(r.Headers, name) }

// HTTPResponse is the value of an http output binding.
type HTTPResponse struct {
	StatusCode int
	Headers    map[string]string
	Body       string
}

// MarshalJSON writes the shape the host deserialises into its HttpOutputBindingResponse: statusCode as a
// string, body as a string (never base64-decoded for http outputs), headers as a flat object.
func (r HTTPResponse) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// httpResponseWire is HTTPResponse as the host reads it.
type httpResponseWire struct {
	StatusCode string            `json:"statusCode"`
	Body       string            `json:"body"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// wire is r in the host's shape. The server encodes it in place of r: the same bytes without a
// MarshalJSON call, whose output encoding/json would scan and copy again.
func (r HTTPResponse) wire() httpResponseWire {
	return httpResponseWire{strconv.Itoa(r.StatusCode), r.Body, r.Headers}
}

type rawHTTPRequest struct {
	URL     string                     `json:"Url"`
	Method  string                     `json:"Method"`
	Query   json.RawMessage            `json:"Query"`
	Headers map[string]json.RawMessage `json:"Headers"`
	Params  map[string]string          `json:"Params"`
	Body    json.RawMessage            `json:"Body"`
}

// DecodeHTTPRequest decodes an httpTrigger value. Query arrives as an object (current host) or as the raw
// query string (older hosts); header values as arrays or single strings; Body as text, or as base64 for
// octet-stream and multipart content.
func DecodeHTTPRequest(raw json.RawMessage) (*HTTPRequest, error) {
	var r rawHTTPRequest
	if err := json.Unmarshal(unwrapString(raw), &r); err != nil {
		return nil, fmt.Errorf("decode http request: %w", err)
	}
	out := &HTTPRequest{URL: r.URL, Method: strings.ToUpper(r.Method), Params: r.Params,
		Headers: make(map[string][]string, len(r.Headers)), Query: url.Values{}}
	for k, v := range r.Headers {
		var many []string
		if err := json.Unmarshal(v, &many); err == nil {
			out.Headers[k] = many
			continue
		}
		var one string
		if err := json.Unmarshal(v, &one); err != nil {
			return nil, fmt.Errorf("decode header %q: %w", k, err)
		}
		out.Headers[k] = []string{one}
	}
	if len(r.Query) > 0 && string(r.Query) != "null" {
		var m map[string]string
		if err := json.Unmarshal(r.Query, &m); err == nil {
			for k, v := range m {
				out.Query.Set(k, v)
			}
		} else {
			var s string
			if err := json.Unmarshal(r.Query, &s); err != nil {
				return nil, fmt.Errorf("decode query: %w", err)
			}
			q, err := url.ParseQuery(strings.TrimPrefix(s, "?"))
			if err != nil {
				return nil, fmt.Errorf("decode query: %w", err)
			}
			out.Query = q
		}
	}
	if len(r.Query) == 0 || string(r.Query) == "null" {
		// Fall back to the URL so a host that omits Query still yields the parameters.
		if u, err := url.Parse(r.URL); err == nil {
			out.Query = u.Query()
		}
	}
	if len(r.Body) > 0 && string(r.Body) != "null" {
		var s string
		if err := json.Unmarshal(r.Body, &s); err != nil {
			// A host may hand a JSON body over as the parsed object; keep its bytes.
			out.Body = append([]byte(nil), r.Body...)
		} else if isBinaryContent(out.Header("Content-Type")) {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("decode binary body: %w", err)
			}
			out.Body = b
		} else {
			out.Body = []byte(s)
		}
	}
	return out, nil
}

// fastHTTPEnvelope is the common shape of an HTTP invocation: Query an object, Headers arrays, Body text.
type fastHTTPEnvelope struct {
	Data map[string]struct {
		URL     string              `json:"Url"`
		Method  string              `json:"Method"`
		Query   map[string]string   `json:"Query"`
		Headers map[string][]string `json:"Headers"`
		Params  map[string]string   `json:"Params"`
		Body    *string             `json:"Body"`
	} `json:"Data"`
}

// decodeHTTPEnvelope decodes an HTTP invocation in one pass when it has the common shape (scanHTTPEnvelope
// when the keys are spelt exactly, else encoding/json into fastHTTPEnvelope), and otherwise with
// DecodeHTTPRequest, which accepts every shape a host sends.
func decodeHTTPEnvelope(envelope []byte, binding string) (*HTTPRequest, error) {
	if r, ok := scanHTTPEnvelope(envelope, binding); ok {
		return r, nil
	}
	var fast fastHTTPEnvelope
	if err := json.Unmarshal(envelope, &fast); err == nil {
		if r, ok := fast.Data[binding]; ok && !isBinaryContent(firstHeader(r.Headers, "Content-Type")) {
			out := &HTTPRequest{URL: r.URL, Method: strings.ToUpper(r.Method), Params: r.Params, Headers: r.Headers, Query: url.Values{}}
			if out.Headers == nil {
				out.Headers = map[string][]string{}
			}
			for k, v := range r.Query {
				out.Query.Set(k, v)
			}
			if r.Query == nil {
				if u, err := url.Parse(r.URL); err == nil {
					out.Query = u.Query()
				}
			}
			if r.Body != nil {
				out.Body = []byte(*r.Body)
			}
			return out, nil
		}
	}
	var req InvokeRequest
	if err := json.Unmarshal(envelope, &req); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("no data for binding %q", binding)
	}
	return DecodeHTTPRequest(raw)
}

func firstHeader(h map[string][]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func isBinaryContent(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/octet-stream") || strings.HasPrefix(ct, "multipart/")
}

// DecodeServiceBus decodes Data[binding] and the trigger metadata.
func DecodeServiceBus(req *InvokeRequest, binding string) (*queue.Delivery, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("decode service bus message: no data for binding %q", binding)
	}
	body, err := decodeBody(raw)
	if err != nil {
		return nil, fmt.Errorf("decode service bus body: %w", err)
	}
	m := &queue.Delivery{Body: body}
	if m.MessageID, err = MetaString(req.Metadata, "MessageId"); err != nil {
		return nil, err
	}
	if m.SessionID, err = MetaString(req.Metadata, "SessionId"); err != nil {
		return nil, err
	}
	if m.ContentType, err = MetaString(req.Metadata, "ContentType"); err != nil {
		return nil, err
	}
	if m.Subject, err = MetaString(req.Metadata, "Subject"); err != nil {
		return nil, err
	}
	dc, err := MetaString(req.Metadata, "DeliveryCount")
	if err != nil {
		return nil, err
	}
	if dc != "" {
		if m.DeliveryCount, err = strconv.Atoi(dc); err != nil {
			return nil, fmt.Errorf("decode DeliveryCount: %w", err)
		}
	}
	if t, _ := MetaString(req.Metadata, "EnqueuedTimeUtc"); t != "" {
		m.EnqueuedTime, _ = parseHostTime(t)
	}
	if raw, ok := req.Metadata["ApplicationProperties"]; ok {
		props := map[string]any{}
		if err := json.Unmarshal(unwrapString(raw), &props); err != nil {
			return nil, fmt.Errorf("decode ApplicationProperties: %w", err)
		}
		m.ApplicationProperties = make(map[string]string, len(props))
		for k, v := range props {
			m.ApplicationProperties[k] = fmt.Sprint(v)
		}
	}
	return m, nil
}

// TimerInfo is a timer trigger's Data value.
type TimerInfo struct {
	IsPastDue      bool `json:"IsPastDue"`
	ScheduleStatus *struct {
		Last        time.Time `json:"Last"`
		Next        time.Time `json:"Next"`
		LastUpdated time.Time `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
}

// DecodeTimer decodes Data[binding] of a timer trigger.
func DecodeTimer(req *InvokeRequest, binding string) (*TimerInfo, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("decode timer: no data for binding %q", binding)
	}
	var t TimerInfo
	if err := json.Unmarshal(unwrapString(raw), &t); err != nil {
		return nil, fmt.Errorf("decode timer: %w", err)
	}
	return &t, nil
}

// MetaString reads a string or number from Metadata in either encoding ("\"x\"", "x", "4", 4). A missing
// key is "".
func MetaString(meta map[string]json.RawMessage, key string) (string, error) {
	raw, ok := meta[key]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// A plain number or boolean.
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("decode metadata %s: not a string or number", key)
		}
		return n.String(), nil
	}
	// Double-encoded: the string is itself a JSON string literal.
	if len(s) >= 2 && s[0] == '"' {
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err == nil {
			return inner, nil
		}
	}
	return s, nil
}

// decodeBody turns a Service Bus body into bytes: a JSON string (once or twice encoded) gives its text;
// an object or array gives its JSON bytes.
func decodeBody(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return validUTF8(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	if len(s) >= 2 && s[0] == '"' {
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err == nil {
			return []byte(inner), nil
		}
	}
	return []byte(s), nil
}

// validUTF8 copies b with each byte that is not UTF-8 replaced by U+FFFD, as encoding/json does when it
// reads or writes a string. JSON is UTF-8 and the host never sends anything else, but a body that arrives
// as an object is kept as raw bytes: without this, the same message would decode differently from its
// string form and change when written back (FuzzDecodeServiceBus found `{"":"0\xce"}`).
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return append([]byte(nil), b...)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// unwrapString returns the inner JSON when an object arrives serialised as a string.
func unwrapString(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	return raw
}

func parseHostTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "01/02/2006 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q", s)
}
