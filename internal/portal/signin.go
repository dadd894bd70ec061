package portal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // x5t is the certificate's SHA-1 thumbprint by definition (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// Sign-in is OpenID Connect's authorization-code flow with PKCE, run by the server (a backend for the
// frontend): the browser carries only cookies, never a token.
//
//  1. /signin makes a state, a nonce and a PKCE verifier, seals them with the portal key (AES-256-GCM) into
//     a short-lived cookie scoped to the callback path, and redirects to the authority's authorize
//     endpoint for "organizations" (any work account; the token's tid says whose).
//  2. /callback opens that cookie, compares the state in constant time, redeems the code at the token
//     endpoint with the verifier and a certificate client assertion (the app's certificate, as every
//     other call the app makes to Entra ID), asks for a token for this app's own API, and checks it with
//     the admin API's own Authenticator: the portal's principal is exactly the one a bearer call would
//     get. The ID token's nonce and audience are compared too; its signature is not checked again, as
//     it came straight from the token endpoint over TLS (OpenID Connect Core §3.1.3.7).
//
// The flow is written here rather than with MSAL because MSAL refuses an http authority, and `make run`
// signs in at devhost's development issuer on loopback http; the requests are the documented ones
// (Learn, v2-oauth2-auth-code-flow, certificate-credentials).

// stateTTL is how long a sign-in may take between the redirect and the callback.
const stateTTL = 15 * time.Minute

type signInState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// keyRing is the portal's sealing key, read once from the secret store and created there if missing
// (the first instance to start a sign-in creates it; a race between two instances costs the loser's
// sign-ins in flight, which start again).
type keyRing struct {
	secrets secrets.Store
	name    string
	mu      sync.Mutex
	aead    cipher.AEAD
}

func (k *keyRing) get(ctx context.Context) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aead != nil {
		return k.aead, nil
	}
	v, err := k.secrets.Get(ctx, k.name)
	if errors.Is(err, secrets.ErrNotFound) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		v = base64.StdEncoding.EncodeToString(b)
		err = k.secrets.Set(ctx, k.name, v)
	}
	if err != nil {
		return nil, fmt.Errorf("portal key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) != 32 {
		return nil, errors.New("portal key: not 32 bytes of base64")
	}
	block, _ := aes.NewCipher(raw)
	k.aead, _ = cipher.NewGCM(block)
	return k.aead, nil
}

// sealState and openState bind the cookie to its purpose as associated data.
func (k *keyRing) sealState(ctx context.Context, st signInState) (string, error) {
	aead, err := k.get(ctx)
	if err != nil {
		return "", err
	}
	plain, _ := json.Marshal(st)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte("portal sign-in"))), nil
}

