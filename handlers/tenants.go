package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/tenants"
)

// TenantAdmin is the tenant lifecycle and licensing service (internal/tenants).
type TenantAdmin interface {
	StartOnboarding(ctx context.Context, a core.Actor, tenant core.TenantID, req tenants.OnboardingRequest) (tenants.Onboarding, error)
	CompleteConsent(ctx context.Context, cb tenants.ConsentCallback) (tenants.ConsentResult, error)
	Get(ctx context.Context, tenant core.TenantID) (tenants.View, error)
	Suspend(ctx context.Context, a core.Actor, tenant core.TenantID) (tenants.View, error)
	Cancel(ctx context.Context, a core.Actor, tenant core.TenantID) (tenants.View, error)
	Reactivate(ctx context.Context, a core.Actor, tenant core.TenantID) (tenants.View, error)
	SetPurchasedLicenses(ctx context.Context, a core.Actor, tenant core.TenantID, n int) (tenants.View, error)
	Assign(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) (tenants.License, error)
	Unassign(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error
	RefreshProfile(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error
	ListLicensed(ctx context.Context, tenant core.TenantID, search, pageToken string, pageSize int) (tenants.UserPage, error)
}

var _ TenantAdmin = (*tenants.Service)(nil)

// TenantServices are the services behind the tenant lifecycle and licensing functions.
// TenantLister pages over every tenant (registry.TenantRegistry): the operators' overview.
type TenantLister interface {
	OperatorList(ctx context.Context, opts *tables.ListOptions) (tables.Page[registry.Tenant], error)
}

type TenantServices struct {
	// List is ListTenants'.
	List  TenantLister
	Admin TenantAdmin // AdminConsentCallback, StartOnboarding, GetTenant, Suspend/Cancel/ReactivateTenant, SetTenantLicenses, Assign/UnassignLicense
}

// Until the role-based admin API, the function key is the authorisation; without the header the audit
// records the key as the actor.

// maxAdminBody bounds the JSON bodies of the admin functions (a few small fields).
const maxAdminBody = 4 << 10

// tenantRoutes are the tenant capability's own HTTP functions. The consent callback is anonymous (the
// customer's admin arrives from Microsoft's redirect, authenticated by the one-time state); the operator
// actions require a function key.
func (a *App) tenantFunctions() []function {
	op := func(name string, g guard, h func(context.Context, TenantAdmin, core.Actor, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.tenantOp(ctx, r, g, h)
		}), a.Tenants.Admin}
	}
	return []function{
		{azfunc.HTTPRoute("ListTenants", "req", "res", a.listTenants), a.Tenants.List},
		{azfunc.HTTPRoute("AdminConsentCallback", "req", "res", a.adminConsentCallback), a.Tenants.Admin},
		op("StartOnboarding", guard{perm: access.TenantCreate, service: true}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				PurchasedLicenses int    `json:"purchasedLicenses"`
				HomeRegion        string `json:"homeRegion"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			ob, err := s.StartOnboarding(ctx, actor, id, tenants.OnboardingRequest{PurchasedLicenses: body.PurchasedLicenses, HomeRegion: body.HomeRegion})
			return http.StatusCreated, onboardingJSON{ConsentURL: ob.ConsentURL, ExpiresAt: ob.ExpiresAt}, err
		}),
		op("GetTenant", guard{perm: access.TenantRead}, func(ctx context.Context, s TenantAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Get(ctx, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("SuspendTenant", guard{perm: access.TenantLifecycle}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Suspend(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("CancelTenant", guard{perm: access.TenantLifecycle}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Cancel(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("ReactivateTenant", guard{perm: access.TenantLifecycle}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Reactivate(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("SetTenantLicenses", guard{perm: access.LicensesPurchase}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Purchased *int `json:"purchased"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			if body.Purchased == nil {
				return 0, nil, apperr.New(apperr.Invalid, "purchased is required", nil)
			}
			v, err := s.SetPurchasedLicenses(ctx, actor, id, *body.Purchased)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("AssignLicense", guard{perm: access.LicensesWrite, scope: "users/{userId}"}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			l, err := s.Assign(ctx, actor, id, r.Params["userId"])
			return http.StatusOK, licenseJSON{UserID: l.UserID, AssignedAt: l.AssignedAt, AssignedBy: l.AssignedBy,
				PurchasedLicenses: l.Purchased, AssignedLicenses: l.Assigned}, err
		}),
		op("ListLicensedUsers", guard{perm: access.LicensesWrite, scope: "users"}, func(ctx context.Context, s TenantAdmin, _ core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			size := 0
			if v := r.Query.Get("pageSize"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > tenants.MaxUserPage {
					return 0, nil, apperr.New(apperr.Invalid, "pageSize must be 1 to "+strconv.Itoa(tenants.MaxUserPage), nil)
				}
				size = n
			}
			p, err := s.ListLicensed(ctx, id, r.Query.Get("search"), r.Query.Get("pageToken"), size)
			out := userPageJSON{Users: make([]licensedUserJSON, 0, len(p.Users)), NextPageToken: p.Next}
			for _, u := range p.Users {
				out.Users = append(out.Users, licensedUserJSON{UserID: u.ID, DisplayName: u.DisplayName, Mail: u.Mail,
					UserPrincipalName: u.UPN, ProcessingRestricted: u.Restricted})
			}
			return http.StatusOK, out, err
		}),
		op("UnassignLicense", guard{perm: access.LicensesWrite, scope: "users/{userId}"}, func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.Unassign(ctx, actor, id, r.Params["userId"])
		}),
	}
}

