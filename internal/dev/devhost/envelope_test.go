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

// BenchmarkAppendJSONString escapes a body shaped as a 50-item rich notification POST: short JSON
// members (every quote escaped) and a few kB of base64 per item.
func BenchmarkAppendJSONString(b *testing.B) {
	data := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3+/=="), 80)
	var body []byte
	body = append(body, `{"value":[`...)
	for i := range 50 {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"subscriptionId":"5b1a4b4c-0000-4000-8000-000000000001","changeType":"updated","clientState":"s3cr3t","resource":"communications/presences('u1')","resourceData":{"@odata.type":"#Microsoft.Graph.presence","@odata.id":"communications/presences('u1')","id":"u1"},"encryptedContent":{"data":"`...)
		body = append(body, data...)
		body = append(body, `","dataSignature":"c2lnbmF0dXJl","dataKey":"a2V5","encryptionCertificateId":"cert","encryptionCertificateThumbprint":"ABCDEF"},"tenantId":"aaaaaaaa-0000-4000-8000-000000000001"}`...)
	}
	body = append(body, `]}`...)
	b.SetBytes(int64(len(body)))
	dst := make([]byte, 0, 2*len(body))
	for b.Loop() {
		dst = appendJSONString(dst[:0], body)
	}
}
