package tables

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// unquote reads back the single OData string literal a filter "X eq '...'" ends with, undoing the
// doubling; ok is false if the literal ends early (the value escaped its quotes).
func unquote(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] == '\'' {
			if i+1 >= len(body) || body[i+1] != '\'' {
				return "", false
			}
			i++
		}
		b.WriteByte(body[i])
	}
	return b.String(), true
}

func FuzzFilterQuoting(f *testing.F) {
	for _, s := range []string{"", "'", "''", "' or PartitionKey ne '", "a'b'c", "x' and RowKey gt '"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const prefix = "PartitionKey eq "
		got := Filter(prefix+"?", s)
		back, ok := unquote(strings.TrimPrefix(got, prefix))
		if !ok || back != s {
			t.Fatalf("value %q escaped its literal: %q", s, got)
		}
	})
}

func FuzzKeys(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "' or 1", "AAMkAGI2/+=", "\x00", "ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateKey("k", s) == nil {
			if s == "" || len(s) > maxKeyBytes || !utf8.ValidString(s) || strings.ContainsAny(s, "/\\#?'") {
				t.Fatalf("ValidateKey accepted %q", s)
			}
			for _, r := range s {
				if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
					t.Fatalf("ValidateKey accepted control character in %q", s)
				}
			}
		}
		// Foreign ids always encode to key-safe parts and decode back exactly.
		enc, err := EncodeForeignID("id", s)
		if err != nil {
			return
		}
		if err := ValidateKeyPart("id", enc); err != nil {
			t.Fatalf("encoded id %q not key-safe: %v", enc, err)
		}
		if dec, err := DecodeForeignID("id", enc); err != nil || dec != s {
			t.Fatalf("round trip of %q = %q, %v", s, dec, err)
		}
	})
}

func FuzzDecodeEntity(f *testing.F) {
	f.Add([]byte(`{"PartitionKey":"p","RowKey":"contacts|QUFB","At":"2026-11-22T10:00:00Z","At@odata.type":"Edm.DateTime"}`))
	f.Add([]byte(`{"PartitionKey":"p","RowKey":"u1|QUFB","Count":"12","Count@odata.type":"Edm.Int64","At":5}`))
	f.Add([]byte(`{"PartitionKey":"p","RowKey":"u1|QUFB","Small":"99999999999","Flag":"yes","Blob":"!!"}`))
	f.Add([]byte(`{}`))
	s := mustSchema(reflect.TypeFor[testRecord]())
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Any stored bytes must decode or fail cleanly, never panic.
		_, rk, props, err := parseEntity(raw)
		if err != nil {
			return
		}
		var e testRecord
		if e.SetRowKey(rk) != nil {
			return
		}
		s.decode(&decoder{ctx: context.Background(), props: props}, reflect.ValueOf(&e).Elem())
	})
}
