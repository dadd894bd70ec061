package devhost

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// The development issuer's sign-in: the authorization-code flow with PKCE of Entra ID's v2.0 endpoints,
// so the Service Manager portal signs in on `make run` with the code it runs against Entra ID.
//
//	GET  /devissuer/{tenant}/oauth2/v2.0/authorize  the sign-in page (a form: which tenant, user and roles)
//	POST /devissuer/{tenant}/oauth2/v2.0/authorize  that form: redirects to redirect_uri with code and state
//	POST /devissuer/{tenant}/oauth2/v2.0/token      redeems the code: access token (our API), ID token
//
// Where it differs from Entra ID on purpose: there is no password; whoever reaches devhost (loopback) picks
// the account, which is what a development issuer is for. What it keeps of Entra's behaviour, so that a
// client that works here does not fail there (the same rules as graphtest.Authority, the tests' fake):
//   - redirect URIs must be registered: here, http on a loopback host only, as Entra allows http only for
//     localhost; anything else is shown on the issuer's page (AADSTS50011), never redirected to;
//   - one resource per request (AADSTS28000), and a token for our own API only (aud = the app id);
//   - codes are single use (AADSTS54005) and short-lived (AADSTS70008 after 10 min), bound to the client
//     (AADSTS70000) and the redirect URI (AADSTS500112), and PKCE is checked (AADSTS50148 without a
//     verifier, AADSTS501481 for a wrong one);
//   - the client authenticates with a certificate assertion (RFC 7523) signed by the app's certificate,
//     which devhost reads from the local secret file as Entra reads it from the app registration:
//     AADSTS7000218 without one, AADSTS700027 for a bad signature or audience, answered 401;
//   - errors are Entra's JSON shape (error, error_description "AADSTS…", error_codes, trace and
//     correlation ids, timestamp).
//
// Sources: Learn, v2-oauth2-auth-code-flow, certificate-credentials, reference-error-codes;
// ../shared/reference/real-service-behaviour.md ("Microsoft identity platform").

// devCodeLifetime is how long a code may wait for redemption (Learn, v2-oauth2-auth-code-flow: "Authorization
// codes are short lived. Typically, they expire after about 10 minutes").
const devCodeLifetime = 10 * time.Minute

type devCode struct {
	client, redirect, challenge, method, nonce string
	tenant, user                               string
	roles                                      []string
	globalAdmin                                bool
	issued                                     time.Time
	redeemed                                   bool
}

// devCodes are the issued codes, in memory like the key.
type devCodes struct {
	mu    sync.Mutex
	codes map[string]*devCode
}

func (c *devCodes) put(code string, g *devCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.codes == nil {
		c.codes = map[string]*devCode{}
	}
	for k, v := range c.codes { // forget codes long dead, so a long-running devhost does not grow
		if time.Since(v.issued) > 2*devCodeLifetime {
			delete(c.codes, k)
		}
	}
	c.codes[code] = g
}

// take returns the code's grant and marks it redeemed; the second call answers redeemed = true.
func (c *devCodes) take(code string) (g devCode, ok, redeemed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.codes[code]
	if !ok {
		return devCode{}, false, false
	}
	redeemed, p.redeemed = p.redeemed, true
	return *p, true, redeemed
}

