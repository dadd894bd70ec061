package serviceuser_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

const (
	clientID = "11111111-2222-3333-4444-555555555555"
	redirect = "https://connecthub.example/api/auth/callback"
	suID     = "AAAAAAAA-0000-4000-8000-000000000001" // upper case: ids are canonicalised
)

var ctx = context.Background()

// jwtHeader starts every access token of the fake authority (base64url of `{"alg":"RS256",`).
const jwtHeader = "eyJhbGciOiJSUzI1NiIs"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	env    *storetest.Env
	auth   *graphtest.Authority
	m      *serviceuser.Manager
	tenant core.TenantID
	clock  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := storetest.NewEnv(t, storetest.Options{})
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err := env.Secrets.Set(ctx, secrets.AppClientCertName, pemText); err != nil {
		t.Fatal(err)
	}
	auth := graphtest.NewAuthority(t)
	auth.AppCertificate = cert
	c := &clock{t: time.Now()}
	m, err := serviceuser.New(serviceuser.Config{ClientID: clientID, AuthorityHost: auth.Host(), RedirectURI: redirect,
		CertName: secrets.AppClientCertName, HTTPClient: auth.Client(), Now: c.Now}, env.Secrets, env.Keys, serviceuser.OpenTable(env.DB))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, auth: auth, m: m, tenant: env.NewTenant(t), clock: c}
}

// signIn plays the admin's browser: the connect link, the authority's authorize page, and back with
// code and state.
func (f *fixture) signIn(t *testing.T) (serviceuser.Callback, *url.URL) {
	t.Helper()
	link, _, err := f.m.Link(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	lu, err := url.Parse(link)
	if err != nil || lu.Path != "/api/auth/start" {
		t.Fatalf("link %q: the start function lives next to the callback", link)
	}
	authURL, nonce, err := f.m.BeginLink(ctx, lu.Query().Get("link"))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	browser := f.auth.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := back.Query()
	return serviceuser.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), CookieNonce: nonce}, u
}

func TestConnectAndUseServiceUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SignIn(string(f.tenant), suID, "presence-svc@contoso.example")
	cb, authURL := f.signIn(t)

	q := authURL.Query()
	checks := []struct{ name, got, want string }{
		{"path", authURL.Path, "/" + string(f.tenant) + "/oauth2/v2.0/authorize"},
		{"client_id", q.Get("client_id"), clientID},
		{"redirect_uri", q.Get("redirect_uri"), redirect},
		{"response_type", q.Get("response_type"), "code"},
		{"code_challenge_method", q.Get("code_challenge_method"), "S256"},
		{"prompt", q.Get("prompt"), "select_account"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("authorize %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, s := range []string{"https://graph.microsoft.com/Presence.Read.All", "offline_access"} {
		if !strings.Contains(q.Get("scope"), s) {
			t.Errorf("scope %q lacks %s", q.Get("scope"), s)
		}
	}
	if q.Get("code_challenge") == "" || strings.Contains(q.Get("state"), q.Get("code_challenge")) {
		t.Errorf("PKCE challenge missing or state leaks it")
	}

	su, err := f.m.Complete(ctx, cb)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(suID)
	if su.ID != id || su.State != serviceuser.Active || su.UserPrincipalName != "presence-svc@contoso.example" {
		t.Errorf("service user = %+v", su)
	}

	// The token cache is in the secret store, sealed; the table row holds no token.
	name, _ := secrets.ServiceUserTokenName(f.tenant, suID)
	v, err := f.env.Secrets.Get(ctx, name)
	if err != nil {
		t.Fatalf("token cache not stored: %v", err)
	}
	// A clear cache would show its JSON keys and the access token's JWT header ({"alg":"RS256",…}); a
	// sealed one is random base64, in which these long strings do not occur by chance.
	if strings.Contains(v, "RefreshToken") || strings.Contains(v, jwtHeader) {
		t.Error("token cache stored in clear")
	}
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := svc.NewClient(f.env.Prefix+serviceuser.TableServiceUsers).GetEntity(ctx, string(f.tenant), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(ent.Value); strings.Contains(s, "rt-") || strings.Contains(s, jwtHeader) || strings.Contains(s, "presence-svc") {
		t.Errorf("table row %s holds a token or the clear UPN", s)
	}

	// The credential serves delegated tokens for this account, refreshing through the stored cache.
	cred, err := f.m.Credential(f.tenant, suID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Token, jwtHeader) {
		t.Errorf("access token does not start with %s: the clear-cache check above looks for the wrong thing", jwtHeader)
	}
	who, ok := f.auth.Identify(tok.Token)
	if !ok || !strings.EqualFold(who.UserID, suID) || who.Tenant != string(f.tenant) || who.AppOnly() {
		t.Errorf("token identifies %+v (%v)", who, ok)
	}
	refreshes := f.auth.Grants("refresh_token")
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		t.Fatal(err)
	}
	if f.auth.Grants("refresh_token") != refreshes {
		t.Errorf("a cached, unexpired token was refreshed again")
	}

	// A fresh manager (another instance) reads the cache from the secret registry.
	m2, _ := serviceuser.New(serviceuser.Config{ClientID: clientID, AuthorityHost: f.auth.Host(), RedirectURI: redirect,
		CertName: secrets.AppClientCertName, HTTPClient: f.auth.Client()}, f.env.Secrets, f.env.Keys, serviceuser.OpenTable(f.env.DB))
	cred2, _ := m2.Credential(f.tenant, id)
	if _, err := cred2.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		t.Errorf("second instance: %v", err)
	}
}

func TestRevokedRefreshMarksReconsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SetTokenLifetime(time.Minute) // MSAL refreshes tokens this close to expiry
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	cb, _ := f.signIn(t)
	if _, err := f.m.Complete(ctx, cb); err != nil {
		t.Fatal(err)
	}
	// Revoked (password reset, consent withdrawn): Entra refuses the refresh with invalid_grant
	// AADSTS50173; the account is marked for re-consent.
	f.auth.Revoke(suID)
	id := strings.ToLower(suID)
	m3, _ := serviceuser.New(serviceuser.Config{ClientID: clientID, AuthorityHost: f.auth.Host(), RedirectURI: redirect,
		CertName: secrets.AppClientCertName, HTTPClient: f.auth.Client()}, f.env.Secrets, f.env.Keys, serviceuser.OpenTable(f.env.DB))
	cred3, _ := m3.Credential(f.tenant, id)
	_, err := cred3.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if !errors.Is(err, serviceuser.ErrReconsent) {
		t.Fatalf("revoked refresh err = %v, want ErrReconsent", err)
	}
	got, _ := serviceuser.OpenTable(f.env.DB).Get(ctx, f.tenant, id)
	if got.State != serviceuser.Reconsent || got.LastError != "refresh_refused" {
		t.Errorf("after refused refresh: %+v", got)
	}
}

func TestRefreshBeforeExpiryRecordsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SetTokenLifetime(2 * time.Minute) // inside MSAL's 5-minute refresh window: every use refreshes
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	cb, _ := f.signIn(t)
	if _, err := f.m.Complete(ctx, cb); err != nil {
		t.Fatal(err)
	}
	cred, _ := f.m.Credential(f.tenant, suID)
	before := f.auth.Grants("refresh_token")
	f.clock.Add(time.Minute)
	// Each use finds the cached token within 5 minutes of expiry, so MSAL refreshes it first.
	for range 2 {
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
			t.Fatal(err)
		}
	}
	if f.auth.Grants("refresh_token") != before+2 {
		t.Errorf("refresh grants = %d, want %d", f.auth.Grants("refresh_token"), before+2)
	}
	got, _ := serviceuser.OpenTable(f.env.DB).Get(ctx, f.tenant, strings.ToLower(suID))
	if !got.LastRefreshAt.Equal(f.clock.Now().UTC().Truncate(100 * time.Nanosecond)) {
		t.Errorf("LastRefreshAt = %v, want %v", got.LastRefreshAt, f.clock.Now().UTC())
	}
}

func TestCompleteRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	other := storetest.NewTenantID(t)
	tests := []struct {
		name   string
		mangle func(cb serviceuser.Callback) serviceuser.Callback
		before func()
		code   apperr.Code
	}{
		{"cookie from another browser", func(cb serviceuser.Callback) serviceuser.Callback { cb.CookieNonce = "other"; return cb }, nil, apperr.Forbidden},
		{"no cookie", func(cb serviceuser.Callback) serviceuser.Callback { cb.CookieNonce = ""; return cb }, nil, apperr.Forbidden},
		{"state moved to another tenant", func(cb serviceuser.Callback) serviceuser.Callback {
			cb.State = string(other) + cb.State[36:]
			return cb
		}, nil, apperr.Invalid},
		{"tampered state", func(cb serviceuser.Callback) serviceuser.Callback {
			cb.State = cb.State[:len(cb.State)-2] + "AA"
			return cb
		}, nil, apperr.Invalid},
		{"garbage state", func(cb serviceuser.Callback) serviceuser.Callback { cb.State = "x"; return cb }, nil, apperr.Invalid},
		{"expired state", func(cb serviceuser.Callback) serviceuser.Callback { return cb }, func() { f.clock.Add(time.Hour) }, apperr.Invalid},
		{"consent declined", func(cb serviceuser.Callback) serviceuser.Callback { cb.Code, cb.Error = "", "access_denied"; return cb }, nil, apperr.Forbidden},
		{"forged code", func(cb serviceuser.Callback) serviceuser.Callback { cb.Code = "code-forged"; return cb }, nil, apperr.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, _ := f.signIn(t)
			if tt.before != nil {
				tt.before()
			}
			_, err := f.m.Complete(ctx, tt.mangle(cb))
			if err == nil || apperr.CodeOf(err) != tt.code {
				t.Errorf("Complete err = %v (code %v), want code %v", err, apperr.CodeOf(err), tt.code)
			}
		})
	}
	if page, err := serviceuser.OpenTable(f.env.DB).List(ctx, f.tenant, nil); err != nil || len(page.Items) != 0 {
		t.Errorf("refused sign-ins left service users: %+v, %v", page.Items, err)
	}

	// A code is single use: the same callback twice connects once.
	f.clock.Add(-time.Hour)
	cb, _ := f.signIn(t)
	if _, err := f.m.Complete(ctx, cb); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Complete(ctx, cb); apperr.CodeOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "AADSTS54005") {
		t.Errorf("replayed code err = %v, want Forbidden (AADSTS54005, already redeemed)", err)
	}
}

// Entra ID issues a refresh token only when offline_access was granted at the authorize endpoint; an
// account signed in without it must not be kept (it would fail an hour later).
func TestCompleteRefusesWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	authURL, nonce, err := f.m.Begin(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	q.Set("scope", strings.Join(slices.DeleteFunc(strings.Fields(q.Get("scope")), func(s string) bool { return s == "offline_access" }), " "))
	u.RawQuery = q.Encode()
	browser := f.auth.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	_, err = f.m.Complete(ctx, serviceuser.Callback{State: back.Query().Get("state"), Code: back.Query().Get("code"), CookieNonce: nonce})
	if apperr.CodeOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "refresh token") {
		t.Fatalf("Complete err = %v, want Forbidden naming the refresh token", err)
	}
	name, _ := secrets.ServiceUserTokenName(f.tenant, suID)
	if _, err := f.env.Secrets.Get(ctx, name); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("token cache saved anyway: %v", err)
	}
	if page, err := serviceuser.OpenTable(f.env.DB).List(ctx, f.tenant, nil); err != nil || len(page.Items) != 0 {
		t.Errorf("service user kept: %+v, %v", page.Items, err)
	}
}

