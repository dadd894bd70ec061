package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/tenants"
)

const (
	tenantA  = "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"
	userA    = "aaaaaaaa-0000-4000-8000-000000000001"
	operator = "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c"
)

// fakeAdmin records calls and answers with err (nil: a fixed view).
type fakeAdmin struct {
	mu    sync.Mutex
	calls []string
	actor core.Actor
	err   error
	cb    tenants.ConsentCallback
	n     int
}

func (f *fakeAdmin) record(call string, a core.Actor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.actor = a
}

var view = tenants.View{ID: tenantA, State: registry.TenantActive, HomeRegion: "westeurope", PurchasedLicenses: 2,
	AssignedLicenses: 3, OverAssigned: 1, ConsentedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}

func (f *fakeAdmin) StartOnboarding(_ context.Context, a core.Actor, t core.TenantID, r tenants.OnboardingRequest) (tenants.Onboarding, error) {
	f.record("start:"+string(t)+":"+r.HomeRegion, a)
	f.n = r.PurchasedLicenses
	return tenants.Onboarding{ConsentURL: "https://login.example/x", ExpiresAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}, f.err
}
func (f *fakeAdmin) CompleteConsent(_ context.Context, cb tenants.ConsentCallback) (tenants.ConsentResult, error) {
	f.record("consent", core.Actor{})
	f.cb = cb
	return tenants.ConsentResult{}, f.err
}
func (f *fakeAdmin) Get(_ context.Context, t core.TenantID) (tenants.View, error) {
	f.record("get:"+string(t), core.Actor{})
	return view, f.err
}
func (f *fakeAdmin) Suspend(_ context.Context, a core.Actor, t core.TenantID) (tenants.View, error) {
	f.record("suspend:"+string(t), a)
	return view, f.err
}
func (f *fakeAdmin) Cancel(_ context.Context, a core.Actor, t core.TenantID) (tenants.View, error) {
	f.record("cancel:"+string(t), a)
	return view, f.err
}
func (f *fakeAdmin) Reactivate(_ context.Context, a core.Actor, t core.TenantID) (tenants.View, error) {
	f.record("reactivate:"+string(t), a)
	return view, f.err
}
func (f *fakeAdmin) SetPurchasedLicenses(_ context.Context, a core.Actor, t core.TenantID, n int) (tenants.View, error) {
	f.record("licenses:"+string(t), a)
	f.n = n
	return view, f.err
}
func (f *fakeAdmin) Assign(_ context.Context, a core.Actor, t core.TenantID, u string) (tenants.License, error) {
	f.record("assign:"+string(t)+":"+u, a)
	return tenants.License{UserID: u, Purchased: 2, Assigned: 1}, f.err
}
func (f *fakeAdmin) Unassign(_ context.Context, a core.Actor, t core.TenantID, u string) error {
	f.record("unassign:"+string(t)+":"+u, a)
	return f.err
}
func (f *fakeAdmin) ListLicensed(_ context.Context, t core.TenantID, search, token string, size int) (tenants.UserPage, error) {
	f.record(fmt.Sprintf("users:%s:%s:%s:%d", t, search, token, size), core.Actor{})
	return tenants.UserPage{Users: []tenants.LicensedUser{{ID: userA, DisplayName: "Ada", Mail: "ada@contoso.example"}}, Next: "next"}, f.err
}
func (f *fakeAdmin) RefreshProfile(_ context.Context, a core.Actor, t core.TenantID, u string) error {
	f.record("refresh:"+string(t)+":"+u, a)
	return f.err
}

type httpCall struct {
	function, method string
	params, query    map[string]string
	headers          map[string][]string
	body             string
}

func invokeHTTP(t *testing.T, a *App, c httpCall) (int, string, map[string]string) {
	t.Helper()
	r := invoke(t, routeTable(t, a), azfunctest.Call{Function: c.function, Method: c.method,
		Params: c.params, Query: c.query, Headers: c.headers, Body: c.body})
	return r.Status, r.Body, r.Headers
}

