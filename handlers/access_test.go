package handlers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// testAccess stands in for internal/access in route tests (access has its own tests against Azurite
// and a fake identity platform): "Bearer as:<tenant>:<oid>" names the caller, "Bearer as-any:<oid>"
// a caller every tenant admits; a tenant's principal may act on its own tenant only.
type testAccess struct{}

const anyTenant = core.TenantID("any")

const otherTenant = "7a2c4d5e-3b4a-4c5d-9e0f-1a2b3c4d5e6f"

func (testAccess) Authenticate(h string) (access.Principal, error) {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	switch {
	case h == "":
		return access.Principal{}, access.ErrNoToken
	case !ok:
		return access.Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", nil)
	case strings.HasPrefix(tok, "as-any:"):
		return access.Principal{Tenant: anyTenant, ObjectID: strings.TrimPrefix(tok, "as-any:")}, nil
	case strings.HasPrefix(tok, "as:"):
		t, oid, _ := strings.Cut(strings.TrimPrefix(tok, "as:"), ":")
		return access.Principal{Tenant: core.TenantID(t), ObjectID: oid}, nil
	}
	return access.Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", nil)
}

func (testAccess) Allow(_ context.Context, p access.Principal, _ access.Permission, res access.Resource) error {
	if p.Tenant == anyTenant || res.Tenant == p.Tenant {
		return nil
	}
	return access.ErrDenied
}

// operatorToken is the default caller of the route tests: admitted everywhere.
const operatorToken = "Bearer as-any:" + operator

// publicFunctions answer without a token, by design: Graph's webhooks (clientState and validation
// tokens), the PBX's webhooks (the subscription's verification token, the connector's signature), the health probe, this API's description, and the two redirects the identity platform
// sends a browser to (one-time state authenticates them), and the connect link a browser opens (its
// sealed, expiring token authenticates it).
// The Room Finder's CORS preflights carry no credentials (the Fetch standard forbids them) and answer
// only whether the tenant allows the caller's origin. The Service Manager portal signs people in itself
// (its session cookie) and calls these same functions as the signed-in principal (CallAs), so each of
// its actions passes the guards this test checks.
var publicFunctions = map[string]bool{"Portal": true, "PortalAction": true, "GraphWebhook": true, "GraphLifecycle": true, "PbxWebhook": true, "PbxSignedWebhook": true, "Health": true, "OpenAPI": true,
	"AdminConsentCallback": true, "AuthCallback": true, "AuthStart": true,
	"ListRoomsPreflight": true, "GetRoomAvailabilityPreflight": true, "GetRoomSchedulePreflight": true}

// Every HTTP function but the public ones refuses a call without a valid token (401, with the bearer
// challenge) and a caller of another tenant (403), and its service is never reached. The test walks
// the route table, so a new function is covered the day it is added.
func TestEveryAdminFunctionIsGuarded(t *testing.T) {
	t.Parallel()
	reached := &reachRecorder{}
	a := &App{Tenants: TenantServices{Admin: reached}, Connector: ConnectorServices{Admin: reached},
		Presence: PresenceServices{SignIn: reached, Status: reached}}
	routes := routeTable(t, a)
	guarded := 0
	for _, f := range httpFunctions(t) {
		if publicFunctions[f.name] {
			continue
		}
		guarded++
		params := map[string]string{"tenantId": tenantA, "userId": userA}
		for name, h := range map[string]string{"no token": "", "another scheme": "Basic b3A6cHc=", "forged": "Bearer forged",
			"other tenant": "Bearer as:" + otherTenant + ":" + operator} {
			headers := map[string][]string{}
			if h != "" {
				headers["Authorization"] = []string{h}
			}
			r := azfunctest.Invoke(t, routes, azfunctest.Call{Function: f.name, Method: strings.ToUpper(f.method), Params: params,
				Headers: headers, Body: "{}"})
			want := http.StatusUnauthorized
			if name == "other tenant" {
				want = http.StatusForbidden
			}
			if r.Status != want {
				t.Errorf("%s %s, %s: %d, want %d", f.method, f.path, name, r.Status, want)
			}
			if want == http.StatusUnauthorized && !strings.HasPrefix(r.Headers["WWW-Authenticate"], "Bearer ") {
				t.Errorf("%s %s, %s: no bearer challenge (%v)", f.method, f.path, name, r.Headers)
			}
		}
	}
	if guarded < 20 {
		t.Errorf("only %d guarded functions found", guarded)
	}
}

// reachRecorder is every admin service with no method behind it: a refused call that reached one would
// panic into a 500, which the test reports.
type reachRecorder struct {
	TenantAdmin
	ConnectorAdmin
	ServiceUserSignIn
	PresenceStatus
}

// fakeGrants answers the grant functions and records what it was asked.
type fakeGrants struct {
	calls []string
}