// Authorization codes live about ten minutes (AADSTS70008 after that): an admin who leaves the browser
// on the consent page is refused, not half-connected.
func TestCompleteRefusesExpiredCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	cb, _ := f.signIn(t)
	f.auth.SetClock(func() time.Time { return time.Now().Add(graphtest.CodeLifetime + time.Minute) })
	if _, err := f.m.Complete(ctx, cb); apperr.CodeOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "AADSTS70008") {
		t.Errorf("Complete with an expired code err = %v, want Forbidden (AADSTS70008)", err)
	}
}

// The credential serves Graph only; asking it for another resource is refused without marking the
// account for re-consent.
func TestCredentialRefusesOtherResource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.auth.SignIn(string(f.tenant), suID, "svc@contoso.example")
	cb, _ := f.signIn(t)
	if _, err := f.m.Complete(ctx, cb); err != nil {
		t.Fatal(err)
	}
	cred, _ := f.m.Credential(f.tenant, suID)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err == nil || errors.Is(err, serviceuser.ErrReconsent) {
		t.Errorf("token for another resource err = %v, want a refusal that is not ErrReconsent", err)
	}
	got, _ := serviceuser.OpenTable(f.env.DB).Get(ctx, f.tenant, strings.ToLower(suID))
	if got.State != serviceuser.Active {
		t.Errorf("state = %q, want active", got.State)
	}
}

// Only registered, active tenants may connect service users: an unknown tenant is 404, a suspended one
// 403, and neither reaches the identity platform.
func TestBeginOnlyForActiveTenants(t *testing.T) {
	f := newFixture(t)
	m, err := serviceuser.New(serviceuser.Config{ClientID: clientID, AuthorityHost: f.auth.Host(), RedirectURI: redirect,
		CertName: secrets.AppClientCertName, HTTPClient: f.auth.Client(), Tenants: f.env.Store.Tenants},
		f.env.Secrets, f.env.Keys, serviceuser.OpenTable(f.env.DB))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.env.Store.Tenants.Create(ctx, registry.Tenant{ID: f.tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	if u, _, err := m.Begin(ctx, f.tenant); err != nil || !strings.Contains(u, "/oauth2/v2.0/authorize") {
		t.Fatalf("active tenant: %q, %v", u, err)
	}
	if _, err := f.env.Store.Tenants.Update(ctx, f.tenant, func(t *registry.Tenant) error {
		t.State = registry.TenantSuspended
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Begin(ctx, f.tenant); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("suspended tenant: err = %v, want Forbidden", err)
	}
	unknown := storetest.NewTenantID(t)
	if _, _, err := m.Begin(ctx, unknown); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown tenant: err = %v, want NotFound", err)
	}
}

// A connect link names one tenant, is sealed with its key and expires: it cannot be forged, moved to
// another tenant or used late.
func TestConnectLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	link, expires, err := f.m.Link(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(serviceuser.LinkTTL); expires.Before(want.Add(-time.Second)) || expires.After(want) {
		t.Errorf("expires %v, want about %v", expires, want)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("link")
	if _, _, err := f.m.BeginLink(ctx, token); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
	other := f.env.NewTenant(t)
	parts := strings.SplitN(token, ".", 3)
	for name, bad := range map[string]string{
		"another tenant's id":  string(other) + "." + parts[1] + "." + parts[2],
		"another link id":      parts[0] + ".AAAAAAAAAAAAAAAAAAAAAA." + parts[2],
		"a flipped seal":       parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA",
		"not a link":           "hello",
		"an unregistered GUID": "00000000-0000-4000-8000-000000000099." + parts[1] + "." + parts[2],
	} {
		if _, _, err := f.m.BeginLink(ctx, bad); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	f.clock.Add(serviceuser.LinkTTL + time.Second)
	if _, _, err := f.m.BeginLink(ctx, token); apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.PublicMessage(err), "expired") {
		t.Errorf("expired link: %v", err)
	}
}
