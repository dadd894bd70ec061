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
	ApproveOperatorAccess(ctx context.Context, officer access.Principal, tenant core.TenantID, operatorID string, d time.Duration, justification string) (access.Authorisation, error)
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
		op("ApproveOperatorAccess", guard{perm: access.AccessApprove}, func(ctx context.Context, s AccessAdmin, p access.Principal, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				OperatorID    string `json:"operatorId"`
				Minutes       int    `json:"minutes"`
				Justification string `json:"justification"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			if body.Minutes <= 0 {
				return 0, nil, apperr.New(apperr.Invalid, "minutes must be 1 to 480", nil)
			}
			g, err := s.ApproveOperatorAccess(ctx, p, id, body.OperatorID, time.Duration(body.Minutes)*time.Minute, body.Justification)
			return http.StatusCreated, toGrantJSON(g), err
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
