package azfunc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// envelope decodes the body the host POSTs for an invocation, failing the test if it is not JSON.
func envelope(t *testing.T, raw string) *InvokeRequest {
	t.Helper()
	var req InvokeRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

// Envelopes as the real host sends them (double-encoded strings and numbers) and as a plain encoder
// would; both must decode to the same values.
func TestDecodeServiceBus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  string
	}{
		{"double-encoded (real host)", `{"Data":{"message":"\"{\\\"a\\\":1}\""},"Metadata":{"DeliveryCount":"4","MessageId":"\"m-1\"","SessionId":"\"s-1\"","EnqueuedTimeUtc":"\"2026-11-22T10:00:00Z\"","ApplicationProperties":{"kind":"presence"}}}`},
		{"plain", `{"Data":{"message":"{\"a\":1}"},"Metadata":{"DeliveryCount":4,"MessageId":"m-1","SessionId":"s-1","EnqueuedTimeUtc":"2026-11-22T10:00:00Z","ApplicationProperties":{"kind":"presence"}}}`},
		{"object body", `{"Data":{"message":{"a":1}},"Metadata":{"DeliveryCount":"4","MessageId":"\"m-1\"","SessionId":"s-1","EnqueuedTimeUtc":"2026-11-22T10:00:00Z","ApplicationProperties":"{\"kind\":\"presence\"}"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := envelope(t, tt.env)
			got, err := DecodeServiceBus(req, "message")
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Body) != `{"a":1}` {
				t.Errorf("Body = %q, want {\"a\":1}", got.Body)
			}
			if got.DeliveryCount != 4 || got.MessageID != "m-1" || got.SessionID != "s-1" {
				t.Errorf("got count %d id %q session %q", got.DeliveryCount, got.MessageID, got.SessionID)
			}
			if got.EnqueuedTime.IsZero() || got.EnqueuedTime.Hour() != 10 {
				t.Errorf("EnqueuedTime = %v", got.EnqueuedTime)
			}
			if got.ApplicationProperties["kind"] != "presence" {
				t.Errorf("ApplicationProperties = %v", got.ApplicationProperties)
			}
		})
	}
}

// A byte that is not UTF-8 decodes to U+FFFD whether the body came as an object or as a string, as
// encoding/json reads it, so writing the delivery back cannot change it.
func TestDecodeServiceBusBodyNotUTF8(t *testing.T) {
	t.Parallel()
	decode := func(env string) []byte {
		t.Helper()
		req := envelope(t, env)
		d, err := DecodeServiceBus(req, "message")
		if err != nil {
			t.Fatal(err)
		}
		return d.Body
	}
	want := "{\"\":\"0\uFFFD\uFFFD1\"}"
	if got := decode("{\"Data\":{\"message\":{\"\":\"0\xce\xff1\"}}}"); string(got) != want {
		t.Errorf("object body = %q, want %q", got, want)
	}
	if got := decode("{\"Data\":{\"message\":\"{\\\"\\\":\\\"0\xce\xff1\\\"}\"}}"); string(got) != want {
		t.Errorf("string body = %q, want %q", got, want)
	}
}

func TestDecodeServiceBusErrors(t *testing.T) {
	t.Parallel()
	for _, env := range []string{
		`{"Data":{},"Metadata":{}}`,
		`{"Data":{"message":"\"x\""},"Metadata":{"DeliveryCount":"\"four\""}}`,
		`{"Data":{"message":"\"x\""},"Metadata":{"MessageId":{"nested":1}}}`,
	} {
		req := envelope(t, env)
		if _, err := DecodeServiceBus(req, "message"); err == nil {
			t.Errorf("DecodeServiceBus(%s) = nil error, want one", env)
		}
	}
}

func TestDecodeHTTPRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		wantQuery string
		wantBody  string
		wantCT    string
	}{
		{"query object, header arrays", `{"Url":"http://h/api/x?validationToken=a%20b","Method":"post","Query":{"validationToken":"a b"},"Headers":{"Content-Type":["application/json"]},"Body":"{\"value\":[]}"}`, "a b", `{"value":[]}`, "application/json"},
		{"query string form (older hosts), header strings", `{"Url":"http://h/api/x","Method":"POST","Query":"?validationToken=a%2Bb%3Ac","Headers":{"Content-Type":"text/plain"},"Body":"hi"}`, "a+b:c", "hi", "text/plain"},
		{"no Query: taken from Url", `{"Url":"http://h/api/x?validationToken=%E2%9C%93","Method":"POST","Headers":{}}`, "✓", "", ""},
		{"binary body is base64", `{"Url":"http://h/","Method":"POST","Headers":{"content-type":["application/octet-stream"]},"Body":"AAEC"}`, "", "\x00\x01\x02", "application/octet-stream"},
		{"envelope as a string", `"{\"Url\":\"http://h/\",\"Method\":\"POST\",\"Body\":\"b\"}"`, "", "b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeHTTPRequest(json.RawMessage(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if q := got.Query.Get("validationToken"); q != tt.wantQuery {
				t.Errorf("validationToken = %q, want %q", q, tt.wantQuery)
			}
			if string(got.Body) != tt.wantBody {
				t.Errorf("Body = %q, want %q", got.Body, tt.wantBody)
			}
			if ct := got.Header("content-type"); ct != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantCT)
			}
			if got.Method != "POST" {
				t.Errorf("Method = %q", got.Method)
			}
		})
	}
}

func TestDecodeTimer(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-22T10:00:00Z","Next":"2026-11-22T10:10:00Z","LastUpdated":"2026-11-22T10:00:00Z"},"IsPastDue":true}}}`,
		`{"Data":{"timer":"{\"IsPastDue\":true,\"ScheduleStatus\":{\"Next\":\"2026-11-22T10:10:00Z\"}}"}}`,
	} {
		req := envelope(t, raw)
		got, err := DecodeTimer(req, "timer")
		if err != nil {
			t.Fatal(err)
		}
		if !got.IsPastDue || got.ScheduleStatus == nil || got.ScheduleStatus.Next.Minute() != 10 {
			t.Errorf("DecodeTimer = %+v", got)
		}
	}
}

