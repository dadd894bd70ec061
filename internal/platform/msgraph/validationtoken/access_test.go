package validationtoken_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
)

const (
	apiClientID = "11111111-2222-3333-4444-555555555555"
	tenantA     = "aaaaaaaa-0000-4000-8000-00000000000a"
	tenantB     = "bbbbbbbb-0000-4000-8000-00000000000b"
	userOID     = "0000aaaa-0000-4000-8000-000000000001"
)

func accessValidator(t *testing.T, p *idptest.Platform, now time.Time) *validationtoken.Validator {
	t.Helper()
	v, err := validationtoken.New(validationtoken.Config{Audience: apiClientID, OpenIDConfigURL: p.ConfigURL(),
		Now: func() time.Time { return now }, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAccessToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	p := idptest.New(t)
	v := accessValidator(t, p, now)
	auds := []string{apiClientID, "api://" + apiClientID}
	roles := []string{"ConnectHub.TenantAdmin"}

	good := idptest.AccessClaims(apiClientID, tenantA, userOID, roles, now)
	good["wids"] = []string{"62e90394-69f5-4237-9190-012177145e10"}
	got, err := v.VerifyAccessToken(p.Mint(t, good), auds...)
	if err != nil {
		t.Fatal(err)
	}
	if got.TenantID != tenantA || got.ObjectID != userOID || !slices.Equal(got.Roles, roles) || len(got.WIDs) != 1 ||
		got.Scopes != "user_impersonation" || got.Version != "2.0" || got.AppID == "" {
		t.Errorf("claims = %+v", got)
	}
	v1, err := v.VerifyAccessToken(p.Mint(t, idptest.AccessClaimsV1(apiClientID, tenantA, userOID, roles, now)), auds...)
	if err != nil || v1.Version != "1.0" || v1.AppID != "04b07795-8ddb-461a-bbee-02f9e1bf7b46" {
		t.Errorf("v1 token = %+v, %v", v1, err)
	}
	uri := idptest.AccessClaims("api://"+apiClientID, tenantA, userOID, roles, now)
	if _, err := v.VerifyAccessToken(p.Mint(t, uri), auds...); err != nil {
		t.Errorf("token for the application id URI: %v", err)
	}
	app, err := v.VerifyAccessToken(p.Mint(t, idptest.AppOnlyClaims(apiClientID, tenantB, "0000bbbb-0000-4000-8000-0000000000a1",
		"22222222-0000-4000-8000-000000000001", []string{"ConnectHub.Automation"}, now)), auds...)
	if err != nil || app.IDType != "app" || app.Scopes != "" || app.AppID != "22222222-0000-4000-8000-000000000001" {
		t.Errorf("app-only token = %+v, %v", app, err)
	}

	with := func(k string, val any) jwt.MapClaims {
		c := idptest.AccessClaims(apiClientID, tenantA, userOID, roles, now)
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	other := p.AddKey(t, "https://login.microsoftonline.com/"+tenantB+"/v2.0") // a key only tenant B's issuer may use
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
	hs.Header["kid"] = p.Kid
	hsToken, _ := hs.SignedString([]byte("guess"))
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"another API's token", p.Mint(t, with("aud", "00000003-0000-0000-c000-000000000000")), validationtoken.ErrInvalidToken},
		{"no audience", p.Mint(t, with("aud", nil)), validationtoken.ErrInvalidToken},
		{"another tenant's issuer", p.Mint(t, with("iss", "https://login.microsoftonline.com/"+tenantB+"/v2.0")), validationtoken.ErrInvalidToken},
		{"issuer with a suffix", p.Mint(t, with("iss", "https://login.microsoftonline.com/"+tenantA+"/v2.0.evil")), validationtoken.ErrInvalidToken},
		{"an issuer that is not Entra", p.Mint(t, with("iss", "https://evil.example/"+tenantA+"/v2.0")), validationtoken.ErrInvalidToken},
		{"no tid", p.Mint(t, with("tid", nil)), validationtoken.ErrInvalidToken},
		{"no oid", p.Mint(t, with("oid", nil)), validationtoken.ErrInvalidToken},
		{"expired", p.Mint(t, with("exp", now.Add(-2*time.Minute).Unix())), validationtoken.ErrInvalidToken},
		{"no expiry", p.Mint(t, with("exp", nil)), validationtoken.ErrInvalidToken},
		{"not yet valid", p.Mint(t, with("nbf", now.Add(5*time.Minute).Unix())), validationtoken.ErrInvalidToken},
		{"signed with tenant B's key for tenant A", other.Mint(t, good), validationtoken.ErrInvalidToken},
		{"HMAC with the key id", hsToken, validationtoken.ErrInvalidToken},
		{"garbage", "not.a.jwt", validationtoken.ErrInvalidToken},
	}
	for _, tc := range tests {
		if _, err := v.VerifyAccessToken(tc.token, auds...); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}

	// Microsoft rotates: a token signed by a key published after the last refresh is unknown at first,
	// then valid once the keys are read again.
	rotated := p.AddKey(t, idptest.TemplatedIssuer)
	tok := rotated.Mint(t, good)
	if _, err := v.VerifyAccessToken(tok, auds...); !errors.Is(err, validationtoken.ErrUnknownKey) {
		t.Errorf("new key before refresh: err = %v, want ErrUnknownKey", err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyAccessToken(tok, auds...); err != nil {
		t.Errorf("new key after refresh: %v", err)
	}
}
