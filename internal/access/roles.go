package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// CustomRole is a role a tenant admin defined for their own tenant (table roles, in the tenant's
// partition): a name and a set of the tenant permissions, e.g. a "Licensing" role that may only read
// the tenant and assign licenses.
type CustomRole struct {
	Name        string `table:"key"`
	Permissions string // comma-separated Permission values, sorted
	Description string // what the role is for, as the admin wrote it (no personal data expected)
	UpdatedAt   time.Time
	UpdatedBy   string `table:"personal"` // object id of the admin who last defined it
}

func (c *CustomRole) RowKey() (string, error)   { return tables.SimpleKey("role name", c.Name) }
func (c *CustomRole) SetRowKey(rk string) error { c.Name = rk; return nil }

// Role is the custom role as the decision function uses it.
func (c CustomRole) Role() Role {
	var perms []Permission
	for _, p := range strings.Split(c.Permissions, ",") {
		if p != "" {
			perms = append(perms, Permission(p))
		}
	}
	return Role{Name: c.Name, Permissions: perms, Custom: true, Description: c.Description}
}

// TenantPermissions are the permissions a custom role may hold: those of a tenant admin. The staff
// permissions (tenants.list, tenant.lifecycle, licenses.purchase, access.approve…) never go into a
// tenant's role.
var TenantPermissions = RoleTenantAdmin.Permissions

// maxCustomRoles bounds a tenant's custom roles (each check of a custom grant reads one row; the list
// is shown whole).
const maxCustomRoles = 50

// maxRoleDescription bounds a custom role's description.
const maxRoleDescription = 200