func TestTenantAdminFunctions(t *testing.T) {
	t.Parallel()
	tp := map[string]string{"tenantId": strings.ToUpper(tenantA)}
	up := map[string]string{"tenantId": tenantA, "userId": userA}
	tests := []struct {
		name     string
		call     httpCall
		wantCode int
		wantCall string
		wantBody string // substring
	}{
		{"start onboarding", httpCall{function: "StartOnboarding", method: "POST", params: tp, body: `{"purchasedLicenses":25,"homeRegion":"westeurope"}`},
			201, "start:" + tenantA + ":westeurope", `"consentUrl":"https://login.example/x"`},
		{"get tenant", httpCall{function: "GetTenant", method: "GET", params: tp},
			200, "get:" + tenantA, `"overAssignedLicenses":1`},
		{"suspend", httpCall{function: "SuspendTenant", method: "POST", params: tp}, 200, "suspend:" + tenantA, `"state":"active"`},
		{"cancel", httpCall{function: "CancelTenant", method: "POST", params: tp}, 200, "cancel:" + tenantA, `"purchasedLicenses":2`},
		{"reactivate", httpCall{function: "ReactivateTenant", method: "POST", params: tp}, 200, "reactivate:" + tenantA, `"id":"` + tenantA},
		{"set licenses", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{"purchased":0}`}, 200, "licenses:" + tenantA, `"assignedLicenses":3`},
		{"assign", httpCall{function: "AssignLicense", method: "PUT", params: up}, 200, "assign:" + tenantA + ":" + userA, `"userId":"` + userA},
		{"list users", httpCall{function: "ListLicensedUsers", method: "GET", params: tp, query: map[string]string{"search": "ada", "pageSize": "50"}},
			200, "users:" + tenantA + ":ada::50", `"displayName":"Ada"`},
		{"list users: page too large", httpCall{function: "ListLicensedUsers", method: "GET", params: tp, query: map[string]string{"pageSize": "501"}},
			400, "", "pageSize must be 1 to 500"},
		{"unassign", httpCall{function: "UnassignLicense", method: "DELETE", params: up}, 204, "unassign:" + tenantA + ":" + userA, ""},
		{"bad tenant id", httpCall{function: "SuspendTenant", method: "POST", params: map[string]string{"tenantId": "contoso.com"}}, 400, "", "tenant id must be a GUID"},
		{"operator partition", httpCall{function: "CancelTenant", method: "POST", params: map[string]string{"tenantId": string(registry.OperatorPartition)}}, 400, "", "GUID"},
		{"unknown body field", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{"purchased":1,"price":9}`}, 400, "", "documented fields"},
		{"missing purchased", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{}`}, 400, "", "purchased is required"},
		{"trailing data", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{"purchased":11} garbage`}, 400, "", "documented fields"},
		{"a second object", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{"purchased":11}{"purchased":12}`}, 400, "", "documented fields"},
		{"duplicate key", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: `{"purchased":1,"purchased":100}`}, 400, "", "documented fields"},
		{"trailing whitespace is fine", httpCall{function: "SetTenantLicenses", method: "PUT", params: tp, body: "{\"purchased\":0}\n "}, 200, "licenses:" + tenantA, `"assignedLicenses":3`},
		{"body too large", httpCall{function: "StartOnboarding", method: "POST", params: tp, body: `{"homeRegion":"` + strings.Repeat("x", 5000) + `"}`}, 413, "", "too large"},
		{"no token", httpCall{function: "SuspendTenant", method: "POST", params: tp, headers: map[string][]string{"Authorization": {""}}}, 401, "", "a bearer token is required"},
		{"another tenant's caller", httpCall{function: "SuspendTenant", method: "POST", params: tp, headers: map[string][]string{"Authorization": {"Bearer as:" + otherTenant + ":" + userA}}}, 403, "", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAdmin{}
			code, body, _ := invokeHTTP(t, &App{Tenants: TenantServices{Admin: f}}, tt.call)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
			var got string
			if len(f.calls) > 0 {
				got = f.calls[0]
			}
			if got != tt.wantCall {
				t.Errorf("service call = %q, want %q", got, tt.wantCall)
			}
		})
	}
}

func TestTenantAdminActorAndErrors(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{}
	a := &App{Tenants: TenantServices{Admin: f}}
	call := httpCall{function: "CancelTenant", method: "POST", params: map[string]string{"tenantId": tenantA}}
	// The actor is the token's principal, never a header the caller chose.
	call.headers = map[string][]string{"Authorization": {"Bearer as:" + tenantA + ":" + userA}, "X-ConnectHub-Actor": {operator}}
	invokeHTTP(t, a, call)
	if f.actor != (core.Actor{ID: userA, Kind: "user"}) {
		t.Errorf("actor = %+v, want the token's user", f.actor)
	}

	for _, tc := range []struct {
		err      error
		want     int
		wantBody string
	}{
		{apperr.New(apperr.Conflict, "the grace period is over", nil), 409, "the grace period is over"},
		{apperr.New(apperr.NotFound, "no such tenant", nil), 404, "no such tenant"},
		{apperr.New(apperr.Unavailable, "the directory is not connected", nil), 503, "not connected"},
		{apperr.New(apperr.Forbidden, "no", nil), 403, "no"},
		{errors.New("table storage exploded at https://internal.example"), 500, "internal error"},
	} {
		f.err = tc.err
		code, body, _ := invokeHTTP(t, a, call)
		if code != tc.want || !strings.Contains(body, tc.wantBody) || strings.Contains(body, "internal.example") {
			t.Errorf("%v: got %d %s, want %d with %q", tc.err, code, body, tc.want, tc.wantBody)
		}
	}
}

