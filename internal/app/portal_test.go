package app

import (
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/portal"
)

// The portal names permissions by their strings (it may not import access): each must be one access
// knows, or a page would be offered to nobody — a tenant admin holds every one of them.
func TestPortalPermissionsAreAccessPermissions(t *testing.T) {
	for _, p := range portal.Permissions {
		if !access.RoleTenantAdmin.Allows(access.Permission(p)) {
			t.Errorf("portal permission %q is not one a tenant admin holds", p)
		}
	}
	if access.RoleTenantAdmin.Allows("no.such.permission") {
		t.Fatal("the check itself admits anything")
	}
}
