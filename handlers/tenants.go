package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
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
}

var _ TenantAdmin = (*tenants.Service)(nil)

// TenantServices are the services behind the tenant lifecycle and licensing functions.
type TenantServices struct {
	Admin TenantAdmin // AdminConsentCallback, StartOnboarding, GetTenant, Suspend/Cancel/ReactivateTenant, SetTenantLicenses, Assign/UnassignLicense
}

// ActorHeader names the operator performing an admin action (an Entra object id) for the audit trail.
// Until the role-based admin API, the function key is the authorisation; without the header the audit
// records the key as the actor.
const ActorHeader = "X-ConnectHub-Actor"

// maxAdminBody bounds the JSON bodies of the admin functions (a few small fields).
const maxAdminBody = 4 << 10

// tenantRoutes are the tenant capability's own HTTP functions. The consent callback is anonymous (the
// customer's admin arrives from Microsoft's redirect, authenticated by the one-time state); the operator
// actions require a function key.
func (a *App) tenantFunctions() []function {
	op := func(name string, h func(context.Context, TenantAdmin, core.Actor, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.tenantOp(ctx, r, h)
		}), a.Tenants.Admin}
	}
	return []function{
		{azfunc.HTTPRoute("AdminConsentCallback", "req", "res", a.adminConsentCallback), a.Tenants.Admin},
		op("StartOnboarding", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
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
		op("GetTenant", func(ctx context.Context, s TenantAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Get(ctx, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("SuspendTenant", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Suspend(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("CancelTenant", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Cancel(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("ReactivateTenant", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.Reactivate(ctx, actor, id)
			return http.StatusOK, toTenantJSON(v), err
		}),
		op("SetTenantLicenses", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
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
		op("AssignLicense", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			l, err := s.Assign(ctx, actor, id, r.Params["userId"])
			return http.StatusOK, licenseJSON{UserID: l.UserID, AssignedAt: l.AssignedAt, AssignedBy: l.AssignedBy,
				PurchasedLicenses: l.Purchased, AssignedLicenses: l.Assigned}, err
		}),
		op("UnassignLicense", func(ctx context.Context, s TenantAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.Unassign(ctx, actor, id, r.Params["userId"])
		}),
	}
}

// tenantOp runs an operator action of the tenant capability.
func (a *App) tenantOp(ctx context.Context, r *azfunc.HTTPRequest, h func(context.Context, TenantAdmin, core.Actor, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) azfunc.HTTPResponse {
	return adminCall(ctx, r, maxAdminBody, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
		return h(ctx, a.Tenants.Admin, actor, id, r)
	})
}

// adminCall is what every tenant-scoped admin function does around its service call: cap the body,
// parse the tenant id (and stamp it on the context's log lines), name the actor, and encode the answer
// or the error as JSON.
func adminCall(ctx context.Context, r *azfunc.HTTPRequest, maxBody int, call func(context.Context, core.Actor, core.TenantID) (int, any, error)) azfunc.HTTPResponse {
	if len(r.Body) > maxBody {
		return errorJSON(ctx, apperr.New(apperr.TooLarge, "body too large", nil))
	}
	id, err := core.ParseCustomerTenant(r.Params["tenantId"])
	if err != nil {
		return errorJSON(ctx, err)
	}
	ctx = core.WithTenant(ctx, id)
	actor, err := requestActor(ctx, r)
	if err != nil {
		return errorJSON(ctx, err)
	}
	status, body, err := call(ctx, actor, id)
	if err != nil {
		return errorJSON(ctx, err)
	}
	if body == nil {
		return azfunc.HTTPResponse{StatusCode: status}
	}
	return azfunc.JSON(status, body)
}

// requestActor is who performs an admin action, for the audit trail: the operator named by ActorHeader,
// else the function key.
func requestActor(ctx context.Context, r *azfunc.HTTPRequest) (core.Actor, error) {
	v := r.Header(ActorHeader)
	if v == "" {
		return core.Actor{ID: "function-key", Kind: "key", InvocationID: azfunc.InvocationID(ctx)}, nil
	}
	uid, err := tenants.ParseUserID(v)
	if err != nil {
		return core.Actor{}, apperr.New(apperr.Invalid, ActorHeader+" must be the operator's Entra object id", nil)
	}
	return core.Actor{ID: uid, Kind: "user", InvocationID: azfunc.InvocationID(ctx)}, nil
}

func decodeJSONBody(r *azfunc.HTTPRequest, v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.Invalid, "body must be a JSON object with the documented fields", err)
	}
	return nil
}

func errorJSON(ctx context.Context, err error) azfunc.HTTPResponse {
	status := azfunc.HTTPStatus(apperr.CodeOf(err))
	if status >= 500 {
		azfunc.Logger(ctx).Error("admin action failed", "error", err)
	}
	return azfunc.JSON(status, map[string]string{"error": apperr.PublicMessage(err)})
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
	pageConnected = "ConnectHub is now connected to your organisation. You can close this window."
	pageRefused   = "Consent was not granted, so ConnectHub is not connected. You can use the same link again to retry while it is valid."
	pageInvalid   = "This link is invalid, was used already or has expired. Please ask your ConnectHub contact for a new one."
	pageFailed    = "Something went wrong on our side. Please use the same link again in a few minutes."
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
		return consentPage(http.StatusOK, pageRefused)
	case apperr.Invalid, apperr.NotFound, apperr.Conflict:
		return consentPage(http.StatusBadRequest, pageInvalid)
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
