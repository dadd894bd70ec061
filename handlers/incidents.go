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
)

// IncidentServices are the breach incidents with their 72-hour clock (privacy.Incidents).
type IncidentServices interface {
	Record(ctx context.Context, by core.Actor, r privacy.IncidentReport) (privacy.IncidentView, error)
	List(ctx context.Context) ([]privacy.IncidentView, error)
	Notifications(ctx context.Context, id string) ([]privacy.Notification, error)
	MarkSent(ctx context.Context, by core.Actor, id, recipient string) (privacy.Notification, error)
	Resolve(ctx context.Context, by core.Actor, id string) (privacy.IncidentView, error)
	ForTenant(ctx context.Context, tenant core.TenantID) ([]privacy.IncidentView, error)
}

var (
	_ IncidentServices = (*privacy.Incidents)(nil)
	_ Job              = (*privacy.Incidents)(nil)
)

// maxIncidentBody bounds an incident report: five texts of up to 4,000 characters (up to 4 bytes
// each in UTF-8, more when escaped) and up to 250 tenant ids.
const maxIncidentBody = 128 << 10

// incidentFunctions are the breach incidents: security officers record them, draft and record the
// notifications, and resolve them (incidents.write, which only the SecurityOfficer role holds); a
// tenant's admins see those that affect their tenant (audit.read: the role that reads the tenant's
// record of what happened to it); TrackIncidents keeps the 72-hour clock.
func (a *App) incidentFunctions() []function {
	officer := func(name string, maxBody int, h func(context.Context, core.Actor, *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.serviceCall(ctx, r, maxBody, access.IncidentsWrite, func(ctx context.Context, actor core.Actor) (int, any, error) {
				return h(ctx, actor, r)
			})
		}), a.Incidents}
	}
	return []function{
		officer("RecordIncident", maxIncidentBody, func(ctx context.Context, by core.Actor, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Summary        string    `json:"summary"`
				DiscoveredAt   time.Time `json:"discoveredAt"`
				Tenants        []string  `json:"tenants"`
				DataCategories []string  `json:"dataCategories"`
				Containment    string    `json:"containment"`
				Impact         string    `json:"impact"`
				ActionPlan     string    `json:"actionPlan"`
				Contact        string    `json:"contact"`
				Severity       string    `json:"severity"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			v, err := a.Incidents.Record(ctx, by, privacy.IncidentReport{Summary: body.Summary, DiscoveredAt: body.DiscoveredAt,
				Tenants: body.Tenants, DataCategories: body.DataCategories, Containment: body.Containment, Impact: body.Impact,
				ActionPlan: body.ActionPlan, Contact: body.Contact, Severity: body.Severity})
			return http.StatusCreated, toIncidentJSON(v, true), err
		}),
		officer("ListIncidents", maxAdminBody, func(ctx context.Context, _ core.Actor, _ *azfunc.HTTPRequest) (int, any, error) {
			vs, err := a.Incidents.List(ctx)
			return http.StatusOK, toIncidentsJSON(vs, true), err
		}),
		officer("DraftIncidentNotifications", maxAdminBody, func(ctx context.Context, _ core.Actor, r *azfunc.HTTPRequest) (int, any, error) {
			ns, err := a.Incidents.Notifications(ctx, r.Params["incidentId"])
			out := notificationsJSON{Notifications: make([]notificationJSON, 0, len(ns))}
			for _, n := range ns {
				out.Notifications = append(out.Notifications, toNotificationJSON(n))
			}
			return http.StatusOK, out, err
		}),
		officer("MarkIncidentNotificationSent", maxAdminBody, func(ctx context.Context, by core.Actor, r *azfunc.HTTPRequest) (int, any, error) {
			n, err := a.Incidents.MarkSent(ctx, by, r.Params["incidentId"], r.Params["recipient"])
			return http.StatusOK, toNotificationJSON(n), err
		}),
		officer("ResolveIncident", maxAdminBody, func(ctx context.Context, by core.Actor, r *azfunc.HTTPRequest) (int, any, error) {
			v, err := a.Incidents.Resolve(ctx, by, r.Params["incidentId"])
			return http.StatusOK, toIncidentJSON(v, true), err
		}),
		{azfunc.HTTPRoute("ListTenantIncidents", "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.adminCall(ctx, r, maxAdminBody, guard{perm: access.AuditRead}, func(ctx context.Context, _ core.Actor, id core.TenantID) (int, any, error) {
				vs, err := a.Incidents.ForTenant(ctx, id)
				return http.StatusOK, toIncidentsJSON(vs, false), err
			})
		}), a.Incidents},
		{azfunc.TimerRoute("TrackIncidents", "timer", func(ctx context.Context, t *azfunc.TimerInfo) error {
			return runJob(ctx, t, a.TrackIncidents)
		}), a.TrackIncidents},
	}
}

// serviceCall runs an admin function that acts on the service rather than inside one tenant (the
// incidents span tenants): body cap, who is calling (401), whether perm is theirs (403), then call.
func (a *App) serviceCall(ctx context.Context, r *azfunc.HTTPRequest, maxBody int, perm access.Permission, call func(context.Context, core.Actor) (int, any, error)) azfunc.HTTPResponse {
	if len(r.Body) > maxBody {
		return errorJSON(ctx, apperr.New(apperr.TooLarge, "body too large", nil))
	}
	p, err := a.authorize(ctx, r, guard{perm: perm, service: true}, "")
	if err != nil {
		return errorJSON(ctx, err)
	}
	status, body, err := call(ctx, p.Actor(azfunc.InvocationID(ctx)))
	if err != nil {
		return errorJSON(ctx, err)
	}
	return azfunc.JSON(status, body)
}

type recipientJSON struct {
	Recipient string     `json:"recipient"`
	Sent      bool       `json:"sent"`
	SentAt    *time.Time `json:"sentAt,omitempty"`
}

type incidentJSON struct {
	ID             string          `json:"id"`
	Severity       string          `json:"severity"`
	Status         string          `json:"status"`
	Summary        string          `json:"summary"`
	DiscoveredAt   time.Time       `json:"discoveredAt"`
	NotifyBy       time.Time       `json:"notifyBy"`
	RecordedAt     time.Time       `json:"recordedAt"`
	RecordedBy     string          `json:"recordedBy,omitempty"`
	DataCategories []string        `json:"dataCategories"`
	Containment    string          `json:"containment"`
	Impact         string          `json:"impact"`
	ActionPlan     string          `json:"actionPlan"`
	Contact        string          `json:"contact"`
	Tenants        []string        `json:"tenants"`
	Recipients     []recipientJSON `json:"recipients"`
	NotifiedAt     *time.Time      `json:"notifiedAt,omitempty"`
	Warned48At     *time.Time      `json:"warned48At,omitempty"`
	Warned72At     *time.Time      `json:"warned72At,omitempty"`
	ResolvedAt     *time.Time      `json:"resolvedAt,omitempty"`
}

type incidentsJSON struct {
	Incidents []incidentJSON `json:"incidents"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// toIncidentJSON shows an incident with one entry per recipient: each tenant of the view (a tenant
// admin's view has their tenant only) and, in the officers' view of the whole incident, the authority.
func toIncidentJSON(v privacy.IncidentView, whole bool) incidentJSON {
	out := incidentJSON{ID: v.ID, Severity: v.Severity, Status: v.Status, Summary: v.Summary, DiscoveredAt: v.DiscoveredAt,
		NotifyBy: v.NotifyBy, RecordedAt: v.RecordedAt, RecordedBy: v.RecordedBy, DataCategories: v.DataCategories,
		Containment: v.Containment, Impact: v.Impact, ActionPlan: v.ActionPlan, Contact: v.Contact,
		Tenants: []string{}, Recipients: []recipientJSON{}, NotifiedAt: optTime(v.NotifiedAt), Warned48At: optTime(v.Warned48At),
		Warned72At: optTime(v.Warned72At), ResolvedAt: optTime(v.ResolvedAt)}
	if out.DataCategories == nil {
		out.DataCategories = []string{}
	}
	names := make([]string, 0, len(v.Tenants)+1)
	for _, t := range v.Tenants {
		out.Tenants = append(out.Tenants, string(t))
		names = append(names, string(t))
	}
	if whole {
		names = append(names, privacy.Authority)
	}
	for _, n := range names {
		at := v.Sent[n]
		out.Recipients = append(out.Recipients, recipientJSON{Recipient: n, Sent: !at.IsZero(), SentAt: optTime(at)})
	}
	return out
}

func toIncidentsJSON(vs []privacy.IncidentView, whole bool) incidentsJSON {
	out := incidentsJSON{Incidents: make([]incidentJSON, 0, len(vs))}
	for _, v := range vs {
		out.Incidents = append(out.Incidents, toIncidentJSON(v, whole))
	}
	return out
}

type notificationJSON struct {
	Recipient       string     `json:"recipient"`
	Subject         string     `json:"subject"`
	Extent          string     `json:"extent"`
	DataAffected    []string   `json:"dataAffected"`
	Impact          string     `json:"impact"`
	Containment     string     `json:"containment"`
	ActionPlan      string     `json:"actionPlan"`
	Contact         string     `json:"contact"`
	DiscoveredAt    time.Time  `json:"discoveredAt"`
	NotifyBy        time.Time  `json:"notifyBy"`
	AffectedTenants int        `json:"affectedTenants"`
	Text            string     `json:"text"`
	Sent            bool       `json:"sent"`
	SentAt          *time.Time `json:"sentAt,omitempty"`
}

type notificationsJSON struct {
	Notifications []notificationJSON `json:"notifications"`
}

func toNotificationJSON(n privacy.Notification) notificationJSON {
	data := n.DataAffected
	if data == nil {
		data = []string{}
	}
	return notificationJSON{Recipient: n.Recipient, Subject: n.Subject, Extent: n.Extent, DataAffected: data, Impact: n.Impact,
		Containment: n.Containment, ActionPlan: n.ActionPlan, Contact: n.Contact, DiscoveredAt: n.DiscoveredAt, NotifyBy: n.NotifyBy,
		AffectedTenants: n.AffectedTenants, Text: n.Text, Sent: !n.SentAt.IsZero(), SentAt: optTime(n.SentAt)}
}
