// Package portal is the Service Manager: the web pages where a tenant's admins and ConnectHub's
// operators do what the admin and privacy API offers, signed in with their work account.
//
// It is a backend for the frontend. The browser holds an HttpOnly, Secure, SameSite=Lax session cookie
// and nothing else: no token reaches it (signin.go). Each page and each action is one or more calls of
// the admin functions themselves, in process, as the signed-in principal (API): the same permission
// checks, the same validation, the same audit entries as a bearer call, and nothing a function would
// refuse. Pages are server-rendered templates with a stylesheet and one small script from the app's own
// origin, under a Content-Security-Policy without 'unsafe-inline'. Every state-changing request carries
// the session's CSRF token and, when the browser sends one, the app's own Origin. No personal data goes
// into a URL: a person's object id travels in form bodies only.
package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// Principal is who signed in, as their access token said: the admin API's principal (access.Principal),
// declared here because modules do not import each other; internal/app converts.
type Principal struct {
	Tenant      core.TenantID
	ObjectID    string
	App         bool
	AppRoles    []string
	GlobalAdmin bool
}

// ID names the principal in logs: tenant and object id, never a name.
func (p Principal) ID() string { return string(p.Tenant) + "/" + p.ObjectID }

// Access is the admin API's identity and access decisions (access.Authenticator and access.Authorizer).
type Access interface {
	// Authenticate checks "Bearer <access token>" exactly as an admin call's header is checked.
	Authenticate(authorization string) (Principal, error)
	// Allowed answers whether p holds the permission (access.Permission's name) in tenant, so that a
	// page offers only that; the function checks again when it is called.
	Allowed(ctx context.Context, p Principal, permission string, tenant core.TenantID) bool
}

// API calls an admin function as the principal: the function's route parameters, query and body, and
// its answer as the function gave it (handlers.App.CallAs).
type API interface {
	CallAs(ctx context.Context, p Principal, function string, params map[string]string, query url.Values, body []byte) azfunc.HTTPResponse
}

// Config configures the portal.
type Config struct {
	ClientID       string        // our Entra application: the audience of the tokens the sign-in asks for
	AuthorityHost  string        // https://login.microsoftonline.com/, or devhost's development issuer
	PublicBaseURL  string        // where browsers reach the app; the callback is under it
	OperatorTenant core.TenantID // ConnectHub's own tenant: its staff land on the operator page
	Secrets        secrets.Store // the app's client certificate and the portal's sealing key
	CertName       string        // secrets.AppClientCertName
	KeyName        string        // the portal's sealing key (secrets.PortalKeyName)
	Access         Access
	Sessions       *Data
	API            API
	HTTPClient     *http.Client
	Now            func() time.Time
	Log            *slog.Logger
}

// Portal serves the Service Manager's pages.
type Portal struct {
	cfg  Config
	keys *keyRing
	// secure: the app is served over https (Azure): HSTS is sent. Cookies are Secure either way; browsers
	// keep Secure cookies of http://localhost, which is all `make run` serves.
	secure bool
}

// New checks the configuration.
func New(cfg Config) (*Portal, error) {
	if cfg.ClientID == "" || cfg.AuthorityHost == "" || cfg.PublicBaseURL == "" || cfg.Secrets == nil ||
		cfg.CertName == "" || cfg.KeyName == "" || cfg.Access == nil ||
		cfg.Sessions == nil || cfg.API == nil {
		return nil, errors.New("portal: client id, authority, public URL, secrets, certificate and key names, access, sessions and API are required")
	}
	if !strings.HasSuffix(cfg.AuthorityHost, "/") {
		cfg.AuthorityHost += "/"
	}
	cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Portal{cfg: cfg, keys: &keyRing{secrets: cfg.Secrets, name: cfg.KeyName},
		secure: strings.HasPrefix(cfg.PublicBaseURL, "https://")}, nil
}

// Cookie names. __Host- binds the session cookie to this origin and path / (no Domain attribute can be
// set, so no sibling host can plant one); the sign-in cookie is sent to the callback only.
const (
	sessionCookie = "__Host-connecthub-session"
	signInCookie  = "__Secure-connecthub-signin"
	// maxForm bounds a form body: the largest form (the connector's JWT) is a few KB.
	maxForm = 16 << 10
)