// tenantOp runs an operator action of the tenant capability.
func (a *App) tenantOp(ctx context.Context, r *azfunc.HTTPRequest, g guard, h func(context.Context, TenantAdmin, core.Actor, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) azfunc.HTTPResponse {
	return a.adminCall(ctx, r, maxAdminBody, g, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
		return h(ctx, a.Tenants.Admin, actor, id, r)
	})
}

// adminCall is what every tenant-scoped admin function does around its service call: cap the body,
// parse the tenant id (and stamp it on the context's log lines), name the actor, and encode the answer
// or the error as JSON.
// guard is what an admin function needs: a permission on the tenant of its path, or on a part of it
// (scope, which may name a path parameter: "users/{userId}"), or on the service as a whole.
type guard struct {
	perm    access.Permission
	scope   string
	service bool              // the resource is the service (onboarding a new tenant)
	or      access.Permission // another permission that also admits (the function narrows what it answers)
}

// adminCall runs an admin function: body cap, the tenant of the path, then who is calling (a bearer
// token: 401 without a valid one) and whether they may (403), and only then call, with the caller as
// the audit trail's actor.
func (a *App) adminCall(ctx context.Context, r *azfunc.HTTPRequest, maxBody int, g guard, call func(context.Context, core.Actor, core.TenantID) (int, any, error)) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxBody, g, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
		return call(ctx, p.Actor(azfunc.InvocationID(ctx)), id)
	})
}

// principalCall is adminCall for services that decide on the caller themselves (the grants).
func (a *App) principalCall(ctx context.Context, r *azfunc.HTTPRequest, maxBody int, g guard, call func(context.Context, access.Principal, core.TenantID) (int, any, error)) azfunc.HTTPResponse {
	if len(r.Body) > maxBody {
		return errorJSON(ctx, apperr.New(apperr.TooLarge, "body too large", nil))
	}
	id, err := core.ParseCustomerTenant(r.Params["tenantId"])
	if err != nil {
		return errorJSON(ctx, err)
	}
	ctx = core.WithTenant(ctx, id)
	p, err := a.authorize(ctx, r, g, id)
	if err != nil {
		return errorJSON(ctx, err)
	}
	status, body, err := call(ctx, p, id)
	if err != nil {
		return errorJSON(ctx, err)
	}
	if res, ok := body.(azfunc.HTTPResponse); ok { // an answer that is not JSON (the audit export)
		return res
	}
	if body == nil {
		return azfunc.HTTPResponse{StatusCode: status}
	}
	return azfunc.JSON(status, body)
}

// authorize answers who is calling and checks they may exercise g on tenant.
func (a *App) authorize(ctx context.Context, r *azfunc.HTTPRequest, g guard, tenant core.TenantID) (access.Principal, error) {
	p, fromPortal := ctx.Value(portalCaller{}).(access.Principal)
	if !fromPortal {
		var err error
		if p, err = a.Access.Authenticate.Authenticate(r.Header("Authorization")); err != nil {
			return access.Principal{}, err
		}
	}
	res := access.Resource{Tenant: tenant, Path: g.scope}
	for k, v := range r.Params {
		res.Path = strings.ReplaceAll(res.Path, "{"+k+"}", strings.ToLower(v))
	}
	if g.service {
		res = access.Resource{}
	}
	if err := a.Access.Authorize.Allow(ctx, p, g.perm, res); err != nil {
		if g.or == "" || a.Access.Authorize.Allow(ctx, p, g.or, res) != nil {
			azfunc.Logger(ctx).InfoContext(ctx, "admin call refused", "principal", p.ID(), "permission", string(g.perm))
			return access.Principal{}, err
		}
	}
	return p, nil
}

