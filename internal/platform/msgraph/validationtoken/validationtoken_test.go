package validationtoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	appID   = "925bff9f-f6e2-4a69-b858-f71ea2b9b6d0"
	tenantA = "9f4ebab6-520d-49c0-85cc-7b25c78d4a93"
	tenantB = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// RSA key generation is slow; the tests share a few keys.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Kid string `json:"kid"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func rsaJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{Kty: "RSA", Use: "sig", Kid: kid, N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

// identityPlatform is a fake of login.microsoftonline.com: an OpenID configuration and a switchable key set.
type identityPlatform struct {
	srv        *httptest.Server
	keys       atomic.Pointer[[]jwk]
	keyFetches atomic.Int64
	failing    atomic.Bool
}

func newIdentityPlatform(t testing.TB, keys ...jwk) *identityPlatform {
	t.Helper()
	p := &identityPlatform{}
	p.setKeys(keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /common/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if p.failing.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0","jwks_uri":"%s/common/discovery/v2.0/keys"}`,
			p.srv.URL)
	})
	mux.HandleFunc("GET /common/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		p.keyFetches.Add(1)
		if p.failing.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": *p.keys.Load()})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *identityPlatform) setKeys(keys ...jwk) { p.keys.Store(&keys) }

func (p *identityPlatform) configURL() string {
	return p.srv.URL + "/common/v2.0/.well-known/openid-configuration"
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newValidator(t testing.TB, p *identityPlatform, mod func(*Config)) *Validator {
	t.Helper()
	cfg := Config{
		Audience:        appID,
		OpenIDConfigURL: p.configURL(),
		Now:             func() time.Time { return fixedNow },
		Logger:          quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func started(t testing.TB, p *identityPlatform, mod func(*Config)) *Validator {
	t.Helper()
	v := newValidator(t, p, mod)
	if err := v.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return v
}

func v1Claims(tid string) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": appID, "iss": "https://sts.windows.net/" + tid + "/", "tid": tid, "appid": GraphChangeTrackingAppID,
		"iat": fixedNow.Add(-5 * time.Minute).Unix(), "nbf": fixedNow.Add(-5 * time.Minute).Unix(),
		"exp": fixedNow.Add(time.Hour).Unix(), "ver": "1.0", "oid": "1e7d79fa-7893-4d50-bdde-164260d9c5ba",
	}
}

func v2Claims(tid string) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": appID, "iss": "https://login.microsoftonline.com/" + tid + "/v2.0", "tid": tid,
		"azp": GraphChangeTrackingAppID, "azpacr": "2",
		"iat": fixedNow.Add(-5 * time.Minute).Unix(), "nbf": fixedNow.Add(-5 * time.Minute).Unix(),
		"exp": fixedNow.Add(time.Hour).Unix(), "ver": "2.0",
	}
}

