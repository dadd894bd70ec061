package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/retention"
	"github.com/connecthub/connecthub/internal/tenants"
)

const e2eOperator = "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c"

// call makes an HTTP request to the host: as "fk" (the caller the test means) with a bearer token
// from devhost's development issuer, unless key is "" (no token). Right after start the handler may
// still be loading the issuer's keys and answers 503, as it tells any client to retry: so does this.
func call(t testing.TB, method, u, key, body string) (int, string) {
	t.Helper()
	auth := ""
	if key != "" {
		auth = "Bearer " + bearerFor(t, u)
	}
	return callWith(t, method, u, auth, body)
}

// callWith is call with the Authorization header given ("" for none), retrying the 503 of keys still
// loading.
func callWith(t testing.TB, method, u, auth, body string) (int, string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, out := callOnce(t, method, u, auth, body)
		if code != http.StatusServiceUnavailable || !strings.Contains(out, "signing keys are loading") || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func callOnce(t testing.TB, method, u, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bearerFor mints, through devhost's development issuer, the token of whoever acts on u in these tests:
// ConnectHub's billing automation (an app of the operator tenant) for onboarding, lifecycle and
// purchased licenses, the tenant's admin for everything else. Both carry e2eOperator as their object
// id, so the audit trail names one actor.
func bearerFor(t testing.TB, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req := devhost.DevTokenRequest{User: e2eOperator}
	_, rest, _ := strings.Cut(parsed.Path, "/api/tenants/")
	tenant, action, _ := strings.Cut(rest, "/")
	switch action {
	case "onboarding", "suspend", "cancel", "reactivate", "licenses":
		req.Tenant, req.App, req.Roles = config.DevOperatorTenant, true, []string{access.AppRoleAutomation}
	default:
		req.Tenant, req.Roles = tenant, []string{access.AppRoleTenantAdmin}
	}
	return mintToken(t, parsed.Scheme+"://"+parsed.Host, req)
}

// mintToken asks devhost's development issuer at base for req's token.
func mintToken(t testing.TB, base string, req devhost.DevTokenRequest) string {
	t.Helper()
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, base+"/devissuer/token", bytes.NewReader(b))
	hr.Header.Set("x-functions-key", "mk")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("development token: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

// Onboarding by admin consent and an operator action, through devhost and the real handler binary, with
// the identity platform and Graph faked at the wire.
func TestTenantOnboardingAndOperatorActions(t *testing.T) {
	c := newCloud(t)
	s := startStack(t, func(settings map[string]string) {
		c.settings(settings)
		settings["CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI"] = c.front + "/api/onboarding/consent"
		settings["CONNECTHUB_ADMIN_CONSENT_WAIT"] = "0s" // a forged callback below is refused at once
	})
	c.serve(t, s)
	c.uploadAppCertificate(t, s)
	api := s.host.URL() + "/api"
	tenant := storetest.NewTenantID(t)

	if code, _ := call(t, "POST", api+"/tenants/"+string(tenant)+"/onboarding", "", `{"purchasedLicenses":5,"homeRegion":"westeurope"}`); code != http.StatusUnauthorized {
		t.Fatalf("onboarding without the function key = %d, want 401", code)
	}
	code, body := call(t, "POST", api+"/tenants/"+string(tenant)+"/onboarding", "fk", `{"purchasedLicenses":5,"homeRegion":"westeurope"}`)
	if code != http.StatusCreated {
		t.Fatalf("StartOnboarding = %d %s", code, body)
	}
	var ob struct{ ConsentURL string }
	if err := json.Unmarshal([]byte(body), &ob); err != nil {
		t.Fatal(err)
	}
	link, err := url.Parse(ob.ConsentURL)
	if err != nil || !strings.HasSuffix(link.Path, "/"+string(tenant)+"/v2.0/adminconsent") || link.Query().Get("client_id") != appID {
		t.Fatalf("consent URL = %q", ob.ConsentURL)
	}
	state := link.Query().Get("state")

	// Microsoft's redirect written by whoever holds the link (anonymous): a wrong state is an invalid
	// link; the right state with admin_consent=True is not believed until Microsoft confirms it.
	if code, page := call(t, "GET", api+"/onboarding/consent?state="+url.QueryEscape(state+"x")+"&admin_consent=True", "", ""); code != http.StatusBadRequest || strings.Contains(page, state) {
		t.Errorf("forged state = %d %q", code, page)
	}
	forged := api + "/onboarding/consent?admin_consent=True&tenant=" + string(tenant) + "&state=" + url.QueryEscape(state) + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
	if code, page := call(t, "GET", forged, "", ""); code != http.StatusForbidden || !strings.Contains(page, "Microsoft has not confirmed") {
		t.Errorf("forged consent = %d %q, want 403 and the unconfirmed page", code, page)
	}
	if code, body := call(t, "GET", api+"/tenants/"+string(tenant), "fk", ""); code != http.StatusOK || !strings.Contains(body, `"state":"pending"`) {
		t.Fatalf("tenant after a forged consent = %d %s, want pending", code, body)
	}

	// The admin follows the link: the identity platform records the consent and redirects back.
	code, page := call(t, "GET", c.adminConsents(t, ob.ConsentURL, c.front+"/api/onboarding/consent?"), "", "")
	if code != http.StatusOK || !strings.Contains(page, "now connected") {
		t.Fatalf("consent callback = %d %q", code, page)
	}
	if code, _ := call(t, "GET", forged, "", ""); code != http.StatusBadRequest {
		t.Errorf("replayed consent = %d, want 400", code)
	}

	// Operator access: none inside the tenant until the operator asks and a security officer approves,
	// then read-only, visible to the tenant admin, and gone once the tenant admin revokes it. Real
	// tokens, real handler.
	const officerID, operatorID = "0000ffff-0000-4000-8000-000000000002", "0000ffff-0000-4000-8000-000000000001"
	as := func(req devhost.DevTokenRequest) string { return "Bearer " + mintToken(t, s.host.URL(), req) }
	operator := as(devhost.DevTokenRequest{Tenant: config.DevOperatorTenant, User: operatorID, Roles: []string{access.AppRoleOperator}})
	officer := as(devhost.DevTokenRequest{Tenant: config.DevOperatorTenant, User: officerID, Roles: []string{access.AppRoleSecurityOfficer}})
	admin := as(devhost.DevTokenRequest{Tenant: string(tenant), User: e2eOperator, Roles: []string{access.AppRoleTenantAdmin}})
	otherAdmin := as(devhost.DevTokenRequest{Tenant: string(storetest.NewTenantID(t)), User: e2eOperator, Roles: []string{access.AppRoleTenantAdmin}})
	withBody := func(method, u, auth, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	with := func(method, u, auth, body string) int { code, _ := withBody(method, u, auth, body); return code }
	tenantURL := api + "/tenants/" + string(tenant)
	for name, tc := range map[string]struct {
		auth string
		want int
	}{"operator before any grant": {operator, 403}, "another tenant's admin": {otherAdmin, 403}, "the tenant's admin": {admin, 200}} {
		if code := with("GET", tenantURL, tc.auth, ""); code != tc.want {
			t.Errorf("%s: GET tenant = %d, want %d", name, code, tc.want)
		}
	}
	rc, rb := withBody("POST", tenantURL+"/access-requests", operator, `{"minutes":60,"justification":"e2e"}`)
	var request struct{ ID, State string }
	if err := json.Unmarshal(rb, &request); rc != http.StatusCreated || err != nil || request.State != "pending" {
		t.Fatalf("operator's request = %d %s", rc, rb)
	}
	if code := with("GET", tenantURL, operator, ""); code != http.StatusForbidden {
		t.Errorf("operator with a pending request = %d, want 403", code)
	}
	if code := with("POST", tenantURL+"/access-requests/"+request.ID+"/approve", admin, ""); code != http.StatusForbidden {
		t.Errorf("tenant admin approving = %d, want 403 (officers approve)", code)
	}
	if code := with("POST", tenantURL+"/access-requests/"+request.ID+"/approve", officer, ""); code != http.StatusCreated {
		t.Fatalf("officer's approval = %d", code)
	}
	if code := with("GET", tenantURL, operator, ""); code != http.StatusOK {
		t.Errorf("operator during the grant = %d, want 200", code)
	}
	if code := with("POST", tenantURL+"/suspend", operator, ""); code != http.StatusForbidden {
		t.Errorf("operator suspending during a read-only grant = %d, want 403", code)
	}
	if code := with("DELETE", tenantURL+"/authorisations/"+operatorID+"/OperatorSupport", admin, ""); code != http.StatusNoContent {
		t.Errorf("tenant admin's revocation = %d", code)
	}
	if code := with("GET", tenantURL, operator, ""); code != http.StatusForbidden {
		t.Errorf("operator after the revocation = %d, want 403", code)
	}

	code, body = call(t, "GET", api+"/tenants/"+string(tenant), "fk", "")
	if code != http.StatusOK || !strings.Contains(body, `"state":"active"`) || !strings.Contains(body, `"purchasedLicenses":5`) {
		t.Errorf("GetTenant = %d %s", code, body)
	}
	// The tenant admin objects to all processing: that ends the service, on the cancellation's clock.
	code, body = call(t, "POST", api+"/tenants/"+string(tenant)+"/objection", "fk", "")
	if code != http.StatusOK || !strings.Contains(body, `"state":"cancelled"`) || !strings.Contains(body, `"deletionDueAt"`) ||
		!strings.Contains(body, `"kind":"objection"`) {
		t.Errorf("ObjectToProcessing = %d %s", code, body)
	}
	if code, body := call(t, "PUT", api+"/tenants/"+string(tenant)+"/licenses", "fk", `{"purchased":7}`); code != http.StatusConflict {
		t.Errorf("licenses of a cancelled tenant = %d %s, want 409", code, body)
	}

	page1, err := audit.OpenLog(s.store.DB()).List(context.Background(), tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range page1.Items {
		trail = append([]string{e.Action + "/" + e.Outcome + "/" + e.ActorID}, trail...)
	}
	want := []string{"tenant.onboarding.start/success/" + e2eOperator, "tenant.consent/denied/tenant-admin",
		"tenant.consent/success/tenant-admin", "tenant.consent/denied/tenant-admin", "access.request/success/" + operatorID,
		"access.approve/success/" + officerID, "access.use/success/" + operatorID, "access.revoke/success/" + e2eOperator,
		"tenant.cancel/success/" + e2eOperator, "privacy.objection/success/" + e2eOperator, "tenant.licenses.set/denied/" + e2eOperator}
	if fmt.Sprint(trail) != fmt.Sprint(want) {
		t.Errorf("audit = %v\nwant    %v", trail, want)
	}
}

// EnforceRetention fired on demand deletes a tenant cancelled more than 24 h ago, keys and secrets
// first, and leaves a receipt; a tenant cancelled an hour ago is untouched.
func TestRetentionTimerThroughDevhost(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	keys := tenantkey.New(s.secrets, tenantkey.Options{})
	seed := func(cancelledAgo time.Duration) core.TenantID {
		id := storetest.NewTenantID(t)
		if err := keys.CreateTenantKey(ctx, id); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if err := s.store.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantCancelled, CancelledAt: now.Add(-cancelledAgo), PurchasedLicenses: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.store.Users.Insert(ctx, id, registry.User{ID: "aaaaaaaa-0000-4000-8000-000000000001", DisplayName: "Ada", Licensed: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := tenants.OpenData(s.store.DB()).Licenses.Insert(ctx, id, tenants.Assignment{Product: "presence", UserID: "aaaaaaaa-0000-4000-8000-000000000001", AssignedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.secrets.Set(ctx, secrets.PBXCredentialName(id), "token"); err != nil {
			t.Fatal(err)
		}
		return id
	}
	due, recent := seed(25*time.Hour), seed(time.Hour)

	if err := s.host.FireTimer(ctx, "EnforceRetention"); err != nil {
		t.Fatalf("EnforceRetention: %v", err)
	}
	if _, err := s.store.Tenants.Get(ctx, due); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("due tenant still registered: %v", err)
	}
	if _, err := s.store.Users.Get(ctx, due, "aaaaaaaa-0000-4000-8000-000000000001"); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("due tenant's user still stored: %v", err)
	}
	rk, _ := tenants.LicenseKey("presence", "aaaaaaaa-0000-4000-8000-000000000001")
	if _, err := tenants.OpenData(s.store.DB()).Licenses.Get(ctx, due, rk); err != nil {
		t.Errorf("license data must stay 30 days: %v", err)
	}
	// The handler wrote the secrets file; read it afresh.
	if names, err := s.secrets.(secrets.Lister).List(ctx, secrets.TenantSecretPrefix(due)); err != nil || len(names) != 0 {
		t.Errorf("due tenant's secrets = %v, %v; want none", names, err)
	}
	recs, err := retention.OpenReceipts(s.store.DB()).List(ctx, due, nil)
	if err != nil || len(recs.Items) != 1 || !recs.Items[0].KeyDestroyed || recs.Items[0].Categories != "tenant" || recs.Items[0].Secrets != 1 {
		t.Errorf("receipts = %+v, %v", recs.Items, err)
	}
	if u, err := s.store.Users.Get(ctx, recent, "aaaaaaaa-0000-4000-8000-000000000001"); err != nil || u.DisplayName != "Ada" {
		t.Errorf("tenant within its grace period lost data: %+v, %v", u, err)
	}
}
