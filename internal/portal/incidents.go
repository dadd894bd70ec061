package portal

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// incidentsPage is the security officers' page of breach incidents: each with its 72-hour clock and
// who has been told, recording a new one, the notification drafts to send, marking each sent, and
// resolving it. The functions act on the service as a whole (no tenant in the path).
func (p *Portal) incidentsPage(ctx context.Context, req *request) azfunc.HTTPResponse {
	v := p.newView(ctx, req, "", "")
	v.Title = "Incidents"
	if req.Method == http.MethodPost {
		f := req.form
		id := strings.TrimSpace(f.Get("incidentId"))
		switch f.Get("action") {
		case "record":
			discovered, err := time.Parse("2006-01-02T15:04", strings.TrimSpace(f.Get("discoveredAt")))
			if err != nil {
				v.Problem = "When it was discovered is a date and time (UTC)."
				break
			}
			in := map[string]any{
				"summary": strings.TrimSpace(f.Get("summary")), "discoveredAt": discovered.UTC().Format(time.RFC3339),
				"tenants": fields(f.Get("tenants")), "dataCategories": fields(f.Get("dataCategories")),
				"containment": strings.TrimSpace(f.Get("containment")), "impact": strings.TrimSpace(f.Get("impact")),
				"actionPlan": strings.TrimSpace(f.Get("actionPlan")), "contact": strings.TrimSpace(f.Get("contact")),
				"severity": f.Get("severity"),
			}
			var inc map[string]any
			status, msg, _ := p.call(ctx, req, "RecordIncident", nil, nil, in, &inc)
			v.Notice, v.Problem = outcome(status, msg, "Incident recorded; notify every recipient by "+str(inc["notifyBy"])+".")
		case "drafts":
			var drafts map[string]any
			status, msg, _ := p.call(ctx, req, "DraftIncidentNotifications", map[string]string{"incidentId": id}, nil, nil, &drafts)
			v.Problem = msg
			if status < 400 {
				v.Data["Drafts"], v.Data["DraftsOf"] = drafts["notifications"], id
			}
		case "sent":
			status, msg, _ := p.call(ctx, req, "MarkIncidentNotificationSent",
				map[string]string{"incidentId": id, "recipient": strings.TrimSpace(f.Get("recipient"))}, nil, nil, nil)
			v.Notice, v.Problem = outcome(status, msg, "Marked sent.")
		case "resolve":
			p.act(ctx, req, v, "ResolveIncident", map[string]string{"incidentId": id}, nil, "Incident resolved.")
		}
	}
	var list map[string]any
	if status, msg, _ := p.call(ctx, req, "ListIncidents", nil, nil, nil, &list); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	v.Data["Incidents"] = list["incidents"]
	return p.render(req, statusOf(v), "incidents", v)
}
