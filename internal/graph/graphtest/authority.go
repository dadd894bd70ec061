// Package graphtest holds test fakes of what ConnectHub's Graph side talks to: the Microsoft identity
// platform (Authority: OpenID configuration, authorize and token endpoints) and Microsoft Graph itself
// (Graph: subscriptions with the validation handshake, users and users delta, presence, and the
// notifications Graph posts). They answer with the payloads Microsoft documents, so the real SDK clients
// (msgraph-sdk-go, azidentity, MSAL) run against them unchanged. It does not import msgraph-sdk-go.
package graphtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is who a token was issued to: an app alone (app-only) or a signed-in user of a tenant.
type Identity struct {
	Tenant   string
	ClientID string
	UserID   string // "" for app-only tokens
	UPN      string
}

// AppOnly reports whether the token carries no user.
func (i Identity) AppOnly() bool { return i.UserID == "" }

// Authority is a fake Microsoft identity platform on HTTPS (MSAL refuses plain-HTTP authorities).
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	GET  /{tenant}/oauth2/v2.0/authorize   → 302 to redirect_uri with code and state (the user "signs in")
//	POST /{tenant}/oauth2/v2.0/token       client_credentials (certificate assertion checked against
//	                                       AppCertificate), authorization_code (PKCE checked), refresh_token
type Authority struct {
	srv *httptest.Server
	// AppCertificate, when set, must have signed client assertions (the app's client certificate).
	AppCertificate *x509.Certificate

	mu        sync.Mutex
	signIn    map[string]Identity // tenant → who signs in at the authorize endpoint next
	codes     map[string]codeGrant
	refresh   map[string]Identity
	tokens    map[string]Identity
	revoked   map[string]bool // user ids whose refresh tokens are refused
	grants    map[string]int  // grant_type → count
	tokenTTL  time.Duration
	lastScope string
}

type codeGrant struct {
	who       Identity
	redirect  string
	challenge string
}

// NewAuthority starts a fake authority, stopped when the test ends.
func NewAuthority(t testing.TB) *Authority {
	t.Helper()
	a := &Authority{signIn: map[string]Identity{}, codes: map[string]codeGrant{}, refresh: map[string]Identity{},
		tokens: map[string]Identity{}, revoked: map[string]bool{}, grants: map[string]int{}, tokenTTL: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", a.openIDConfig)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", a.authorize)
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

// SignIn sets the user who completes the next authorize request for tenant. Ids come back lower-case,
// as Entra writes GUIDs.
func (a *Authority) SignIn(tenant, userID, upn string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signIn[tenant] = Identity{Tenant: strings.ToLower(tenant), UserID: strings.ToLower(userID), UPN: upn}
}

// Revoke makes the authority refuse the user's refresh tokens (invalid_grant), as after a password
// reset or a revoked consent.
func (a *Authority) Revoke(userID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[strings.ToLower(userID)] = true
}

// SetTokenLifetime changes expires_in of future tokens (short lifetimes force refreshes).
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

// Identify returns who an access token was issued to.
func (a *Authority) Identify(accessToken string) (Identity, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.tokens[accessToken]
	return id, ok
}

// IssueToken registers an access token for who directly, for tests that need a delegated token
// without running the authorization-code flow.
func (a *Authority) IssueToken(who Identity) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := randomString("at")
	a.tokens[at] = who
	return at
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
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                a.srv.URL + "/{tenant}/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
	})
}

