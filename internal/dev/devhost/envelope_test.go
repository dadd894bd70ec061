package devhost

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodingJSON is how encoding/json writes s without HTML escaping, the reference for appendJSONString.
func encodingJSON(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `{"value":[{"a":"b\\c"}]}`, "<&>", "tab\tnl\ncr\rbs\bff\f\x00\x1f\x7f",
		"ünïcödé ✓ 😀", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x82", "\xed\xa0\x80 surrogate"} {
		if got, want := string(appendJSONString(nil, []byte(s))), encodingJSON(t, s); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
		if got, want := string(appendJSONString(nil, s)), encodingJSON(t, s); got != want {
			t.Errorf("appendJSONString(string %q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte(`{"value":[{"clientState":"x\u2028"}]}`))
	f.Add([]byte("\xff\x00\"\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := string(appendJSONString(nil, b)), encodingJSON(t, string(b)); got != want {
			t.Fatalf("appendJSONString(%q) = %s, want %s", b, got, want)
		}
	})
}