func TestHTTPResponseShape(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(HTTPResponse{StatusCode: 202, Body: "x", Headers: map[string]string{"A": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"statusCode":"202","body":"x","headers":{"A":"b"}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func BenchmarkDecodeServiceBus(b *testing.B) {
	env := []byte(`{"Data":{"message":"\"{\\\"subscriptionId\\\":\\\"8d0b2b5c\\\",\\\"changeType\\\":\\\"updated\\\",\\\"resource\\\":\\\"communications/presences/abc\\\"}\""},"Metadata":{"DeliveryCount":"1","MessageId":"\"m-1\"","SessionId":"\"s-1\"","EnqueuedTimeUtc":"\"2026-11-22T10:00:00Z\"","ApplicationProperties":{"kind":"presence"},"sys":{"MethodName":"ProcessNotification"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		var req InvokeRequest
		if err := json.Unmarshal(env, &req); err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeServiceBus(&req, "message"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeHTTPResponse(b *testing.B) {
	res := InvokeResponse{Outputs: map[string]any{"res": HTTPResponse{StatusCode: 202}}, Logs: []string{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeHTTPEnvelope decodes what the host sends for a Graph validation handshake (no body), a
// 1-item and a 50-item notification POST (~170 KB body).
func BenchmarkDecodeHTTPEnvelope(b *testing.B) {
	item := `{"subscriptionId":"8d0b2b5c-1111-2222-3333-444444444444","clientState":"c2VjcmV0LWNsaWVudC1zdGF0ZS12YWx1ZS0xMjM0NTY3ODkw","changeType":"updated","resource":"communications/presences('u')","tenantId":"aaaaaaaa-0000-4000-8000-000000000001","resourceData":{"@odata.type":"#Microsoft.Graph.presence","id":"u"},"encryptedContent":{"data":"` + strings.Repeat("QUJD", 700) + `","dataKey":"` + strings.Repeat("a2V5", 86) + `","dataSignature":"c2lnbmF0dXJl","encryptionCertificateId":"notification-encryption-cert","encryptionCertificateThumbprint":"AB"}}`
	for _, items := range []int{0, 1, 50} {
		name, url := fmt.Sprintf("items=%d", items), "http://h/api/graph/notifications"
		req := map[string]any{"Method": "POST", "Query": map[string]string{},
			"Headers": map[string][]string{"Content-Type": {"application/json"}}}
		body := ""
		if items == 0 {
			name, url = "handshake", url+"?validationToken=Validation%3A%20Testing%20client"
			req["Query"] = map[string]string{"validationToken": "Validation: Testing client"}
		} else {
			body = `{"value":[` + strings.TrimSuffix(strings.Repeat(item+",", items), ",") + `]}`
			req["Body"] = body
		}
		req["Url"] = url
		raw, _ := json.Marshal(req)
		env, _ := json.Marshal(map[string]any{"Data": map[string]json.RawMessage{"req": raw}, "Metadata": map[string]any{}})
		b.Run(name, func(b *testing.B) {
			if _, ok := scanHTTPEnvelope(bytes.Clone(env), "req"); !ok {
				b.Fatal("the one-pass scanner refused the webhook's envelope")
			}
			b.SetBytes(int64(len(env)))
			b.ReportAllocs()
			buf := make([]byte, len(env)) // the body is unquoted in place: each decode gets the envelope as read
			for b.Loop() {
				copy(buf, env)
				r, err := decodeHTTPEnvelope(buf, "req")
				if err != nil || string(r.Body) != body {
					b.Fatalf("decode: %v", err)
				}
			}
		})
	}
}

// A notification body's string stops come with it; a body made of escapes, which would cost far more
// in offsets than it sends, is unquoted all the same and comes without them (jsonscan.Offsets).
func TestBodyStopsAreBounded(t *testing.T) {
	t.Parallel()
	envelope := func(body string) []byte {
		req, _ := json.Marshal(map[string]any{"Url": "http://h/api/graph/notifications", "Method": "POST",
			"Headers": map[string][]string{"Content-Type": {"application/json"}}, "Body": body})
		env, _ := json.Marshal(map[string]any{"Data": map[string]json.RawMessage{"req": req}, "Metadata": map[string]any{}})
		return env
	}
	graph := `{"value":[{"subscriptionId":"8d0b2b5c-1111-2222-3333-444444444444","clientState":"é","encryptedContent":{"data":"` +
		strings.Repeat("QUJD", 700) + `"}}]}`
	r, err := decodeHTTPEnvelope(envelope(graph), "req")
	if err != nil || string(r.Body) != graph {
		t.Fatalf("decode = %v, %q", err, r.Body)
	}
	if want := jsonscan.StopsOf(r.Body); !slices.Equal(r.BodyStops, want) {
		t.Errorf("stops %v, want %v", r.BodyStops, want)
	}
	quotes := strings.Repeat(`"`, 100_000) // 200,000 bytes of \" in the envelope
	r, err = decodeHTTPEnvelope(envelope(quotes), "req")
	if err != nil || string(r.Body) != quotes || r.BodyStops != nil {
		t.Fatalf("a body of escapes: %v, %d bytes, %d stops; want the body and no stops", err, len(r.Body), len(r.BodyStops))
	}
}

// The one-pass decoder and the tolerant fallback agree on every shape a host sends.
func TestDecodeHTTPEnvelopeShapes(t *testing.T) {
	t.Parallel()
	for _, req := range []string{
		`{"Url":"http://h/x?validationToken=a%20b","Method":"post","Query":{"validationToken":"a b"},"Headers":{"Content-Type":["text/plain"]},"Body":"hi"}`,
		`{"Url":"http://h/x","Method":"POST","Query":"?validationToken=a%20b","Headers":{"Content-Type":"text/plain"},"Body":"hi"}`,
		`{"Url":"http://h/x?validationToken=a%20b","Method":"POST","Headers":{"content-type":["text/plain"]},"Body":"hi"}`,
	} {
		env := `{"Data":{"req":` + req + `},"Metadata":{}}`
		got, err := decodeHTTPEnvelope([]byte(env), "req")
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if got.Query.Get("validationToken") != "a b" || string(got.Body) != "hi" || got.Method != "POST" || got.Header("Content-Type") != "text/plain" {
			t.Errorf("%s: got %+v", req, got)
		}
	}
	if _, err := decodeHTTPEnvelope([]byte(`{"Data":{"other":{}}}`), "req"); err == nil {
		t.Error("missing binding must fail")
	}
}

// The envelope devhost builds for the webhook (Identities included, as the host sends it) takes the
// one-pass scanner: otherwise every notification POST pays for encoding/json again.
func TestScanHTTPEnvelopeTakesHostShape(t *testing.T) {
	t.Parallel()
	env := `{"Data":{"req":{"Url":"http://h/api/graph/notifications","Method":"POST","Query":{},"Headers":{"Content-Type":["application/json"]},` +
		`"Params":{},"Identities":[],"Body":"{\"value\":[]}"}},"Metadata":{"Query":{},"Headers":{"Content-Type":["application/json"]},"sys":{"MethodName":"x","UtcNow":"2026-12-03T00:00:00Z","RandGuid":"g"}}}`
	got, ok := scanHTTPEnvelope([]byte(env), "req")
	if !ok {
		t.Fatal("scanHTTPEnvelope refused the host's shape")
	}
	if string(got.Body) != `{"value":[]}` || got.Method != "POST" || got.Header("content-type") != "application/json" {
		t.Errorf("scanHTTPEnvelope = %+v", got)
	}
}

// Query, Headers and Params null — devhost writes "Params":null for an invocation built without route
// parameters — still take the one-pass scanner, and it reads them as encoding/json does: the query from
// the Url, no headers, no parameters.
func TestScanHTTPEnvelopeTakesNullMaps(t *testing.T) {
	t.Parallel()
	env := `{"Data":{"req":{"Url":"http://h/api/graph/notifications?validationToken=a%20b","Method":"POST","Query":null,"Headers":null,` +
		`"Params":null,"Identities":[],"Body":"{\"value\":[]}"}},"Metadata":{}}`
	got, ok := scanHTTPEnvelope([]byte(env), "req")
	if !ok {
		t.Fatal("scanHTTPEnvelope refused null Query, Headers or Params")
	}
	req := envelope(t, env)
	want, err := DecodeHTTPRequest(req.Data["req"])
	if err != nil {
		t.Fatal(err)
	}
	if !sameRequest(got, want) || got.Query.Get("validationToken") != "a b" || got.Params != nil || len(got.Headers) != 0 {
		t.Errorf("scanHTTPEnvelope = %+v, tolerant decoder %+v", got, want)
	}
}

// The server encodes an HTTP output as its wire shape, not through MarshalJSON: the bytes must be the
// same, escaping included (the handshake echoes text an anonymous caller chose).
func TestHTTPResponseWireSameBytes(t *testing.T) {
	t.Parallel()
	for _, r := range []HTTPResponse{
		{StatusCode: 202},
		{StatusCode: 200, Body: "Validation: <script>&\u2028\"\\\x01é", Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "<b>": "&"}},
	} {
		want, err := json.Marshal(InvokeResponse{Outputs: map[string]any{"res": r}, Logs: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(InvokeResponse{Outputs: map[string]any{"res": r.wire()}, Logs: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("wire shape %s, MarshalJSON %s", got, want)
		}
	}
}
