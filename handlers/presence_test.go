package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

type fakeSignIn struct {
	linked core.TenantID
	began  string
	got    serviceuser.Callback
	err    error
}

func (f *fakeSignIn) Link(_ context.Context, tenant core.TenantID) (string, time.Time, error) {
	f.linked = tenant
	return "https://connecthub.example/api/auth/start?link=" + string(tenant) + ".l1.sealed", time.Date(2026, 12, 2, 10, 15, 0, 0, time.UTC), f.err
}

func (f *fakeSignIn) BeginLink(_ context.Context, link string) (string, string, error) {
	f.began = link
	return "https://login.example/t/oauth2/v2.0/authorize?state=s", "nonce-123", f.err
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

func TestConnectLinkThenRedirectWithCookie(t *testing.T) {
	t.Parallel()
	f := &fakeSignIn{}
	a := &App{Presence: PresenceServices{SignIn: f}}
	tenant := "6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F"
	code, body, h := invokeHTTP(t, a, httpCall{function: "ConnectServiceUser", method: "POST", params: map[string]string{"tenantId": tenant}})
	if code != http.StatusCreated || !strings.Contains(body, `"url":"https://connecthub.example/api/auth/start?link=`) ||
		!strings.Contains(body, `"expiresAt":"2026-12-02T10:15:00Z"`) || h["Cache-Control"] != "no-store" {
		t.Errorf("link = %d %s %v", code, body, h)
	}
	if f.linked != core.TenantID(strings.ToLower(tenant)) {
		t.Errorf("linked for %q", f.linked)
	}
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "ConnectServiceUser", method: "POST", params: map[string]string{"tenantId": "nope"}}); code != http.StatusBadRequest {
		t.Errorf("bad tenant id = %d", code)
	}

	// The browser opens the link: no token, only the link.
	routes := routeTable(t, a)
	r := invoke(t, routes, getCall("AuthStart", nil, map[string]string{"link": "t.l1.sealed"}, nil))
	if r.Status != http.StatusFound || !strings.HasPrefix(r.Headers["Location"], "https://login.example/") || f.began != "t.l1.sealed" {
		t.Errorf("start = %d, headers %v, began %q", r.Status, r.Headers, f.began)
	}
	c := r.Headers["Set-Cookie"]
	for _, want := range []string{"connecthub_signin=nonce-123", "HttpOnly", "Secure", "SameSite=Lax", "Path=/api/auth"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
	f.err = apperr.New(apperr.Invalid, "the connect link has expired; ask your admin for a new one", nil)
	if r := invoke(t, routes, getCall("AuthStart", nil, map[string]string{"link": "old"}, nil)); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Body, "expired") || r.Headers["Set-Cookie"] != "" {
		t.Errorf("expired link = %d %q %v", r.Status, r.Body, r.Headers)
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
