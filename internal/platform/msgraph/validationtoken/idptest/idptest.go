// Package idptest is a fake of the Microsoft identity platform's signing side for tests outside
// validationtoken: the OpenID configuration documents and the key set, served by httptest, and tokens
// minted the way Graph's validation tokens look (RS256, appid/azp = Microsoft Graph Change Tracking).
// It answers as login.microsoftonline.com does, each behaviour with its source in a comment.
package idptest

import (
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
)

// TemplatedIssuer is the issuer of the common (multi-tenant) v2.0 metadata and of its keys: a template
// that a validator fills with the token's tid before it compares (Learn, v2-protocols-oidc "Find your
// app's OpenID configuration document URI": the common document's issuer holds "{tenantid}").
const TemplatedIssuer = "https://login.microsoftonline.com/{tenantid}/v2.0"

// Key is one signing key of the platform.
type Key struct {
	Private *rsa.PrivateKey
	// Kid identifies the key in a token's header; X5t is the SHA-1 thumbprint of its certificate, which
	// v1 tokens and Microsoft's key sets carry as well (Learn, access-tokens "Validate the signature").
	Kid, X5t string
	// Issuer, when set, is published with the key: it may sign only that (templated) issuer's tokens.
	Issuer string
}

// Platform serves /common/v2.0/.well-known/openid-configuration, /{tenant}/v2.0/.well-known/…, and the
// key set /common/discovery/v2.0/keys.
type Platform struct {
	// Key and Kid are the first signing key (Mint signs with it).
	Key *rsa.PrivateKey
	Kid string
	srv *httptest.Server

	mu   sync.Mutex
	keys []*Key
}

// New starts a platform with one fresh RSA-2048 signing key whose set entry names the templated
// issuer, as Microsoft's common key set does.
func New(t testing.TB) *Platform {
	t.Helper()
	p := &Platform{}
	k := p.AddKey(t, TemplatedIssuer)
	p.Key, p.Kid = k.Private, k.Kid
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		issuer := "https://login.microsoftonline.com/" + r.PathValue("tenant") + "/v2.0"
		switch r.PathValue("tenant") {
		case "common", "organizations", "consumers":
			issuer = TemplatedIssuer
		}
		writeJSON(w, map[string]any{"issuer": issuer, "jwks_uri": p.srv.URL + "/common/discovery/v2.0/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /common/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		keys := make([]map[string]any, 0, len(p.keys))
		for _, k := range p.keys {
			e := map[string]any{"kty": "RSA", "use": "sig", "kid": k.Kid, "x5t": k.X5t,
				"n": base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Private.E)).Bytes())}
			if k.Issuer != "" {
				e["issuer"] = k.Issuer
			}
			keys = append(keys, e)
		}
		p.mu.Unlock()
		writeJSON(w, map[string]any{"keys": keys})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// AddKey publishes another signing key (rotation, or a key of another issuer).
func (p *Platform) AddKey(t testing.TB, issuer string) *Key {
	t.Helper()
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(cert.Raw)
	thumb := base64.RawURLEncoding.EncodeToString(sum[:])
	// Entra's kid is the x5t value for its current keys.
	k := &Key{Private: key, Kid: thumb, X5t: thumb, Issuer: issuer}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, k)
	return k
}

// ConfigURL is the OpenID configuration URL to give the validator.
func (p *Platform) ConfigURL() string {
	return p.srv.URL + "/common/v2.0/.well-known/openid-configuration"
}

// Claims are valid v2 validation-token claims for appID and tenant at now.
func Claims(appID, tenant string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": appID, "iss": "https://login.microsoftonline.com/" + tenant + "/v2.0", "tid": tenant,
		"azp": validationtoken.GraphChangeTrackingAppID, "azpacr": "2", "ver": "2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// ClaimsV1 are valid v1 validation-token claims: issuer sts.windows.net, the caller in appid (Graph
// sends v1 tokens when the app's manifest does not ask for v2).
func ClaimsV1(appID, tenant string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": appID, "iss": "https://sts.windows.net/" + tenant + "/", "tid": tenant,
		"appid": validationtoken.GraphChangeTrackingAppID, "appidacr": "2", "ver": "1.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Mint signs claims with the platform's first key.
func (p *Platform) Mint(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	k := p.keys[0]
	p.mu.Unlock()
	return k.Mint(t, claims)
}

// Mint signs claims with k, naming it by kid and x5t in the header.
func (k *Key) Mint(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"], tok.Header["x5t"] = k.Kid, k.X5t
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// AccessClaims are valid v2 access-token claims for our API (aud = the API's client id) issued to a
// user oid of tenant at now, with the given app roles (Learn, access-tokens "Payload claims": tid,
// oid, azp, roles, wids, idtyp as an optional claim).
func AccessClaims(apiClientID, tenant, oid string, roles []string, now time.Time) jwt.MapClaims {
	c := jwt.MapClaims{
		"aud": apiClientID, "iss": "https://login.microsoftonline.com/" + tenant + "/v2.0", "tid": tenant, "oid": oid,
		"sub": "pairwise-" + oid, "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "azpacr": "0", "scp": "user_impersonation",
		"ver": "2.0", "iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// AccessClaimsV1 are the v1 form (issuer sts.windows.net, the client in appid), as Entra issues them
// while the API's manifest keeps accessTokenAcceptedVersion null or 1.
func AccessClaimsV1(apiClientID, tenant, oid string, roles []string, now time.Time) jwt.MapClaims {
	c := AccessClaims(apiClientID, tenant, oid, roles, now)
	c["iss"], c["ver"], c["appid"], c["appidacr"] = "https://sts.windows.net/"+tenant+"/", "1.0", c["azp"], "0"
	delete(c, "azp")
	delete(c, "azpacr")
	return c
}

// AppOnlyClaims are a client-credentials token of an app of tenant: no scp, the app's roles, and
// idtyp "app" (the optional claim ConnectHub's registration asks for).
func AppOnlyClaims(apiClientID, tenant, appObjectID, appID string, roles []string, now time.Time) jwt.MapClaims {
	c := AccessClaims(apiClientID, tenant, appObjectID, roles, now)
	delete(c, "scp")
	c["azp"], c["azpacr"], c["idtyp"], c["sub"] = appID, "2", "app", appObjectID
	return c
}
