package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Permission is one thing a principal may do to a resource.
type Permission string

// The permissions. Tenant-scoped ones act inside one tenant; TenantsList and AccessApprove act across
// tenants and only operator-tenant principals ever hold them.
const (
	TenantsList       Permission = "tenants.list"       // list tenants and their states (no data inside)
	TenantCreate      Permission = "tenant.create"      // start onboarding
	TenantRead        Permission = "tenant.read"        // the tenant's state, licenses and status
	TenantLifecycle   Permission = "tenant.lifecycle"   // suspend, cancel, reactivate
	LicensesPurchase  Permission = "licenses.purchase"  // how many licenses the tenant bought (billing)
	LicensesWrite     Permission = "licenses.write"     // assign and unassign users' licenses
	ConnectorRead     Permission = "connector.read"     // the PBX connector (no secret), extensions, mapping
	ConnectorWrite    Permission = "connector.write"    // set, test, delete the connector and the mapping
	ServiceUsersWrite Permission = "serviceusers.write" // connect delegated service users
	PrivacyExport     Permission = "privacy.export"
	PrivacyErase      Permission = "privacy.erase"
	PrivacyRestrict   Permission = "privacy.restrict"
	PrivacyRectify    Permission = "privacy.rectify"
	AuditRead         Permission = "audit.read"
	AccessRead        Permission = "access.read"    // the tenant's grants and its authorisation log
	AccessGrant       Permission = "access.grant"   // grant and revoke roles inside the tenant
	AccessApprove     Permission = "access.approve" // approve an operator's time-bound access (security officer)
	AccessAsk         Permission = "access.request" // ask for time-bound access to a tenant (operator)
	IncidentsWrite    Permission = "incidents.write"
	// RoomsRead is the Room Finder's: rooms and their availability (times only, no booking contents).
	// Every signed-in user of the tenant holds it in their own tenant, from their token alone.
	RoomsRead  Permission = "rooms.read"
	RoomsWrite Permission = "rooms.write" // choose which room lists the Room Finder serves
)

// Role is a named set of permissions.
type Role struct {
	Name        string
	Permissions []Permission
	Custom      bool   // defined by the tenant's admins (CustomRole), not built in
	Description string // custom roles only
}

// Allows reports whether the role includes perm.
func (r Role) Allows(perm Permission) bool { return slices.Contains(r.Permissions, perm) }

// The built-in roles. Tenant admins (the ConnectHub.TenantAdmin app role or Global Administrators of
// their tenant) hold TenantAdmin in their own tenant from their token; the other tenant roles are
// granted as authorisations. Operator-tenant principals hold Operator, SecurityOfficer or Automation
// across tenants from their token, and OperatorSupport inside one tenant only while a time-bound grant
// lasts.
var (
	RoleTenantAdmin = Role{Name: "TenantAdmin", Permissions: []Permission{TenantRead, LicensesWrite, ConnectorRead,
		ConnectorWrite, ServiceUsersWrite, PrivacyExport, PrivacyErase, PrivacyRestrict, PrivacyRectify, AuditRead, AccessRead, AccessGrant,
		RoomsRead, RoomsWrite}}
	RoleHelpdesk        = Role{Name: "Helpdesk", Permissions: []Permission{TenantRead, ConnectorRead}}
	RolePrivacyOfficer  = Role{Name: "PrivacyOfficer", Permissions: []Permission{TenantRead, PrivacyExport, PrivacyErase, PrivacyRestrict, PrivacyRectify, AuditRead}}
	RoleOperatorSupport = Role{Name: "OperatorSupport", Permissions: []Permission{TenantRead, ConnectorRead, AuditRead}}
	RoleOperator        = Role{Name: "Operator", Permissions: []Permission{TenantsList, AccessAsk}}
	RoleSecurityOfficer = Role{Name: "SecurityOfficer", Permissions: []Permission{TenantsList, AccessRead, AccessApprove, IncidentsWrite}}
	RoleAutomation      = Role{Name: "Automation", Permissions: []Permission{TenantsList, TenantCreate, TenantRead, TenantLifecycle, LicensesPurchase}}
)

// BuiltinRoles are the roles that can be granted by name.
var BuiltinRoles = []Role{RoleTenantAdmin, RoleHelpdesk, RolePrivacyOfficer, RoleOperatorSupport}

// staffRoleNames are the roles only tokens of the operator tenant carry; no custom role may take
// their names, so a grant list never shows a tenant's role that reads like a staff one.
var staffRoleNames = []string{RoleOperator.Name, RoleSecurityOfficer.Name, RoleAutomation.Name}

// RoleNamed returns a grantable built-in role.
func RoleNamed(name string) (Role, bool) {
	i := slices.IndexFunc(BuiltinRoles, func(r Role) bool { return r.Name == name })
	if i < 0 {
		return Role{}, false
	}
	return BuiltinRoles[i], true
}

// Resource is what a permission is exercised on: the whole service (no tenant: the tenant list,
// onboarding), a tenant, or a part of one ("connector", "users/<oid>").
type Resource struct {
	Tenant core.TenantID
	Path   string
}

// TenantResource is the whole of one tenant.
func TenantResource(t core.TenantID) Resource { return Resource{Tenant: t} }

func (r Resource) String() string {
	if r.Tenant == "" {
		return "service"
	}
	if r.Path == "" {
		return "tenant/" + string(r.Tenant)
	}
	return "tenant/" + string(r.Tenant) + "/" + r.Path
}

// within reports whether r is scope or a part of it (a grant on "users" covers "users/<oid>").
func (r Resource) within(scope string) bool {
	return scope == "" || r.Path == scope || strings.HasPrefix(r.Path, scope+"/")
}

