package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
)

type pbxIntakeFunc func(ctx context.Context, tenantID, token string, body []byte) error

func (f pbxIntakeFunc) Receive(ctx context.Context, tenantID, token string, body []byte) error {
	return f(ctx, tenantID, token, body)
}

func TestPbxWebhookOutcomes(t *testing.T) {
	t.Parallel()
	const tenant = "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"
	tests := []struct {
		name       string
		method     string
		headers    map[string][]string
		body       string
		intake     error
		want       int
		wantEcho   string
		wantCalled bool
		wantToken  string
	}{
		{"handshake echoed", "POST", map[string][]string{"Validation-Token": {"a1b2-c3d4"}}, "", nil, 200, "a1b2-c3d4", false, ""},
		// What we echo is what an anonymous caller chose, and RingCentral fails an answer over 1,024 bytes.
		{"handshake token too long", "POST", map[string][]string{"Validation-Token": {strings.Repeat("x", 300)}}, "", nil, 400, "", false, ""},
		{"delivery queued", "POST", map[string][]string{"Verification-Token": {"vt"}}, `{"uuid":"1"}`, nil, 200, "", true, "vt"},
		{"older header name on a delivery", "POST", map[string][]string{"Validation-Token": {"vt"}}, `{"uuid":"1"}`, nil, 200, "", true, "vt"},
		{"not an event", "POST", nil, `[]`, apperr.New(apperr.Invalid, "not a RingCentral notification", nil), 400, "", true, ""},
		{"hand-off failed", "POST", nil, `{"uuid":"1"}`, errors.New("queue down"), 503, "", true, ""},
		{"oversized", "POST", nil, strings.Repeat("x", 2048), nil, 413, "", false, ""},
		{"not a POST", "GET", nil, "", nil, 405, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called, gotToken, gotTenant := false, "", ""
			a := &App{MaxBodyBytes: 1024, PBXWebhook: pbxIntakeFunc(func(_ context.Context, id, tok string, _ []byte) error {
				called, gotToken, gotTenant = true, tok, id
				return tt.intake
			})}
			r := invoke(t, routeTable(t, a), azfunctest.Call{Function: "PbxWebhook", Method: tt.method, Params: map[string]string{"tenantId": tenant},
				Headers: tt.headers, Body: tt.body, MaxBody: 1024})
			if r.Status != tt.want || r.Body != "" {
				t.Errorf("got %d %q, want %d and no body", r.Status, r.Body, tt.want)
			}
			if got := r.Headers["Validation-Token"]; got != tt.wantEcho {
				t.Errorf("Validation-Token = %q, want %q", got, tt.wantEcho)
			}
			if r.Headers["Content-Type"] != "application/json" || r.Headers["X-Content-Type-Options"] != "nosniff" {
				t.Errorf("headers = %v", r.Headers)
			}
			if called != tt.wantCalled || (called && (gotToken != tt.wantToken || gotTenant != tenant)) {
				t.Errorf("intake called %v with token %q tenant %q", called, gotToken, gotTenant)
			}
		})
	}
}
