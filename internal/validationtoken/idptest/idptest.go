// Package idptest is a fake of the Microsoft identity platform for tests outside validationtoken: an
// OpenID configuration and key set served by httptest, and tokens minted the way Graph's validation
// tokens look (v2 claims, RS256, azp = Microsoft Graph Change Tracking).
package idptest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/validationtoken"
)

// Platform serves /common/v2.0/.well-known/openid-configuration and its keys.
type Platform struct {
	Key *rsa.PrivateKey
	Kid string
	srv *httptest.Server
}

// New starts a platform with one fresh RSA-2048 signing key.
func New(t testing.TB) *Platform {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{Key: key, Kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /common/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0","jwks_uri":"%s/common/discovery/v2.0/keys"}`, p.srv.URL)
	})
	mux.HandleFunc("GET /common/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "kid": p.Kid,
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// ConfigURL is the OpenID configuration URL to give the validator.
func (p *Platform) ConfigURL() string {
	return p.srv.URL + "/common/v2.0/.well-known/openid-configuration"
}

// Claims are valid v2 validation-token claims for appID and tenant at now.
func Claims(appID, tenant string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": appID, "iss": "https://login.microsoftonline.com/" + tenant + "/v2.0", "tid": tenant,
		"azp": validationtoken.GraphChangeTrackingAppID, "ver": "2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Mint signs claims with the platform's key.
func (p *Platform) Mint(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = p.Kid
	s, err := tok.SignedString(p.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
