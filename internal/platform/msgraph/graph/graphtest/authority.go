// Package graphtest holds test fakes of what ConnectHub's Graph side talks to: the Microsoft identity
// platform (Authority: OpenID configuration, authorize, admin consent and token endpoints) and Microsoft
// Graph itself (Graph: subscriptions with the validation handshake, users and users delta, presence, the
// service principals consent creates, and the notifications Graph posts). They answer as the real services do, quirks included, each behaviour
// with its source in a comment, so the real SDK clients (msgraph-sdk-go, azidentity, MSAL) run against
// them unchanged and a test cannot pass only because the fake shares our assumptions. It does not import
// msgraph-sdk-go.
package graphtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

// GraphResource is Microsoft Graph's resource URI, the aud of every access token Graph accepts.
const GraphResource = "https://graph.microsoft.com"

// Identity is who a token was issued to: an app alone (app-only) or a signed-in user of a tenant.
type Identity struct {
	Tenant   string
	ClientID string
	UserID   string // "" for app-only tokens
	UPN      string
	// Audience is the token's aud; IssueToken takes "" as Microsoft Graph.
	Audience string
	// Scopes (scp) are the delegated permissions of a user token, Roles the application permissions of an
	// app-only token, as short names ("Presence.Read.All").
	Scopes []string
	Roles  []string
}

// AppOnly reports whether the token carries no user.
func (i Identity) AppOnly() bool { return i.UserID == "" }

// Authority is a fake Microsoft identity platform on HTTPS (MSAL refuses plain-HTTP authorities).
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	GET  /{tenant}/discovery/v2.0/keys
//	GET  /{tenant}/oauth2/v2.0/authorize   → 302 to redirect_uri with code and state (the user "signs in")
//	GET  /{tenant}/v2.0/adminconsent       → the admin consents: the app gets a service principal in the
//	                                       tenant; 302 to redirect_uri?admin_consent=True&tenant=…&state=…
//	POST /{tenant}/oauth2/v2.0/token       client_credentials (only in a tenant that consented; certificate
//	                                       assertion checked against AppCertificate), authorization_code
//	                                       (PKCE checked), refresh_token
type Authority struct {
	srv *httptest.Server
	// AppCertificate, when set, must have signed client assertions (the app's client certificate).
	AppCertificate *x509.Certificate
	// Consented are the delegated permissions of Microsoft Graph that the tenant's admin consented to
	// for the app (default Presence.Read.All and User.Read). Other resources have none.
	Consented []string
	// AppRoles are the application permissions consented for the app (the roles of app-only tokens).
	AppRoles []string

	clockMu sync.Mutex
	clock   func() time.Time

	key *rsa.PrivateKey
	kid string
	x5t string

	mu        sync.Mutex
	signIn    map[string]Identity // tenant → who signs in at the authorize endpoint next
	codes     map[string]*codeGrant
	refresh   map[string]Identity
	revoked   map[string]bool // user ids whose refresh tokens are refused
	grants    map[string]int  // grant_type → count
	tokenTTL  time.Duration   // 0: Entra's random default
	graph     map[string]bool // resource URIs standing for Microsoft Graph (the fake Graph's URL)
	lastScope string

	consents   map[consentKey]time.Time // the app's service principals in tenants: when consent was given
	consentLag time.Duration
	failTokens []TokenFailure
}

// consentKey names an app's service principal in a tenant (ids lower-case).
type consentKey struct{ tenant, clientID string }

func keyOf(tenant, clientID string) consentKey {
	return consentKey{strings.ToLower(tenant), strings.ToLower(clientID)}
}

// TokenFailure is an answer of the token endpoint to inject instead of the real one.
type TokenFailure struct {
	Status     int    // 5xx
	RetryAfter string // Retry-After header value, "" for none
}

type codeGrant struct {
	who       Identity
	redirect  string
	challenge string
	scopes    []string
	issued    time.Time
	redeemed  bool
}

// CodeLifetime is how long an authorization code can be redeemed: "Authorization codes are short lived.
// Typically, they expire after about 10 minutes." (Learn, v2-oauth2-auth-code-flow, "Successful response").
const CodeLifetime = 10 * time.Minute