// decodeJSONBody decodes an admin body strictly: one JSON object with the documented fields, each at
// most once, and nothing after it. encoding/json alone would take the last of two duplicate keys and
// ignore trailing data, so {"purchased":1,"purchased":100} or {"purchased":11} garbage would pass
// with a meaning the caller may not have intended.
func decodeJSONBody(r *azfunc.HTTPRequest, v any) error {
	invalid := func(err error) error {
		return apperr.New(apperr.Invalid, "body must be a JSON object with the documented fields", err)
	}
	if err := noDuplicateKeys(r.Body); err != nil {
		return invalid(err)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid(errors.New("data after the JSON object"))
	}
	return nil
}

// noDuplicateKeys walks the document's tokens and fails on an object that names a key twice.
func noDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{keys: map[string]bool{}, object: true, key: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:top]
				if top > 0 && stack[top-1].object {
					stack[top-1].key = true
				}
			}
			continue
		}
		if top < 0 || !stack[top].object {
			continue
		}
		if stack[top].key {
			k, _ := tok.(string)
			if stack[top].keys[k] {
				return fmt.Errorf("key %q appears twice", core.Clip(k, 64))
			}
			stack[top].keys[k] = true
			stack[top].key = false
			continue
		}
		stack[top].key = true // a scalar value: the next token is a key again
	}
}

func errorJSON(ctx context.Context, err error) azfunc.HTTPResponse {
	status := azfunc.HTTPStatus(apperr.CodeOf(err))
	if status >= 500 {
		azfunc.Logger(ctx).Error("admin action failed", "error", err)
	}
	res := azfunc.JSON(status, map[string]string{"error": apperr.PublicMessage(err)})
	if status == http.StatusUnauthorized {
		res.Headers["WWW-Authenticate"] = bearerChallenge(err)
	}
	return res
}

// bearerChallenge is RFC 6750's answer to a request without a usable token: error="invalid_token"
// when one was presented, the bare scheme when none was.
func bearerChallenge(err error) string {
	if errors.Is(err, access.ErrNoToken) {
		return `Bearer realm="connecthub"`
	}
	return `Bearer realm="connecthub", error="invalid_token"`
}

type licensedUserJSON struct {
	UserID               string `json:"userId"`
	DisplayName          string `json:"displayName,omitempty"`
	Mail                 string `json:"mail,omitempty"`
	UserPrincipalName    string `json:"userPrincipalName,omitempty"`
	ProcessingRestricted bool   `json:"processingRestricted"`
}

type userPageJSON struct {
	Users         []licensedUserJSON `json:"users"`
	NextPageToken string             `json:"nextPageToken,omitempty"`
}

