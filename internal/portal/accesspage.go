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
			status, msg, _ := p.call(ctx, req, "GrantRole", grant, nil, body, nil)
			v.Notice, v.Problem = outcome(status, msg, "Role granted.")
		case "revoke":
			status, msg, _ := p.call(ctx, req, "RevokeRole", grant, nil, nil, nil)
			v.Notice, v.Problem = outcome(status, msg, "Role revoked.")
		case "approve":
			status, msg, _ := p.call(ctx, req, "ApproveOperatorAccess", request, nil, nil, nil)
			v.Notice, v.Problem = outcome(status, msg, "Approved: the operator has read-only access for the requested time.")
		case "deny":
			status, msg, _ := p.call(ctx, req, "DenyOperatorAccess", request, nil, nil, nil)
			v.Notice, v.Problem = outcome(status, msg, "Denied.")
		}
	}
	var grants, roles, requests map[string]any
	if status, msg, _ := p.call(ctx, req, "ListGrants", t, nil, nil, &grants); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	_, _, _ = p.call(ctx, req, "ListRoles", t, nil, nil, &roles)
	_, _, _ = p.call(ctx, req, "ListAccessRequests", t, nil, nil, &requests)
	v.Data["Grants"], v.Data["Roles"], v.Data["Requests"] = grants["grants"], roles["roles"], requests["requests"]
	v.Data["CanGrant"] = p.cfg.Access.Allowed(ctx, req.who, PermAccessGrant, tenant)
	v.Data["CanApprove"] = p.cfg.Access.Allowed(ctx, req.who, PermAccessApprove, tenant)
	return p.render(req, statusOf(v), "access", v)
}

func sortStrings(s []string) { slices.Sort(s) }