// Authorizer decides. Access is denied unless a rule below allows it: zero privileges by default.
type Authorizer struct {
	data           *Data
	operatorTenant core.TenantID
	now            func() time.Time
	// log is the authorisation log: every grant, approval and revocation is an entry of the tenant's
	// audit trail (actions access.*), readable by the tenant admin and security officers.
	log Recorder
}

// Recorder appends an entry to a tenant's audit trail (audit.Trail).
type Recorder interface {
	Record(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error
}

// NewAuthorizer decides with the grants in data; principals of operatorTenant are ConnectHub's staff.
// Changes to grants are recorded through log.
func NewAuthorizer(data *Data, operatorTenant core.TenantID, log Recorder, now func() time.Time) (*Authorizer, error) {
	if data == nil || log == nil || operatorTenant.Check() != nil || operatorTenant == core.ReservedTenant {
		return nil, errors.New("access: the grants table, the audit trail and the operator tenant id are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Authorizer{data: data, operatorTenant: operatorTenant, now: now, log: log}, nil
}

// ErrDenied is the one answer to a principal that may not: it names neither the rule nor the tenant.
var ErrDenied = apperr.New(apperr.Forbidden, "not allowed", nil)

// Allow answers nil if p may exercise perm on res, ErrDenied if not, or a storage error (which the
// caller must treat as a denial: it fails closed).
func (a *Authorizer) Allow(ctx context.Context, p Principal, perm Permission, res Resource) error {
	if p.Tenant.Check() != nil || p.ObjectID == "" {
		return ErrDenied
	}
	if p.Tenant == a.operatorTenant {
		return a.allowStaff(ctx, p, perm, res)
	}
	// A customer's principal acts in its own tenant only; nothing across tenants.
	if res.Tenant != p.Tenant {
		return ErrDenied
	}
	if !p.App && (p.HasAppRole(AppRoleTenantAdmin) || p.GlobalAdmin) && RoleTenantAdmin.Allows(perm) {
		return nil
	}
	// The Room Finder add-in calls with the signed-in user's token (nested app authentication): any
	// user of the tenant may see its rooms' availability; an app-only token of the tenant may not.
	if !p.App && perm == RoomsRead {
		return nil
	}
	return a.allowGranted(ctx, p, perm, res)
}

func (a *Authorizer) allowStaff(ctx context.Context, p Principal, perm Permission, res Resource) error {
	// The token's staff roles act across tenants, and hold nothing inside one: Operator lists tenants
	// and asks for access, SecurityOfficer keeps every tenant's authorisation log, Automation runs
	// billing and provisioning.
	for _, r := range a.staffRoles(p) {
		if r.Allows(perm) {
			return nil
		}
	}
	if res.Tenant == "" || p.App || !p.HasAppRole(AppRoleOperator) {
		return ErrDenied
	}
	// Inside a tenant an operator holds only what a live, time-bound grant on that tenant gives.
	return a.allowGranted(ctx, p, perm, res)
}

// staffRoles are the cross-tenant roles an operator-tenant principal's token gives.
func (a *Authorizer) staffRoles(p Principal) []Role {
	var out []Role
	if !p.App && p.HasAppRole(AppRoleOperator) {
		out = append(out, RoleOperator)
	}
	if !p.App && p.HasAppRole(AppRoleSecurityOfficer) {
		out = append(out, RoleSecurityOfficer)
	}
	if p.App && p.HasAppRole(AppRoleAutomation) {
		out = append(out, RoleAutomation)
	}
	return out
}

// allowGranted looks for a live grant in the resource's tenant: p's object id, a role allowing perm,
// a scope covering the resource, not expired, and — for a principal of another tenant (an operator) —
// granted to that principal's tenant. A grant found expired is deleted and its expiry recorded; an
// operator's grant that allows a call records its use: the authorisation log shows when staff acted
// inside the tenant.
func (a *Authorizer) allowGranted(ctx context.Context, p Principal, perm Permission, res Resource) error {
	now := a.now()
	page, err := a.data.Authorisations.ListPrefix(ctx, res.Tenant, p.ObjectID+tables.KeySep, nil)
	if err != nil {
		return fmt.Errorf("read grants: %w", err)
	}
	staff := p.Tenant == a.operatorTenant
	for _, g := range page.Items {
		if !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt) {
			a.expire(ctx, res.Tenant, g)
			continue
		}
		if !res.within(g.Scope) || g.PrincipalTenant != string(p.Tenant) {
			continue
		}
		// A custom role is read at each check: narrowing or deleting it takes effect at once.
		role, err := a.role(ctx, res.Tenant, g.Role)
		if errors.Is(err, errNoRole) || err == nil && !role.Allows(perm) {
			continue
		}
		if err != nil {
			return err
		}
		if staff {
			if err := a.record(ctx, res.Tenant, p, "access.use", g.Role, p.ObjectID, nil); err != nil {
				return err // an operator's use that cannot be logged is not allowed
			}
		}
		return nil
	}
	return ErrDenied
}

// expire deletes a grant past its end and records it once (the delete makes a second check find
// nothing). Failures are left for the next check: the grant is refused either way.
func (a *Authorizer) expire(ctx context.Context, tenant core.TenantID, g Authorisation) {
	rk, err := g.RowKey()
	if err != nil {
		return
	}
	if err := a.data.Authorisations.Delete(ctx, tenant, rk); err != nil {
		return
	}
	_ = a.record(ctx, tenant, Principal{Tenant: tenant, ObjectID: "system", App: true}, "access.expire", g.Role, g.PrincipalID, nil)
}
