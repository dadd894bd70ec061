package graphtest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

const (
	tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "11111111-2222-3333-4444-555555555555"
	redirect = "https://connecthub.example/api/auth/callback"
	presence = "https://graph.microsoft.com/Presence.Read.All"
)

var ctx = context.Background()

type memCache struct {
	mu   sync.Mutex
	data []byte
}

func (c *memCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data) == 0 {
		return nil
	}
	return u.Unmarshal(c.data)
}

func (c *memCache) Export(_ context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	b, err := m.Marshal()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = b
	return err
}

func msal(t *testing.T, a *graphtest.Authority, c *memCache) confidential.Client {
	t.Helper()
	cred, err := confidential.NewCredFromSecret("not-checked")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := confidential.New(a.Host()+tenant, clientID, cred, confidential.WithInstanceDiscovery(false),
		confidential.WithHTTPClient(a.Client()), confidential.WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// code signs the user in at the authorize endpoint with scope and returns the authorization code.
func code(t *testing.T, a *graphtest.Authority, scope string) string {
	t.Helper()
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {redirect}, "scope": {scope}, "state": {"s"}}
	browser := a.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(a.Host() + tenant + "/oauth2/v2.0/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return back.Query().Get("code")
}

// The obvious fake echoes the requested scopes; Entra ID does not echo offline_access, and MSAL Go then
// reports it declined (issue #416). The fake must make MSAL fail exactly as the real service does, and
// succeed when only resource scopes are given to MSAL, with a refresh token in the cache.
func TestMSALDeclinesOfflineAccessRequestedExplicitly(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	a.SignIn(tenant, "aaaaaaaa-0000-4000-8000-000000000001", "svc@contoso.example")
	consent := presence + " offline_access openid profile"

	c := &memCache{}
	_, err := msal(t, a, c).AcquireTokenByAuthCode(ctx, code(t, a, consent), redirect, []string{presence, "offline_access", "openid", "profile"})
	if err == nil || !strings.Contains(err.Error(), "declined scopes are present: offline_access") {
		t.Fatalf("explicit offline_access err = %v, want MSAL's declined-scopes refusal", err)
	}
	if got := a.LastScope(); !strings.Contains(got, "offline_access") {
		t.Errorf("token request scope = %q", got)
	}

	c = &memCache{}
	res, err := msal(t, a, c).AcquireTokenByAuthCode(ctx, code(t, a, consent), redirect, []string{presence})
	if err != nil {
		t.Fatalf("resource scopes only: %v", err)
	}
	for _, s := range res.GrantedScopes {
		if s == "offline_access" || s == "openid" || s == "profile" {
			t.Errorf("granted scopes %v echo %s", res.GrantedScopes, s)
		}
	}
	if !strings.Contains(string(c.data), `"RefreshToken":{"`) {
		t.Error("no refresh token in MSAL's cache")
	}
}

// A refresh for "<resource>/.default" is answered with the consented permissions, never ".default":
// MSAL Go then reports .default declined. Explicit scopes refresh.
func TestSilentRefreshForDefaultScopeIsDeclined(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	a.SetTokenLifetime(2 * time.Minute) // inside MSAL's 5-minute refresh margin: the next use refreshes
	a.SignIn(tenant, "aaaaaaaa-0000-4000-8000-000000000001", "svc@contoso.example")
	c := &memCache{}
	cl := msal(t, a, c)
	res, err := cl.AcquireTokenByAuthCode(ctx, code(t, a, presence+" offline_access openid profile"), redirect, []string{presence})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.AcquireTokenSilent(ctx, []string{"https://graph.microsoft.com/.default"}, confidential.WithSilentAccount(res.Account))
	if err == nil || !strings.Contains(err.Error(), "declined scopes are present: https://graph.microsoft.com/.default") {
		t.Errorf(".default refresh err = %v, want declined .default", err)
	}
	before := a.Grants("refresh_token")
	tok, err := cl.AcquireTokenSilent(ctx, []string{presence}, confidential.WithSilentAccount(res.Account))
	if err != nil {
		t.Fatalf("explicit refresh: %v", err)
	}
	if a.Grants("refresh_token") != before+1 {
		t.Errorf("refresh grants = %d, want %d", a.Grants("refresh_token"), before+1)
	}
	who, ok := a.Identify(tok.AccessToken)
	if !ok || who.Audience != graphtest.GraphResource || strings.Join(who.Scopes, " ") != "Presence.Read.All User.Read" {
		t.Errorf("refreshed token = %+v (%v)", who, ok)
	}
}

func post(t *testing.T, a *graphtest.Authority, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := a.Client().PostForm(a.Host()+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	return c
}

func TestTokenAnswers(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	a.GrantConsent(tenant, clientID)

	// Client credentials: a v1.0 Graph token, no scope, no refresh token, a 60-90 minute lifetime.
	status, body := post(t, a, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"scope": {"https://graph.microsoft.com/.default"}})
	if status != http.StatusOK {
		t.Fatalf("client_credentials = %d %v", status, body)
	}
	if _, ok := body["scope"]; ok {
		t.Errorf("client credentials answer has scope %v", body["scope"])
	}
	if _, ok := body["refresh_token"]; ok {
		t.Error("client credentials answer has a refresh token")
	}
	if n, _ := body["expires_in"].(float64); n < 3600 || n > 5399 {
		t.Errorf("expires_in = %v, want 3600..5399", body["expires_in"])
	}
	c := claims(t, body["access_token"].(string))
	want := map[string]any{"ver": "1.0", "iss": "https://sts.windows.net/" + tenant + "/", "aud": graphtest.GraphResource,
		"appid": clientID, "idtyp": "app", "tid": tenant}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if c["roles"] == nil || c["scp"] != nil || c["oid"] == nil {
		t.Errorf("app token roles/scp/oid = %v/%v/%v", c["roles"], c["scp"], c["oid"])
	}

	// Errors: 400 with the AADSTS code in error_codes and the description, and the ids beside it.
	status, body = post(t, a, url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {"forged"}, "redirect_uri": {redirect}, "scope": {presence + " openid offline_access profile"}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("forged code = %d %v", status, body)
	}
	desc, _ := body["error_description"].(string)
	codes, _ := body["error_codes"].([]any)
	if !strings.HasPrefix(desc, "AADSTS9002313: ") || !strings.Contains(desc, "Trace ID: ") || !strings.Contains(desc, "Correlation ID: ") ||
		len(codes) != 1 || codes[0] != float64(9002313) || body["trace_id"] == nil || body["correlation_id"] == nil || body["timestamp"] == nil || body["error_uri"] == nil {
		t.Errorf("error body = %v", body)
	}

	// Two resources in one request are refused (AADSTS28000).
	status, body = post(t, a, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"scope": {"https://graph.microsoft.com/.default https://vault.azure.net/.default"}})
	if status != http.StatusBadRequest || !strings.HasPrefix(body["error_description"].(string), "AADSTS28000") {
		t.Errorf("two resources = %d %v", status, body)
	}
}

// A bad client assertion is the token endpoint's 401 (AADSTS700027), not a 400.
func TestBadAssertionIs401(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	cert, _, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	a.AppCertificate = cert
	status, body := post(t, a, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"scope": {"https://graph.microsoft.com/.default"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}})
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || !strings.HasPrefix(body["error_description"].(string), "AADSTS700027") {
		t.Errorf("bad assertion = %d %v", status, body)
	}
}

