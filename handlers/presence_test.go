package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

type fakeSignIn struct {
	began core.TenantID
	got   serviceuser.Callback
	err   error
}

func (f *fakeSignIn) Begin(_ context.Context, tenant core.TenantID) (string, string, error) {
	f.began = tenant
	return "https://login.example/" + string(tenant) + "/oauth2/v2.0/authorize?state=s", "nonce-123", f.err
}

func (f *fakeSignIn) Complete(_ context.Context, cb serviceuser.Callback) (serviceuser.ServiceUser, error) {
	f.got = cb
	return serviceuser.ServiceUser{ID: "u1"}, f.err
}

// getCall is a GET of a presence function with single-valued headers.
func getCall(function string, params, query, headers map[string]string) azfunctest.Call {
	h := map[string][]string{}
	for k, v := range headers {
		h[k] = []string{v}
	}
	return azfunctest.Call{Function: function, Params: params, Query: query, Headers: h}
}

func TestConnectServiceUserRedirectsWithCookie(t *testing.T) {
	t.Parallel()
	f := &fakeSignIn{}
	routes := routeTable(t, &App{Presence: PresenceServices{SignIn: f}})
	tenant := "6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F"
	r := invoke(t, routes, getCall("ConnectServiceUser", map[string]string{"tenantId": tenant}, nil, nil))
	code, h := r.Status, r.Headers
	if code != http.StatusFound || !strings.HasPrefix(h["Location"], "https://login.example/") {
		t.Errorf("answer %d, headers %v", code, h)
	}
	c := h["Set-Cookie"]
	for _, want := range []string{"connecthub_signin=nonce-123", "HttpOnly", "Secure", "SameSite=Lax", "Path=/api/auth"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
	if f.began != core.TenantID(strings.ToLower(tenant)) {
		t.Errorf("began for %q", f.began)
	}
	if code := invoke(t, routes, getCall("ConnectServiceUser", map[string]string{"tenantId": "nope"}, nil, nil)).Status; code != http.StatusBadRequest {
		t.Errorf("bad tenant id = %d", code)
	}
}

func TestAuthCallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
	}{
		{"connected", nil, http.StatusOK},
		{"refused state", apperr.New(apperr.Invalid, "invalid sign-in state", nil), http.StatusBadRequest},
		{"other browser", apperr.New(apperr.Forbidden, "sign-in was started in another browser", nil), http.StatusForbidden},
		{"identity platform down", apperr.New(apperr.Unavailable, "identity platform unavailable", nil), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSignIn{err: tt.err}
			r := invoke(t, routeTable(t, &App{Presence: PresenceServices{SignIn: f}}), getCall("AuthCallback", nil,
				map[string]string{"state": "st", "code": "cd"}, map[string]string{"Cookie": "a=b; connecthub_signin=nonce-123; c=d"}))
			code, body, h := r.Status, r.Body, r.Headers
			if code != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", code, tt.wantStatus, body)
			}
			if f.got != (serviceuser.Callback{State: "st", Code: "cd", CookieNonce: "nonce-123"}) {
				t.Errorf("callback = %+v", f.got)
			}
			if !strings.Contains(h["Set-Cookie"], "Max-Age=0") {
				t.Errorf("the sign-in cookie is not cleared: %v", h)
			}
			if tt.err != nil && body != apperr.PublicMessage(tt.err) {
				t.Errorf("body = %q", body)
			}
		})
	}
}
