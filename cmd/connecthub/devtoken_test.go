package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
)

func TestDevToken(t *testing.T) {
	t.Parallel()
	const appID, master = "11111111-2222-3333-4444-555555555555", "local-master"
	h, err := devhost.DevIssuer(appID, master)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	settings := filepath.Join(t.TempDir(), "local.settings.json")
	b, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Values": map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom", devhost.SettingMasterKey: master}})
	if err := os.WriteFile(settings, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const tenant, user = "aaaaaaaa-0000-4000-8000-00000000000a", "0000aaaa-0000-4000-8000-000000000001"
	var out, errOut bytes.Buffer
	err = realMain(context.Background(), []string{"dev-token", "--settings", settings, "--host", srv.URL,
		"--tenant", tenant, "--user", user, "--role", access.AppRoleTenantAdmin, "--role", access.AppRoleOperator}, nil, &out, &errOut)
	if err != nil {
		t.Fatalf("dev-token: %v\n%s", err, errOut.String())
	}
	v, err := validationtoken.New(validationtoken.Config{Audience: appID, OpenIDConfigURL: srv.URL + devhost.DevIssuerConfigPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth, _ := access.NewAuthenticator(v, appID)
	p, err := auth.Authenticate("Bearer " + strings.TrimSpace(out.String()))
	if err != nil || p.ObjectID != user || !p.HasAppRole(access.AppRoleTenantAdmin) || !p.HasAppRole(access.AppRoleOperator) {
		t.Errorf("token names %+v, %v", p, err)
	}

	// A wrong master key is refused by devhost, and said so.
	b, _ = json.Marshal(map[string]any{"IsEncrypted": false, "Values": map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom", devhost.SettingMasterKey: "stale"}})
	_ = os.WriteFile(settings, b, 0o600)
	out.Reset()
	err = realMain(context.Background(), []string{"dev-token", "--settings", settings, "--host", srv.URL, "--tenant", tenant, "--user", user},
		nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") || out.Len() != 0 {
		t.Errorf("stale master key: %v, printed %q", err, out.String())
	}
}