// adminConsent plays the admin's browser at the admin-consent endpoint and returns where it is sent.
func adminConsent(t *testing.T, a *graphtest.Authority, pathTenant string) (int, *url.URL) {
	t.Helper()
	browser := a.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st"}, "scope": {"https://graph.microsoft.com/.default"}}
	resp, err := browser.Get(a.Host() + pathTenant + "/v2.0/adminconsent?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, back
}

func appOnly(t *testing.T, a *graphtest.Authority) (int, map[string]any) {
	t.Helper()
	return post(t, a, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"https://graph.microsoft.com/.default"}})
}

// Admin consent comes back as query parameters only, which anyone can forge. What the admin really did
// shows at the token endpoint: no app-only token for the tenant before consent (AADSTS700016, as
// Entra answers for an app without a service principal there), one after.
func TestAdminConsentShowsOnlyInAppOnlyTokens(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	status, body := appOnly(t, a)
	codes, _ := body["error_codes"].([]any)
	if status != http.StatusBadRequest || body["error"] != "unauthorized_client" || len(codes) != 1 || codes[0] != float64(700016) ||
		!strings.HasPrefix(body["error_description"].(string), "AADSTS700016: Application with identifier '"+clientID+"' was not found") {
		t.Fatalf("app-only token before consent = %d %v, want 400 unauthorized_client AADSTS700016", status, body)
	}
	if _, ok := a.ServicePrincipal(tenant, clientID); ok {
		t.Fatal("service principal before consent")
	}

	code, back := adminConsent(t, a, strings.ToUpper(tenant))
	got := back.Query()
	if code != http.StatusFound || got.Get("admin_consent") != "True" || got.Get("tenant") != tenant || got.Get("state") != "st" {
		t.Errorf("admin consent redirect = %d %s", code, back)
	}
	status, body = appOnly(t, a)
	if status != http.StatusOK {
		t.Fatalf("app-only token after consent = %d %v", status, body)
	}
	sp, ok := a.ServicePrincipal(tenant, clientID)
	if c := claims(t, body["access_token"].(string)); !ok || c["oid"] != sp || c["tid"] != tenant {
		t.Errorf("token oid %v tid %v, service principal %q (%v): the token names the new service principal", c["oid"], c["tid"], sp, ok)
	}

	// Another tenant's consent is not this one's; deleting the enterprise app ends the tokens.
	other := graphtest.NewAuthority(t)
	other.GrantConsent("c0000000-0000-4000-8000-000000000009", clientID)
	if status, _ := appOnly(t, other); status != http.StatusBadRequest {
		t.Errorf("app-only token in a tenant that did not consent = %d, want 400", status)
	}
	a.RemoveServicePrincipal(tenant, clientID)
	if status, _ := appOnly(t, a); status != http.StatusBadRequest {
		t.Errorf("app-only token after the service principal was deleted = %d, want 400", status)
	}
}