func mint(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func edit(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	f(out)
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestValidate(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	k1, stranger := keys[0], keys[2]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := started(t, p, func(c *Config) { c.MinRefreshInterval = time.Hour })

	valid := mint(t, k1, "k1", v2Claims(tenantA))
	parts := strings.Split(valid, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, v2Claims(tenantA))
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	payload, err := json.Marshal(edit(v2Claims(tenantA), func(c jwt.MapClaims) {
		c["tid"] = tenantB
		c["iss"] = "https://login.microsoftonline.com/" + tenantB + "/v2.0"
	}))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token string
		want  string
		err   error
	}{
		{"valid v1", mint(t, k1, "k1", v1Claims(tenantA)), tenantA, nil},
		{"valid v2", valid, tenantA, nil},
		{"valid v2 other tenant", mint(t, k1, "k1", v2Claims(tenantB)), tenantB, nil},
		{"audience as array", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { c["aud"] = []string{"x", appID} })),
			tenantA, nil},
		{"expired within leeway", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["exp"] = fixedNow.Add(-30 * time.Second).Unix()
		})), tenantA, nil},
		{"not yet valid within leeway", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["nbf"] = fixedNow.Add(30 * time.Second).Unix()
		})), tenantA, nil},
		{"expired", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["exp"] = fixedNow.Add(-2 * time.Minute).Unix()
		})), "", jwt.ErrTokenExpired},
		{"no exp", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { delete(c, "exp") })), "", ErrInvalidToken},
		{"not yet valid", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["nbf"] = fixedNow.Add(2 * time.Minute).Unix()
		})), "", jwt.ErrTokenNotValidYet},
		{"wrong audience", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { c["aud"] = "other-app" })), "",
			jwt.ErrTokenInvalidAudience},
		{"no audience", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { delete(c, "aud") })), "",
			ErrInvalidToken},
		{"wrong azp", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { c["azp"] = appID })), "", ErrInvalidToken},
		{"v2 with appid instead of azp", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			delete(c, "azp")
			c["appid"] = GraphChangeTrackingAppID
		})), "", ErrInvalidToken},
		{"wrong appid", mint(t, k1, "k1", edit(v1Claims(tenantA), func(c jwt.MapClaims) { c["appid"] = appID })), "", ErrInvalidToken},
		{"v1 with azp instead of appid", mint(t, k1, "k1", edit(v1Claims(tenantA), func(c jwt.MapClaims) {
			delete(c, "appid")
			c["azp"] = GraphChangeTrackingAppID
		})), "", ErrInvalidToken},
		{"wrong issuer host", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["iss"] = "https://login.example.com/" + tenantA + "/v2.0"
		})), "", ErrInvalidToken},
		{"v1 issuer without trailing slash", mint(t, k1, "k1", edit(v1Claims(tenantA), func(c jwt.MapClaims) {
			c["iss"] = "https://sts.windows.net/" + tenantA
		})), "", ErrInvalidToken},
		{"issuer tenant differs from tid", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) {
			c["iss"] = "https://login.microsoftonline.com/" + tenantB + "/v2.0"
		})), "", ErrInvalidToken},
		{"no tid", mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { delete(c, "tid") })), "", ErrInvalidToken},
		{"common issuer with empty tid", mint(t, k1, "k1", edit(v2Claims(""), func(c jwt.MapClaims) {})), "", ErrInvalidToken},
		{"unknown kid", mint(t, k1, "k9", v2Claims(tenantA)), "", ErrUnknownKey},
		{"no kid", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, v2Claims(tenantA))
			s, _ := tok.SignedString(k1)
			return s
		}(), "", ErrUnknownKey},
		{"known kid, other key", mint(t, stranger, "k1", v2Claims(tenantA)), "", jwt.ErrTokenSignatureInvalid},
		{"alg none", b64(`{"alg":"none","typ":"JWT","kid":"k1"}`) + "." + parts[1] + ".", "", ErrInvalidToken},
		{"alg none via library", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, v2Claims(tenantA))
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), "", ErrInvalidToken},
		{"HS256 with the PEM public key as secret", hs256(pubPEM), "", ErrInvalidToken},
		{"HS256 with the DER public key as secret", hs256(pubDER), "", ErrInvalidToken},
		{"RS512 by the right key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS512, v2Claims(tenantA))
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(k1)
			return s
		}(), "", ErrInvalidToken},
		{"PS256 by the right key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodPS256, v2Claims(tenantA))
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(k1)
			return s
		}(), "", ErrInvalidToken},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2], "",
			jwt.ErrTokenSignatureInvalid},
		{"tampered header", b64(`{"alg":"RS256","typ":"JWT","kid":"k1","x":1}`) + "." + parts[1] + "." + parts[2], "",
			jwt.ErrTokenSignatureInvalid},
		{"signature dropped", parts[0] + "." + parts[1] + ".", "", ErrInvalidToken},
		{"not a JWT", "{Validation Tokens}", "", ErrInvalidToken},
		{"empty", "", "", ErrInvalidToken},
		{"oversized", valid + strings.Repeat("A", maxTokenBytes), "", ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Validate(tt.token)
			if tt.err == nil && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("Validate error = %v, want %v", err, tt.err)
			}
			if tt.err != nil && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("error %v wraps neither ErrInvalidToken nor ErrUnknownKey", err)
			}
			if got != tt.want {
				t.Errorf("tenant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := started(t, p, nil)
	a := mint(t, k1, "k1", v2Claims(tenantA))
	b := mint(t, k1, "k1", v1Claims(tenantB))
	otherApp := mint(t, k1, "k1", edit(v2Claims("cccccccc-0000-0000-0000-000000000003"), func(c jwt.MapClaims) {
		c["aud"] = "another-app"
	}))
	forgedB := mint(t, testKeys()[2], "k1", v2Claims(tenantB))

	tests := []struct {
		name    string
		tokens  []string
		want    map[string]bool
		wantErr bool
	}{
		{"none", nil, map[string]bool{}, false},
		{"two tenants", []string{a, b}, map[string]bool{tenantA: true, tenantB: true}, false},
		{"duplicates", []string{a, a, a}, map[string]bool{tenantA: true}, false},
		{"another app's token beside ours", []string{a, otherApp}, map[string]bool{tenantA: true}, true},
		{"forged token of a second tenant", []string{a, forgedB}, map[string]bool{tenantA: true}, true},
		{"a tenant with one good and one forged token", []string{forgedB, b}, map[string]bool{tenantB: true}, true},
		{"all bad", []string{forgedB, "x"}, map[string]bool{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.ValidateAll(tt.tokens)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ValidateAll error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ValidateAll = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBeforeKeysLoaded(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := newValidator(t, p, nil)
	if _, err := v.Validate(mint(t, k1, "k1", v2Claims(tenantA))); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Validate before Start error = %v, want ErrKeysUnavailable", err)
	}
	if got := p.keyFetches.Load(); got != 0 {
		t.Errorf("key fetches before Start = %d, want 0: Validate must not fetch", got)
	}
}

func TestStartFailureThenRecovery(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	p.failing.Store(true)
	v := newValidator(t, p, func(c *Config) { c.MinRefreshInterval = 10 * time.Millisecond })
	if err := v.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded against a failing identity platform")
	}
	token := mint(t, k1, "k1", v2Claims(tenantA))
	if _, err := v.Validate(token); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Validate error = %v, want ErrKeysUnavailable", err)
	}
	p.failing.Store(false)
	waitFor(t, "keys loaded by the background retry", func() bool {
		_, err := v.Validate(token)
		return err == nil
	})
	if err := v.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestRefreshKeepsKeysOnFailure(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := started(t, p, nil)
	token := mint(t, k1, "k1", v2Claims(tenantA))
	tests := []struct {
		name  string
		setup func()
	}{
		{"endpoint down", func() { p.failing.Store(true) }},
		{"no usable keys", func() {
			p.failing.Store(false)
			p.setKeys(jwk{Kty: "EC", Kid: "e1"}, jwk{Kty: "RSA", Use: "enc", Kid: "k1", N: "AQAB", E: "AQAB"})
		}},
	}
	for _, tt := range tests { // sequential: they share the fake
		tt.setup()
		if err := v.Refresh(t.Context()); err == nil {
			t.Errorf("%s: Refresh succeeded", tt.name)
		}
		if _, err := v.Validate(token); err != nil {
			t.Errorf("%s: Validate after a failed refresh: %v", tt.name, err)
		}
	}
}

func TestJWKSSkipsUnusableEntries(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	noUse := rsaJWK("k2", &keys[1].PublicKey)
	noUse.Use = ""
	p := newIdentityPlatform(t,
		jwk{Kty: "EC", Use: "sig", Kid: "ec"},
		rsaJWK("small", &small.PublicKey),
		func() jwk { k := rsaJWK("enc", &keys[0].PublicKey); k.Use = "enc"; return k }(),
		jwk{Kty: "RSA", Use: "sig", Kid: "bad", N: "!!", E: "AQAB"},
		rsaJWK("", &keys[0].PublicKey),
		rsaJWK("k1", &keys[0].PublicKey),
		noUse,
	)
	v := started(t, p, nil)
	tests := []struct {
		name  string
		token string
		err   error
	}{
		{"good key", mint(t, keys[0], "k1", v2Claims(tenantA)), nil},
		{"good key without use", mint(t, keys[1], "k2", v2Claims(tenantA)), nil},
		{"1024-bit key skipped", mint(t, small, "small", v2Claims(tenantA)), ErrUnknownKey},
		{"encryption key skipped", mint(t, keys[0], "enc", v2Claims(tenantA)), ErrUnknownKey},
		{"EC entry skipped", mint(t, keys[0], "ec", v2Claims(tenantA)), ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := v.Validate(tt.token); !errors.Is(err, tt.err) {
				t.Errorf("Validate error = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestBackgroundRefreshPicksUpRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := testKeys()[0], testKeys()[1]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	// Unknown kids must not trigger anything here: only the periodic refresh can pick up the new key.
	v := started(t, p, func(c *Config) { c.RefreshInterval = 20 * time.Millisecond; c.MinRefreshInterval = time.Hour })
	old, rotated := mint(t, k1, "k1", v2Claims(tenantA)), mint(t, k2, "k2", v2Claims(tenantA))
	if _, err := v.Validate(old); err != nil {
		t.Fatalf("Validate old key: %v", err)
	}
	p.setKeys(rsaJWK("k2", &k2.PublicKey))
	fetches := p.keyFetches.Load()
	waitFor(t, "a periodic refresh", func() bool { return p.keyFetches.Load() > fetches+1 })
	if _, err := v.Validate(rotated); err != nil {
		t.Errorf("Validate new key after refresh: %v", err)
	}
	if _, err := v.Validate(old); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Validate retired key error = %v, want ErrUnknownKey", err)
	}
}

func TestUnknownKidTriggersRefresh(t *testing.T) {
	t.Parallel()
	k1, k2 := testKeys()[0], testKeys()[1]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := started(t, p, func(c *Config) { c.RefreshInterval = time.Hour; c.MinRefreshInterval = time.Millisecond })
	p.setKeys(rsaJWK("k1", &k1.PublicKey), rsaJWK("k2", &k2.PublicKey))
	rotated := mint(t, k2, "k2", v2Claims(tenantA))
	if _, err := v.Validate(rotated); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("first Validate error = %v, want ErrUnknownKey (the hot path never waits for a fetch)", err)
	}
	waitFor(t, "the triggered refresh", func() bool { return p.keyFetches.Load() >= 2 })
	waitFor(t, "the new key in use", func() bool { _, err := v.Validate(rotated); return err == nil })
}

func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	v := newValidator(t, p, func(c *Config) { c.RefreshInterval = time.Hour; c.MinRefreshInterval = time.Hour })
	deferred := make(chan struct{}, 10)
	v.onDeferredRefresh = func() { deferred <- struct{}{} }
	if err := v.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for i := range 100 {
		if _, err := v.Validate(mint(t, k1, fmt.Sprintf("unknown-%d", i), v2Claims(tenantA))); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Validate error = %v, want ErrUnknownKey", err)
		}
	}
	select {
	case <-deferred:
	case <-time.After(10 * time.Second):
		t.Fatal("the triggered refresh was never considered")
	}
	// The loop now waits out the hour; requests arriving meanwhile coalesce into one pending trigger.
	if got := p.keyFetches.Load(); got != 1 {
		t.Errorf("key fetches = %d, want 1 (the initial load only)", got)
	}
	if got := len(deferred); got != 0 {
		t.Errorf("%d more deferred refreshes, want 0", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no audience", Config{OpenIDConfigURL: "https://login.example/x"}},
		{"relative URL", Config{Audience: appID, OpenIDConfigURL: "/x"}},
		{"ftp URL", Config{Audience: appID, OpenIDConfigURL: "ftp://login.example/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestPlainHTTPKeysFromHTTPSConfigRejected(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"jwks_uri":"http://keys.example/keys"}`)
	}))
	t.Cleanup(srv.Close)
	v, err := New(Config{Audience: appID, OpenIDConfigURL: srv.URL + "/cfg", HTTPClient: srv.Client(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("Refresh error = %v, want a refusal of the http jwks_uri", err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkValidate(b *testing.B) {
	k1 := testKeys()[0]
	p := newIdentityPlatform(b, rsaJWK("k1", &k1.PublicKey))
	v := newValidator(b, p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.Start(ctx); err != nil {
		b.Fatal(err)
	}
	token := mint(b, k1, "k1", v2Claims(tenantA))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateFresh is a token seen for the first time (or again after a key refresh): JSON
// decoding, the claims and one RSA-2048 signature check. BenchmarkValidate measures one remembered.
func BenchmarkValidateFresh(b *testing.B) {
	k1 := testKeys()[0]
	p := newIdentityPlatform(b, rsaJWK("k1", &k1.PublicKey))
	v := newValidator(b, p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.Start(ctx); err != nil {
		b.Fatal(err)
	}
	token := mint(b, k1, "k1", v2Claims(tenantA))
	b.ReportAllocs()
	for b.Loop() {
		v.verified.mu.Lock()
		v.verified.m = nil // forgotten: every Validate checks afresh
		v.verified.mu.Unlock()
		if _, err := v.Validate(token); err != nil {
			b.Fatal(err)
		}
	}
}

// A token Validate accepted is remembered (Graph sends the same token with many POSTs), but only while
// it holds: once it has expired it is refused as a fresh check refuses it, and a key set refreshed
// without its key refuses it too (TestBackgroundRefreshPicksUpRotation).
func TestValidateRemembersATokenOnlyWhileItHolds(t *testing.T) {
	t.Parallel()
	k1 := testKeys()[0]
	p := newIdentityPlatform(t, rsaJWK("k1", &k1.PublicKey))
	var now atomic.Pointer[time.Time]
	now.Store(&fixedNow)
	v := started(t, p, func(c *Config) { c.Now = func() time.Time { return *now.Load() } })
	token := mint(t, k1, "k1", v2Claims(tenantA))
	for range 3 {
		if tid, err := v.Validate(token); err != nil || tid != tenantA {
			t.Fatalf("Validate = %q, %v; want %s", tid, err, tenantA)
		}
	}
	later := fixedNow.Add(time.Hour + defaultLeeway + time.Second)
	now.Store(&later)
	if _, err := v.Validate(token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Validate of an expired token it accepted before: error = %v, want ErrInvalidToken", err)
	}
	now.Store(&fixedNow)
	forged := mint(t, k1, "k1", edit(v2Claims(tenantA), func(c jwt.MapClaims) { c["azp"] = "someone-else" }))
	for range 2 {
		if _, err := v.Validate(forged); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Validate of another caller's token: error = %v, want ErrInvalidToken", err)
		}
	}
}
