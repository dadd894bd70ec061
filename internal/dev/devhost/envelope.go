package devhost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
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

// httpEnvelope builds the invocation for an HTTP trigger in default (non-forwarding) mode.
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
	req := httpRequestJSON{
		URL:        "http://" + r.Host + r.URL.RequestURI(),
		Method:     r.Method,
		Query:      query,
		Headers:    headers,
		Params:     params,
		Identities: []any{},
	}
	if len(body) > 0 {
		ct := strings.ToLower(r.Header.Get("Content-Type"))
		var b string
		if strings.HasPrefix(ct, "application/octet-stream") || strings.HasPrefix(ct, "multipart/") {
			b = base64.StdEncoding.EncodeToString(body)
		} else {
			b = string(body)
		}
		req.Body = &b
	}
	// The body can be large (a 50-item Graph POST is ~170 KB): encode it once, without HTML escaping,
	// and splice the pieces together rather than re-marshalling (which would validate it again).
	var reqJSON bytes.Buffer
	enc := json.NewEncoder(&reqJSON)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, err
	}
	name, _ := json.Marshal(trig.Name)
	qJSON, _ := json.Marshal(query)
	hJSON, _ := json.Marshal(headers)
	out := make([]byte, 0, reqJSON.Len()+len(qJSON)+len(hJSON)+256)
	out = append(out, `{"Data":{`...)
	out = append(out, name...)
	out = append(out, ':')
	out = append(out, bytes.TrimSpace(reqJSON.Bytes())...)
	out = append(out, `},"Metadata":{"Query":`...)
	out = append(out, qJSON...)
	out = append(out, `,"Headers":`...)
	out = append(out, hJSON...)
	out = append(out, `,"sys":`...)
	out = append(out, sysMeta(f.Name)...)
	return append(out, `}}`...), nil
}

// httpRequestJSON is Data[<httpTrigger binding>] as the host's GetRequestAsJObject builds it.
type httpRequestJSON struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      map[string]string   `json:"Query"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Identities []any               `json:"Identities"`
	Body       *string             `json:"Body,omitempty"`
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
