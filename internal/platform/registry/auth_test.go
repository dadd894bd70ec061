package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
)

// jwtCredential issues unsigned JWTs shaped like Entra access tokens for storage. Azurite's "basic"
// OAuth (tools/node_modules/azurite/dist/src/table/authentication/TableTokenAuthenticator.js) decodes
// the token without checking its signature and requires iat/nbf/exp around now, an iss starting with
// https://sts.windows.net/ and an aud of https://storage.azure.com (or the account's table endpoint).
type jwtCredential struct {
	aud, iss string
	mu       sync.Mutex
	scopes   [][]string
}

func (c *jwtCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.scopes = append(c.scopes, o.Scopes)
	c.mu.Unlock()
	now := time.Now()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tok := enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{
		"aud": c.aud, "iss": c.iss, "iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(), "oid": "00000000-0000-0000-0000-000000000001", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}) + "."
	return azcore.AccessToken{Token: tok, ExpiresOn: now.Add(time.Hour)}, nil
}

func TestClientFromConnectionString(t *testing.T) {
	t.Parallel()
	conn := storetest.ConnectionString(t)
	st, err := registry.NewFromConnectionString(conn, tables.Options{TablePrefix: storetest.UniquePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Prepare(t, st.DB())
	a := storetest.NewTenantID(t)
	if _, err := presence.OpenData(st.DB()).Presence.Insert(ctx, a, presence.Presence{UserID: "u1", Availability: "Away"}); err != nil {
		t.Fatal(err)
	}
	if got, err := presence.OpenData(st.DB()).Presence.Get(ctx, a, "u1"); err != nil || got.Availability != "Away" {
		t.Errorf("Get = %+v, %v", got, err)
	}
	// Without a Sealer, personal fields are refused rather than written in clear.
	if _, err := st.Users.Insert(ctx, a, registry.User{ID: "u1", Mail: "ada@example.com"}); err == nil || !strings.Contains(err.Error(), "no Sealer") {
		t.Errorf("sealed field without Sealer err = %v", err)
	}

	if _, err := registry.NewFromConnectionString("UseDevelopmentStorage=true", tables.Options{}); err == nil {
		t.Error("connection string aztables cannot parse was accepted")
	}
	if _, err := registry.NewFromConnectionString(conn, tables.Options{TablePrefix: "1bad"}); err == nil {
		t.Error("invalid table prefix accepted")
	}
	prod, err := registry.NewFromConnectionString(conn, tables.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.DB().DropTables(ctx, tables.Declared().Names()); err == nil {
		t.Error("DropTables without a prefix must refuse (it would drop production tables)")
	}
}

func TestClientWithTokenCredential(t *testing.T) {
	t.Parallel()
	accountURL, httpClient := storetest.OAuthInstance(t)
	opts := func() *aztables.ClientOptions {
		return &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: httpClient,
			Retry: policy.RetryOptions{MaxRetries: -1}}}
	}

	good := &jwtCredential{aud: "https://storage.azure.com", iss: "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"}
	st, err := registry.NewWithCredential(accountURL, good, tables.Options{TablePrefix: storetest.UniquePrefix(), ClientOptions: opts()})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Prepare(t, st.DB())
	a := storetest.NewTenantID(t)
	if _, err := jobs.OpenLeases(st.DB()).Insert(ctx, a, jobs.Job{Name: "j", Runs: 3}); err != nil {
		t.Fatalf("insert with token: %v", err)
	}
	if got, err := jobs.OpenLeases(st.DB()).Get(ctx, a, "j"); err != nil || got.Runs != 3 {
		t.Errorf("get with token = %+v, %v", got, err)
	}
	good.mu.Lock()
	scope := good.scopes[0]
	good.mu.Unlock()
	if len(scope) != 1 || scope[0] != "https://storage.azure.com/.default" {
		t.Errorf("token scope = %v, want storage's .default scope", scope)
	}

	// The instance really checks tokens: a wrong audience or issuer is refused.
	tests := []struct {
		name string
		cred *jwtCredential
	}{
		{"wrong audience", &jwtCredential{aud: "https://vault.azure.net", iss: good.iss}},
		{"wrong issuer", &jwtCredential{aud: good.aud, iss: "https://evil.example/"}},
	}
	for _, tc := range tests {
		bad, err := registry.NewWithCredential(accountURL, tc.cred, tables.Options{TablePrefix: storetest.UniquePrefix(), ClientOptions: opts()})
		if err != nil {
			t.Fatal(err)
		}
		err = bad.DB().CreateTables(ctx, tables.Declared().Names())
		var re *azcore.ResponseError
		if !errors.As(err, &re) || (re.StatusCode != http.StatusForbidden && re.StatusCode != http.StatusUnauthorized) {
			t.Errorf("%s: err = %v, want 401/403", tc.name, err)
		}
	}
}