// NewAuthority starts a fake authority, stopped when the test ends.
func NewAuthority(t testing.TB) *Authority {
	t.Helper()
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	thumb := sha1.Sum(cert.Raw)
	a := &Authority{Consented: []string{"Presence.Read.All", "User.Read"}, AppRoles: []string{"User.Read.All"},
		key: key, kid: base64.RawURLEncoding.EncodeToString(thumb[:]), x5t: base64.RawURLEncoding.EncodeToString(thumb[:]),
		signIn: map[string]Identity{}, codes: map[string]*codeGrant{}, refresh: map[string]Identity{},
		revoked: map[string]bool{}, grants: map[string]int{}, graph: map[string]bool{}, consents: map[consentKey]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", a.openIDConfig)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", a.keys)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", a.authorize)
	mux.HandleFunc("GET /{tenant}/v2.0/adminconsent", a.adminConsent)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", a.token)
	a.srv = httptest.NewTLSServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// Host is the authority host to configure (with a trailing slash, as azidentity expects).
func (a *Authority) Host() string { return a.srv.URL + "/" }

// Client is an HTTP client that trusts the authority's certificate.
func (a *Authority) Client() *http.Client { return a.srv.Client() }

// CertificatePEM is the authority's TLS certificate, for a process that must trust it (SSL_CERT_FILE).
func (a *Authority) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
}

// SetClock replaces the authority's clock (code and token lifetimes); nil restores time.Now.
func (a *Authority) SetClock(now func() time.Time) {
	a.clockMu.Lock()
	defer a.clockMu.Unlock()
	a.clock = now
}

func (a *Authority) now() time.Time {
	a.clockMu.Lock()
	now := a.clock
	a.clockMu.Unlock()
	if now != nil {
		return now()
	}
	return time.Now()
}

// StandForGraph makes resource (the fake Graph's base URL, which kiota turns into the scope
// "<url>/.default") a name of Microsoft Graph: its tokens carry aud https://graph.microsoft.com, as the
// real ones do, and its consent is Consented.
func (a *Authority) StandForGraph(resource string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.graph[strings.TrimRight(resource, "/")] = true
}

// SetAppCertificate replaces AppCertificate while the authority serves (the certificate uploaded to the
// app registration at run time, as the sandbox's control API does); setting the field is for before.
func (a *Authority) SetAppCertificate(c *x509.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.AppCertificate = c
}

// SignIn sets the user who completes the next authorize request for tenant. Ids come back lower-case,
// as Entra writes GUIDs.
func (a *Authority) SignIn(tenant, userID, upn string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signIn[tenant] = Identity{Tenant: strings.ToLower(tenant), UserID: strings.ToLower(userID), UPN: upn}
}

// Revoke makes the authority refuse the user's refresh tokens (invalid_grant, AADSTS50173), as after a
// password reset or a revoked consent. Access tokens already issued stay valid until they expire, as
// real ones do (Learn, access-tokens "Token lifetime": they cannot be revoked).
func (a *Authority) Revoke(userID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[strings.ToLower(userID)] = true
}

// GrantConsent records that tenant's admin consented to the app clientID outside the flow under test
// (an earlier onboarding, or "Grant admin consent" in the Entra admin center): from now on the app has a
// service principal there, and the token endpoint issues it app-only tokens for the tenant.
func (a *Authority) GrantConsent(tenant, clientID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(tenant, clientID)
	if _, ok := a.consents[k]; !ok {
		a.consents[k] = a.now()
	}
}

// RemoveServicePrincipal deletes the app's service principal from tenant (the admin deletes the
// enterprise application): the token endpoint refuses app-only tokens again and Graph no longer finds
// it. Access tokens issued before stay valid until they expire, as real ones do.
func (a *Authority) RemoveServicePrincipal(tenant, clientID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.consents, keyOf(tenant, clientID))
}

// SetConsentLag delays, by d after a consent, the moment the token endpoint sees it. After admin
// consent Entra can answer AADSTS700016 for a few seconds more while the new service principal
// replicates; a retry a few seconds later succeeds
// (https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/issues/3706,
// https://github.com/mspnp/multitenant-saas-guidance/issues/127). Graph finds the service principal at
// once.
func (a *Authority) SetConsentLag(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.consentLag = d
}