func (f *fakeGrants) Grants(_ context.Context, by access.Principal, tenant core.TenantID) ([]access.Authorisation, error) {
	f.calls = append(f.calls, "list:"+by.ObjectID)
	return []access.Authorisation{{PrincipalID: userA, Role: "Helpdesk", PrincipalTenant: string(tenant)}}, nil
}

func (f *fakeGrants) Grant(_ context.Context, by access.Principal, tenant core.TenantID, req access.GrantRequest) (access.Authorisation, error) {
	f.calls = append(f.calls, "grant:"+req.PrincipalID+":"+req.Role+":"+req.Scope)
	return access.Authorisation{PrincipalID: req.PrincipalID, Role: req.Role, PrincipalTenant: string(tenant), Scope: req.Scope,
		GrantedBy: by.ObjectID, ExpiresAt: req.ExpiresAt}, nil
}

func (f *fakeGrants) Revoke(_ context.Context, _ access.Principal, _ core.TenantID, principalID, role string) error {
	f.calls = append(f.calls, "revoke:"+principalID+":"+role)
	return nil
}

func (f *fakeGrants) Roles(_ context.Context, _ access.Principal, _ core.TenantID) ([]access.Role, error) {
	f.calls = append(f.calls, "roles")
	return []access.Role{access.RoleHelpdesk, {Name: "Licensing", Permissions: []access.Permission{access.LicensesWrite}, Custom: true}}, nil
}

func (f *fakeGrants) DefineRole(_ context.Context, _ access.Principal, _ core.TenantID, name string, perms []access.Permission, description string) (access.Role, error) {
	f.calls = append(f.calls, "define:"+name+":"+fmt.Sprint(perms)+":"+description)
	return access.Role{Name: name, Permissions: perms, Custom: true, Description: description}, nil
}

func (f *fakeGrants) DeleteRole(_ context.Context, _ access.Principal, _ core.TenantID, name string) error {
	f.calls = append(f.calls, "delete:"+name)
	return nil
}

func (f *fakeGrants) RequestOperatorAccess(_ context.Context, p access.Principal, _ core.TenantID, d time.Duration, why string) (access.AccessRequest, error) {
	f.calls = append(f.calls, "request:"+d.String()+":"+why)
	return access.AccessRequest{ID: "r1", OperatorID: p.ObjectID, Minutes: int(d.Minutes()), Justification: why,
		RequestedAt: time.Now(), State: access.RequestPending}, nil
}

func (f *fakeGrants) AccessRequests(_ context.Context, _ access.Principal, _ core.TenantID) ([]access.AccessRequest, error) {
	f.calls = append(f.calls, "requests")
	return []access.AccessRequest{{ID: "r1", OperatorID: operator, Minutes: 60, Justification: "ticket 4711",
		RequestedAt: time.Now().Add(-25 * time.Hour), State: access.RequestPending}}, nil
}

func (f *fakeGrants) ApproveAccessRequest(_ context.Context, by access.Principal, _ core.TenantID, id string) (access.Authorisation, error) {
	f.calls = append(f.calls, "approve:"+id)
	return access.Authorisation{PrincipalID: operator, Role: "OperatorSupport", GrantedBy: by.ObjectID, Justification: "ticket 4711"}, nil
}

func (f *fakeGrants) DenyAccessRequest(_ context.Context, _ access.Principal, _ core.TenantID, id string) error {
	f.calls = append(f.calls, "deny:"+id)
	return nil
}

func TestGrantFunctions(t *testing.T) {
	t.Parallel()
	f := &fakeGrants{}
	a := &App{Access: AccessServices{Authenticate: testAccess{}, Authorize: testAccess{}, Admin: f}}
	tp := map[string]string{"tenantId": tenantA}
	gp := map[string]string{"tenantId": tenantA, "principalId": userA, "role": "Helpdesk"}
	rp := map[string]string{"tenantId": tenantA, "role": "Licensing"}
	qp := map[string]string{"tenantId": tenantA, "requestId": "r1"}
	for _, tc := range []struct {
		call     httpCall
		want     int
		wantBody string
	}{
		{httpCall{function: "ListGrants", method: "GET", params: tp}, 200, `"role":"Helpdesk"`},
		{httpCall{function: "GrantRole", method: "PUT", params: gp, body: `{"scope":"connector","expiresAt":"2027-01-31T00:00:00Z"}`}, 200, `"scope":"connector"`},
		{httpCall{function: "GrantRole", method: "PUT", params: gp}, 200, `"grantedBy":"` + operator},
		{httpCall{function: "RevokeRole", method: "DELETE", params: gp}, 204, ""},
		{httpCall{function: "GrantRole", method: "PUT", params: gp, body: `{"role":"TenantAdmin"}`}, 400, "documented fields"},
		{httpCall{function: "ListRoles", method: "GET", params: tp}, 200, `{"name":"Licensing","permissions":["licenses.write"],"custom":true}`},
		{httpCall{function: "DefineRole", method: "PUT", params: rp, body: `{"permissions":["tenant.read","licenses.write"],"description":"assigns licenses"}`}, 200, `"custom":true`},
		{httpCall{function: "DefineRole", method: "PUT", params: rp, body: `{"permissions":"tenant.read"}`}, 400, ""},
		{httpCall{function: "DeleteRole", method: "DELETE", params: rp}, 204, ""},
		{httpCall{function: "RequestOperatorAccess", method: "POST", params: tp, body: `{"minutes":120,"justification":"ticket 4711"}`}, 201, `"state":"pending"`},
		{httpCall{function: "RequestOperatorAccess", method: "POST", params: tp, body: `{"minutes":481,"justification":"x"}`}, 400, "minutes"},
		{httpCall{function: "ListAccessRequests", method: "GET", params: tp}, 200, `"state":"lapsed"`},
		{httpCall{function: "ApproveOperatorAccess", method: "POST", params: qp}, 201, `"justification":"ticket 4711"`},
		{httpCall{function: "DenyOperatorAccess", method: "POST", params: qp}, 204, ""},
	} {
		code, body, _ := invokeHTTP(t, a, tc.call)
		if code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.call.method, tc.call.function, code, body, tc.want, tc.wantBody)
		}
	}
	want := "list:" + operator + " grant:" + userA + ":Helpdesk:connector grant:" + userA + ":Helpdesk: revoke:" + userA + ":Helpdesk roles define:Licensing:[tenant.read licenses.write]:assigns licenses" +
		" delete:Licensing request:2h0m0s:ticket 4711 requests approve:r1 deny:r1"
	if got := strings.Join(f.calls, " "); got != want {
		t.Errorf("calls = %s\nwant    %s", got, want)
	}
}

