package secrets

import (
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
)

func TestNames(t *testing.T) {
	t.Parallel()
	tenant, err := core.ParseTenantID("6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F")
	if err != nil {
		t.Fatal(err)
	}
	su, err := ServiceUserTokenName(tenant, "0B6E9F4A-1111-4222-8333-944455556666")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"data key", TenantDataKeyName(tenant), "t-6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f-datakey"},
		{"pbx", PBXCredentialName(tenant), "t-6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f-pbx"},
		{"crm", CRMCredentialName(tenant), "t-6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f-crm"},
		{"service user", su, "t-6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f-su-0b6e9f4a-1111-4222-8333-944455556666"},
		{"notification cert", NotificationCertName, "notification-encryption-cert"},
		{"app cert", AppClientCertName, "app-client-cert"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
		if err := ValidName(tc.got); err != nil {
			t.Errorf("%s: %q is not a valid Key Vault name: %v", tc.name, tc.got, err)
		}
	}
	for _, bad := range []string{"", "not-a-guid", "0b6e9f4a-1111-4222-8333-94445555666/", "' or 1=1"} {
		if _, err := ServiceUserTokenName(tenant, bad); err == nil {
			t.Errorf("ServiceUserTokenName(%q) accepted", bad)
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		wantOK bool
	}{
		{"simple", "abc-DEF-123", true},
		{"max length", strings.Repeat("a", 127), true},
		{"too long", strings.Repeat("a", 128), false},
		{"empty", "", false},
		{"underscore", "a_b", false},
		{"dot", "a.b", false},
		{"slash", "a/b", false},
		{"unicode", "ä", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.in) == nil; got != tc.wantOK {
			t.Errorf("%s: ValidName(%q) ok = %v, want %v", tc.name, tc.in, got, tc.wantOK)
		}
	}
}
