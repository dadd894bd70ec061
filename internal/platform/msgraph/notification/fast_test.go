package notification

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/jsonscan"
)

// FuzzFastParse is differential: whenever the one-pass decoder accepts a body, encoding/json must
// read it the same way, and every raw item must be the decoded item without its clientState.
func FuzzFastParse(f *testing.F) {
	for _, c := range sampleCases() {
		f.Add(readSample(f, c.name))
		f.Add(sampleBody(f, c))
	}
	for _, s := range []string{`{"value":[]}`, `{"value":[{}]}`, `{"value":[{"clientState":"x"}]}`,
		`{"value":[{"id":"a","clientState":"x"}]}`, `{ "value" : [ { "clientState" : "x" , "id":"\u00e9\n"} ] , "validationTokens":["t"] }`,
		`{"value":[{"clientState":"x","clientState":"y"}]}`, `{"value":[{"id":"a"},]}`, `{"value":[],"value":[]}`,
		`{"value":[{"clientState":null,"resourceData":null,"id":"a"}],"validationTokens":null}`, `{"value":[{"foo":null}]}`} {
		f.Add([]byte(s))
	}
	f.Add(benchBody(3))
	f.Fuzz(func(t *testing.T, body []byte) {
		// Where the one-pass reader decides about a limit, it decides as memberArrayLongerThan does.
		const limit = 2
		switch _, _, res := fastParse(body, nil, limit); {
		case res == fastTooMany && !memberArrayLongerThan(body, limit):
			t.Fatalf("fastParse found more than %d elements, memberArrayLongerThan does not", limit)
		case res == fastOK && memberArrayLongerThan(body, limit):
			t.Fatalf("fastParse let more than %d elements through", limit)
		}
		fast, raws, res := fastParse(body, nil, 0)
		// With the body's stops (as azfunc finds them), the same answer.
		fast2, raws2, res2 := fastParse(body, jsonscan.StopsOf(body), 0)
		if res2 != res || !reflect.DeepEqual(fast2, fast) || !reflect.DeepEqual(raws2, raws) {
			t.Fatalf("with stops: %v %#v\nwithout: %v %#v", res2, fast2, res, fast)
		}
		if res != fastOK {
			return
		}
		want, err := parseTolerant(body)
		if err != nil {
			t.Fatalf("fastParse accepted a body encoding/json refuses: %v", err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("fastParse = %#v\nencoding/json = %#v", fast, want)
		}
		if len(raws) != len(want.Value) {
			t.Fatalf("%d raw items for %d items", len(raws), len(want.Value))
		}
		var shared []byte
		for i, r := range raws {
			raw := r.Bytes()
			shared = r.AppendTo(shared)
			if !bytes.HasSuffix(shared, raw) {
				t.Fatalf("AppendTo appended %q, Bytes is %q", shared, raw)
			}
			got, err := parseTolerant(append(append([]byte(`{"value":[`), raw...), "]}"...))
			if err != nil {
				t.Fatalf("raw item %d %q does not parse: %v", i, raw, err)
			}
			n := want.Value[i]
			n.ClientState = ""
			if len(got.Value) != 1 || !reflect.DeepEqual(got.Value[0], n) {
				t.Fatalf("raw item %d %q = %#v, want %#v", i, raw, got.Value, n)
			}
		}
	})
}

// TestFastParseTakesGraphBodies: the samples Graph documents take the one-pass path (when they do
// not, the webhook is correct but pays for the slow path on every POST).
func TestFastParseTakesGraphBodies(t *testing.T) {
	t.Parallel()
	if _, _, res := fastParse(benchBody(50), nil, 0); res != fastOK {
		t.Error("fastParse refused the benchmark body")
	}
}

// BenchmarkParseScanned is BenchmarkParseRaw with the body's stops known, as the webhook has them from
// the envelope reader.
func BenchmarkParseScanned(b *testing.B) {
	body := benchBody(50)
	stops := jsonscan.StopsOf(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseScannedAtMost(body, stops, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRaw(b *testing.B) {
	body := benchBody(50)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRawAtMost(body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