type onboardingJSON struct {
	ConsentURL string    `json:"consentUrl"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

type tenantJSON struct {
	ID                   string     `json:"id"`
	State                string     `json:"state"`
	HomeRegion           string     `json:"homeRegion,omitempty"`
	PurchasedLicenses    int        `json:"purchasedLicenses"`
	AssignedLicenses     int        `json:"assignedLicenses"`
	OverAssignedLicenses int        `json:"overAssignedLicenses"`
	ConsentedAt          *time.Time `json:"consentedAt,omitempty"`
	SuspendedAt          *time.Time `json:"suspendedAt,omitempty"`
	CancelledAt          *time.Time `json:"cancelledAt,omitempty"`
	DeletionDueAt        *time.Time `json:"deletionDueAt,omitempty"`
	CreatedAt            *time.Time `json:"createdAt,omitempty"`
	UpdatedAt            *time.Time `json:"updatedAt,omitempty"`
}

func toTenantJSON(v tenants.View) tenantJSON {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return tenantJSON{ID: string(v.ID), State: string(v.State), HomeRegion: v.HomeRegion,
		PurchasedLicenses: v.PurchasedLicenses, AssignedLicenses: v.AssignedLicenses, OverAssignedLicenses: v.OverAssigned,
		ConsentedAt: at(v.ConsentedAt), SuspendedAt: at(v.SuspendedAt), CancelledAt: at(v.CancelledAt),
		DeletionDueAt: at(v.DeletionDueAt), CreatedAt: at(v.CreatedAt), UpdatedAt: at(v.UpdatedAt)}
}

type licenseJSON struct {
	UserID            string    `json:"userId"`
	AssignedAt        time.Time `json:"assignedAt"`
	AssignedBy        string    `json:"assignedBy"`
	PurchasedLicenses int       `json:"purchasedLicenses"`
	AssignedLicenses  int       `json:"assignedLicenses"`
}

// Pages of the consent callback: fixed texts, nothing from the request echoed back.
const (
	pageConnected   = "ConnectHub is now connected to your organisation. You can close this window."
	pageRefused     = "Consent was not granted, so ConnectHub is not connected. You can use the same link again to retry while it is valid."
	pageUnconfirmed = "Microsoft has not confirmed that your organisation granted ConnectHub access, so ConnectHub is not connected. If you have just accepted, wait a few minutes and use the same link again while it is valid."
	pageInvalid     = "This link is invalid, was used already or has expired. Please ask your ConnectHub contact for a new one."
	pageRetry       = "Microsoft could not be reached to confirm your consent, so ConnectHub is not connected yet. Please use the same link again in a few minutes."
	pageFailed      = "Something went wrong on our side. Please use the same link again in a few minutes."
)

// adminConsentCallback is Microsoft's admin-consent redirect (GET, anonymous).
func (a *App) adminConsentCallback(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	if r.Method != http.MethodGet {
		return azfunc.Plain(http.StatusMethodNotAllowed, "method not allowed")
	}
	q := r.Query
	_, err := a.Tenants.Admin.CompleteConsent(ctx, tenants.ConsentCallback{
		AdminConsent: q.Get("admin_consent"), Tenant: q.Get("tenant"), State: q.Get("state"), Error: q.Get("error"),
		InvocationID: azfunc.InvocationID(ctx),
	})
	if err == nil {
		return consentPage(http.StatusOK, pageConnected)
	}
	switch apperr.CodeOf(err) {
	case apperr.Forbidden:
		if errors.Is(err, tenants.ErrConsentUnconfirmed) {
			return consentPage(http.StatusForbidden, pageUnconfirmed)
		}
		return consentPage(http.StatusOK, pageRefused)
	case apperr.Invalid, apperr.NotFound, apperr.Conflict:
		return consentPage(http.StatusBadRequest, pageInvalid)
	case apperr.Unavailable:
		azfunc.Logger(ctx).Warn("admin consent could not be confirmed", "error", err)
		return consentPage(http.StatusServiceUnavailable, pageRetry)
	default:
		azfunc.Logger(ctx).Error("admin consent failed", "error", err)
		return consentPage(azfunc.HTTPStatus(apperr.CodeOf(err)), pageFailed)
	}
}

func consentPage(status int, text string) azfunc.HTTPResponse {
	body := "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ConnectHub</title></head><body><p>" +
		text + "</p></body></html>"
	return azfunc.HTTPResponse{StatusCode: status, Body: body, Headers: map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
	}}
}

// listTenants answers GET tenants: every tenant with its state and home region, a page at a time —
// what an operator may see without any grant (tenants.list). No counts, no names, nothing inside.
func (a *App) listTenants(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	if _, err := a.authorize(ctx, r, guard{perm: access.TenantsList, service: true}, ""); err != nil {
		return errorJSON(ctx, err)
	}
	size := 0
	if v := r.Query.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errorJSON(ctx, apperr.New(apperr.Invalid, "pageSize must be 1 to 1000", nil))
		}
		size = n
	}
	page, err := a.Tenants.List.OperatorList(ctx, &tables.ListOptions{PageSize: size, Token: r.Query.Get("pageToken"),
		Select: []string{"State", "HomeRegion"}})
	if err != nil {
		if errors.Is(err, tables.ErrBadPageToken) {
			return errorJSON(ctx, apperr.New(apperr.Invalid, "invalid pageToken", err))
		}
		return errorJSON(ctx, err)
	}
	out := tenantListJSON{Tenants: make([]tenantSummaryJSON, 0, len(page.Items)), NextPageToken: page.Next}
	for _, t := range page.Items {
		out.Tenants = append(out.Tenants, tenantSummaryJSON{ID: string(t.ID), State: string(t.State), HomeRegion: t.HomeRegion})
	}
	return azfunc.JSON(http.StatusOK, out)
}

type tenantSummaryJSON struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	HomeRegion string `json:"homeRegion,omitempty"`
}

type tenantListJSON struct {
	Tenants       []tenantSummaryJSON `json:"tenants"`
	NextPageToken string              `json:"nextPageToken,omitempty"`
}
