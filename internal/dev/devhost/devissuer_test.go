package devhost

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
)

// A development token is validated by the code the handler runs in Azure, and says who it names.
func TestDevIssuerTokensValidateLikeEntraTokens(t *testing.T) {
	t.Parallel()
	const appID, master = "11111111-2222-3333-4444-555555555555", "master-key"
	d, err := newDevIssuer(appID, master)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.serve(w, r, srv.URL) }))
	defer srv.Close()
	mint := func(key string, req DevTokenRequest) (int, string) {
		b, _ := json.Marshal(req)
		hr, _ := http.NewRequest(http.MethodPost, srv.URL+"/devissuer/token", bytes.NewReader(b))
		hr.Header.Set("x-functions-key", key)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.AccessToken
	}

	v, err := validationtoken.New(validationtoken.Config{Audience: appID, OpenIDConfigURL: srv.URL + DevIssuerConfigPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth, err := access.NewAuthenticator(v, appID)
	if err != nil {
		t.Fatal(err)
	}
	const tenant, user = "aaaaaaaa-0000-4000-8000-00000000000a", "0000aaaa-0000-4000-8000-000000000001"
	code, tok := mint(master, DevTokenRequest{Tenant: tenant, User: user, Roles: []string{access.AppRoleTenantAdmin}})
	if code != http.StatusOK {
		t.Fatalf("mint = %d", code)
	}
	p, err := auth.Authenticate("Bearer " + tok)
	if err != nil || string(p.Tenant) != tenant || p.ObjectID != user || p.App || !p.HasAppRole(access.AppRoleTenantAdmin) {
		t.Fatalf("principal = %+v, %v", p, err)
	}
	_, tok = mint(master, DevTokenRequest{Tenant: tenant, User: user, GlobalAdmin: true})
	if p, err := auth.Authenticate("Bearer " + tok); err != nil || !p.GlobalAdmin {
		t.Errorf("global admin = %+v, %v", p, err)
	}
	_, tok = mint(master, DevTokenRequest{Tenant: tenant, User: user, App: true, Roles: []string{access.AppRoleAutomation}})
	if p, err := auth.Authenticate("Bearer " + tok); err != nil || !p.App {
		t.Errorf("app-only = %+v, %v", p, err)
	}
	_, tok = mint(master, DevTokenRequest{Tenant: tenant, User: user, Audience: "api://another-app"})
	if _, err := auth.Authenticate("Bearer " + tok); err == nil {
		t.Error("a token for another audience was accepted")
	}
	for name, tc := range map[string]struct {
		key  string
		req  DevTokenRequest
		want int
	}{
		"no master key":      {"", DevTokenRequest{Tenant: tenant, User: user}, http.StatusUnauthorized},
		"wrong master key":   {"guess", DevTokenRequest{Tenant: tenant, User: user}, http.StatusUnauthorized},
		"tenant not a GUID":  {master, DevTokenRequest{Tenant: "contoso", User: user}, http.StatusBadRequest},
		"a day and a minute": {master, DevTokenRequest{Tenant: tenant, User: user, Minutes: 24*60 + 1}, http.StatusBadRequest},
	} {
		if code, _ := mint(tc.key, tc.req); code != tc.want {
			t.Errorf("%s: status %d, want %d", name, code, tc.want)
		}
	}
}