// ServicePrincipal returns the object id of the app's service principal in tenant, if it has one (what
// Graph's servicePrincipals reads). It is the oid of the app's app-only tokens in that tenant.
func (a *Authority) ServicePrincipal(tenant, clientID string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.consents[keyOf(tenant, clientID)]; !ok {
		return "", false
	}
	return servicePrincipalID(tenant, clientID), true
}

// servicePrincipalID is stable per tenant and app, as the real object id is for the principal's life.
func servicePrincipalID(tenant, clientID string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(tenant) + "/" + strings.ToLower(clientID)))
	return guid(sum[:])
}

// FailTokens makes the next token requests fail, one per TokenFailure, before answering normally again.
func (a *Authority) FailTokens(f ...TokenFailure) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failTokens = append(a.failTokens, f...)
}

// SetTokenLifetime fixes expires_in of future tokens (short lifetimes force refreshes); 0 restores the
// default, a random lifetime between 60 and 90 minutes (Learn, configurable-token-lifetimes "Access
// tokens": "assigned a random value ranging between 60-90 minutes (75 minutes on average)").
func (a *Authority) SetTokenLifetime(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokenTTL = d
}

// Grants counts the token requests per grant_type.
func (a *Authority) Grants(grantType string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grants[grantType]
}

// LastScope is the scope parameter of the last token request, as sent.
func (a *Authority) LastScope() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastScope
}

