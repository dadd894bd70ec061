package devhost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// twice serialises v the way the real host does for strings, numbers and dates in Data and Metadata:
// JsonConvert.SerializeObject(v) carried as a JSON string, so "abc" arrives as "\"abc\"" and 4 as "4".
func twice(v any) json.RawMessage {
	inner, _ := json.Marshal(v)
	outer, _ := json.Marshal(string(inner))
	return outer
}

func sysMeta(method string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"MethodName": method,
		"UtcNow":     time.Now().UTC().Format(time.RFC3339Nano),
		"RandGuid":   uuid.NewString(),
	})
	return b
}

// httpEnvelope builds the invocation for an HTTP trigger in default (non-forwarding) mode:
// Data[<binding>] is the request as the host's GetRequestAsJObject builds it (Url, Method, Query,
// Headers, Params, Identities and, when there is one, Body as a string), Metadata the query, the
// headers and sys.
//
// The body can be large (a 50-item Graph POST is ~170 KB), so the envelope is written into one buffer
// sized for it, the body escaped once straight from the bytes read (appendJSONString: no reflection, no
// copy into a string), and the headers encoded once for both places they appear.
func httpEnvelope(f *Function, r *http.Request, body []byte, params map[string]string) ([]byte, error) {
	trig := f.Trigger()
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",") // ASP.NET's StringValues.ToString()
	}
	headers := map[string][]string{}
	for k, v := range r.Header {
		headers[k] = v
	}
	if r.Host != "" {
		headers["Host"] = []string{r.Host}
	}
	name, err := json.Marshal(trig.Name)
	if err != nil {
		return nil, err
	}
	qJSON, err := marshalNoHTML(query)
	if err != nil {
		return nil, err
	}
	hJSON, err := marshalNoHTML(headers)
	if err != nil {
		return nil, err
	}
	pJSON, err := marshalNoHTML(params)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+len(body)/16+2*(len(qJSON)+len(hJSON))+len(pJSON)+512)
	out = append(out, `{"Data":{`...)
	out = append(out, name...)
	out = append(out, `:{"Url":`...)
	out = appendJSONString(out, []byte("http://"+r.Host+r.URL.RequestURI()))
	out = append(out, `,"Method":`...)
	out = appendJSONString(out, []byte(r.Method))
	out = append(out, `,"Query":`...)
	out = append(out, qJSON...)
	out = append(out, `,"Headers":`...)
	out = append(out, hJSON...)
	out = append(out, `,"Params":`...)
	out = append(out, pJSON...)
	out = append(out, `,"Identities":[]`...)
	if len(body) > 0 {
		out = append(out, `,"Body":`...)
		ct := strings.ToLower(r.Header.Get("Content-Type"))
		if strings.HasPrefix(ct, "application/octet-stream") || strings.HasPrefix(ct, "multipart/") {
			out = append(out, '"')
			out = base64.StdEncoding.AppendEncode(out, body)
			out = append(out, '"')
		} else {
			out = appendJSONString(out, body)
		}
	}
	out = append(out, `}},"Metadata":{"Query":`...)
	out = append(out, qJSON...)
	out = append(out, `,"Headers":`...)
	out = append(out, hJSON...)
	out = append(out, `,"sys":`...)
	out = append(out, sysMeta(f.Name)...)
	return append(out, `}}`...), nil
}

// marshalNoHTML is json.Marshal without HTML escaping, as the host writes (Newtonsoft does not escape
// <, > and &).
func marshalNoHTML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendJSONString appends s as a JSON string exactly as encoding/json does without HTML escaping:
// control characters, '"' and '\\' escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029
// escaped. Runs of plain ASCII, nearly all of a Graph POST, are found eight bytes at a time
// (jsonscan.SkipPlain stops at exactly the bytes this must look at) and copied whole: a byte at a time,
// escaping a 50-item body was three quarters of devhost's envelope.
func appendJSONString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; ; {
		if i = jsonscan.SkipPlain(s, i); i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// queueEnvelope builds the invocation for a Service Bus trigger: the body as a twice-serialised string
// (binary with dataType "binary": base64), properties as trigger metadata.
func queueEnvelope(f *Function, m *Message) ([]byte, error) {
	trig := f.Trigger()
	var data json.RawMessage
	if trig.DataType == "binary" {
		data, _ = json.Marshal(base64.StdEncoding.EncodeToString(m.Body))
	} else {
		data = twice(string(m.Body))
	}
	props := map[string]any{}
	for k, v := range m.ApplicationProperties {
		props[k] = v
	}
	propsJSON, _ := json.Marshal(props)
	meta := map[string]json.RawMessage{
		"DeliveryCount":         twice(m.DeliveryCount),
		"MessageId":             twice(m.ID),
		"LockToken":             twice(uuid.NewString()),
		"EnqueuedTimeUtc":       twice(m.EnqueuedTime.UTC().Truncate(time.Second)),
		"ExpiresAtUtc":          twice(m.EnqueuedTime.UTC().Add(14 * 24 * time.Hour).Truncate(time.Second)),
		"SequenceNumber":        twice(m.SequenceNumber),
		"ApplicationProperties": propsJSON,
		"UserProperties":        propsJSON,
		"sys":                   sysMeta(f.Name),
	}
	if m.ContentType != "" {
		meta["ContentType"] = twice(m.ContentType)
	}
	if m.Subject != "" {
		meta["Subject"] = twice(m.Subject)
	}
	if m.SessionID != "" {
		meta["SessionId"] = twice(m.SessionID)
	}
	return json.Marshal(map[string]any{
		"Data":     map[string]json.RawMessage{trig.Name: data},
		"Metadata": meta,
	})
}

// timerEnvelope builds the invocation for a timer trigger.
func timerEnvelope(f *Function, last, next time.Time, pastDue bool) ([]byte, error) {
	timer, err := json.Marshal(map[string]any{
		"Schedule":       map[string]any{"AdjustForDST": true},
		"ScheduleStatus": map[string]any{"Last": last.UTC(), "Next": next.UTC(), "LastUpdated": time.Now().UTC()},
		"IsPastDue":      pastDue,
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"Data":     map[string]json.RawMessage{f.Trigger().Name: timer},
		"Metadata": map[string]json.RawMessage{"sys": sysMeta(f.Name)},
	})
}

// invokeResult is the handler's answer.
type invokeResult struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []string                   `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// httpOutput is the host's HttpOutputBindingResponse: statusCode as number or string, body as string or
// any JSON value.
type httpOutput struct {
	StatusCode json.RawMessage   `json:"statusCode"`
	Status     json.RawMessage   `json:"status"`
	Body       json.RawMessage   `json:"body"`
	Headers    map[string]string `json:"headers"`
}

func (o *httpOutput) status() int {
	for _, raw := range []json.RawMessage{o.StatusCode, o.Status} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var n int
		if json.Unmarshal(raw, &n) == nil {
			return n
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			var n int
			if _, err := fmt.Sscan(s, &n); err == nil {
				return n
			}
		}
	}
	return http.StatusOK
}

func (o *httpOutput) body() []byte {
	if len(o.Body) == 0 || string(o.Body) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(o.Body, &s) == nil {
		return []byte(s)
	}
	return o.Body
}
