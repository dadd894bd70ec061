package app

import (
	"context"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
)

// wireAccess builds who-is-calling and what-they-may-do for the admin functions. Admin tokens are
// signed by Entra ID, like Graph's validation tokens, so in Azure one key cache serves both; on make
// run devhost's development issuer signs them (config refuses it anywhere else).
func (w *Wired) wireAccess(ctx context.Context, graphKeys *validationtoken.Validator) (handlers.AccessServices, error) {
	cfg := w.Config
	keys := graphKeys
	if cfg.AdminOpenIDConfigURL != cfg.OpenIDConfigURL {
		v, err := validationtoken.New(validationtoken.Config{Audience: cfg.AppID, OpenIDConfigURL: cfg.AdminOpenIDConfigURL, Logger: w.Log})
		if err != nil {
			return handlers.AccessServices{}, err
		}
		go func() {
			if err := v.Start(ctx); err != nil {
				w.Log.Warn("admin token keys not loaded yet; retrying in the background", "error", err)
			}
		}()
		keys = v
	}
	authn, err := access.NewAuthenticator(keys, cfg.AppID)
	if err != nil {
		return handlers.AccessServices{}, err
	}
	operators, err := core.ParseTenantID(cfg.OperatorTenantID)
	if err != nil {
		return handlers.AccessServices{}, err
	}
	trail := audit.Trail{Table: audit.OpenLog(w.Store.DB()), Now: clock.Now, Log: w.Log}
	authz, err := access.NewAuthorizer(access.OpenData(w.Store.DB()), operators, trail, clock.Now)
	if err != nil {
		return handlers.AccessServices{}, err
	}
	return handlers.AccessServices{Authenticate: authn, Authorize: authz, Admin: authz}, nil
}
