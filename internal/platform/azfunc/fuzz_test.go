package azfunc

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// The envelope decoders read what the host hands over, which carries what anyone on the internet
// POSTed; they must never panic, whatever the bytes.

// FuzzDecodeHTTPEnvelope: the one-pass decoder of the webhook's hot path and the tolerant decoder must
// agree wherever the one-pass decoder accepts the envelope — it exists only to be faster.
func FuzzDecodeHTTPEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"Data":{"req":{"Url":"http://127.0.0.1:7071/api/graph/notifications?validationToken=a%20b","Method":"POST","Query":{"validationToken":"a b"},"Headers":{"Content-Type":["text/plain"]},"Params":{},"Body":"hello"}},"Metadata":{}}`,
		`{"Data":{"req":{"Url":"http://h/api/x?a=1&a=2","Method":"get","Headers":{"X":"one"},"Body":null}}}`,
		`{"Data":{"req":{"Url":"http://h/api/x","Method":"POST","Query":"?a=1","Headers":{"Content-Type":["application/octet-stream"]},"Body":"aGk="}}}`,
		`{"Data":{"req":"{\"Url\":\"http://h/\",\"Method\":\"POST\",\"Body\":{\"a\":1}}"}}`,
		`{"Data":{"req":{"Url":"http://h/","Query":{},"Headers":null,"Params":{"tenantId":"t"},"Body":"{\"value\":[]}"}}}`,
		`{"Data":{}}`, `null`, `{"Data":{"req":{"Headers":{"A":[null,"b"]}}}}`,
		`{"Data":{"other":[1,-2.5e+3,true,false,null,{"a":[]}],"req":{"Url":"http://h/?a=1","Method":"post","Headers":{"X":["a\u00e9\n\"b"]},"Body":"{\"v\":\"\u002B\/\\\"}"}},"Metadata":{"sys":{"n":0.5}}}`,
		`{"Data":{"req":{"Url":"u","Body":"a"},"req":{"Url":"v"}}}`, `{"Data":{"req":{"Url":"u","Identities":[{"a":null}],"Params":{"p":"q"},"Body":""}}}`,
		`{"Data":{"req":{"Url":"u","url":"v"}}}`, `{"data":{"req":{}},"Data":{"req":{"Body":"x"}}}`,
		`{"Data":{"req":{"Url":"http://h/?a=1","Query":null,"Headers":null,"Params":null,"Body":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		// Each decoder gets a copy: the scanner unquotes the body over the envelope's own bytes.
		got, err := decodeHTTPEnvelope(bytes.Clone(env), "req")
		// The scanner, tried first, answers alone for the envelopes it accepts: the tolerant decoder must
		// read each of them and agree. Where it refuses, it has changed nothing: the fallback reads the
		// envelope as it came.
		scanEnv := bytes.Clone(env)
		scanned, ok := scanHTTPEnvelope(scanEnv, "req")
		if !ok && !bytes.Equal(scanEnv, env) {
			t.Fatalf("the scanner refused the envelope and changed it: %q", scanEnv)
		}
		if ok {
			var req InvokeRequest
			if err := json.Unmarshal(env, &req); err != nil {
				t.Fatalf("the scanner accepted an envelope the tolerant decoder cannot read: %v", err)
			}
			want, err := DecodeHTTPRequest(req.Data["req"])
			if err != nil {
				t.Fatalf("the scanner decoded what the tolerant decoder refuses (%v): %+v", err, scanned)
			}
			if !sameRequest(scanned, want) {
				t.Fatalf("decoders disagree:\nscanner  %+v\ntolerant %+v", scanned, want)
			}
			// Its stops are exactly the bytes of the Body a string scan looks at.
			stops := jsonscan.StopsOf(scanned.Body)
			// (none listed is allowed: a body of more escapes than the reader keeps offsets for)
			if scanned.BodyStops != nil && !slices.Equal(scanned.BodyStops, stops) {
				t.Fatalf("Body %q: stops %v, want %v", scanned.Body, scanned.BodyStops, stops)
			}
		}
		var fast fastHTTPEnvelope
		if json.Unmarshal(env, &fast) != nil {
			return // the tolerant decoder alone decided: no panic is the property
		}
		r, ok := fast.Data["req"]
		if !ok || isBinaryContent(firstHeader(r.Headers, "Content-Type")) {
			return
		}
		if err != nil {
			t.Fatalf("the one-pass shape was refused: %v", err)
		}
		var req InvokeRequest
		if err := json.Unmarshal(env, &req); err != nil {
			t.Fatalf("one-pass decoded an envelope the tolerant decoder cannot read: %v", err)
		}
		want, err := DecodeHTTPRequest(req.Data["req"])
		if err != nil {
			t.Fatalf("one-pass decoded what the tolerant decoder refuses (%v): %+v", err, got)
		}
		if !sameRequest(got, want) {
			t.Fatalf("decoders disagree:\none-pass %+v\ntolerant %+v", got, want)
		}
	})
}