// loopbackRedirect reports whether u is a redirect URI the development "app registration" accepts.
func loopbackRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Fragment != "" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var devSignInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto">
<h1>Development sign-in</h1>
<p>devhost's development issuer stands in for Entra ID on <code>make run</code>. Choose the account to sign in as.</p>
<form method="post">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<p><label for="tenant">Tenant id</label><br><input id="tenant" name="tenant" size="40" required value="{{.Tenant}}"></p>
<p><label for="user">User object id</label><br><input id="user" name="user" size="40" required value="{{.User}}"></p>
<fieldset><legend>App roles</legend>
{{range .Roles}}<label><input type="checkbox" name="role" value="{{.}}"> {{.}}</label><br>
{{end}}<label><input type="checkbox" name="globalAdmin" value="true"> Global Administrator (directory role)</label>
</fieldset>
<p><button type="submit" id="signin">Sign in</button></p>
</form></body></html>`))

// devRoles are the app roles the sign-in page offers (access.AppRole*).
var devRoles = []string{"ConnectHub.TenantAdmin", "ConnectHub.Operator", "ConnectHub.SecurityOfficer"}

// authorize serves the sign-in page (GET) and its form (POST).
func (d *devIssuer) authorize(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "AADSTS900144: malformed request", http.StatusBadRequest)
		return
	}
	q := r.Form
	redirect := q.Get("redirect_uri")
	if q.Get("response_type") != "code" || redirect == "" || q.Get("client_id") == "" {
		// Without a usable redirect the error is shown on the issuer's page, not sent back.
		http.Error(w, "AADSTS900144: The request body must contain the following parameter: 'client_id', 'response_type' or 'redirect_uri'.", http.StatusBadRequest)
		return
	}
	if q.Get("client_id") != d.audience {
		http.Error(w, "AADSTS700016: Application with identifier '"+q.Get("client_id")+"' was not found in the directory.", http.StatusBadRequest)
		return
	}
	if !loopbackRedirect(redirect) {
		http.Error(w, "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.", http.StatusBadRequest)
		return
	}
	u, _ := url.Parse(redirect)
	back := u.Query()
	back.Set("state", q.Get("state"))
	fail := func(code, desc string) {
		back.Set("error", code)
		back.Set("error_description", desc)
		u.RawQuery = back.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	if _, ok := d.ownScope(q.Get("scope")); !ok {
		fail("invalid_scope", "AADSTS28000: Provided value for the input parameter scope is not valid: ask for openid and one resource, this app's API ('api://"+d.audience+"/.default').")
		return
	}
	if m := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && m != "S256" && m != "plain" && m != "" {
		fail("invalid_request", "AADSTS501491: Invalid size of Code_Challenge parameter.")
		return
	}
	if r.Method == http.MethodGet {
		hidden := map[string]string{}
		for _, k := range []string{"client_id", "response_type", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode"} {
			if v := q.Get(k); v != "" {
				hidden[k] = v
			}
		}
		pre := ""
		if _, err := uuid.Parse(tenant); err == nil {
			pre = strings.ToLower(tenant)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = devSignInPage.Execute(w, map[string]any{"Hidden": hidden, "Tenant": pre, "User": q.Get("login_hint"), "Roles": devRoles})
		return
	}
	tid, uid := strings.ToLower(strings.TrimSpace(q.Get("tenant"))), strings.ToLower(strings.TrimSpace(q.Get("user")))
	_, terr := uuid.Parse(tid)
	_, uerr := uuid.Parse(uid)
	if terr != nil || uerr != nil {
		http.Error(w, "tenant and user must be GUIDs", http.StatusBadRequest)
		return
	}
	if _, err := uuid.Parse(tenant); err == nil && !strings.EqualFold(tenant, tid) {
		// A tenant-specific authority signs in only that tenant's accounts (AADSTS50020 for a guest of
		// another directory; the organizations authority takes any).
		fail("access_denied", "AADSTS50020: User account from identity provider does not exist in tenant '"+tenant+"'.")
		return
	}
	var roles []string
	for _, role := range q["role"] {
		if slices.Contains(devRoles, role) {
			roles = append(roles, role)
		}
	}
	code := "devcode." + random32()
	d.codes.put(code, &devCode{client: q.Get("client_id"), redirect: redirect, challenge: q.Get("code_challenge"),
		method: q.Get("code_challenge_method"), nonce: q.Get("nonce"), tenant: tid, user: uid, roles: roles,
		globalAdmin: q.Get("globalAdmin") == "true", issued: d.now()})
	back.Set("code", code)
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// ownScope checks a scope parameter: OpenID scopes and this app's API, and nothing of another resource.
func (d *devIssuer) ownScope(scope string) (openID, ok bool) {
	resource := false
	for _, s := range strings.Fields(scope) {
		switch strings.ToLower(s) {
		case "openid":
			openID = true
		case "profile", "email", "offline_access":
		case "api://" + d.audience + "/.default", d.audience + "/.default":
			resource = true
		default:
			return openID, false
		}
	}
	return openID, resource
}

// redeem is the token endpoint's authorization_code grant.
func (d *devIssuer) redeem(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		d.oauthError(w, r, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" {
		d.oauthError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	}
	client := f.Get("client_id")
	if client == "" {
		d.oauthError(w, r, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	if code, msg := d.checkAssertion(r, tenant, client); code != 0 {
		d.oauthError(w, r, http.StatusUnauthorized, "invalid_client", code, msg)
		return
	}
	g, ok, redeemed := d.codes.take(f.Get("code"))
	switch {
	case !ok:
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
	case redeemed:
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case d.now().After(g.issued.Add(devCodeLifetime)):
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case g.client != client:
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
	case g.redirect != f.Get("redirect_uri"):
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 500112, "The reply address '"+f.Get("redirect_uri")+"' does not match the reply address '"+g.redirect+"' provided when requesting Authorization code.")
	case g.challenge != "" && f.Get("code_verifier") == "":
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
	case g.challenge != "" && !pkceMatches(g.challenge, g.method, f.Get("code_verifier")):
		d.oauthError(w, r, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	default:
		access, err := d.mint(DevTokenRequest{Tenant: g.tenant, User: g.user, Roles: g.roles, GlobalAdmin: g.globalAdmin})
		if err != nil {
			d.oauthError(w, r, http.StatusBadRequest, "invalid_request", 900144, err.Error())
			return
		}
		now := d.now()
		id := jwt.MapClaims{"aud": client, "iss": "https://login.microsoftonline.com/" + g.tenant + "/v2.0",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "oid": g.user, "sub": g.user,
			"tid": g.tenant, "ver": "2.0"}
		if g.nonce != "" {
			id["nonce"] = g.nonce
		}
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, id)
		t.Header["kid"] = d.kid
		idToken, _ := t.SignedString(d.key)
		w.Header().Set("Cache-Control", "no-store, no-cache")
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
			"scope": "api://" + d.audience + "/.default", "access_token": access, "id_token": idToken})
	}
}

func pkceMatches(challenge, method, verifier string) bool {
	want := verifier
	if method == "" || method == "S256" {
		// Entra treats a challenge without a method as S256 when it is 43 characters; the portal always
		// names S256.
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// checkAssertion verifies a certificate client assertion: signed by the app's certificate, issued by and
// about the client, for this token endpoint, not expired.
func (d *devIssuer) checkAssertion(r *http.Request, tenant, client string) (int, string) {
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" || r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
	}
	if d.clientCert == nil {
		return 700027, "Client assertion failed signature validation. (devhost has no local secret file to read the app's certificate from)"
	}
	cert, err := d.clientCert()
	if err != nil {
		return 700027, "Client assertion failed signature validation. (the app's certificate: " + err.Error() + ")"
	}
	endpoint := "http://" + r.Host + devIssuerPrefix + tenant + "/oauth2/v2.0/token"
	tok, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(client),
		jwt.WithSubject(client), jwt.WithAudience(endpoint))
	if err != nil || !tok.Valid {
		return 700027, "Client assertion failed signature validation."
	}
	return 0, ""
}

// oauthError answers like Entra's token endpoint (Learn, reference-error-codes, "Example error response").
func (d *devIssuer) oauthError(w http.ResponseWriter, r *http.Request, status int, code string, aadsts int, msg string) {
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = uuid.NewString()
	}
	trace, ts := uuid.NewString(), d.now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, msg, trace, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts, "trace_id": trace, "correlation_id": corr,
		"error_uri": fmt.Sprintf("http://%s%serror?code=%d", r.Host, devIssuerPrefix, aadsts),
	})
}

func random32() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