func TestAdminConsentCallbackPages(t *testing.T) {
	t.Parallel()
	hostile := `<script>alert(1)</script>`
	tests := []struct {
		name     string
		err      error
		query    map[string]string
		want     int
		wantText string
	}{
		{"granted", nil, map[string]string{"admin_consent": "True", "tenant": tenantA, "state": "s" + hostile}, 200, pageConnected},
		{"refused", apperr.New(apperr.Forbidden, "consent was not granted", nil), map[string]string{"error": "access_denied", "error_description": hostile, "state": "s"}, 200, pageRefused},
		{"forged state", apperr.New(apperr.Invalid, "invalid", nil), map[string]string{"state": hostile}, 400, pageInvalid},
		{"unconfirmed by Microsoft", tenants.ErrConsentUnconfirmed, map[string]string{"admin_consent": "True", "tenant": tenantA, "state": "s"}, 403, pageUnconfirmed},
		{"Microsoft unreachable", apperr.New(apperr.Unavailable, "Microsoft could not be reached", errors.New("503")),
			map[string]string{"admin_consent": "True", "tenant": tenantA, "state": "s"}, 503, pageRetry},
		{"storage down", errors.New("boom"), map[string]string{"state": "s"}, 500, pageFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAdmin{err: tt.err}
			code, body, headers := invokeHTTP(t, &App{Tenants: TenantServices{Admin: f}},
				httpCall{function: "AdminConsentCallback", method: "GET", query: tt.query})
			if code != tt.want || !strings.Contains(body, tt.wantText) || strings.Contains(body, "script") {
				t.Errorf("got %d %q, want %d with %q and nothing echoed", code, body, tt.want, tt.wantText)
			}
			if headers["Content-Security-Policy"] != "default-src 'none'" || headers["Cache-Control"] != "no-store" {
				t.Errorf("headers = %v", headers)
			}
			if f.cb.State != tt.query["state"] || f.cb.AdminConsent != tt.query["admin_consent"] || f.cb.Error != tt.query["error"] || f.cb.Tenant != tt.query["tenant"] {
				t.Errorf("callback passed = %+v, from %v", f.cb, tt.query)
			}
		})
	}
	code, _, _ := invokeHTTP(t, &App{Tenants: TenantServices{Admin: &fakeAdmin{}}}, httpCall{function: "AdminConsentCallback", method: "POST"})
	if code != http.StatusMethodNotAllowed {
		t.Errorf("POST callback = %d, want 405", code)
	}
}

// The audit trail can be joined with the logs: operator actions carry the host's invocation id.
func TestTenantAdminActorCarriesInvocationID(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{}
	a := &App{Tenants: TenantServices{Admin: f}}
	r := invoke(t, routeTable(t, a), azfunctest.Call{Function: "SuspendTenant", Method: "POST",
		Params: map[string]string{"tenantId": tenantA}, InvocationID: "5f0c7d2e-inv"})
	if r.Status != http.StatusOK {
		t.Fatalf("SuspendTenant = %d", r.Status)
	}
	if f.actor.InvocationID != "5f0c7d2e-inv" {
		t.Errorf("actor = %+v, want the invocation id", f.actor)
	}
}

type fakeLister struct{ token string }

func (f *fakeLister) OperatorList(_ context.Context, opts *tables.ListOptions) (tables.Page[registry.Tenant], error) {
	f.token = opts.Token
	if opts.Token == "bad" {
		return tables.Page[registry.Tenant]{}, fmt.Errorf("list tenants: %w", tables.ErrBadPageToken)
	}
	return tables.Page[registry.Tenant]{Items: []registry.Tenant{{ID: tenantA, State: registry.TenantActive, HomeRegion: "northeurope"}}, Next: "n2"}, nil
}

func TestListTenants(t *testing.T) {
	t.Parallel()
	f := &fakeLister{}
	a := &App{Tenants: TenantServices{List: f}}
	code, body, _ := invokeHTTP(t, a, httpCall{function: "ListTenants", method: "GET", query: map[string]string{"pageToken": "n1"}})
	if code != 200 || !strings.Contains(body, `"id":"`+tenantA+`","state":"active","homeRegion":"northeurope"`) ||
		!strings.Contains(body, `"nextPageToken":"n2"`) || f.token != "n1" {
		t.Errorf("ListTenants = %d %s (token %q)", code, body, f.token)
	}
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "ListTenants", method: "GET", query: map[string]string{"pageToken": "bad"}}); code != 400 {
		t.Errorf("bad token = %d, want 400", code)
	}
	// A customer's admin sees no list of other customers.
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "ListTenants", method: "GET",
		headers: map[string][]string{"Authorization": {"Bearer as:" + tenantA + ":" + userA}}}); code != 403 {
		t.Errorf("a tenant's admin listing tenants = %d, want 403", code)
	}
}

func TestNoDuplicateKeys(t *testing.T) {
	t.Parallel()
	for body, wantErr := range map[string]bool{
		`{"a":1,"b":2}`:                           false,
		`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`:     false, // the same key in different objects
		`{"a":1,"a":2}`:                           true,
		`{"a":{"x":1,"x":2}}`:                     true,
		`{"a":[{"x":1},{"y":1,"y":2}]}`:           true,
		`{"a":[1,2,"a"],"b":"a","c":{},"a":null}`: true, // strings as values are not keys
		`{"a":[1,2,"a"],"b":"a","c":{}}`:          false,
	} {
		if err := noDuplicateKeys([]byte(body)); (err != nil) != wantErr {
			t.Errorf("%s: err = %v, want error %v", body, err, wantErr)
		}
	}
}
