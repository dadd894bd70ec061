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

// ReceiveSigned is the same function: the tests tell the two routes apart by the header they set.
func (f pbxIntakeFunc) ReceiveSigned(ctx context.Context, tenantID, signature string, body []byte) error {
	return f(ctx, tenantID, signature, body)
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

func TestPbxSignedWebhookOutcomes(t *testing.T) {
	t.Parallel()
	const tenant = "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"
	tests := []struct {
		name   string
		method string
		body   string
		intake error
		want   int
	}{
		{"queued or dropped", "POST", `{"type":"presence","id":"e1","userId":"a0000000-0000-4000-8000-000000000001","sequence":1,"call":true}`, nil, 200},
		{"not an event", "POST", `[]`, apperr.New(apperr.Invalid, "not a presence event", nil), 400},
		{"hand-off failed", "POST", `{"type":"presence","id":"e1","userId":"a0000000-0000-4000-8000-000000000001","sequence":1}`, errors.New("queue down"), 503},
		{"oversized", "POST", strings.Repeat("x", 2048), nil, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gotSig := ""
			a := &App{MaxBodyBytes: 1024, PBXWebhook: pbxIntakeFunc(func(_ context.Context, _, sig string, _ []byte) error { gotSig = sig; return tt.intake })}
			r := invoke(t, routeTable(t, a), azfunctest.Call{Function: "PbxSignedWebhook", Method: tt.method, Params: map[string]string{"tenantId": tenant},
				Headers: map[string][]string{"X-ConnectHub-Signature": {"t=1,v1=ab"}}, Body: tt.body, MaxBody: 1024})
			if r.Status != tt.want {
				t.Errorf("status = %d, want %d", r.Status, tt.want)
			}
			if tt.want != 413 && gotSig != "t=1,v1=ab" {
				t.Errorf("signature handed on = %q", gotSig)
			}
		})
	}
}
