package handlers

import (
	"context"
	"net/http"
	"net/url"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// Portal serves the Service Manager's pages (internal/portal).
type Portal interface {
	Serve(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse
}

// portalFunctions are the portal's pages (Portal, GET) and its actions (PortalAction, POST, each with
// the session's CSRF token): one route, two functions, so each method has its own OpenAPI operation.
func (a *App) portalFunctions() []function {
	serve := func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse { return a.Portal.Serve(ctx, r) }
	return []function{
		{azfunc.HTTPRoute("Portal", "req", "res", serve), a.Portal},
		{azfunc.HTTPRoute("PortalAction", "req", "res", serve), a.Portal},
	}
}

// portalCaller marks a call the portal makes for its signed-in user: authorize takes the principal the
// session proved instead of reading a bearer token. Only CallAs sets it, in process; nothing from the
// network can (a context value, not a header).
type portalCaller struct{}

// CallAs runs the admin function named function as p, in process: the portal's pages and actions are
// exactly the functions' answers, with their permission checks, validation and audit entries.
func (a *App) CallAs(ctx context.Context, p access.Principal, function string, params map[string]string, query url.Values, body []byte) azfunc.HTTPResponse {
	route, ok := a.byName[function]
	if !ok {
		return azfunc.Plain(http.StatusNotFound, "no such function")
	}
	if query == nil {
		query = url.Values{}
	}
	req := &azfunc.HTTPRequest{Method: http.MethodPost, Query: query, Params: params, Body: body,
		Headers: map[string][]string{"Content-Type": {"application/json"}}}
	res, ok := route.CallHTTP(context.WithValue(ctx, portalCaller{}, p), req)
	if !ok {
		return azfunc.Plain(http.StatusNotFound, "no such function")
	}
	return res
}