// accessClaims are the claims of a v1.0 access token as Entra issues them for Microsoft Graph (Learn,
// access-token-claims-reference; Graph's tokens are v1.0 whatever endpoint issued them, because the
// token version is the resource's accessTokenAcceptedVersion, null for Graph).
type accessClaims struct {
	jwt.RegisteredClaims
	// Aud shadows RegisteredClaims.Audience: Entra writes aud as a string, jwt/v5 as an array.
	Aud       string   `json:"aud"`
	AppID     string   `json:"appid"`
	AppIDACR  string   `json:"appidacr"`
	IDType    string   `json:"idtyp"`
	OID       string   `json:"oid"`
	TenantID  string   `json:"tid"`
	Version   string   `json:"ver"`
	Scope     string   `json:"scp,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	UPN       string   `json:"upn,omitempty"`
	UniqueNam string   `json:"unique_name,omitempty"`
	UTI       string   `json:"uti"`
}

// mint signs an access token for who, valid for ttl.
func (a *Authority) mint(who Identity, ttl time.Duration) string {
	now := a.now()
	aud := who.Audience
	if aud == "" {
		aud = GraphResource
	}
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   "https://sts.windows.net/" + who.Tenant + "/",
			IssuedAt: jwt.NewNumericDate(now.Add(-5 * time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Aud: aud, AppID: who.ClientID, AppIDACR: "2", TenantID: who.Tenant, Version: "1.0", UTI: randomString("uti"),
	}
	if who.AppOnly() {
		// An app-only token names the service principal: oid and sub are the app's object id in the tenant.
		c.IDType, c.OID, c.Roles = "app", servicePrincipalID(who.Tenant, who.ClientID), who.Roles
	} else {
		c.IDType, c.OID, c.Scope, c.UPN, c.UniqueNam = "user", who.UserID, strings.Join(who.Scopes, " "), who.UPN, who.UPN
	}
	c.Subject = c.OID
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"], tok.Header["x5t"] = a.kid, a.x5t
	s, err := tok.SignedString(a.key)
	if err != nil {
		panic(err) // a fresh RSA key always signs
	}
	return s
}

// Identify returns who an access token was issued to, if the authority signed it and it has not
// expired (Graph refuses expired tokens with 401 InvalidAuthenticationToken).
func (a *Authority) Identify(accessToken string) (Identity, bool) {
	var c accessClaims
	tok, err := jwt.ParseWithClaims(accessToken, &c, func(*jwt.Token) (any, error) { return &a.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(a.now))
	if err != nil || !tok.Valid || c.Issuer != "https://sts.windows.net/"+c.TenantID+"/" || c.Aud == "" {
		return Identity{}, false
	}
	who := Identity{Tenant: c.TenantID, ClientID: c.AppID, Audience: c.Aud, Roles: c.Roles}
	if c.IDType == "user" {
		who.UserID, who.UPN, who.Scopes = c.OID, c.UPN, strings.Fields(c.Scope)
	}
	return who, true
}

// IssueToken mints an access token for who directly (for Graph unless who.Audience says otherwise), for
// tests that need a delegated token without running the authorization-code flow.
func (a *Authority) IssueToken(who Identity) string {
	if who.AppOnly() && who.Roles == nil {
		who.Roles = a.AppRoles
	}
	if !who.AppOnly() && who.Scopes == nil {
		who.Scopes = a.Consented
	}
	return a.mint(who, time.Hour)
}

// IdentifyRequest reads the bearer token of r.
func (a *Authority) IdentifyRequest(r *http.Request) (Identity, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Identity{}, false
	}
	return a.Identify(tok)
}

func (a *Authority) openIDConfig(w http.ResponseWriter, r *http.Request) {
	base := a.srv.URL + "/" + r.PathValue("tenant")
	// The issuer of the common and organizations documents is templated (Learn, v2-protocols-oidc
	// "Find your app's OpenID configuration document URI"); a tenant's own document names the tenant.
	issuer := a.srv.URL + "/" + r.PathValue("tenant") + "/v2.0"
	switch r.PathValue("tenant") {
	case "common", "organizations":
		issuer = a.srv.URL + "/{tenantid}/v2.0"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                issuer,
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"tenant_region_scope":                   "EU",
	})
}

func (a *Authority) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "kid": a.kid, "x5t": a.x5t,
		"n": base64.RawURLEncoding.EncodeToString(a.key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(a.key.E)).Bytes()),
	}}})
}

// scopeRequest is a parsed scope parameter: the OpenID scopes and one resource's permissions.
type scopeRequest struct {
	openID      bool
	offline     bool
	resource    string   // as requested: "https://graph.microsoft.com", "" for bare Graph permissions
	permissions []string // short names; nil with dflt
	dflt        bool     // <resource>/.default
}

// parseScopes splits scope as Entra does. A request may name one resource only: "AADSTS28000: Provided
// value for the input parameter scope is not valid because it contains more than one resource" (Learn,
// scopes-oidc "The .default scope" and the AADSTS reference). Bare permission names mean Graph (Learn,
// scopes-oidc "Scopes and permissions": "If the resource identifier is omitted … the resource is assumed
// to be Microsoft Graph").
func parseScopes(scope string) (scopeRequest, int, string) {
	var sr scopeRequest
	seen := false
	for _, s := range strings.Fields(scope) {
		switch strings.ToLower(s) {
		case "openid", "profile", "email":
			sr.openID = sr.openID || strings.EqualFold(s, "openid")
			continue
		case "offline_access":
			sr.offline = true
			continue
		}
		res, perm := "", s
		if i := strings.LastIndex(s, "/"); i >= 0 {
			res, perm = s[:i], s[i+1:]
		}
		if seen && !strings.EqualFold(res, sr.resource) {
			return sr, 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource."
		}
		seen, sr.resource = true, res
		if perm == ".default" {
			sr.dflt = true
		} else {
			sr.permissions = append(sr.permissions, perm)
		}
	}
	if !seen && !sr.openID {
		return sr, 900144, "The request body must contain the following parameter: 'scope'."
	}
	return sr, 0, ""
}

// isGraph reports whether resource names Microsoft Graph (or the fake that stands for it).
func (a *Authority) isGraph(resource string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := strings.TrimRight(resource, "/")
	return r == "" || strings.EqualFold(r, GraphResource) || r == "00000003-0000-0000-c000-000000000000" || a.graph[r]
}

// grant decides the delegated permissions of a user token for sr. A token carries every permission
// consented for its resource, not only those asked for, and a .default request is answered with that
// consented set, never with ".default" itself (Learn, scopes-oidc "The .default scope": "the resulting
// access token contains all the scopes consented"). It returns the short names, the scope parameter to
// answer in the form requested, and the audience.
func (a *Authority) grant(sr scopeRequest) (perms []string, scope, aud string, code int, msg string) {
	if sr.resource == "" && !sr.dflt && len(sr.permissions) == 0 {
		// openid alone: the token is for Graph's User.Read (Learn, v2-protocols-oidc "Get an access token").
		sr.permissions = []string{"User.Read"}
	}
	var consented []string
	aud = strings.TrimRight(sr.resource, "/")
	if a.isGraph(sr.resource) {
		consented, aud = a.Consented, GraphResource
	}
	for _, p := range sr.permissions {
		if !slices.ContainsFunc(consented, func(c string) bool { return strings.EqualFold(c, p) }) {
			return nil, "", "", 65001, "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource."
		}
	}
	if len(consented) == 0 {
		return nil, "", "", 65001, "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource."
	}
	prefix := ""
	if sr.resource != "" {
		prefix = sr.resource + "/"
	}
	granted := make([]string, len(consented))
	for i, p := range consented {
		granted[i] = prefix + p
	}
	return consented, strings.Join(granted, " "), aud, 0, ""
}

func (a *Authority) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant := r.PathValue("tenant")
	redirect := q.Get("redirect_uri")
	if q.Get("response_type") != "code" || redirect == "" || q.Get("client_id") == "" {
		// Without a usable redirect the error is shown on Microsoft's page, not sent back.
		http.Error(w, "AADSTS900144: The request body must contain the following parameter: 'client_id', 'response_type' or 'redirect_uri'.", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.", http.StatusBadRequest)
		return
	}
	back := u.Query()
	back.Set("state", q.Get("state"))
	a.mu.Lock()
	who, ok := a.signIn[tenant]
	a.mu.Unlock()
	sr, code, msg := parseScopes(q.Get("scope"))
	var perms []string
	if code == 0 {
		perms, _, _, code, msg = a.grant(sr)
	}
	switch {
	case code != 0:
		// Error redirects carry error and error_description (Learn, v2-oauth2-auth-code-flow "Error response").
		back.Set("error", map[bool]string{true: "consent_required", false: "invalid_request"}[code == 65001])
		back.Set("error_description", a.describe(code, msg, ""))
	case !ok:
		back.Set("error", "access_denied")
		back.Set("error_description", a.describe(65004, "User declined to consent to access the app.", ""))
	default:
		who.ClientID, who.Scopes = q.Get("client_id"), perms
		c := randomString("code")
		a.mu.Lock()
		a.codes[c] = &codeGrant{who: who, redirect: redirect, challenge: q.Get("code_challenge"),
			scopes: strings.Fields(q.Get("scope")), issued: a.now()}
		a.mu.Unlock()
		back.Set("code", c)
	}
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// adminConsent grants the app's permissions in the tenant — the app gets a service principal there —
// and sends the admin back the way Entra does: redirect_uri?admin_consent=True&tenant={tid}&state=…&scope=…
// (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent, "Successful response"). These parameters prove nothing: anyone can forge
// them; consent shows only in an app-only token for the tenant, which the token endpoint now issues.
func (a *Authority) adminConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("redirect_uri") == "" || q.Get("client_id") == "" {
		http.Error(w, "AADSTS900144: The request body must contain the following parameter: 'client_id' or 'redirect_uri'.", http.StatusBadRequest)
		return
	}
	a.GrantConsent(r.PathValue("tenant"), q.Get("client_id"))
	back := u.Query()
	back.Set("admin_consent", "True")
	back.Set("tenant", strings.ToLower(r.PathValue("tenant")))
	back.Set("state", q.Get("state"))
	back.Set("scope", cmpOr(q.Get("scope"), GraphResource+"/.default"))
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		a.oauthError(w, r, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	tenant := strings.ToLower(r.PathValue("tenant"))
	grant := r.PostForm.Get("grant_type")
	a.mu.Lock()
	a.grants[grant]++
	a.lastScope = r.PostForm.Get("scope")
	var fail *TokenFailure
	if len(a.failTokens) > 0 {
		fail, a.failTokens = &a.failTokens[0], a.failTokens[1:]
	}
	a.mu.Unlock()
	if fail != nil {
		// An outage answers 5xx with temporarily_unavailable and AADSTS90033 ("503 …
		// AADSTS90033: A transient error has occurred. Please try again.",
		// https://github.com/Azure/azure-sdk-for-python/issues/14241); clients retry.
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		a.oauthError(w, r, fail.Status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if code, msg := a.checkClient(r, tenant, clientID); code != 0 {
		// A refused client is the one 401 of the token endpoint (RFC 6749 §5.2 allows 401 for
		// invalid_client; Entra answers it for a bad assertion).
		a.oauthError(w, r, http.StatusUnauthorized, "invalid_client", code, msg)
		return
	}
	sr, code, msg := parseScopes(r.PostForm.Get("scope"))
	if code != 0 {
		a.oauthError(w, r, http.StatusBadRequest, "invalid_scope", code, msg)
		return
	}
	switch grant {
	case "client_credentials":
		// Only <resource>/.default is accepted in the client credentials flow (Learn,
		// v2-oauth2-client-creds-grant-flow "First case: Access token request with a shared secret").
		// The OpenID scopes MSAL adds to every request are ignored.
		if !sr.dflt || len(sr.permissions) > 0 {
			a.oauthError(w, r, http.StatusBadRequest, "invalid_scope", 1002012,
				"The provided value for scope "+r.PostForm.Get("scope")+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
			return
		}
		if !a.consented(tenant, clientID) {
			// Without a service principal in the tenant there is no app-only token: 400 unauthorized_client,
			// AADSTS700016 "UnauthorizedClient_DoesNotMatchRequest - The application wasn't found in the
			// directory/tenant. This can happen if the application has not been installed by the
			// administrator of the tenant or consented to by any user in the tenant."
			// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes; the wire shape as
			// in https://github.com/Azure/azure-sdk-for-python/issues/8314). The real message names the
			// directory; the fake names the tenant id.
			a.oauthError(w, r, http.StatusBadRequest, "unauthorized_client", 700016,
				"Application with identifier '"+clientID+"' was not found in the directory '"+tenant+"'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.")
			return
		}
		aud := strings.TrimRight(sr.resource, "/")
		if a.isGraph(sr.resource) {
			aud = GraphResource
		}
		a.issue(w, Identity{Tenant: tenant, ClientID: clientID, Audience: aud, Roles: a.AppRoles}, nil)
	case "authorization_code":
		now := a.now()
		a.mu.Lock()
		g, ok := a.codes[r.PostForm.Get("code")]
		var redeemed bool
		if ok {
			redeemed, g.redeemed = g.redeemed, true // codes are single use
		}
		a.mu.Unlock()
		switch {
		case !ok || g.who.Tenant != tenant:
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		case redeemed:
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		case now.After(g.issued.Add(CodeLifetime)):
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		case g.who.ClientID != clientID:
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
		case g.redirect != r.PostForm.Get("redirect_uri"):
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 500112, "The reply address '"+r.PostForm.Get("redirect_uri")+"' does not match the reply address '"+g.redirect+"' provided when requesting Authorization code.")
		case g.challenge != "" && r.PostForm.Get("code_verifier") == "":
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
		case g.challenge != "" && g.challenge != s256(r.PostForm.Get("code_verifier")):
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		default:
			a.issueUser(w, r, g.who, sr, slices.Contains(g.scopes, "offline_access"))
		}
	case "refresh_token":
		a.mu.Lock()
		who, ok := a.refresh[r.PostForm.Get("refresh_token")]
		revoked := a.revoked[who.UserID]
		a.mu.Unlock()
		switch {
		case !ok || who.Tenant != tenant || who.ClientID != clientID:
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		case revoked:
			a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
		default:
			a.issueUser(w, r, who, sr, true)
		}
	default:
		a.oauthError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+grant+"'.")
	}
}

// consented reports whether the token endpoint sees the app's service principal in tenant yet.
func (a *Authority) consented(tenant, clientID string) bool {
	a.mu.Lock()
	at, ok := a.consents[keyOf(tenant, clientID)]
	lag := a.consentLag
	a.mu.Unlock()
	return ok && !a.now().Before(at.Add(lag))
}

// checkClient verifies the client assertion against AppCertificate when one is configured.
func (a *Authority) checkClient(r *http.Request, tenant, clientID string) (int, string) {
	if clientID == "" {
		return 900144, "The request body must contain the following parameter: 'client_id'."
	}
	a.mu.Lock()
	appCert := a.AppCertificate
	a.mu.Unlock()
	if appCert == nil {
		return 0, ""
	}
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" {
		return 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."
	}
	tok, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return appCert.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(clientID),
		jwt.WithAudience(a.srv.URL+"/"+r.PathValue("tenant")+"/oauth2/v2.0/token"))
	if err != nil || !tok.Valid {
		return 700027, "Client assertion failed signature validation."
	}
	return 0, ""
}

// issueUser answers a user flow. The scope parameter lists the resource's granted permissions in the
// form requested and never offline_access (Learn, v2-oauth2-auth-code-flow "Successful response":
// "scope": "https://graph.microsoft.com/mail.read", with offline_access requested; MSAL Go issue #416),
// nor openid/profile. The refresh token comes only when offline_access was consented at sign-in.
func (a *Authority) issueUser(w http.ResponseWriter, r *http.Request, who Identity, sr scopeRequest, offline bool) {
	perms, scope, aud, code, msg := a.grant(sr)
	if code != 0 {
		a.oauthError(w, r, http.StatusBadRequest, "invalid_grant", code, msg)
		return
	}
	access := who
	access.Audience, access.Scopes = aud, perms
	extra := map[string]any{"scope": scope}
	if offline {
		rt := randomString("rt")
		a.mu.Lock()
		a.refresh[rt] = who
		a.mu.Unlock()
		extra["refresh_token"] = rt
	}
	if sr.openID {
		extra["id_token"] = a.idToken(who)
	}
	if r.PostForm.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": who.UserID, "utid": who.Tenant})
		extra["client_info"] = base64.RawURLEncoding.EncodeToString(ci)
	}
	a.issue(w, access, extra)
}

// issue answers a token. Client credentials answers carry no scope and no refresh token (Learn,
// v2-oauth2-client-creds-grant-flow "Successful response": token_type, expires_in, access_token).
func (a *Authority) issue(w http.ResponseWriter, who Identity, extra map[string]any) {
	a.mu.Lock()
	ttl := a.tokenTTL
	a.mu.Unlock()
	if ttl <= 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(1800))
		ttl = time.Duration(3600+n.Int64()) * time.Second
	}
	secs := int(ttl / time.Second)
	body := map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": a.mint(who, ttl)}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, body)
}

// idToken is a v2.0 ID token signed with the authority's key (MSAL reads its claims without checking
// the signature: it came straight from the token endpoint over TLS).
func (a *Authority) idToken(who Identity) string {
	now := a.now()
	claims := jwt.MapClaims{"aud": who.ClientID, "iss": a.srv.URL + "/" + who.Tenant + "/v2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "oid": who.UserID, "sub": randomString("sub"),
		"tid": who.Tenant, "preferred_username": who.UPN, "ver": "2.0"}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = a.kid
	s, _ := tok.SignedString(a.key)
	return s
}

// describe builds an error_description the way Entra does: "AADSTS<n>: <message>" followed by the trace
// id, correlation id and timestamp on their own lines (Learn, reference-error-codes "Handling error
// codes in your application").
func (a *Authority) describe(code int, msg, corr string) string {
	if corr == "" {
		corr = newGUID()
	}
	return fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		code, msg, newGUID(), corr, a.now().UTC().Format("2006-01-02 15:04:05Z"))
}

// oauthError answers an error of the token endpoint (Learn, reference-error-codes, "Example error
// response"): the correlation id is the client-request-id the client sent.
func (a *Authority) oauthError(w http.ResponseWriter, r *http.Request, status int, errCode string, aadsts int, msg string) {
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = newGUID()
	}
	trace := newGUID()
	ts := a.now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error":             errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, msg, trace, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("%s/error?code=%d", a.srv.URL, aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomString(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return guid(b[:])
}

func guid(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
