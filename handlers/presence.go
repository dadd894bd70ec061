package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

// ServiceUserSignIn connects a tenant's service users (internal/presence/serviceuser; active tenants only).
type ServiceUserSignIn interface {
	Link(ctx context.Context, tenant core.TenantID) (link string, expires time.Time, err error)
	BeginLink(ctx context.Context, link string) (authURL, nonce string, err error)
	Complete(ctx context.Context, cb serviceuser.Callback) (serviceuser.ServiceUser, error)
}

// PresenceStatus reports a tenant's presence sync: licensed users, service users connected, needed and
// missing (one service user per 650 users, a Graph limit), subscriptions, re-consent needed.
type PresenceStatus interface {
	Status(ctx context.Context, tenant core.TenantID) (presence.TenantStatus, error)
}

// PresenceServices are the services behind the presence-sync functions.
type PresenceServices struct {
	SignIn ServiceUserSignIn // ConnectServiceUser, AuthStart, AuthCallback
	Status PresenceStatus    // GetPresenceStatus
}

// signInCookie binds the sign-in to the browser that started it; it only goes to the callback.
const (
	signInCookie     = "connecthub_signin"
	signInCookiePath = "/api/auth"
)

// presenceRoutes are the presence capability's own HTTP functions. ConnectServiceUser takes the tenant
// admin's bearer token and answers a connect link; AuthStart and AuthCallback are what a browser opens
// (no bearer token there): the link's sealed token, then the sealed state plus the cookie authenticate
// them.
func (a *App) presenceFunctions() []function {
	return []function{
		{azfunc.HTTPRoute("ConnectServiceUser", "req", "res", a.connectServiceUser), a.Presence.SignIn},
		{azfunc.HTTPRoute("AuthStart", "req", "res", a.authStart), a.Presence.SignIn},
		{azfunc.HTTPRoute("AuthCallback", "req", "res", a.authCallback), a.Presence.SignIn},
		{azfunc.HTTPRoute("GetPresenceStatus", "req", "res", a.getPresenceStatus), a.Presence.Status},
	}
}

// getPresenceStatus answers GET tenants/{tenantId}/presence (function key): the counts an admin needs,
// above all how many more service users the tenant must connect. Errors are JSON like the other admin
// functions'; the sign-in functions answer a browser and stay text.
func (a *App) getPresenceStatus(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	tenant, err := core.ParseCustomerTenant(r.Params["tenantId"])
	if err != nil {
		return errorJSON(ctx, err)
	}
	ctx = core.WithTenant(ctx, tenant)
	if _, err := a.authorize(ctx, r, guard{perm: access.TenantRead, scope: "presence"}, tenant); err != nil {
		return errorJSON(ctx, err)
	}
	st, err := a.Presence.Status.Status(ctx, tenant)
	if err != nil {
		return errorJSON(ctx, err)
	}
	return azfunc.JSON(http.StatusOK, st)
}

// connectServiceUser answers POST tenants/{tenantId}/serviceusers/connect-link: a link the admin opens
// in a browser (or sends to whoever holds the service account) within 15 minutes.
func (a *App) connectServiceUser(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	tenant, err := core.ParseCustomerTenant(r.Params["tenantId"])
	if err != nil {
		return errorJSON(ctx, err)
	}
	ctx = core.WithTenant(ctx, tenant)
	if _, err := a.authorize(ctx, r, guard{perm: access.ServiceUsersWrite}, tenant); err != nil {
		return errorJSON(ctx, err)
	}
	link, expires, err := a.Presence.SignIn.Link(ctx, tenant)
	if err != nil {
		return errorJSON(ctx, err)
	}
	res := azfunc.JSON(http.StatusCreated, struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expiresAt"`
	}{link, expires})
	res.Headers["Cache-Control"] = "no-store"
	return res
}

// authStart answers GET auth/start?link=…: the browser that opened a connect link is sent to sign in,
// with the nonce cookie that AuthCallback checks.
func (a *App) authStart(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	authURL, nonce, err := a.Presence.SignIn.BeginLink(ctx, r.Query.Get("link"))
	if err != nil {
		return presenceError(ctx, err)
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusFound, Headers: map[string]string{
		"Location":      authURL,
		"Set-Cookie":    signInCookie + "=" + nonce + "; Path=" + signInCookiePath + "; Max-Age=900; HttpOnly; Secure; SameSite=Lax",
		"Cache-Control": "no-store",
	}}
}

func (a *App) authCallback(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	q := r.Query
	su, err := a.Presence.SignIn.Complete(ctx, serviceuser.Callback{State: q.Get("state"), Code: q.Get("code"),
		Error: q.Get("error"), CookieNonce: cookie(r.Header("Cookie"), signInCookie)})
	clear := signInCookie + "=; Path=" + signInCookiePath + "; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
	if err != nil {
		res := presenceError(ctx, err)
		res.Headers["Set-Cookie"] = clear
		return res
	}
	azfunc.Logger(ctx).Info("service user connected", "service_user_id", su.ID)
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: connectedPage, Headers: map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Set-Cookie": clear, "Cache-Control": "no-store",
		"Content-Security-Policy": "default-src 'none'",
	}}
}

const connectedPage = `<!doctype html><meta charset="utf-8"><title>ConnectHub</title>` +
	`<p>The service account is connected. Presence sync starts within ten minutes. You can close this window.</p>`

// cookie returns the named cookie's value from a Cookie header.
func cookie(header, name string) string {
	for _, part := range strings.Split(header, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == name {
			return v
		}
	}
	return ""
}

// presenceError answers a failed presence function; clients see only the public message.
func presenceError(ctx context.Context, err error) azfunc.HTTPResponse {
	status := azfunc.HTTPStatus(apperr.CodeOf(err))
	if status >= 500 {
		azfunc.Logger(ctx).Error("presence function failed", "error", err)
	}
	res := azfunc.HTTPResponse{StatusCode: status, Body: apperr.PublicMessage(err), Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
	if status == http.StatusUnauthorized {
		res.Headers["WWW-Authenticate"] = bearerChallenge(err)
	}
	return res
}
