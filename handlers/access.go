package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// AccessAdmin is the grants of a tenant, as its admins and ConnectHub's security officers manage them
// (access.Authorizer: each call checks the caller again, precisely).
type AccessAdmin interface {
	Grants(ctx context.Context, by access.Principal, tenant core.TenantID) ([]access.Authorisation, error)
	Grant(ctx context.Context, granter access.Principal, tenant core.TenantID, req access.GrantRequest) (access.Authorisation, error)
	Revoke(ctx context.Context, by access.Principal, tenant core.TenantID, principalID, role string) error
	Roles(ctx context.Context, by access.Principal, tenant core.TenantID) ([]access.Role, error)
	DefineRole(ctx context.Context, by access.Principal, tenant core.TenantID, name string, perms []access.Permission, description string) (access.Role, error)
	DeleteRole(ctx context.Context, by access.Principal, tenant core.TenantID, name string) error
	RequestOperatorAccess(ctx context.Context, operator access.Principal, tenant core.TenantID, d time.Duration, justification string) (access.AccessRequest, error)
	AccessRequests(ctx context.Context, by access.Principal, tenant core.TenantID) ([]access.AccessRequest, error)
	ApproveAccessRequest(ctx context.Context, officer access.Principal, tenant core.TenantID, requestID string) (access.Authorisation, error)
	DenyAccessRequest(ctx context.Context, by access.Principal, tenant core.TenantID, requestID string) error
}

var _ AccessAdmin = (*access.Authorizer)(nil)

// maxAccessBody bounds a grant request.
const maxAccessBody = 2 << 10

func (a *App) accessFunctions() []function {
	op := func(name string, g guard, h func(context.Context, AccessAdmin, access.Principal, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.principalCall(ctx, r, maxAccessBody, g, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
				return h(ctx, a.Access.Admin, p, id, r)
			})
		}), a.Access.Admin}
	}
	return []function{
		op("ListGrants", guard{perm: access.AccessRead}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			gs, err := s.Grants(ctx, p, id)
			out := grantsJSON{Grants: make([]grantJSON, 0, len(gs))}
			for _, g := range gs {
				out.Grants = append(out.Grants, toGrantJSON(g))
			}
			return http.StatusOK, out, err
		}),
		op("GrantRole", guard{perm: access.AccessGrant}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Scope     string    `json:"scope"`
				ExpiresAt time.Time `json:"expiresAt"`
			}
			if len(r.Body) > 0 {
				if err := decodeJSONBody(r, &body); err != nil {
					return 0, nil, err
				}
			}
			g, err := s.Grant(ctx, p, id, access.GrantRequest{PrincipalID: r.Params["principalId"], Role: r.Params["role"],
				Scope: body.Scope, ExpiresAt: body.ExpiresAt})
			return http.StatusOK, toGrantJSON(g), err
		}),
		op("RevokeRole", guard{perm: access.AccessRead}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.Revoke(ctx, p, id, r.Params["principalId"], r.Params["role"])
		}),
		op("ListRoles", guard{perm: access.AccessRead}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			rs, err := s.Roles(ctx, p, id)
			out := rolesJSON{Roles: make([]roleJSON, 0, len(rs))}
			for _, r := range rs {
				out.Roles = append(out.Roles, toRoleJSON(r))
			}
			return http.StatusOK, out, err
		}),
		op("DefineRole", guard{perm: access.AccessGrant}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Permissions []access.Permission `json:"permissions"`
				Description string              `json:"description"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			role, err := s.DefineRole(ctx, p, id, r.Params["role"], body.Permissions, body.Description)
			return http.StatusOK, toRoleJSON(role), err
		}),
		op("DeleteRole", guard{perm: access.AccessGrant}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DeleteRole(ctx, p, id, r.Params["role"])
		}),
		op("RequestOperatorAccess", guard{perm: access.AccessAsk}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Minutes       int    `json:"minutes"`
				Justification string `json:"justification"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			if body.Minutes <= 0 || body.Minutes > int(access.MaxOperatorAccess/time.Minute) {
				return 0, nil, apperr.New(apperr.Invalid, "minutes must be 1 to 480", nil)
			}
			req, err := s.RequestOperatorAccess(ctx, p, id, time.Duration(body.Minutes)*time.Minute, body.Justification)
			return http.StatusCreated, toRequestJSON(req, time.Now()), err
		}),
		op("ListAccessRequests", guard{perm: access.AccessRead}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			rs, err := s.AccessRequests(ctx, p, id)
			now := time.Now()
			out := requestsJSON{Requests: make([]requestJSON, 0, len(rs))}
			for _, r := range rs {
				out.Requests = append(out.Requests, toRequestJSON(r, now))
			}
			return http.StatusOK, out, err
		}),
		op("ApproveOperatorAccess", guard{perm: access.AccessApprove}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			g, err := s.ApproveAccessRequest(ctx, p, id, r.Params["requestId"])
			return http.StatusCreated, toGrantJSON(g), err
		}),
		op("DenyOperatorAccess", guard{perm: access.AccessApprove, or: access.AccessGrant}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DenyAccessRequest(ctx, p, id, r.Params["requestId"])
		}),
	}
}