var roleName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{2,39}$`)

// errNoRole: a grant names a role that no longer exists (a custom role deleted with grants left).
var errNoRole = errors.New("no such role")

// role resolves a grant's role: a built-in one, or one of the tenant's custom roles.
func (a *Authorizer) role(ctx context.Context, tenant core.TenantID, name string) (Role, error) {
	if r, ok := RoleNamed(name); ok {
		return r, nil
	}
	if !roleName.MatchString(name) {
		return Role{}, errNoRole
	}
	c, err := a.data.Roles.Get(ctx, tenant, name)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return Role{}, errNoRole
	case err != nil:
		return Role{}, fmt.Errorf("read role: %w", err)
	}
	return c.Role(), nil
}

// Roles lists the roles that can be granted in tenant: the built-in tenant roles, then its custom ones.
func (a *Authorizer) Roles(ctx context.Context, by Principal, tenant core.TenantID) ([]Role, error) {
	if err := a.Allow(ctx, by, AccessRead, TenantResource(tenant)); err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(slices.Clone(BuiltinRoles), func(r Role) bool { return r.Name == RoleOperatorSupport.Name })
	for c, err := range a.data.Roles.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		out = append(out, c.Role())
	}
	return out, nil
}

// DefineRole creates or replaces a custom role. The definer holds AccessGrant and every permission of
// the role — the old definition's and the new one's — so nobody widens or narrows a role beyond what
// they hold themselves.
func (a *Authorizer) DefineRole(ctx context.Context, by Principal, tenant core.TenantID, name string, perms []Permission, description string) (Role, error) {
	r, err := a.defineRole(ctx, by, tenant, name, perms, description)
	return r, a.recordRole(ctx, tenant, by, "access.role.define", name, err)
}

func (a *Authorizer) defineRole(ctx context.Context, by Principal, tenant core.TenantID, name string, perms []Permission, description string) (Role, error) {
	if err := a.Allow(ctx, by, AccessGrant, TenantResource(tenant)); err != nil {
		return Role{}, err
	}
	if err := validRoleName(name); err != nil {
		return Role{}, err
	}
	description = strings.TrimSpace(description)
	if len(description) > maxRoleDescription {
		return Role{}, apperr.New(apperr.Invalid, fmt.Sprintf("description is at most %d characters", maxRoleDescription), nil)
	}
	if len(perms) == 0 {
		return Role{}, apperr.New(apperr.Invalid, "a role needs at least one permission", nil)
	}
	set := make([]string, 0, len(perms))
	for _, p := range perms {
		if !slices.Contains(TenantPermissions, p) {
			return Role{}, apperr.New(apperr.Invalid, fmt.Sprintf("%q is not a tenant permission", p), nil)
		}
		set = append(set, string(p))
	}
	slices.Sort(set)
	set = slices.Compact(set)
	old, err := a.data.Roles.Get(ctx, tenant, name)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		n, err := a.countRoles(ctx, tenant)
		if err != nil {
			return Role{}, err
		}
		if n >= maxCustomRoles {
			return Role{}, apperr.New(apperr.Conflict, fmt.Sprintf("a tenant has at most %d custom roles", maxCustomRoles), nil)
		}
	case err != nil:
		return Role{}, fmt.Errorf("read role: %w", err)
	default:
		if err := a.holdsAll(ctx, by, tenant, old.Role().Permissions); err != nil {
			return Role{}, err
		}
	}
	c := CustomRole{Name: name, Permissions: strings.Join(set, ","), Description: description,
		UpdatedAt: a.now().UTC(), UpdatedBy: by.ObjectID}
	if err := a.holdsAll(ctx, by, tenant, c.Role().Permissions); err != nil {
		return Role{}, err
	}
	if _, err := a.data.Roles.Upsert(ctx, tenant, c); err != nil {
		return Role{}, fmt.Errorf("store role: %w", err)
	}
	return c.Role(), nil
}

// DeleteRole removes a custom role that no grant uses (revoke them first: a grant should not end as a
// side effect the tenant's grant list does not show).
func (a *Authorizer) DeleteRole(ctx context.Context, by Principal, tenant core.TenantID, name string) error {
	return a.recordRole(ctx, tenant, by, "access.role.delete", name, a.deleteRole(ctx, by, tenant, name))
}

func (a *Authorizer) deleteRole(ctx context.Context, by Principal, tenant core.TenantID, name string) error {
	if err := a.Allow(ctx, by, AccessGrant, TenantResource(tenant)); err != nil {
		return err
	}
	if !roleName.MatchString(name) {
		return apperr.New(apperr.NotFound, "no such custom role", nil)
	}
	old, err := a.data.Roles.Get(ctx, tenant, name)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return apperr.New(apperr.NotFound, "no such custom role", nil)
	case err != nil:
		return fmt.Errorf("read role: %w", err)
	}
	if err := a.holdsAll(ctx, by, tenant, old.Role().Permissions); err != nil {
		return err
	}
	for g, err := range a.data.Authorisations.All(ctx, tenant, nil) {
		if err != nil {
			return fmt.Errorf("list grants: %w", err)
		}
		if g.Role == name {
			return apperr.New(apperr.Conflict, "the role is still granted; revoke its grants first", nil)
		}
	}
	if err := a.data.Roles.Delete(ctx, tenant, name); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return fmt.Errorf("delete role: %w", err)
	}
	return nil
}

func validRoleName(name string) error {
	if !roleName.MatchString(name) {
		return apperr.New(apperr.Invalid, "a role name is 3 to 40 letters, digits or hyphens, starting with a letter", nil)
	}
	for _, r := range BuiltinRoles {
		if strings.EqualFold(r.Name, name) {
			return apperr.New(apperr.Invalid, "that name is a built-in role", nil)
		}
	}
	for _, n := range staffRoleNames {
		if strings.EqualFold(n, name) {
			return apperr.New(apperr.Invalid, "that name is a built-in role", nil)
		}
	}
	return nil
}

// holdsAll answers Forbidden unless by holds every permission in the whole tenant.
func (a *Authorizer) holdsAll(ctx context.Context, by Principal, tenant core.TenantID, perms []Permission) error {
	for _, p := range perms {
		if err := a.Allow(ctx, by, p, TenantResource(tenant)); err != nil {
			return apperr.New(apperr.Forbidden, "a role can only be defined by someone who holds all of it", nil)
		}
	}
	return nil
}

func (a *Authorizer) countRoles(ctx context.Context, tenant core.TenantID) (int, error) {
	n := 0
	for _, err := range a.data.Roles.All(ctx, tenant, nil) {
		if err != nil {
			return 0, fmt.Errorf("list roles: %w", err)
		}
		n++
	}
	return n, nil
}

// recordRole writes a change to the tenant's roles into its authorisation log.
func (a *Authorizer) recordRole(ctx context.Context, tenant core.TenantID, by Principal, action, name string, err error) error {
	target := ""
	if roleName.MatchString(name) {
		target = name
	}
	_, invocation := core.InvocationOf(ctx)
	return a.log.Record(ctx, tenant, by.Actor(invocation), action, "role", target, err)
}
