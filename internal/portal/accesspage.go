package portal

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// accessPage: who holds which role in the tenant (grants, operators' time-bound access included), the
// roles, and operators' access requests to approve (a security officer) or deny. Granting never gives
// more than the granting admin holds: the function decides.
func (p *Portal) accessPage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "Access"
	t := map[string]string{"tenantId": string(tenant)}
	if req.Method == http.MethodPost {
		f := req.form
		principal, role := strings.ToLower(strings.TrimSpace(f.Get("principalId"))), strings.TrimSpace(f.Get("role"))
		grant := map[string]string{"tenantId": string(tenant), "principalId": principal, "role": role}
		request := map[string]string{"tenantId": string(tenant), "requestId": strings.TrimSpace(f.Get("requestId"))}
		switch f.Get("action") {
		case "grant":
			body := map[string]any{}
			if sc := strings.TrimSpace(f.Get("scope")); sc != "" {
				body["scope"] = sc
			}
			if d := strings.TrimSpace(f.Get("expiresOn")); d != "" {
				day, err := time.Parse("2006-01-02", d)
				if err != nil {
					v.Problem = "The expiry is a date (YYYY-MM-DD)."
					break
				}
				body["expiresAt"] = day.Add(24*time.Hour - time.Second).UTC().Format(time.RFC3339)
			}
			p.act(ctx, req, v, "GrantRole", grant, body, "Role granted.")
		case "revoke":
			p.act(ctx, req, v, "RevokeRole", grant, nil, "Role revoked.")
		case "define":
			perms := f["permission"]
			if perms == nil {
				perms = []string{}
			}
			role := map[string]string{"tenantId": string(tenant), "role": strings.TrimSpace(f.Get("roleName"))}
			p.act(ctx, req, v, "DefineRole", role, map[string]any{"permissions": perms, "description": strings.TrimSpace(f.Get("description"))}, "Role defined. Grant it below; narrowing it applies at once to everyone who holds it.")
		case "undefine":
			p.act(ctx, req, v, "DeleteRole", map[string]string{"tenantId": string(tenant), "role": role}, nil, "Role deleted.")
		case "approve":
			p.act(ctx, req, v, "ApproveOperatorAccess", request, nil, "Approved: the operator has read-only access for the requested time.")
		case "deny":
			p.act(ctx, req, v, "DenyOperatorAccess", request, nil, "Denied.")
		}
	}
	var grants, roles, requests map[string]any
	if status, msg, _ := p.call(ctx, req, "ListGrants", t, nil, nil, &grants); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	_, _, _ = p.call(ctx, req, "ListRoles", t, nil, nil, &roles)
	_, _, _ = p.call(ctx, req, "ListAccessRequests", t, nil, nil, &requests)
	v.Data["Grants"], v.Data["Roles"], v.Data["Requests"] = grants["grants"], roles["roles"], requests["requests"]
	// The permissions a custom role may name: those of the built-in roles, as ListRoles shows them (the
	// function refuses any the defining admin does not hold).
	var perms []string
	rs, _ := roles["roles"].([]any)
	for _, r := range rs {
		m, _ := r.(map[string]any)
		if m["custom"] == true {
			continue
		}
		ps, _ := m["permissions"].([]any)
		for _, x := range ps {
			if s := str(x); s != "" && !slices.Contains(perms, s) {
				perms = append(perms, s)
			}
		}
	}
	slices.Sort(perms)
	v.Data["Permissions"] = perms
	v.Data["CanGrant"] = p.cfg.Access.Allowed(ctx, req.who, PermAccessGrant, tenant)
	v.Data["CanApprove"] = p.cfg.Access.Allowed(ctx, req.who, PermAccessApprove, tenant)
	return p.render(req, statusOf(v), "access", v)
}

func sortStrings(s []string) { slices.Sort(s) }