type fakeAudit struct{ from, to time.Time }

func (f *fakeAudit) Page(_ context.Context, _ core.TenantID, from, to time.Time, token string, size int) (tables.Page[audit.Entry], error) {
	f.from, f.to = from, to
	if token == "p2" {
		return tables.Page[audit.Entry]{Items: []audit.Entry{{Seq: 1, Action: "tenant.consent", Hash: []byte{1}}}}, nil
	}
	return tables.Page[audit.Entry]{Items: []audit.Entry{{Seq: 3, Action: "license.assign", ActorID: operator, Hash: []byte{3}, PrevHash: []byte{2}},
		{Seq: 2, Action: "connector.set", Hash: []byte{2}, PrevHash: []byte{1}}}, Next: "p2"}, nil
}

func TestExportAudit(t *testing.T) {
	t.Parallel()
	f := &fakeAudit{}
	a := &App{Audit: f}
	tp := map[string]string{"tenantId": tenantA}
	code, body, headers := invokeHTTP(t, a, httpCall{function: "ExportAudit", method: "GET", params: tp,
		query: map[string]string{"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}})
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 2 || !strings.Contains(lines[0], `"seq":3`) || !strings.Contains(lines[0], `"prevHash":"02","hash":"03"`) ||
		headers[NextPageHeader] != "p2" || headers["Content-Type"] != "application/x-ndjson" {
		t.Fatalf("page 1 = %d %v\n%s", code, headers, body)
	}
	if f.from.Day() != 1 || f.to.Day() != 2 {
		t.Errorf("window = %v..%v", f.from, f.to)
	}
	code, body, headers = invokeHTTP(t, a, httpCall{function: "ExportAudit", method: "GET", params: tp, query: map[string]string{"pageToken": "p2"}})
	if code != 200 || !strings.Contains(body, `"seq":1`) || headers[NextPageHeader] != "" {
		t.Errorf("last page = %d %v %s", code, headers, body)
	}
	// A security officer (access.read, no audit.read) sees the authorisation log's entries only.
	officer := &App{Audit: f, Access: AccessServices{Authenticate: testAccess{}, Authorize: permsOnly{access.AccessRead}}}
	code, body, _ = invokeHTTP(t, officer, httpCall{function: "ExportAudit", method: "GET", params: tp, query: map[string]string{"pageToken": "p2"}})
	if code != 200 || strings.Contains(body, "tenant.consent") {
		t.Errorf("officer's view = %d %s, want no entry but access.*", code, body)
	}
	nobody := &App{Audit: f, Access: AccessServices{Authenticate: testAccess{}, Authorize: permsOnly{access.TenantRead}}}
	if code, _, _ := invokeHTTP(t, nobody, httpCall{function: "ExportAudit", method: "GET", params: tp}); code != 403 {
		t.Errorf("without audit.read or access.read = %d, want 403", code)
	}
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "ExportAudit", method: "GET", params: tp, query: map[string]string{"from": "yesterday"}}); code != 400 {
		t.Errorf("bad from = %d", code)
	}
}

// permsOnly allows exactly the listed permissions, on any resource.
type permsOnly []access.Permission

func (p permsOnly) Allow(_ context.Context, _ access.Principal, perm access.Permission, _ access.Resource) error {
	if slices.Contains(p, perm) {
		return nil
	}
	return access.ErrDenied
}