// Right after consent the new service principal may not have replicated: AADSTS700016 for a few more
// seconds, then tokens.
func TestConsentLagThenToken(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a.SetClock(func() time.Time { return now })
	a.SetConsentLag(10 * time.Second)
	adminConsent(t, a, tenant)
	if status, body := appOnly(t, a); status != http.StatusBadRequest || !strings.HasPrefix(body["error_description"].(string), "AADSTS700016") {
		t.Errorf("token right after consent = %d %v, want AADSTS700016 while it replicates", status, body)
	}
	now = now.Add(10 * time.Second)
	if status, body := appOnly(t, a); status != http.StatusOK {
		t.Errorf("token once replicated = %d %v", status, body)
	}
}

// An outage is a 5xx with temporarily_unavailable and AADSTS90033, and passes.
func TestTokenOutage(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	a.GrantConsent(tenant, clientID)
	a.FailTokens(graphtest.TokenFailure{Status: http.StatusServiceUnavailable})
	status, body := appOnly(t, a)
	if codes, _ := body["error_codes"].([]any); status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" ||
		len(codes) != 1 || codes[0] != float64(90033) {
		t.Errorf("outage = %d %v", status, body)
	}
	if status, body := appOnly(t, a); status != http.StatusOK {
		t.Errorf("after the outage = %d %v", status, body)
	}
}
