package app

import (
	"context"
	"net/url"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/portal"
)

// wirePortal builds the Service Manager on the admin functions themselves (App.CallAs) and the admin
// API's own access decisions.
func (w *Wired) wirePortal() error {
	cfg := w.Config
	operators, err := core.ParseTenantID(cfg.OperatorTenantID)
	if err != nil {
		return err
	}
	bridge := portalBridge{app: w.App, authn: w.App.Access.Authenticate, authz: w.App.Access.Authorize}
	p, err := portal.New(portal.Config{
		ClientID: cfg.AppID, AuthorityHost: cfg.PortalAuthority, PublicBaseURL: cfg.Presence.PublicBaseURL,
		OperatorTenant: operators, Secrets: w.Secrets, CertName: cfg.Presence.AppClientCertName,
		KeyName: secrets.PortalKeyName, Access: bridge, Sessions: portal.OpenData(w.Store.DB()), API: bridge,
		Now: clock.Now, Log: w.Log,
	})
	if err != nil {
		return err
	}
	w.App.Portal = p
	return nil
}

// portalBridge hands the portal the admin API's identity, access decisions and functions, converting
// its principal (the portal, a module, declares its own) to access's.
type portalBridge struct {
	app   *handlers.App
	authn handlers.Authenticator
	authz handlers.Authorizer
}

func (b portalBridge) Authenticate(authorization string) (portal.Principal, error) {
	p, err := b.authn.Authenticate(authorization)
	return fromAccess(p), err
}

func (b portalBridge) Allowed(ctx context.Context, p portal.Principal, permission string, tenant core.TenantID) bool {
	return b.authz.Allow(ctx, toAccess(p), access.Permission(permission), access.TenantResource(tenant)) == nil
}

func (b portalBridge) CallAs(ctx context.Context, p portal.Principal, function string, params map[string]string, query url.Values, body []byte) azfunc.HTTPResponse {
	return b.app.CallAs(ctx, toAccess(p), function, params, query, body)
}

func fromAccess(p access.Principal) portal.Principal {
	return portal.Principal{Tenant: p.Tenant, ObjectID: p.ObjectID, App: p.App, AppRoles: p.AppRoles, GlobalAdmin: p.GlobalAdmin}
}

func toAccess(p portal.Principal) access.Principal {
	return access.Principal{Tenant: p.Tenant, ObjectID: p.ObjectID, App: p.App, AppRoles: p.AppRoles, GlobalAdmin: p.GlobalAdmin}
}
