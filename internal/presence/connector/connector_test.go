package connector_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

func TestClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		retryable bool
		code      string
	}{
		{"throttled", &connector.Error{Status: 429, RetryAfter: time.Second}, true, "pbx_throttled"},
		{"server error", fmt.Errorf("push: %w", &connector.Error{Status: 503}), true, "pbx_status_503"},
		{"no answer", errors.New("dial tcp: refused"), true, "pbx_unreachable"},
		{"bad request", &connector.Error{Status: 400}, false, "pbx_status_400"},
		{"unmapped", fmt.Errorf("x: %w", connector.ErrUnmapped), false, "pbx_unmapped"},
		{"not configured", connector.ErrNotConfigured, false, "pbx_not_configured"},
		{"cancelled", context.Canceled, false, "pbx_unreachable"},
	}
	for _, tt := range tests {
		if got := connector.Retryable(tt.err); got != tt.retryable {
			t.Errorf("%s: Retryable = %v, want %v", tt.name, got, tt.retryable)
		}
		if got := connector.Code(tt.err); got != tt.code {
			t.Errorf("%s: Code = %q, want %q", tt.name, got, tt.code)
		}
	}
}

func TestCredentialIsSealedPerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sec := secrets.NewMemory()
	keys := tenantkey.New(sec, tenantkey.Options{})
	a, b := core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"), core.TenantID("7f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
	for _, tn := range []core.TenantID{a, b} {
		if err := keys.CreateTenantKey(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	type cred struct{ Token string }
	if err := connector.SaveCredential(ctx, sec, keys, a, cred{Token: "very-secret-token"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := sec.Get(ctx, secrets.PBXCredentialName(a))
	if raw == "" || contains(raw, "very-secret-token") {
		t.Errorf("stored credential %q is not sealed", raw)
	}
	var got cred
	if err := connector.LoadCredential(ctx, sec, keys, a, &got); err != nil || got.Token != "very-secret-token" {
		t.Errorf("load = %+v, %v", got, err)
	}
	// Copied to another tenant's name it does not open; a missing one is "not configured".
	_ = sec.Set(ctx, secrets.PBXCredentialName(b), raw)
	if err := connector.LoadCredential(ctx, sec, keys, b, &got); err == nil {
		t.Error("a's credential opened as b's")
	}
	if err := connector.LoadCredential(ctx, sec, keys, core.TenantID("8f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"), &got); !errors.Is(err, connector.ErrNotConfigured) {
		t.Errorf("missing credential err = %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
