package access_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
)

var ctx = context.Background()

const (
	clientID   = "11111111-2222-3333-4444-555555555555"
	tenantA    = core.TenantID("aaaaaaaa-0000-4000-8000-00000000000a")
	tenantB    = core.TenantID("bbbbbbbb-0000-4000-8000-00000000000b")
	operators  = core.TenantID("0e0e0e0e-0000-4000-8000-0000000000ff")
	adminA     = "0000aaaa-0000-4000-8000-000000000001"
	userA      = "0000aaaa-0000-4000-8000-000000000002"
	operator   = "0000ffff-0000-4000-8000-000000000001"
	officer    = "0000ffff-0000-4000-8000-000000000002"
	automation = "0000ffff-0000-4000-8000-0000000000a1"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	p := idptest.New(t)
	v, err := validationtoken.New(validationtoken.Config{Audience: clientID, OpenIDConfigURL: p.ConfigURL(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := access.NewAuthenticator(v, clientID)
	if err != nil {
		t.Fatal(err)
	}
	user := p.Mint(t, idptest.AccessClaims(clientID, string(tenantA), adminA, []string{access.AppRoleTenantAdmin}, now))

	// Keys not loaded yet: a good token is not refused as forged, the caller is told to retry.
	if _, err := a.Authenticate("Bearer " + user); apperr.CodeOf(err) != apperr.Unavailable {
		t.Errorf("before keys: err = %v, want Unavailable", err)
	}
	if err := v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := a.Authenticate("Bearer " + user)
	if err != nil || got.Tenant != tenantA || got.ObjectID != adminA || got.App || !got.HasAppRole(access.AppRoleTenantAdmin) || got.GlobalAdmin {
		t.Errorf("user = %+v, %v", got, err)
	}
	ga := idptest.AccessClaimsV1(clientID, string(tenantA), userA, nil, now)
	ga["wids"] = []string{access.GlobalAdministrator}
	if got, err := a.Authenticate("bearer " + p.Mint(t, ga)); err != nil || !got.GlobalAdmin || got.ObjectID != userA {
		t.Errorf("global admin (v1, lower-case scheme) = %+v, %v", got, err)
	}
	app := p.Mint(t, idptest.AppOnlyClaims(clientID, string(operators), automation, "22222222-0000-4000-8000-000000000001",
		[]string{access.AppRoleAutomation}, now))
	if got, err := a.Authenticate("Bearer " + app); err != nil || !got.App || got.Tenant != operators {
		t.Errorf("app = %+v, %v", got, err)
	}
	forgedWids := idptest.AppOnlyClaims(clientID, string(tenantA), automation, "x", nil, now)
	forgedWids["wids"] = []string{access.GlobalAdministrator}
	if got, _ := a.Authenticate("Bearer " + p.Mint(t, forgedWids)); got.GlobalAdmin {
		t.Error("an app-only token counted as a Global Administrator")
	}
	for name, header := range map[string]string{
		"none": "", "basic": "Basic dXNlcjpwYXNz", "bearer without token": "Bearer ", "garbage": "Bearer abc.def.ghi",
		"another API's token": "Bearer " + p.Mint(t, idptest.AccessClaims("00000003-0000-0000-c000-000000000000", string(tenantA), adminA, nil, now)),
		"expired":             "Bearer " + p.Mint(t, idptest.AccessClaims(clientID, string(tenantA), adminA, nil, now.Add(-3*time.Hour))),
	} {
		_, err := a.Authenticate(header)
		if apperr.CodeOf(err) != apperr.Unauthenticated || azfunc.HTTPStatus(apperr.CodeOf(err)) != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want 401 Unauthenticated", name, err)
		}
	}
}

type fixture struct {
	az    *access.Authorizer
	clock *clock.Fake
	log   *audit.Log
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	env := storetest.NewEnv(t, storetest.Options{})
	for _, tenant := range []core.TenantID{tenantA, tenantB} {
		if err := env.Keys.CreateTenantKey(ctx, tenant); err != nil {
			t.Fatal(err)
		}
	}
	log := audit.OpenLog(env.DB)
	trail := audit.Trail{Table: log, Now: clk.Now, Log: slog.New(slog.DiscardHandler)}
	az, err := access.NewAuthorizer(access.OpenData(env.DB), operators, trail, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{az: az, clock: clk, log: log}
}

// entries lists the tenant's authorisation log: its audit entries of actions access.*, oldest first.
func (f *fixture) entries(t *testing.T, tenant core.TenantID) []string {
	t.Helper()
	page, err := f.log.List(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(page.Items) - 1; i >= 0; i-- {
		e := page.Items[i]
		out = append(out, e.Action+" "+e.TargetType+" "+e.TargetID+" by "+e.ActorID+": "+e.Outcome)
	}
	return out
}

var (
	tenantAdminA = access.Principal{Tenant: tenantA, ObjectID: adminA, AppRoles: []string{access.AppRoleTenantAdmin}}
	plainUserA   = access.Principal{Tenant: tenantA, ObjectID: userA}
	globalAdminB = access.Principal{Tenant: tenantB, ObjectID: "0000bbbb-0000-4000-8000-000000000001", GlobalAdmin: true}
	operatorP    = access.Principal{Tenant: operators, ObjectID: operator, AppRoles: []string{access.AppRoleOperator}}
	officerP     = access.Principal{Tenant: operators, ObjectID: officer, AppRoles: []string{access.AppRoleSecurityOfficer}}
	automationP  = access.Principal{Tenant: operators, ObjectID: automation, App: true, AppRoles: []string{access.AppRoleAutomation}}
)

func allowed(f *fixture, p access.Principal, perm access.Permission, res access.Resource) bool {
	return f.az.Allow(ctx, p, perm, res) == nil
}

func TestZeroPrivilegesAndTenantAdmins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := access.TenantResource(tenantA), access.TenantResource(tenantB)
	tests := []struct {
		name string
		p    access.Principal
		perm access.Permission
		res  access.Resource
		want bool
	}{
		{"admin reads own tenant", tenantAdminA, access.TenantRead, a, true},
		{"admin changes own connector", tenantAdminA, access.ConnectorWrite, access.Resource{Tenant: tenantA, Path: "connector"}, true},
		{"admin erases in own tenant", tenantAdminA, access.PrivacyErase, a, true},
		{"admin reads another tenant", tenantAdminA, access.TenantRead, b, false},
		{"admin lists all tenants", tenantAdminA, access.TenantsList, access.Resource{}, false},
		{"admin cancels own tenant (operator's)", tenantAdminA, access.TenantLifecycle, a, false},
		{"global administrator of B reads B", globalAdminB, access.AuditRead, b, true},
		{"global administrator of B reads A", globalAdminB, access.TenantRead, a, false},
		{"a plain user has nothing", plainUserA, access.TenantRead, a, false},
		{"a plain user finds rooms in their tenant (Room Finder)", plainUserA, access.RoomsRead, a, true},
		{"a plain user finds no rooms in another tenant", plainUserA, access.RoomsRead, b, false},
		{"a plain user does not choose room lists", plainUserA, access.RoomsWrite, a, false},
		{"an app-only token of the tenant finds no rooms", access.Principal{Tenant: tenantA, ObjectID: adminA, App: true}, access.RoomsRead, a, false},
		{"admin chooses room lists", tenantAdminA, access.RoomsWrite, a, true},
		{"operator finds no rooms without a grant", operatorP, access.RoomsRead, a, false},
		{"an admin role on an app-only token is not an admin", access.Principal{Tenant: tenantA, ObjectID: adminA, App: true,
			AppRoles: []string{access.AppRoleTenantAdmin}}, access.TenantRead, a, false},
		{"operator lists tenants", operatorP, access.TenantsList, access.Resource{}, true},
		{"operator reads inside a tenant without a grant", operatorP, access.TenantRead, a, false},
		{"a customer claiming the operator role", access.Principal{Tenant: tenantA, ObjectID: userA, AppRoles: []string{access.AppRoleOperator}},
			access.TenantsList, access.Resource{}, false},
		{"automation suspends", automationP, access.TenantLifecycle, a, true},
		{"automation sets the purchased licenses", automationP, access.LicensesPurchase, b, true},
		{"automation assigns a user's license", automationP, access.LicensesWrite, b, false},
		{"admin sets the purchased licenses (billing's)", tenantAdminA, access.LicensesPurchase, a, false},
		{"automation reads personal data", automationP, access.PrivacyExport, a, false},
		{"automation role on a user token", access.Principal{Tenant: operators, ObjectID: operator, AppRoles: []string{access.AppRoleAutomation}},
			access.TenantLifecycle, a, false},
		{"officer reads a tenant's grants", officerP, access.AccessRead, a, true},
		{"officer reads a tenant's audit trail", officerP, access.AuditRead, a, false},
		{"no principal", access.Principal{}, access.TenantRead, a, false},
	}
	for _, tc := range tests {
		if got := allowed(f, tc.p, tc.perm, tc.res); got != tc.want {
			t.Errorf("%s: allowed = %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := f.az.Allow(ctx, tenantAdminA, access.TenantRead, b); !errors.Is(err, access.ErrDenied) ||
		azfunc.HTTPStatus(apperr.CodeOf(err)) != http.StatusForbidden || apperr.PublicMessage(err) != "not allowed" {
		t.Errorf("denial = %v, want a bare 403", err)
	}
}

func TestTenantAdminGrantsRolesInsideTheTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := access.TenantResource(tenantA)
	connector := access.Resource{Tenant: tenantA, Path: "connector"}
	if _, err := f.az.Grant(ctx, tenantAdminA, tenantA, access.GrantRequest{PrincipalID: userA, Role: "Helpdesk"}); err != nil {
		t.Fatal(err)
	}
	if !allowed(f, plainUserA, access.TenantRead, a) || allowed(f, plainUserA, access.ConnectorWrite, connector) {
		t.Error("helpdesk: want read, not write")
	}
	// A helpdesk user cannot hand out roles, and nobody grants what they do not hold.
	if _, err := f.az.Grant(ctx, plainUserA, tenantA, access.GrantRequest{PrincipalID: adminA, Role: "Helpdesk"}); !errors.Is(err, access.ErrDenied) {
		t.Errorf("helpdesk granting: %v", err)
	}
	for name, req := range map[string]access.GrantRequest{
		"operator role":    {PrincipalID: userA, Role: "OperatorSupport"},
		"unknown role":     {PrincipalID: userA, Role: "Root"},
		"not an object id": {PrincipalID: "ada@contoso.example", Role: "Helpdesk"},
		"bad scope":        {PrincipalID: userA, Role: "Helpdesk", Scope: "../tenantB"},
		"past expiry":      {PrincipalID: userA, Role: "Helpdesk", ExpiresAt: f.clock.Now().Add(-time.Minute)},
	} {
		if _, err := f.az.Grant(ctx, tenantAdminA, tenantA, req); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	// Nothing granted in A reaches B, and B's admin cannot touch A's grants.
	if allowed(f, plainUserA, access.TenantRead, access.TenantResource(tenantB)) {
		t.Error("a grant in A worked in B")
	}
	if _, err := f.az.Grants(ctx, globalAdminB, tenantA); !errors.Is(err, access.ErrDenied) {
		t.Errorf("B's admin listing A's grants: %v", err)
	}

	// A scoped, expiring grant: the connector only, until tomorrow.
	other := access.Principal{Tenant: tenantA, ObjectID: "0000aaaa-0000-4000-8000-000000000003"}
	if _, err := f.az.Grant(ctx, tenantAdminA, tenantA, access.GrantRequest{PrincipalID: other.ObjectID, Role: "TenantAdmin",
		Scope: "connector", ExpiresAt: f.clock.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if !allowed(f, other, access.ConnectorWrite, connector) || allowed(f, other, access.TenantRead, a) ||
		allowed(f, other, access.PrivacyExport, access.Resource{Tenant: tenantA, Path: "users/" + userA}) {
		t.Error("a grant scoped to the connector reached beyond it")
	}
	f.clock.Advance(24 * time.Hour)
	if allowed(f, other, access.ConnectorWrite, connector) {
		t.Error("an expired grant still works")
	}

	// The check that found it expired deleted it: the list holds only the live grant.
	grants, err := f.az.Grants(ctx, tenantAdminA, tenantA)
	if err != nil || len(grants) != 1 || grants[0].Role != "Helpdesk" {
		t.Fatalf("grants = %+v, %v", grants, err)
	}
	if err := f.az.Revoke(ctx, tenantAdminA, tenantA, userA, "Helpdesk"); err != nil {
		t.Fatal(err)
	}
	if allowed(f, plainUserA, access.TenantRead, a) {
		t.Error("a revoked grant still works")
	}
	if err := f.az.Revoke(ctx, tenantAdminA, tenantA, userA, "Helpdesk"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("revoking twice: %v", err)
	}
}

func TestOperatorAccessIsRequestedApprovedAndEndsByItself(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := access.TenantResource(tenantA)
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Fatal("operator reads a tenant before any grant")
	}
	request := func(p access.Principal, d time.Duration, why string) (access.AccessRequest, error) {
		return f.az.RequestOperatorAccess(ctx, p, tenantA, d, why)
	}
	if _, err := request(tenantAdminA, time.Hour, "x"); !errors.Is(err, access.ErrDenied) {
		t.Errorf("a tenant admin asking for operator access: %v", err)
	}
	for name, d := range map[string]time.Duration{"longer than 8 h": 9 * time.Hour, "under a minute": time.Second} {
		if _, err := request(operatorP, d, "ticket 42"); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	if _, err := request(operatorP, time.Hour, "  "); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("no justification: %v", err)
	}
	if _, err := f.az.RequestOperatorAccess(ctx, operatorP, "cccccccc-0000-4000-8000-00000000000c", time.Hour, "x"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("asking about a tenant that does not exist: %v", err)
	}
	req, err := request(operatorP, 2*time.Hour, "ticket 42: presence stuck")
	if err != nil || req.State != access.RequestPending || req.Minutes != 120 {
		t.Fatalf("request = %+v, %v", req, err)
	}
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Fatal("a pending request opened the tenant")
	}
	// Nobody but a security officer approves: not the operator, not the tenant admin.
	for name, p := range map[string]access.Principal{"the operator": operatorP, "the tenant admin": tenantAdminA} {
		if _, err := f.az.ApproveAccessRequest(ctx, p, tenantA, req.ID); !errors.Is(err, access.ErrDenied) {
			t.Errorf("%s approving: err = %v, want denied", name, err)
		}
	}
	f.clock.Advance(time.Minute)
	officersOwn, err := request(access.Principal{Tenant: operators, ObjectID: officer, AppRoles: []string{access.AppRoleOperator, access.AppRoleSecurityOfficer}}, time.Hour, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, officersOwn.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("an officer approving their own request: %v", err)
	}
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, "0000-nope"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("approving a request that does not exist: %v", err)
	}

	f.clock.Advance(time.Hour) // the access runs from the approval, not from the request
	g, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.ExpiresAt != f.clock.Now().Add(2*time.Hour) || g.GrantedBy != officer || g.PrincipalTenant != string(operators) ||
		g.Justification != "ticket 42: presence stuck" {
		t.Errorf("grant = %+v", g)
	}
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, req.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("approving twice: %v", err)
	}
	if !allowed(f, operatorP, access.TenantRead, a) || !allowed(f, operatorP, access.AuditRead, a) {
		t.Error("operator cannot read during the grant")
	}
	if allowed(f, operatorP, access.PrivacyExport, a) || allowed(f, operatorP, access.ConnectorWrite, access.Resource{Tenant: tenantA, Path: "connector"}) {
		t.Error("operator support reaches personal data or changes settings")
	}
	if allowed(f, operatorP, access.TenantRead, access.TenantResource(tenantB)) {
		t.Error("a grant on A opened B")
	}
	// The tenant admin sees requests and grants, and may end it early; otherwise it ends by itself.
	grants, err := f.az.Grants(ctx, tenantAdminA, tenantA)
	if err != nil || len(grants) != 1 || grants[0].Justification != "ticket 42: presence stuck" {
		t.Errorf("tenant admin's view = %+v, %v", grants, err)
	}
	requests, err := f.az.AccessRequests(ctx, tenantAdminA, tenantA)
	if err != nil || len(requests) != 2 || requests[0].ID != officersOwn.ID || requests[1].State != access.RequestApproved {
		t.Errorf("requests = %+v, %v", requests, err)
	}
	f.clock.Advance(2 * time.Hour)
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Error("operator access outlived its grant")
	}
	// A request nobody decided lapses; the tenant admin may deny one; a denied one cannot be approved.
	f.clock.Advance(access.RequestTTL)
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, officersOwn.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("approving a lapsed request: %v", err)
	}
	again, err := request(operatorP, time.Hour, "again")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.az.DenyAccessRequest(ctx, plainUserA, tenantA, again.ID); !errors.Is(err, access.ErrDenied) {
		t.Errorf("a plain user denying: %v", err)
	}
	if err := f.az.DenyAccessRequest(ctx, tenantAdminA, tenantA, again.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, again.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("approving a denied request: %v", err)
	}
	third, err := request(operatorP, time.Hour, "third")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.ApproveAccessRequest(ctx, officerP, tenantA, third.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.az.Revoke(ctx, tenantAdminA, tenantA, operator, "OperatorSupport"); err != nil {
		t.Fatal(err)
	}
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Error("operator access survived the tenant admin's revocation")
	}
	// The authorisation log: every step, refused ones included, in the tenant's audit trail.
	// Refusals of every kind (invalid, not found, conflict, forbidden) are recorded as denied.
	want := []string{
		"access.request grant:OperatorSupport " + adminA + " by " + adminA + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.approve grant:OperatorSupport  by " + operator + ": denied",
		"access.approve grant:OperatorSupport  by " + adminA + ": denied",
		"access.request grant:OperatorSupport " + officer + " by " + officer + ": success",
		"access.approve grant:OperatorSupport " + officer + " by " + officer + ": denied",
		"access.approve grant:OperatorSupport  by " + officer + ": denied",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": success",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": denied",
		"access.use grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.use grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.expire grant:OperatorSupport " + operator + " by system: success",
		"access.approve grant:OperatorSupport " + officer + " by " + officer + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.deny grant:OperatorSupport  by " + userA + ": denied",
		"access.deny grant:OperatorSupport " + operator + " by " + adminA + ": success",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": denied",
		"access.request grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": success",
		"access.revoke grant:OperatorSupport " + operator + " by " + adminA + ": success",
	}
	got := f.entries(t, tenantA)
	// Map-ordered steps ran in any order: compare each run of them as a set.
	sorted := func(s []string) string { s = slices.Clone(s); slices.Sort(s); return strings.Join(s, "\n") }
	if len(got) != len(want) || sorted(got[:4]) != sorted(want[:4]) || sorted(got[5:7]) != sorted(want[5:7]) ||
		strings.Join(got[7:], "\n") != strings.Join(want[7:], "\n") || got[4] != want[4] {
		t.Errorf("authorisation log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTenantAdminsDefineCustomRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := access.TenantResource(tenantA)
	licensing := []access.Permission{access.TenantRead, access.LicensesWrite}
	r, err := f.az.DefineRole(ctx, tenantAdminA, tenantA, "Licensing", licensing, "assigns licenses")
	if err != nil || !r.Custom || len(r.Permissions) != 2 {
		t.Fatalf("define = %+v, %v", r, err)
	}
	if _, err := f.az.Grant(ctx, tenantAdminA, tenantA, access.GrantRequest{PrincipalID: userA, Role: "Licensing"}); err != nil {
		t.Fatal(err)
	}
	if !allowed(f, plainUserA, access.LicensesWrite, access.Resource{Tenant: tenantA, Path: "users/" + adminA}) ||
		allowed(f, plainUserA, access.ConnectorRead, access.Resource{Tenant: tenantA, Path: "connector"}) {
		t.Error("the custom role does not give exactly its permissions")
	}
	// Tenant B neither sees A's role nor can grant it.
	if _, err := f.az.Grant(ctx, globalAdminB, tenantB, access.GrantRequest{PrincipalID: "0000bbbb-0000-4000-8000-000000000002", Role: "Licensing"}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("granting A's custom role in B: %v", err)
	}
	roles, err := f.az.Roles(ctx, globalAdminB, tenantB)
	if err != nil || slices.ContainsFunc(roles, func(r access.Role) bool { return r.Custom }) ||
		slices.ContainsFunc(roles, func(r access.Role) bool { return r.Name == "OperatorSupport" }) {
		t.Errorf("B's roles = %+v, %v", roles, err)
	}
	for name, call := range map[string]struct {
		name  string
		perms []access.Permission
	}{
		"a staff permission":  {"Billing", []access.Permission{access.LicensesPurchase}},
		"no permission":       {"Empty", nil},
		"a built-in name":     {"helpdesk", licensing},
		"a staff role's name": {"Operator", licensing},
		"a bad name":          {"x", licensing},
		"an unknown one":      {"Root", []access.Permission{"everything"}},
	} {
		if _, err := f.az.DefineRole(ctx, tenantAdminA, tenantA, call.name, call.perms, ""); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	// Within their own permissions: a delegate with access.grant and licenses cannot define, widen or
	// narrow a role beyond what they hold.
	delegate := access.Principal{Tenant: tenantA, ObjectID: "0000aaaa-0000-4000-8000-000000000004"}
	if _, err := f.az.DefineRole(ctx, tenantAdminA, tenantA, "Delegate", []access.Permission{access.AccessGrant, access.AccessRead, access.TenantRead, access.LicensesWrite}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.Grant(ctx, tenantAdminA, tenantA, access.GrantRequest{PrincipalID: delegate.ObjectID, Role: "Delegate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.DefineRole(ctx, delegate, tenantA, "Reader", []access.Permission{access.TenantRead}, ""); err != nil {
		t.Errorf("delegate defining within their permissions: %v", err)
	}
	if _, err := f.az.DefineRole(ctx, delegate, tenantA, "Eraser", []access.Permission{access.PrivacyErase}, ""); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("delegate defining beyond their permissions: %v", err)
	}
	if _, err := f.az.DefineRole(ctx, tenantAdminA, tenantA, "Privacy", []access.Permission{access.PrivacyExport}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.az.DefineRole(ctx, delegate, tenantA, "Privacy", []access.Permission{access.TenantRead}, ""); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("delegate narrowing a role they do not hold: %v", err)
	}
	if err := f.az.DeleteRole(ctx, delegate, tenantA, "Privacy"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("delegate deleting a role they do not hold: %v", err)
	}
	// Narrowing a role takes effect at once; a granted role cannot be deleted until revoked.
	if _, err := f.az.DefineRole(ctx, tenantAdminA, tenantA, "Licensing", []access.Permission{access.TenantRead}, ""); err != nil {
		t.Fatal(err)
	}
	if allowed(f, plainUserA, access.LicensesWrite, a) || !allowed(f, plainUserA, access.TenantRead, a) {
		t.Error("a narrowed role still gives what it lost")
	}
	if err := f.az.DeleteRole(ctx, tenantAdminA, tenantA, "Licensing"); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("deleting a granted role: %v", err)
	}
	if err := f.az.Revoke(ctx, tenantAdminA, tenantA, userA, "Licensing"); err != nil {
		t.Fatal(err)
	}
	if err := f.az.DeleteRole(ctx, tenantAdminA, tenantA, "Licensing"); err != nil {
		t.Fatal(err)
	}
	if err := f.az.DeleteRole(ctx, tenantAdminA, tenantA, "Licensing"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("deleting twice: %v", err)
	}
	roles, err = f.az.Roles(ctx, tenantAdminA, tenantA)
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	if err != nil || strings.Join(names, ",") != "TenantAdmin,Helpdesk,PrivacyOfficer,Delegate,Privacy,Reader" {
		t.Errorf("A's roles = %v, %v", names, err)
	}
}
