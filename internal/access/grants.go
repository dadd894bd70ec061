package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// MaxOperatorAccess bounds an operator's grant on a tenant: access ends by itself the same working day.
const MaxOperatorAccess = 8 * time.Hour

// maxJustification bounds the reason an operator gives.
const maxJustification = 500

// GrantRequest is a tenant admin's grant of a built-in role to another user of the tenant.
type GrantRequest struct {
	PrincipalID string // the user's object id
	Role        string // a built-in role other than OperatorSupport, or one of the tenant's custom roles
	Scope       string // "" (the whole tenant) or a part of it, e.g. "connector"
	ExpiresAt   time.Time
}

// Grant records req in tenant on behalf of granter, who must hold AccessGrant there and every permission
// of the role granted (nobody hands out more than they hold).
func (a *Authorizer) Grant(ctx context.Context, granter Principal, tenant core.TenantID, req GrantRequest) (Authorisation, error) {
	g, err := a.grant(ctx, granter, tenant, req)
	return g, a.record(ctx, tenant, granter, "access.grant", req.Role, req.PrincipalID, err)
}

func (a *Authorizer) grant(ctx context.Context, granter Principal, tenant core.TenantID, req GrantRequest) (Authorisation, error) {
	res := TenantResource(tenant)
	if err := a.Allow(ctx, granter, AccessGrant, res); err != nil {
		return Authorisation{}, err
	}
	oid, err := core.ParseObjectID(req.PrincipalID)
	if err != nil {
		return Authorisation{}, apperr.New(apperr.Invalid, "principalId must be an Entra object id (GUID)", err)
	}
	role, err := a.role(ctx, tenant, req.Role)
	if errors.Is(err, errNoRole) || err == nil && role.Name == RoleOperatorSupport.Name {
		return Authorisation{}, apperr.New(apperr.Invalid, "role must be one of the tenant's roles", nil)
	}
	if err != nil {
		return Authorisation{}, err
	}
	if err := validScope(req.Scope); err != nil {
		return Authorisation{}, err
	}
	now := a.now().UTC()
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return Authorisation{}, apperr.New(apperr.Invalid, "expiresAt must be in the future", nil)
	}
	for _, perm := range role.Permissions {
		if err := a.Allow(ctx, granter, perm, Resource{Tenant: tenant, Path: req.Scope}); err != nil {
			return Authorisation{}, apperr.New(apperr.Forbidden, "a role can only be granted by someone who holds all of it", nil)
		}
	}
	g := Authorisation{PrincipalID: oid, Role: role.Name, PrincipalKind: "user", PrincipalTenant: string(tenant),
		Scope: req.Scope, GrantedAt: now, GrantedBy: granter.ObjectID, ExpiresAt: req.ExpiresAt.UTC()}
	if _, err := a.data.Authorisations.Upsert(ctx, tenant, g); err != nil {
		return Authorisation{}, fmt.Errorf("store grant: %w", err)
	}
	return g, nil
}

// Revoke deletes a grant: a tenant admin (AccessGrant) revokes the tenant's own grants and may end an
// operator's access early; a security officer (AccessApprove) revokes operator grants.
func (a *Authorizer) Revoke(ctx context.Context, by Principal, tenant core.TenantID, principalID, role string) error {
	return a.record(ctx, tenant, by, "access.revoke", role, principalID, a.revoke(ctx, by, tenant, principalID, role))
}

func (a *Authorizer) revoke(ctx context.Context, by Principal, tenant core.TenantID, principalID, role string) error {
	allowed := a.Allow(ctx, by, AccessGrant, TenantResource(tenant)) == nil ||
		(role == RoleOperatorSupport.Name && a.Allow(ctx, by, AccessApprove, TenantResource(tenant)) == nil)
	if !allowed {
		return ErrDenied
	}
	rk, err := AuthorisationKey(principalID, role)
	if err != nil {
		return apperr.New(apperr.Invalid, "no such grant", err)
	}
	switch err := a.data.Authorisations.Delete(ctx, tenant, rk); {
	case errors.Is(err, tables.ErrNotFound):
		return apperr.New(apperr.NotFound, "no such grant", nil)
	case err != nil:
		return fmt.Errorf("delete grant: %w", err)
	}
	return nil
}

// Grants lists the tenant's grants, the operators' included, for whoever may read them (the tenant
// admin, a security officer).
func (a *Authorizer) Grants(ctx context.Context, by Principal, tenant core.TenantID) ([]Authorisation, error) {
	if err := a.Allow(ctx, by, AccessRead, TenantResource(tenant)); err != nil {
		return nil, err
	}
	var out []Authorisation
	for g, err := range a.data.Authorisations.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		out = append(out, g)
	}
	return out, nil
}

// validScope accepts "" or slash-separated lower-case segments ("connector", "users/<oid>").
func validScope(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 128 || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return apperr.New(apperr.Invalid, "scope must be a path inside the tenant, e.g. connector", nil)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '/') {
			return apperr.New(apperr.Invalid, "scope must be a path inside the tenant, e.g. connector", nil)
		}
	}
	return nil
}

// record writes a change to grants into the tenant's audit trail — denied attempts too — and answers
// the change's own error, or the trail's when the change succeeded but could not be recorded. The
// target is the grant: its role in the target type and the principal's object id as the target (so a
// person's export and erasure find it); a string that is not an object id is not kept.
func (a *Authorizer) record(ctx context.Context, tenant core.TenantID, by Principal, action, role, principalID string, err error) error {
	targetType := "grant"
	if roleName.MatchString(role) {
		targetType = "grant:" + role
	}
	target, perr := core.ParseObjectID(principalID)
	if perr != nil {
		target = ""
	}
	_, invocation := core.InvocationOf(ctx)
	return a.log.Record(ctx, tenant, by.Actor(invocation), action, targetType, target, err)
}
