package app

import (
	"slices"
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/portal"
)

// The portal names permissions by their strings (it may not import access): each must be one that some
// built-in role holds, or a page would be offered to nobody.
func TestPortalPermissionsAreAccessPermissions(t *testing.T) {
	roles := append(slices.Clone(access.BuiltinRoles), access.RoleOperator, access.RoleSecurityOfficer, access.RoleAutomation)
	held := func(p access.Permission) bool {
		return slices.ContainsFunc(roles, func(r access.Role) bool { return r.Allows(p) })
	}
	for _, p := range portal.Permissions {
		if !held(access.Permission(p)) {
			t.Errorf("portal permission %q is held by no role", p)
		}
	}
	if held("no.such.permission") {
		t.Fatal("the check itself admits anything")
	}
}