// request is one page request, with the session when there is one.
type request struct {
	*azfunc.HTTPRequest
	path    []string
	form    url.Values
	tenant  core.TenantID // the signed-in principal's tenant
	session Session
	secret  []byte
	who     Principal
}

// Serve answers GET and POST under /api/portal/.
func (p *Portal) Serve(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	res := p.serve(ctx, r)
	return p.harden(res)
}

func (p *Portal) serve(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	path := strings.Trim(r.Params["path"], "/")
	req := &request{HTTPRequest: r}
	if path != "" {
		req.path = strings.Split(path, "/")
	}
	switch {
	case path == "static/portal.css" || path == "static/portal.js":
		return staticAsset(path)
	case path == "signin" && r.Method == http.MethodGet:
		return p.signIn(ctx)
	case path == "callback" && r.Method == http.MethodGet:
		return p.callback(ctx, req)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return p.problem(req, http.StatusMethodNotAllowed, "This page is read with GET and changed with POST.")
	}
	if err := p.openSession(ctx, req); err != nil {
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodPost {
				return p.problem(req, http.StatusUnauthorized, "Your session has ended. Sign in again; nothing was changed.")
			}
			return p.render(req, http.StatusOK, "signedout", nil)
		}
		return p.failure(ctx, req, err)
	}
	if r.Method == http.MethodPost {
		if res, ok := p.checkPost(req); !ok {
			return res
		}
	}
	return p.route(ctx, req)
}

// openSession reads the session cookie.
func (p *Portal) openSession(ctx context.Context, req *request) error {
	c := cookie(req.Header("Cookie"), sessionCookie)
	if c == "" {
		return errNoSession
	}
	tenant, s, secret, err := p.cfg.Sessions.open(ctx, c, p.cfg.Now())
	if err != nil {
		return err
	}
	req.tenant, req.session, req.secret, req.who = tenant, s, secret, s.Principal(tenant)
	return nil
}

// checkPost refuses a state-changing request without the session's CSRF token, or sent from another
// origin, before anything reads the form's fields.
func (p *Portal) checkPost(req *request) (azfunc.HTTPResponse, bool) {
	if origin := req.Header("Origin"); origin != "" && origin != p.origin() {
		return p.problem(req, http.StatusForbidden, "This request came from another site and was refused."), false
	}
	if ct := req.Header("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return p.problem(req, http.StatusUnsupportedMediaType, "Forms are sent as application/x-www-form-urlencoded."), false
	}
	if len(req.Body) > maxForm {
		return p.problem(req, http.StatusRequestEntityTooLarge, "The form is too large."), false
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return p.problem(req, http.StatusBadRequest, "The form could not be read."), false
	}
	if !csrfMatches(req.secret, form.Get("csrf")) {
		p.cfg.Log.Info("portal request refused: CSRF token missing or wrong", "tenant", string(req.tenant))
		return p.problem(req, http.StatusForbidden, "This form has expired or did not come from this page. Reload the page and try again; nothing was changed."), false
	}
	req.form = form
	return azfunc.HTTPResponse{}, true
}