func (a *Authority) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant := r.PathValue("tenant")
	redirect := q.Get("redirect_uri")
	if q.Get("response_type") != "code" || redirect == "" || q.Get("client_id") == "" {
		http.Error(w, "AADSTS900144: missing parameter", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	who, ok := a.signIn[tenant]
	a.mu.Unlock()
	u, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := u.Query()
	back.Set("state", q.Get("state"))
	if !ok {
		back.Set("error", "access_denied")
		back.Set("error_description", "AADSTS65004: User declined to consent")
	} else {
		who.ClientID = q.Get("client_id")
		code := randomString("code")
		a.mu.Lock()
		a.codes[code] = codeGrant{who: who, redirect: redirect, challenge: q.Get("code_challenge")}
		a.mu.Unlock()
		back.Set("code", code)
	}
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "unreadable form")
		return
	}
	tenant := r.PathValue("tenant")
	grant := r.PostForm.Get("grant_type")
	a.mu.Lock()
	a.grants[grant]++
	a.lastScope = r.PostForm.Get("scope")
	a.mu.Unlock()
	clientID := r.PostForm.Get("client_id")
	if err := a.checkClient(r, tenant, clientID); err != nil {
		oauthError(w, "invalid_client", err.Error())
		return
	}
	switch grant {
	case "client_credentials":
		a.issue(w, Identity{Tenant: tenant, ClientID: clientID}, false)
	case "authorization_code":
		a.mu.Lock()
		g, ok := a.codes[r.PostForm.Get("code")]
		delete(a.codes, r.PostForm.Get("code")) // codes are single use
		a.mu.Unlock()
		switch {
		case !ok || g.who.Tenant != tenant:
			oauthError(w, "invalid_grant", "AADSTS70000: the code is invalid or was already used")
		case g.redirect != r.PostForm.Get("redirect_uri"):
			oauthError(w, "invalid_grant", "AADSTS50148: redirect_uri does not match")
		case g.challenge != "" && g.challenge != s256(r.PostForm.Get("code_verifier")):
			oauthError(w, "invalid_grant", "AADSTS501481: the code_verifier does not match the code_challenge")
		default:
			a.issue(w, g.who, true)
		}
	case "refresh_token":
		a.mu.Lock()
		who, ok := a.refresh[r.PostForm.Get("refresh_token")]
		revoked := a.revoked[who.UserID]
		a.mu.Unlock()
		switch {
		case !ok || who.Tenant != tenant:
			oauthError(w, "invalid_grant", "AADSTS9002313: invalid refresh token")
		case revoked:
			oauthError(w, "invalid_grant", "AADSTS50173: the provided grant has expired due to it being revoked")
		default:
			a.issue(w, who, true)
		}
	default:
		oauthError(w, "unsupported_grant_type", grant)
	}
}

// checkClient verifies the client assertion against AppCertificate when one is configured.
func (a *Authority) checkClient(r *http.Request, tenant, clientID string) error {
	if clientID == "" {
		return fmt.Errorf("AADSTS900144: client_id missing")
	}
	if a.AppCertificate == nil {
		return nil
	}
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" {
		return fmt.Errorf("AADSTS7000216: client_assertion required")
	}
	tok, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return a.AppCertificate.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(clientID),
		jwt.WithAudience(a.srv.URL+"/"+tenant+"/oauth2/v2.0/token"))
	if err != nil || !tok.Valid {
		return fmt.Errorf("AADSTS700027: client assertion failed signature validation: %v", err)
	}
	return nil
}

func (a *Authority) issue(w http.ResponseWriter, who Identity, user bool) {
	a.mu.Lock()
	ttl := a.tokenTTL
	at := randomString("at")
	a.tokens[at] = who
	body := map[string]any{"token_type": "Bearer", "expires_in": int(ttl.Seconds()), "ext_expires_in": int(ttl.Seconds()), "access_token": at}
	if user {
		rt := randomString("rt")
		a.refresh[rt] = who
		body["refresh_token"] = rt
		body["scope"] = a.lastScope
		body["id_token"] = a.idToken(who)
		ci, _ := json.Marshal(map[string]string{"uid": who.UserID, "utid": who.Tenant})
		body["client_info"] = base64.RawURLEncoding.EncodeToString(ci)
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// idToken is an unsigned-looking but well-formed JWT: MSAL reads its claims without checking the
// signature (it came straight from the token endpoint over TLS).
func (a *Authority) idToken(who Identity) string {
	now := time.Now()
	claims := map[string]any{"aud": who.ClientID, "iss": a.srv.URL + "/" + who.Tenant + "/v2.0", "iat": now.Unix(),
		"nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "oid": who.UserID, "sub": who.UserID, "tid": who.Tenant,
		"preferred_username": who.UPN, "ver": "2.0"}
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + ".sig"
}

func oauthError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": desc, "error_codes": []int{70000}})
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

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
