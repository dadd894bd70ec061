package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/store"
)

// ServiceUserSignIn connects a tenant's service users (internal/presence/serviceuser behind a tenant check).
type ServiceUserSignIn interface {
	Begin(ctx context.Context, tenant core.TenantID) (authURL, nonce string, err error)
	Complete(ctx context.Context, cb serviceuser.Callback) (store.ServiceUser, error)
}

// PresenceStatus reports a tenant's presence sync: licensed users, service users connected, needed and
// missing (one service user per 650 users, a Graph limit), subscriptions, re-consent needed.
type PresenceStatus interface {
	Status(ctx context.Context, tenant core.TenantID) (presence.TenantStatus, error)
}

// PresenceServices are the services behind the presence-sync functions.
type PresenceServices struct {
	SignIn ServiceUserSignIn
	Status PresenceStatus
}

// signInCookie binds the sign-in to the browser that started it; it only goes to the callback.
const (
	signInCookie     = "connecthub_signin"
	signInCookiePath = "/api/auth"
)

// presenceRoutes are the presence capability's own HTTP functions. ConnectServiceUser needs a function
// key (the admin portal hands an authorised admin the link); AuthCallback is anonymous: the identity
// platform sends the browser there, and the sealed state plus the cookie authenticate it.
func (a *App) presenceRoutes() []Route {
	return []Route{
		HTTPRoute("ConnectServiceUser", "req", "res", a.connectServiceUser),
		HTTPRoute("AuthCallback", "req", "res", a.authCallback),
		HTTPRoute("GetPresenceStatus", "req", "res", a.presenceStatus),
	}
}

// presenceStatus answers GET tenants/{tenantId}/presence (function key): the counts an admin needs,
// above all how many more service users the tenant must connect. Errors are JSON like the other admin
// functions'; the sign-in functions answer a browser and stay text.
func (a *App) presenceStatus(ctx context.Context, r *HTTPRequest) HTTPResponse {
	if a.Presence.Status == nil {
		return errorJSON(ctx, errNotConfigured)
	}
	tenant, err := core.ParseTenantID(r.Params["tenantId"])
	if err != nil {
		return errorJSON(ctx, apperr.New(apperr.Invalid, "tenant id must be a GUID", err))
	}
	st, err := a.Presence.Status.Status(ctx, tenant)
	if err != nil {
		return errorJSON(ctx, err)
	}
	return jsonResponse(http.StatusOK, st)
}

func (a *App) connectServiceUser(ctx context.Context, r *HTTPRequest) HTTPResponse {
	if a.Presence.SignIn == nil {
		return presenceError(ctx, errNotConfigured)
	}
	tenant, err := core.ParseTenantID(r.Params["tenantId"])
	if err != nil {
		return presenceError(ctx, apperr.New(apperr.Invalid, "tenant id must be a GUID", err))
	}
	authURL, nonce, err := a.Presence.SignIn.Begin(ctx, tenant)
	if err != nil {
		return presenceError(ctx, err)
	}
	return HTTPResponse{StatusCode: http.StatusFound, Headers: map[string]string{
		"Location":      authURL,
		"Set-Cookie":    signInCookie + "=" + nonce + "; Path=" + signInCookiePath + "; Max-Age=900; HttpOnly; Secure; SameSite=Lax",
		"Cache-Control": "no-store",
	}}
}

func (a *App) authCallback(ctx context.Context, r *HTTPRequest) HTTPResponse {
	if a.Presence.SignIn == nil {
		return presenceError(ctx, errNotConfigured)
	}
	q := r.Query
	su, err := a.Presence.SignIn.Complete(ctx, serviceuser.Callback{State: q.Get("state"), Code: q.Get("code"),
		Error: q.Get("error"), CookieNonce: cookie(r.Header("Cookie"), signInCookie)})
	clear := signInCookie + "=; Path=" + signInCookiePath + "; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
	if err != nil {
		res := presenceError(ctx, err)
		res.Headers["Set-Cookie"] = clear
		return res
	}
	Logger(ctx).Info("service user connected", "service_user_id", su.ID)
	return HTTPResponse{StatusCode: http.StatusOK, Body: connectedPage, Headers: map[string]string{
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
func presenceError(ctx context.Context, err error) HTTPResponse {
	status := httpStatus(apperr.CodeOf(err))
	if status >= 500 {
		Logger(ctx).Error("presence function failed", "error", err)
	}
	return HTTPResponse{StatusCode: status, Body: apperr.PublicMessage(err), Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
}