func sameRequest(a, b *HTTPRequest) bool {
	eqHeaders := maps.EqualFunc(a.Headers, b.Headers, func(x, y []string) bool { return slices.Equal(x, y) })
	eqQuery := maps.EqualFunc(a.Query, b.Query, func(x, y []string) bool { return slices.Equal(x, y) })
	return a.URL == b.URL && a.Method == b.Method && maps.Equal(a.Params, b.Params) && eqHeaders && eqQuery &&
		string(a.Body) == string(b.Body)
}

// FuzzDecodeServiceBus: what decodes is stable: the delivery written back as the host writes it decodes
// to the same delivery (body, ids, properties), so redelivery and replay cannot change a message.
func FuzzDecodeServiceBus(f *testing.F) {
	for _, s := range []string{
		`{"Data":{"message":"\"{\\\"a\\\":1}\""},"Metadata":{"DeliveryCount":"4","MessageId":"\"m-1\"","SessionId":"\"s-1\"","EnqueuedTimeUtc":"\"2026-11-22T10:00:00Z\"","ApplicationProperties":{"kind":"presence"}}}`,
		`{"Data":{"message":{"a":1}},"Metadata":{"DeliveryCount":4,"MessageId":"m-1","ApplicationProperties":"{\"kind\":\"presence\",\"n\":1.5}"}}`,
		`{"Data":{"message":"plain text"},"Metadata":{"DeliveryCount":"x"}}`,
		`{"Data":{"message":"\"\""},"Metadata":{"ContentType":null}}`,
		"{\"Data\":{\"message\":{\"\":\"0\xce\"}}}", // an object body that is not UTF-8 (found by the fuzzer)
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		var req InvokeRequest
		if json.Unmarshal(env, &req) != nil {
			return
		}
		d, err := DecodeServiceBus(&req, "message")
		if err != nil {
			return
		}
		props := map[string]any{}
		for k, v := range d.ApplicationProperties {
			props[k] = v
		}
		// Written back as the real host writes it: a string body twice encoded. (Once encoded is
		// ambiguous for a body that is itself a JSON string literal, such as `""`; the host never sends
		// that form, and our bodies are JSON objects.)
		once, _ := json.Marshal(string(d.Body))
		body, _ := json.Marshal(string(once))
		meta := map[string]any{"MessageId": d.MessageID, "SessionId": d.SessionID, "ContentType": d.ContentType,
			"Subject": d.Subject, "DeliveryCount": d.DeliveryCount, "ApplicationProperties": props}
		again := InvokeRequest{Data: map[string]json.RawMessage{"message": body}, Metadata: map[string]json.RawMessage{}}
		for k, v := range meta {
			again.Metadata[k], _ = json.Marshal(v)
		}
		d2, err := DecodeServiceBus(&again, "message")
		if err != nil {
			t.Fatalf("a decoded delivery does not decode again: %v", err)
		}
		if string(d2.Body) != string(d.Body) || d2.MessageID != d.MessageID || d2.SessionID != d.SessionID ||
			d2.DeliveryCount != d.DeliveryCount || !reflect.DeepEqual(d2.ApplicationProperties, d.ApplicationProperties) && len(d.ApplicationProperties) > 0 {
			t.Fatalf("round trip changed the delivery:\n%+v\n%+v", d, d2)
		}
	})
}

// FuzzDecodeTimer: any Data value either decodes or is refused, never a panic.
func FuzzDecodeTimer(f *testing.F) {
	for _, s := range []string{
		`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-22T10:00:00+00:00","Next":"2026-11-22T11:00:00+00:00","LastUpdated":"2026-11-22T10:00:00+00:00"},"IsPastDue":false}},"Metadata":{}}`,
		`{"Data":{"timer":"{\"IsPastDue\":true}"}}`, `{"Data":{"timer":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		var req InvokeRequest
		if json.Unmarshal(env, &req) != nil {
			return
		}
		_, _ = DecodeTimer(&req, "timer")
	})
}
