package core_test

import (
	"errors"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
)

func TestParseIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		customer       bool // ParseCustomerTenant accepts it too
	}{
		{"canonical", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", true},
		{"upper case and braces", "{6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F}", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f", true},
		{"the reserved nil GUID", "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000", false},
		{"not hex", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5g", "", false},
		{"misplaced dash", "6f1b3c1e2-d4a-4b5c-8d9e-0a1b2c3d4e5f", "", false},
		{"empty", "", "", false},
		{"a quote for a filter", "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5'", "", false},
	}
	for _, tt := range tests {
		got, err := core.ParseTenantID(tt.in)
		if string(got) != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("%s: ParseTenantID = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, core.ErrInvalidID) {
			t.Errorf("%s: error %v is not ErrInvalidID", tt.name, err)
		}
		if obj, err := core.ParseObjectID(tt.in); obj != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("%s: ParseObjectID = %q, %v; want %q", tt.name, obj, err, tt.want)
		}
		c, err := core.ParseCustomerTenant(tt.in)
		if (err == nil) != tt.customer || (tt.customer && string(c) != tt.want) {
			t.Errorf("%s: ParseCustomerTenant = %q, %v; want accepted %v", tt.name, c, err, tt.customer)
		}
		if err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: ParseCustomerTenant error is not Invalid: %v", tt.name, err)
		}
	}
	if err := core.TenantID("6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F").Check(); err == nil {
		t.Error("Check accepted a converted, non-canonical tenant id")
	}
}
