package access_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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

func TestOperatorAccessIsGrantedByAnOfficerAndEndsByItself(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := access.TenantResource(tenantA)
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Fatal("operator reads a tenant before any grant")
	}
	for name, call := range map[string]func() error{
		"the operator approving themself": func() error {
			_, err := f.az.ApproveOperatorAccess(ctx, operatorP, tenantA, operator, time.Hour, "ticket 42")
			return err
		},
		"the tenant admin approving": func() error {
			_, err := f.az.ApproveOperatorAccess(ctx, tenantAdminA, tenantA, operator, time.Hour, "ticket 42")
			return err
		},
	} {
		if err := call(); !errors.Is(err, access.ErrDenied) {
			t.Errorf("%s: err = %v, want denied", name, err)
		}
	}
	for name, call := range map[string]func() error{
		"longer than 8 h": func() error {
			_, err := f.az.ApproveOperatorAccess(ctx, officerP, tenantA, operator, 9*time.Hour, "ticket 42")
			return err
		},
		"no justification": func() error {
			_, err := f.az.ApproveOperatorAccess(ctx, officerP, tenantA, operator, time.Hour, "  ")
			return err
		},
	} {
		if err := call(); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	if _, err := f.az.ApproveOperatorAccess(ctx, officerP, tenantA, officer, time.Hour, "ticket 42"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("an officer approving their own access: %v", err)
	}

	g, err := f.az.ApproveOperatorAccess(ctx, officerP, tenantA, operator, 2*time.Hour, "ticket 42: presence stuck")
	if err != nil {
		t.Fatal(err)
	}
	if g.ExpiresAt != f.clock.Now().Add(2*time.Hour) || g.GrantedBy != officer || g.PrincipalTenant != string(operators) {
		t.Errorf("grant = %+v", g)
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
	// The tenant admin sees it and may end it early; otherwise it ends by itself.
	grants, err := f.az.Grants(ctx, tenantAdminA, tenantA)
	if err != nil || len(grants) != 1 || grants[0].Justification != "ticket 42: presence stuck" {
		t.Errorf("tenant admin's view = %+v, %v", grants, err)
	}
	f.clock.Advance(2 * time.Hour)
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Error("operator access outlived its grant")
	}
	if _, err := f.az.ApproveOperatorAccess(ctx, officerP, tenantA, operator, time.Hour, "again"); err != nil {
		t.Fatal(err)
	}
	if err := f.az.Revoke(ctx, tenantAdminA, tenantA, operator, "OperatorSupport"); err != nil {
		t.Fatal(err)
	}
	if allowed(f, operatorP, access.TenantRead, a) {
		t.Error("operator access survived the tenant admin's revocation")
	}
	// The authorisation log: every attempt, refused ones included, in the tenant's audit trail.
	want := []string{
		"access.approve grant:OperatorSupport " + operator + " by " + operator + ": denied",
		"access.approve grant:OperatorSupport " + operator + " by " + adminA + ": denied",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": denied",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": denied",
		"access.approve grant:OperatorSupport " + officer + " by " + officer + ": denied",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": success",
		"access.use grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.use grant:OperatorSupport " + operator + " by " + operator + ": success",
		"access.expire grant:OperatorSupport " + operator + " by system: success",
		"access.approve grant:OperatorSupport " + operator + " by " + officer + ": success",
		"access.revoke grant:OperatorSupport " + operator + " by " + adminA + ": success",
	}
	got := f.entries(t, tenantA)
	// The first two refusals ran in map order: compare them as a set.
	if len(got) != len(want) || strings.Join(got[2:], "\n") != strings.Join(want[2:], "\n") ||
		!(got[0] == want[0] && got[1] == want[1] || got[0] == want[1] && got[1] == want[0]) {
		t.Errorf("authorisation log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