func (p *Portal) origin() string {
	u, err := url.Parse(p.cfg.PublicBaseURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// signIn starts the sign-in: the sealed state cookie and the redirect.
func (p *Portal) signIn(ctx context.Context) azfunc.HTTPResponse {
	st := signInState{State: randomString(24), Nonce: randomString(24), Verifier: randomString(48),
		Expires: p.cfg.Now().Add(stateTTL).Unix()}
	sealed, err := p.keys.sealState(ctx, st)
	if err != nil {
		p.cfg.Log.ErrorContext(ctx, "portal sign-in cannot start", "err", err)
		return p.problem(&request{}, http.StatusServiceUnavailable, "Sign-in is not available right now. Try again in a minute.")
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusFound, Headers: map[string]string{
		"Location":   p.authorizeURL(st),
		"Set-Cookie": signInCookie + "=" + sealed + "; Path=/api/portal/callback; Max-Age=900; Secure; HttpOnly; SameSite=Lax",
	}}
}

// callback completes the sign-in and starts the session.
func (p *Portal) callback(ctx context.Context, req *request) azfunc.HTTPResponse {
	q := req.Query
	st, err := p.keys.openState(ctx, cookie(req.Header("Cookie"), signInCookie))
	switch {
	case err != nil || st.State == "" || !constantEqual(st.State, q.Get("state")):
		return p.problem(req, http.StatusBadRequest, "This sign-in was not started in this browser, or was already used. Start again.")
	case p.cfg.Now().Unix() > st.Expires:
		return p.problem(req, http.StatusBadRequest, "The sign-in took too long. Start again.")
	case q.Get("error") != "":
		p.cfg.Log.InfoContext(ctx, "portal sign-in refused by the identity platform", "error", safeCode(q.Get("error")))
		return p.problem(req, http.StatusForbidden, "The sign-in was not completed ("+safeCode(q.Get("error"))+"). Start again, or ask your administrator.")
	case q.Get("code") == "":
		return p.problem(req, http.StatusBadRequest, "The identity platform sent no authorization code. Start again.")
	}
	who, tokenEnds, err := p.redeem(ctx, q.Get("code"), st)
	if err != nil {
		return p.failure(ctx, req, err)
	}
	if who.App {
		return p.problem(req, http.StatusForbidden, "An application cannot sign in to the portal.")
	}
	now := p.cfg.Now()
	expires := now.Add(MaxSession)
	if tokenEnds.Before(expires) {
		expires = tokenEnds
	}
	if !expires.After(now) {
		return p.problem(req, http.StatusForbidden, "The sign-in had already expired. Start again.")
	}
	value, err := p.cfg.Sessions.newSession(ctx, who, now, expires)
	if err != nil {
		return p.failure(ctx, req, err)
	}
	p.cfg.Log.InfoContext(core.WithTenant(ctx, who.Tenant), "portal session started", "principal", who.ID())
	return azfunc.HTTPResponse{StatusCode: http.StatusSeeOther, Headers: map[string]string{
		"Location":   "/api/portal/",
		"Set-Cookie": sessionCookie + "=" + value + "; Path=/; Max-Age=" + itoa(int(expires.Sub(now)/time.Second)) + "; Secure; HttpOnly; SameSite=Lax",
	}}
}

// signOut ends the session here and in the browser.
func (p *Portal) signOut(ctx context.Context, req *request) azfunc.HTTPResponse {
	if err := p.cfg.Sessions.end(ctx, cookie(req.Header("Cookie"), sessionCookie)); err != nil {
		return p.failure(ctx, req, err)
	}
	res := p.render(&request{HTTPRequest: req.HTTPRequest}, http.StatusOK, "signedout", map[string]any{"SignedOut": true})
	res.Headers["Set-Cookie"] = sessionCookie + "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
	return res
}

// harden adds the headers every portal answer carries.
func (p *Portal) harden(res azfunc.HTTPResponse) azfunc.HTTPResponse {
	if res.Headers == nil {
		res.Headers = map[string]string{}
	}
	h := res.Headers
	h["Content-Security-Policy"] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	h["X-Content-Type-Options"] = "nosniff"
	h["X-Frame-Options"] = "DENY"
	// same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with every form,
	// and checkPost compares the origin.
	h["Referrer-Policy"] = "same-origin"
	h["Cross-Origin-Opener-Policy"] = "same-origin"
	if _, ok := h["Cache-Control"]; !ok {
		h["Cache-Control"] = "no-store"
	}
	if p.secure {
		h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
	}
	return res
}

// failure renders an error: an apperr's status and public message, else 500 without detail.
func (p *Portal) failure(ctx context.Context, req *request, err error) azfunc.HTTPResponse {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return p.problem(req, azfunc.HTTPStatus(ae.Code), ae.Public)
	}
	p.cfg.Log.ErrorContext(ctx, "portal request failed", "err", err)
	return p.problem(req, http.StatusInternalServerError, "Something went wrong on our side. Try again; if it persists, tell your ConnectHub contact.")
}

func cookie(header, name string) string {
	c, err := (&http.Request{Header: http.Header{"Cookie": {header}}}).Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
