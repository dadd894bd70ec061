package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/privacy"
)

// incidentRoles stands in for the built-in roles the incident functions rely on: ConnectHub staff
// ("as-any") hold incidents.write as security officers do, and nothing inside a tenant; a tenant's
// principal ("as:<tenant>") holds audit.read in its own tenant only, as its admins do.
type incidentRoles struct{}

func (incidentRoles) Allow(_ context.Context, p access.Principal, perm access.Permission, res access.Resource) error {
	switch {
	case p.Tenant == anyTenant && perm == access.IncidentsWrite:
		return nil
	case p.Tenant != anyTenant && res.Tenant == p.Tenant && perm == access.AuditRead:
		return nil
	}
	return access.ErrDenied
}

// The incident functions against the real service on Azurite: a security officer records an incident
// (strictly parsed), drafts and records the notifications and resolves it; each affected tenant's
// admin sees it, and no one else does.
func TestIncidentFunctions(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	tenant := func() string {
		id := env.NewTenant(t)
		if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive}); err != nil {
			t.Fatal(err)
		}
		return string(id)
	}
	a, b, c := tenant(), tenant(), tenant()
	known := func(ctx context.Context, t core.TenantID) error { _, err := env.Store.Tenants.Get(ctx, t); return err }
	svc := privacy.NewIncidents(privacy.OpenData(env.DB), known, env.Keys,
		audit.Trail{Table: audit.OpenLog(env.DB), Now: time.Now, Log: slog.Default()}, slog.Default(), nil)
	app := &App{Incidents: svc, Access: AccessServices{Authenticate: testAccess{}, Authorize: incidentRoles{}}}
	officer := map[string][]string{"Authorization": {operatorToken}}
	adminOf := func(tenant string) map[string][]string {
		return map[string][]string{"Authorization": {"Bearer as:" + tenant + ":" + userA}}
	}

	discovered := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	body := `{"summary":"a PBX token was exposed in a ticket","discoveredAt":"` + discovered.Format(time.RFC3339) + `",` +
		`"tenants":["` + strings.ToUpper(a) + `","` + b + `"],"dataCategories":["presence","users"],"containment":"token revoked",` +
		`"impact":"presence readable for 3 hours","actionPlan":"rotate tokens","contact":"dpo@connecthub.example","severity":"high"}`

	for name, tc := range map[string]struct {
		body    string
		headers map[string][]string
		want    int
	}{
		"a tenant admin":      {body, adminOf(a), http.StatusForbidden},
		"a duplicate key":     {strings.Replace(body, `"severity":"high"`, `"severity":"high","severity":"low"`, 1), officer, http.StatusBadRequest},
		"an unknown field":    {strings.Replace(body, `"severity":"high"`, `"severity":"high","notifyBy":"2030-01-01T00:00:00Z"`, 1), officer, http.StatusBadRequest},
		"trailing data":       {body + ` {}`, officer, http.StatusBadRequest},
		"an unknown category": {strings.Replace(body, `"presence","users"`, `"presence","health"`, 1), officer, http.StatusBadRequest},
		"an unknown tenant":   {strings.Replace(body, b, string(storetest.NewTenantID(t)), 1), officer, http.StatusBadRequest},
		"too large":           {`{"summary":"` + strings.Repeat("x", maxIncidentBody) + `"}`, officer, http.StatusRequestEntityTooLarge},
	} {
		if code, got, _ := invokeHTTP(t, app, httpCall{function: "RecordIncident", method: "POST", headers: tc.headers, body: tc.body}); code != tc.want {
			t.Errorf("%s: %d %s, want %d", name, code, got, tc.want)
		}
	}
	if vs, _ := svc.List(ctx); len(vs) != 0 {
		t.Fatalf("refused calls recorded %d incidents", len(vs))
	}

	code, got, _ := invokeHTTP(t, app, httpCall{function: "RecordIncident", method: "POST", headers: officer, body: body})
	var inc incidentJSON
	if err := json.Unmarshal([]byte(got), &inc); code != http.StatusCreated || err != nil {
		t.Fatalf("record = %d %s", code, got)
	}
	if !inc.NotifyBy.Equal(discovered.Add(72*time.Hour)) || inc.Status != "open" || len(inc.Recipients) != 3 || inc.Recipients[2].Recipient != "authority" {
		t.Errorf("recorded = %+v", inc)
	}
	id := map[string]string{"incidentId": inc.ID}

	code, got, _ = invokeHTTP(t, app, httpCall{function: "DraftIncidentNotifications", method: "GET", headers: officer, params: id})
	if code != http.StatusOK || strings.Count(got, `"recipient"`) != 3 || strings.Count(got, `"sent":false`) != 3 ||
		!strings.Contains(got, "rotate tokens") || !strings.Contains(got, "Current Teams presence") {
		t.Errorf("drafts = %d %s", code, got)
	}
	if code, _, _ := invokeHTTP(t, app, httpCall{function: "DraftIncidentNotifications", method: "GET", headers: adminOf(a), params: id}); code != http.StatusForbidden {
		t.Errorf("a tenant admin drafting = %d", code)
	}

	sent := func(recipient string) (int, notificationJSON) {
		code, got, _ := invokeHTTP(t, app, httpCall{function: "MarkIncidentNotificationSent", method: "POST", headers: officer,
			params: map[string]string{"incidentId": inc.ID, "recipient": recipient}})
		var n notificationJSON
		_ = json.Unmarshal([]byte(got), &n)
		return code, n
	}
	code, first := sent(a)
	if code != http.StatusOK || !first.Sent || first.SentAt == nil || first.Recipient != a {
		t.Fatalf("sent = %d %+v", code, first)
	}
	if code, again := sent(a); code != http.StatusOK || again.SentAt == nil || !again.SentAt.Equal(*first.SentAt) {
		t.Errorf("sent again = %d %+v; the time moved from %v", code, again, first.SentAt)
	}
	for _, r := range []string{c, "nobody"} {
		if code, _ := sent(r); code != http.StatusNotFound {
			t.Errorf("recipient %s = %d, want 404", r, code)
		}
	}
	if code, _, _ := invokeHTTP(t, app, httpCall{function: "ResolveIncident", method: "POST", headers: officer,
		params: map[string]string{"incidentId": "0000000000000000000-00000000"}}); code != http.StatusNotFound {
		t.Errorf("resolving an unknown incident = %d", code)
	}

	// Each affected tenant's admin sees the incident, naming their tenant only; others see nothing, and
	// nobody sees another tenant's list.
	code, got, _ = invokeHTTP(t, app, httpCall{function: "ListTenantIncidents", method: "GET", headers: adminOf(a), params: map[string]string{"tenantId": a}})
	if code != http.StatusOK || !strings.Contains(got, inc.ID) || strings.Contains(got, b) || !strings.Contains(got, `"status":"notified"`) ||
		strings.Contains(got, "authority") {
		t.Errorf("tenant a's incidents = %d %s", code, got)
	}
	if code, got, _ := invokeHTTP(t, app, httpCall{function: "ListTenantIncidents", method: "GET", headers: adminOf(c), params: map[string]string{"tenantId": c}}); code != http.StatusOK || got != `{"incidents":[]}` {
		t.Errorf("unaffected tenant = %d %s", code, got)
	}
	for _, h := range []map[string][]string{adminOf(c), officer} {
		if code, _, _ := invokeHTTP(t, app, httpCall{function: "ListTenantIncidents", method: "GET", headers: h, params: map[string]string{"tenantId": a}}); code != http.StatusForbidden {
			t.Errorf("%v reading tenant a's incidents = %d", h, code)
		}
	}

	code, got, _ = invokeHTTP(t, app, httpCall{function: "ResolveIncident", method: "POST", headers: officer, params: id})
	if code != http.StatusOK || !strings.Contains(got, `"status":"resolved"`) {
		t.Errorf("resolve = %d %s", code, got)
	}
	code, got, _ = invokeHTTP(t, app, httpCall{function: "ListIncidents", method: "GET", headers: officer})
	if code != http.StatusOK || !strings.Contains(got, inc.ID) || !strings.Contains(got, `"resolvedAt"`) {
		t.Errorf("list = %d %s", code, got)
	}
	if code, _, _ := invokeHTTP(t, app, httpCall{function: "ListIncidents", method: "GET", headers: adminOf(a)}); code != http.StatusForbidden {
		t.Errorf("a tenant admin listing every incident = %d", code)
	}
}