func (k *keyRing) openState(ctx context.Context, cookie string) (signInState, error) {
	aead, err := k.get(ctx)
	if err != nil {
		return signInState{}, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(raw) < aead.NonceSize() {
		return signInState{}, errors.New("malformed")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte("portal sign-in"))
	if err != nil {
		return signInState{}, err
	}
	var st signInState
	return st, json.Unmarshal(plain, &st)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorizeURL is where /signin sends the browser.
func (p *Portal) authorizeURL(st signInState) string {
	sum := sha256.Sum256([]byte(st.Verifier))
	q := url.Values{
		"client_id":             {p.cfg.ClientID},
		"response_type":         {"code"},
		"redirect_uri":          {p.redirectURI()},
		"response_mode":         {"query"},
		"scope":                 {p.scope()},
		"state":                 {st.State},
		"nonce":                 {st.Nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	return p.cfg.AuthorityHost + "organizations/oauth2/v2.0/authorize?" + q.Encode()
}

// scope asks for the OpenID Connect sign-in and a token for this app's own API (one resource per
// request: Entra refuses two, AADSTS28000).
func (p *Portal) scope() string {
	return strings.Join(SignInScopes, " ") + " api://" + p.cfg.ClientID + "/.default"
}

// SignInScopes are the Graph delegated permissions the portal's sign-in asks for besides its own API
// (appreg lists them for the app registration).
var SignInScopes = []string{"openid", "profile"}

func (p *Portal) redirectURI() string { return p.cfg.PublicBaseURL + "/api/portal/callback" }

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
	ErrorCodes  []int  `json:"error_codes"`
}

// redeem exchanges the code for the principal and the time its token ends.
func (p *Portal) redeem(ctx context.Context, code string, st signInState) (Principal, time.Time, error) {
	endpoint := p.cfg.AuthorityHost + "organizations/oauth2/v2.0/token"
	assertion, err := p.clientAssertion(ctx, endpoint)
	if err != nil {
		return Principal{}, time.Time{}, apperr.New(apperr.Unavailable, "sign-in is not available: the app's certificate cannot be read", err)
	}
	form := url.Values{
		"client_id":             {p.cfg.ClientID},
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"redirect_uri":          {p.redirectURI()},
		"code_verifier":         {st.Verifier},
		"scope":                 {p.scope()},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("client-request-id", uuid.NewString())
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return Principal{}, time.Time{}, apperr.New(apperr.Unavailable, "the identity platform cannot be reached", err)
	}
	defer resp.Body.Close()
	var ans tokenAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil {
		return Principal{}, time.Time{}, apperr.New(apperr.Unavailable, "the identity platform answered something unreadable", err)
	}
	if resp.StatusCode != http.StatusOK || ans.AccessToken == "" {
		// error_description may name the account: keep the codes only.
		p.cfg.Log.InfoContext(ctx, "portal sign-in refused at the token endpoint", "status", resp.StatusCode,
			"error", safeCode(ans.Error), "error_codes", ans.ErrorCodes)
		if resp.StatusCode >= 500 {
			return Principal{}, time.Time{}, apperr.New(apperr.Unavailable, "the identity platform is unavailable; try again", nil)
		}
		return Principal{}, time.Time{}, apperr.New(apperr.Forbidden, "the identity platform refused the sign-in; start again", nil)
	}
	principal, err := p.cfg.Access.Authenticate("Bearer " + ans.AccessToken)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	expires, err := p.checkIDToken(ans.IDToken, st.Nonce, string(principal.Tenant), principal.ObjectID)
	if err != nil {
		return Principal{}, time.Time{}, apperr.New(apperr.Forbidden, "the sign-in could not be verified; start again", err)
	}
	if at := unverifiedExpiry(ans.AccessToken); !at.IsZero() && at.Before(expires) {
		expires = at
	}
	return principal, expires, nil
}

// checkIDToken compares the ID token's nonce, audience, tenant and user with the sign-in, and returns
// its expiry.
func (p *Portal) checkIDToken(raw, nonce, tenant, oid string) (time.Time, error) {
	var c struct {
		jwt.RegisteredClaims
		Nonce string `json:"nonce"`
		TID   string `json:"tid"`
		OID   string `json:"oid"`
	}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		return time.Time{}, fmt.Errorf("id token: %w", err)
	}
	switch {
	case subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return time.Time{}, errors.New("id token: nonce differs")
	case !contains(c.Audience, p.cfg.ClientID):
		return time.Time{}, errors.New("id token: another audience")
	case !strings.EqualFold(c.TID, tenant) || !strings.EqualFold(c.OID, oid):
		return time.Time{}, errors.New("id token: another account than the access token")
	case c.ExpiresAt == nil:
		return time.Time{}, errors.New("id token: no expiry")
	}
	return c.ExpiresAt.Time, nil
}

func unverifiedExpiry(token string) time.Time {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil || c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// clientAssertion is the certificate credential Entra ID expects (Learn, certificate-credentials): a
// JWT signed with the app's certificate key, x5t its SHA-1 thumbprint, for this token endpoint, valid
// for 10 minutes, with a unique jti.
func (p *Portal) clientAssertion(ctx context.Context, endpoint string) (string, error) {
	pemText, err := p.cfg.Secrets.Get(ctx, p.cfg.CertName)
	if err != nil {
		return "", err
	}
	cert, key, err := graphcrypto.ParseCertificate([]byte(pemText), "")
	if err != nil {
		return "", err
	}
	thumb := sha1.Sum(cert.Raw) //nolint:gosec // see the import
	now := p.cfg.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Audience: jwt.ClaimStrings{endpoint}, Issuer: p.cfg.ClientID, Subject: p.cfg.ClientID, ID: uuid.NewString(),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	})
	t.Header["x5t"] = base64.RawURLEncoding.EncodeToString(thumb[:])
	return t.SignedString(key)
}

func safeCode(s string) string {
	if len(s) > 40 || strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) >= 0 {
		return "error"
	}
	return s
}
