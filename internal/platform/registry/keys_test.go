package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

func TestParseTenantID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   core.TenantID
		wantOK bool
	}{
		{"canonical", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", true},
		{"upper case", "6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", true},
		{"braces", "{6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f}", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", true},
		{"empty", "", "", false},
		{"injection", "' or PartitionKey ne '", "", false},
		{"guid plus injection", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f' or 'a", "", false},
		{"no dashes", "6f1b3c1e2d4a4b5c8d9e0a1b2c3d4e5f", "", false},
		{"non hex", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5g", "", false},
		{"slash", "6f1b3c1e/2d4a-4b5c-8d9e-0a1b2c3d4e5f", "", false},
	}
	for _, tc := range tests {
		got, err := core.ParseTenantID(tc.in)
		if (err == nil) != tc.wantOK || got != tc.want {
			t.Errorf("%s: core.ParseTenantID(%q) = %q, %v; want %q ok=%v", tc.name, tc.in, got, err, tc.want, tc.wantOK)
		}
		if err != nil && !errors.Is(err, tables.ErrInvalidKey) {
			t.Errorf("%s: error %v is not tables.ErrInvalidKey", tc.name, err)
		}
	}
}

// hostileKeys are ids Table Storage cannot hold or that we refuse, each with the reason we expect.
var hostileKeys = []struct {
	name   string
	key    string
	reason string
}{
	{"quote injection", "' or PartitionKey ne '", "single quote"},
	{"slash", "a/b", `'/'`},
	{"backslash", `a\b`, `'\\'`},
	{"hash", "a#b", `'#'`},
	{"question mark", "a?b", `'?'`},
	{"NUL", "a\x00b", "control character"},
	{"newline", "a\nb", "control character"},
	{"DEL", "a\x7fb", "control character"},
	{"C1 control", "a\u0085b", "control character"},
	{"empty", "", "empty"},
	{"too long", strings.Repeat("k", 1025), "longer than 1024"},
	{"invalid UTF-8", "a\xffb", "UTF-8"},
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range hostileKeys {
		err := tables.ValidateKey("row key", tc.key)
		if !errors.Is(err, tables.ErrInvalidKey) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: tables.ValidateKey err = %v, want tables.ErrInvalidKey mentioning %q", tc.name, err, tc.reason)
		}
		if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: error echoes the hostile value", tc.name)
		}
	}
	for _, ok := range []string{"0b6e9f4a-1111-4222-8333-944455556666", "contacts|QUFB", "a b", "ä", strings.Repeat("k", 1024)} {
		if err := tables.ValidateKey("row key", ok); err != nil {
			t.Errorf("tables.ValidateKey(%q) = %v, want nil", ok, err)
		}
	}
}