type grantJSON struct {
	PrincipalID     string     `json:"principalId"`
	Role            string     `json:"role"`
	PrincipalTenant string     `json:"principalTenant"`
	Scope           string     `json:"scope"`
	GrantedAt       time.Time  `json:"grantedAt"`
	GrantedBy       string     `json:"grantedBy"`
	ExpiresAt       *time.Time `json:"expiresAt,omitempty"`
	Justification   string     `json:"justification,omitempty"`
}

type grantsJSON struct {
	Grants []grantJSON `json:"grants"`
}

func toGrantJSON(g access.Authorisation) grantJSON {
	out := grantJSON{PrincipalID: g.PrincipalID, Role: g.Role, PrincipalTenant: g.PrincipalTenant, Scope: g.Scope,
		GrantedAt: g.GrantedAt, GrantedBy: g.GrantedBy, Justification: g.Justification}
	if !g.ExpiresAt.IsZero() {
		e := g.ExpiresAt
		out.ExpiresAt = &e
	}
	return out
}

type roleJSON struct {
	Name        string              `json:"name"`
	Permissions []access.Permission `json:"permissions"`
	Custom      bool                `json:"custom"`
	Description string              `json:"description,omitempty"`
}

type rolesJSON struct {
	Roles []roleJSON `json:"roles"`
}

func toRoleJSON(r access.Role) roleJSON {
	perms := r.Permissions
	if perms == nil {
		perms = []access.Permission{}
	}
	return roleJSON{Name: r.Name, Permissions: perms, Custom: r.Custom, Description: r.Description}
}

type requestJSON struct {
	ID            string     `json:"id"`
	OperatorID    string     `json:"operatorId"`
	Minutes       int        `json:"minutes"`
	Justification string     `json:"justification"`
	RequestedAt   time.Time  `json:"requestedAt"`
	State         string     `json:"state"`
	DecidedBy     string     `json:"decidedBy,omitempty"`
	DecidedAt     *time.Time `json:"decidedAt,omitempty"`
}

type requestsJSON struct {
	Requests []requestJSON `json:"requests"`
}

func toRequestJSON(r access.AccessRequest, now time.Time) requestJSON {
	out := requestJSON{ID: r.ID, OperatorID: r.OperatorID, Minutes: r.Minutes, Justification: r.Justification,
		RequestedAt: r.RequestedAt, State: r.StateAt(now), DecidedBy: r.DecidedBy}
	if !r.DecidedAt.IsZero() {
		d := r.DecidedAt
		out.DecidedAt = &d
	}
	return out
}
