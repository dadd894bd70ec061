package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/tenants"
)

// PrivacyRights answers a person's data subject requests (privacy.Rights).
type PrivacyRights interface {
	Report(ctx context.Context, by core.Actor, tenant core.TenantID, userID, kind string) (privacy.Report, error)
	Erase(ctx context.Context, by core.Actor, tenant core.TenantID, userID string) (privacy.Receipt, error)
	Requests(ctx context.Context, tenant core.TenantID) ([]privacy.Request, error)
	Restrict(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, on bool, reason string) (privacy.Request, error)
	Object(ctx context.Context, by core.Actor, tenant core.TenantID, end func(context.Context) error) (privacy.Request, error)
	Rectify(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, fix func(context.Context, string) error) (privacy.Request, error)
}

var _ PrivacyRights = (*privacy.Rights)(nil)

// privacyFunctions are the data subject rights: access and portability, erasure, and the record of
// requests. Each acts on one person of one tenant (resource users/<id>), so a grant scoped to a user
// reaches that user only.
func (a *App) privacyFunctions() []function {
	op := func(name string, g guard, h func(context.Context, core.Actor, core.TenantID, *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.adminCall(ctx, r, maxAdminBody, g, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
				return h(ctx, actor, id, r)
			})
		}), a.Privacy}
	}
	export := guard{perm: access.PrivacyExport, scope: "users/{userId}"}
	return []function{
		op("GetPersonalData", export, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			rep, err := a.Privacy.Report(ctx, by, id, r.Params["userId"], privacy.KindAccess)
			return http.StatusOK, rep, err
		}),
		op("ExportPersonalData", export, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			rep, err := a.Privacy.Report(ctx, by, id, r.Params["userId"], privacy.KindExport)
			if err != nil {
				return 0, nil, err
			}
			res := azfunc.JSON(http.StatusOK, rep)
			res.Headers["Content-Disposition"] = `attachment; filename="personal-data-` + rep.Subject + `.json"`
			res.Headers["Cache-Control"] = "no-store"
			return 0, res, nil
		}),
		op("ErasePersonalData", guard{perm: access.PrivacyErase, scope: "users/{userId}"}, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			rec, err := a.Privacy.Erase(ctx, by, id, r.Params["userId"])
			return http.StatusOK, rec, err
		}),
		op("RestrictProcessing", guard{perm: access.PrivacyRestrict, scope: "users/{userId}"}, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Reason string `json:"reason"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			q, err := a.Privacy.Restrict(ctx, by, id, r.Params["userId"], true, body.Reason)
			return http.StatusOK, toPrivacyRequestJSON(q), err
		}),
		op("ResumeProcessing", guard{perm: access.PrivacyRestrict, scope: "users/{userId}"}, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			q, err := a.Privacy.Restrict(ctx, by, id, r.Params["userId"], false, "")
			return http.StatusOK, toPrivacyRequestJSON(q), err
		}),
		// An objection to all processing ends the service (the presence product's privacy policy): the
		// tenant is cancelled as billing would cancel it, and its data follows the cancellation's clock.
		op("ObjectToProcessing", guard{perm: access.PrivacyRestrict}, func(ctx context.Context, by core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			var v tenants.View
			q, err := a.Privacy.Object(ctx, by, id, func(ctx context.Context) error {
				var err error
				v, err = a.Tenants.Admin.Cancel(ctx, by, id)
				return err
			})
			return http.StatusOK, objectionJSON{Request: toPrivacyRequestJSON(q), Tenant: toTenantJSON(v),
				Meaning: "An objection to all processing ends the service: processing stopped now, and the tenant's data is deleted at deletionDueAt (24 hours after cancellation)."}, err
		}),
		// Rectification: the PBX extension mapping is ours and is set as asked; the profile was copied
		// from Microsoft 365, so it is corrected there and refreshed here from Graph, and the answer says so.
		op("RectifyPersonalData", guard{perm: access.PrivacyRectify, scope: "users/{userId}"}, func(ctx context.Context, by core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				ExtensionID *string `json:"extensionId"`
			}
			if len(r.Body) > 0 {
				if err := decodeJSONBody(r, &body); err != nil {
					return 0, nil, err
				}
			}
			corrected := []string{}
			q, err := a.Privacy.Rectify(ctx, by, id, r.Params["userId"], func(ctx context.Context, uid string) error {
				if err := a.Tenants.Admin.RefreshProfile(ctx, by, id, uid); err != nil {
					return err
				}
				switch {
				case body.ExtensionID == nil:
					return nil
				case *body.ExtensionID == "":
					if err := a.Connector.Admin.DeleteUserExtension(ctx, by, id, uid); err != nil && apperr.CodeOf(err) != apperr.NotFound {
						return err
					}
				default:
					if _, err := a.Connector.Admin.SetUserExtension(ctx, by, id, uid, *body.ExtensionID); err != nil {
						return err
					}
				}
				corrected = append(corrected, "extensionId")
				return nil
			})
			return http.StatusOK, rectificationJSON{Request: toPrivacyRequestJSON(q), Corrected: corrected,
				Refreshed: tenants.ProfileFields,
				Note:      "Fields copied from Microsoft 365 are corrected in Microsoft 365 (Entra admin center) and refreshed here from Microsoft Graph; they were refreshed now."}, err
		}),
		op("ListPrivacyRequests", guard{perm: access.PrivacyExport, or: access.PrivacyErase}, func(ctx context.Context, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			rs, err := a.Privacy.Requests(ctx, id)
			out := privacyRequestsJSON{Requests: make([]privacyRequestJSON, 0, len(rs))}
			for _, q := range rs {
				out.Requests = append(out.Requests, toPrivacyRequestJSON(q))
			}
			return http.StatusOK, out, err
		}),
	}
}

type privacyRequestJSON struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	SubjectID   string     `json:"subjectId"`
	RequestedBy string     `json:"requestedBy"`
	RequestedAt time.Time  `json:"requestedAt"`
	DueAt       time.Time  `json:"dueAt"`
	Status      string     `json:"status"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
	Receipt     *rawJSON   `json:"receipt,omitempty"`
}

type rectificationJSON struct {
	Request   privacyRequestJSON `json:"request"`
	Corrected []string           `json:"corrected"`
	Refreshed []string           `json:"refreshedFromMicrosoft365"`
	Note      string             `json:"note"`
}

type objectionJSON struct {
	Request privacyRequestJSON `json:"request"`
	Tenant  tenantJSON         `json:"tenant"`
	Meaning string             `json:"meaning"`
}

type privacyRequestsJSON struct {
	Requests []privacyRequestJSON `json:"requests"`
}

// rawJSON is a stored JSON document answered as is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func toPrivacyRequestJSON(q privacy.Request) privacyRequestJSON {
	out := privacyRequestJSON{ID: q.ID, Kind: q.Kind, SubjectID: q.SubjectID, RequestedBy: q.RequestedBy,
		RequestedAt: q.RequestedAt, DueAt: q.DueAt, Status: q.Status}
	if !q.CompletedAt.IsZero() {
		c := q.CompletedAt
		out.CompletedAt = &c
	}
	if q.Receipt != "" {
		r := rawJSON(q.Receipt)
		out.Receipt = &r
	}
	return out
}
