package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
)

type intakeFunc func(ctx context.Context, lifecycle bool, body []byte) error

func (f intakeFunc) ReceiveScanned(ctx context.Context, lifecycle bool, body []byte, _ []int32) error {
	return f(ctx, lifecycle, body)
}

func TestGraphWebhookOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		query    map[string]string
		body     string
		intake   error
		want     int
		wantBody string
	}{
		{"validation token echoed", map[string]string{"validationToken": "Validation: Testing client +%/✓"}, "", nil, 200, "Validation: Testing client +%/✓"},
		{"accepted", nil, `{"value":[]}`, nil, 202, ""},
		{"not a collection", nil, `[]`, apperr.New(apperr.Invalid, "not a notification collection", nil), 400, "not a notification collection"},
		{"hand-off failed", nil, `{"value":[]}`, errors.New("queue down"), 503, "try again"},
		{"oversized", nil, strings.Repeat("x", 2048), nil, 413, "body too large"},
		{"not a POST", nil, "", nil, 405, "method not allowed"},
		{"too many items", nil, `{"value":[]}`, apperr.New(apperr.TooLarge, "more than 1000 notifications or validation tokens", nil), 413,
			"more than 1000 notifications or validation tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			a := &App{MaxBodyBytes: 1024, Intake: intakeFunc(func(context.Context, bool, []byte) error { called = true; return tt.intake })}
			method := "POST"
			if tt.want == 405 {
				method = "GET"
			}
			r := invoke(t, routeTable(t, a), azfunctest.Call{Function: "GraphWebhook", Method: method,
				Query: tt.query, Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: tt.body, MaxBody: 1024})
			code, body, headers := r.Status, r.Body, r.Headers
			if code != tt.want || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tt.want, tt.wantBody)
			}
			// The handshake reflects a caller's text: no answer may be sniffed as anything but its type.
			if got := headers["X-Content-Type-Options"]; got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if tt.want == 200 && (called || !strings.HasPrefix(headers["Content-Type"], "text/plain")) {
				t.Errorf("validation: intake called=%v, content type %q", called, headers["Content-Type"])
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	a := &App{Version: "v1", Build: "b", Region: "westeurope", Checks: []Check{
		{Name: "tables", Probe: func(context.Context) error { return nil }},
		{Name: "secrets", Probe: func(context.Context) error { return errors.New("vault https://kv-secret.vault.azure.net down") }},
	}}
	r := invoke(t, routeTable(t, a), azfunctest.Call{Function: "Health"})
	code, body := r.Status, r.Body
	if code != 503 {
		t.Errorf("status = %d, want 503 when a check fails", code)
	}
	var got healthBody
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Checks["tables"] != "ok" || got.Checks["secrets"] != "failed" || got.Region != "westeurope" {
		t.Errorf("health = %+v", got)
	}
	if strings.Contains(body, "vault.azure.net") {
		t.Errorf("health leaks a probe error: %s", body)
	}
}

// Anonymous callers (Traffic Manager's probe) get status and checks; counters name tenants and need a
// token: all of them for staff, one tenant's for its admin.
func TestHealthCountersNeedAToken(t *testing.T) {
	t.Parallel()
	var asked []string
	a := &App{Access: AccessServices{Authenticate: testAccess{}, Authorize: testAccess{}},
		Stats: func(tenant core.TenantID) any {
			asked = append(asked, "["+string(tenant)+"]")
			return map[string]string{"tenant": string(tenant)}
		}}
	routes := routeTable(t, a)
	call := func(auth string, query map[string]string) azfunctest.Response {
		h := map[string][]string{}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		return invoke(t, routes, azfunctest.Call{Function: "Health", Query: query, Headers: h})
	}
	if r := call("", nil); r.Status != 200 || strings.Contains(r.Body, "stats") {
		t.Errorf("anonymous = %d %s, want no stats", r.Status, r.Body)
	}
	if r := call(operatorToken, nil); r.Status != 200 || !strings.Contains(r.Body, `"stats":{"tenant":""}`) {
		t.Errorf("staff = %d %s", r.Status, r.Body)
	}
	admin := "Bearer as:" + tenantA + ":" + userA
	if r := call(admin, map[string]string{"tenant": tenantA}); r.Status != 200 || !strings.Contains(r.Body, `"stats":{"tenant":"`+tenantA+`"}`) {
		t.Errorf("tenant admin = %d %s", r.Status, r.Body)
	}
	for name, tc := range map[string]struct {
		auth  string
		query map[string]string
		want  int
	}{
		"a tenant admin asking for every tenant": {admin, nil, 403},
		"a tenant admin asking for another":      {admin, map[string]string{"tenant": otherTenant}, 403},
		"a forged token":                         {"Bearer forged", nil, 401},
		"a tenant without a token":               {"", map[string]string{"tenant": tenantA}, 401},
		"not a tenant id":                        {admin, map[string]string{"tenant": "x"}, 400},
	} {
		if r := call(tc.auth, tc.query); r.Status != tc.want || strings.Contains(r.Body, "stats") {
			t.Errorf("%s = %d %s, want %d", name, r.Status, r.Body, tc.want)
		}
	}
	if strings.Join(asked, "") != "[]["+tenantA+"]" {
		t.Errorf("stats asked for %v", asked)
	}
}

// complete sets every service a test leaves nil to a stand-in, so the route table builds. A stand-in
// embeds its nil interface: calling it panics, which the server turns into a failed invocation, so a
// test that reaches a service it did not set fails.
func complete(a *App) *App {
	if a.Intake == nil {
		a.Intake = struct{ NotificationIntake }{}
	}
	if a.PBXWebhook == nil {
		a.PBXWebhook = struct{ PBXIntake }{}
	}
	for _, w := range []*Worker{&a.ProcessNotification, &a.ProcessLifecycle} {
		if *w == nil {
			*w = struct{ Worker }{}
		}
	}
	for _, j := range []*Job{&a.RenewSubscriptions, &a.EnforceRetention, &a.ReconcileLicenses} {
		if *j == nil {
			*j = struct{ Job }{}
		}
	}
	if a.Presence.SignIn == nil {
		a.Presence.SignIn = struct{ ServiceUserSignIn }{}
	}
	if a.Presence.Status == nil {
		a.Presence.Status = struct{ PresenceStatus }{}
	}
	if a.Connector.Admin == nil {
		a.Connector.Admin = struct{ ConnectorAdmin }{}
	}
	if a.Tenants.Admin == nil {
		a.Tenants.Admin = struct{ TenantAdmin }{}
	}
	if a.Tenants.List == nil {
		a.Tenants.List = struct{ TenantLister }{}
	}
	if a.Portal == nil {
		a.Portal = struct{ Portal }{}
	}
	if a.CRM.Admin == nil {
		a.CRM.Admin = struct{ CRMAdmin }{}
	}
	if a.CRMNow == nil {
		a.CRMNow = struct{ CRMSyncNow }{}
	}
	if a.CRM.Sync == nil {
		a.CRM.Sync = struct{ Job }{}
	}
	if a.Rooms.Directory == nil {
		a.Rooms.Directory = struct{ RoomDirectory }{}
	}
	if a.Rooms.Sync == nil {
		a.Rooms.Sync = struct{ Job }{}
	}
	if a.Rooms.Availability == nil {
		a.Rooms.Availability = struct{ RoomAvailability }{}
	}
	if a.Rooms.Cache == nil {
		a.Rooms.Cache = struct{ RoomCache }{}
	}
	if a.Rooms.Maintain == nil {
		a.Rooms.Maintain = struct{ Job }{}
	}
	if a.Access.Authenticate == nil {
		a.Access.Authenticate, a.Access.Authorize = testAccess{}, testAccess{}
	}
	if a.Audit == nil {
		a.Audit = struct{ AuditReader }{}
	}
	if a.Access.Admin == nil {
		a.Access.Admin = struct{ AccessAdmin }{}
	}
	if a.Privacy == nil {
		a.Privacy = struct{ PrivacyRights }{}
	}
	if a.TenantExport == nil {
		a.TenantExport = struct{ TenantExporter }{}
	}
	if a.Incidents == nil {
		a.Incidents = struct{ IncidentServices }{}
	}
	if a.TrackIncidents == nil {
		a.TrackIncidents = struct{ Job }{}
	}
	return a
}

// routeTable is the route table of a, completed with stand-ins for the services the test does not set.
func routeTable(t testing.TB, a *App) []azfunc.Route {
	t.Helper()
	r, err := complete(a).Routes()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A function whose service is missing stops the handler at start: Routes names every function that
// service serves, and nothing is served.
func TestRoutesRefuseMissingService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		unset func(*App)
		want  []string
	}{
		{"intake", func(a *App) { a.Intake = nil }, []string{"GraphWebhook", "GraphLifecycle"}},
		{"pbx webhook", func(a *App) { a.PBXWebhook = nil }, []string{"PbxWebhook", "PbxSignedWebhook"}},
		{"ProcessNotification", func(a *App) { a.ProcessNotification = nil }, []string{"ProcessNotification"}},
		{"ProcessLifecycle", func(a *App) { a.ProcessLifecycle = nil }, []string{"ProcessLifecycle"}},
		{"RenewSubscriptions", func(a *App) { a.RenewSubscriptions = nil }, []string{"RenewSubscriptions"}},
		{"EnforceRetention", func(a *App) { a.EnforceRetention = nil }, []string{"EnforceRetention"}},
		{"ReconcileLicenses", func(a *App) { a.ReconcileLicenses = nil }, []string{"ReconcileLicenses"}},
		{"service-user sign-in", func(a *App) { a.Presence.SignIn = nil }, []string{"ConnectServiceUser", "AuthStart", "AuthCallback"}},
		{"presence status", func(a *App) { a.Presence.Status = nil }, []string{"GetPresenceStatus"}},
		{"connector set-up", func(a *App) { a.Connector.Admin = nil }, []string{"GetConnector", "SetConnector",
			"DeleteConnector", "TestConnector", "GetUserExtension", "SetUserExtension", "DeleteUserExtension",
			"ListExtensions", "GetPresenceMapping", "SetPresenceMapping"}},
		{"tenant admin", func(a *App) { a.Tenants.Admin = nil }, []string{"AdminConsentCallback", "StartOnboarding",
			"GetTenant", "SuspendTenant", "CancelTenant", "ReactivateTenant", "SetTenantLicenses", "AssignLicense",
			"ListLicensedUsers", "UnassignLicense"}},
		{"crm connection", func(a *App) { a.CRM.Admin = nil }, []string{"GetCRMConnection", "SetCRMConnection",
			"DeleteCRMConnection", "TestCRMConnection", "GetCRMUserMapping", "SetCRMUserMapping", "DeleteCRMUserMapping", "ListCRMUserMappings", "GetCRMSyncHealth"}},
		{"crm sync", func(a *App) { a.CRM.Sync = nil }, []string{"SyncCRM"}},
		{"portal", func(a *App) { a.Portal = nil }, []string{"Portal", "PortalAction"}},
		{"two services", func(a *App) { a.ProcessLifecycle, a.EnforceRetention = nil, nil }, []string{"ProcessLifecycle", "EnforceRetention"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := complete(&App{})
			tt.unset(a)
			got, err := a.Routes()
			want := "build route table: no service wired for " + strings.Join(tt.want, ", ")
			if err == nil || err.Error() != want {
				t.Errorf("Routes() error = %v, want %q", err, want)
			}
			if got != nil {
				t.Errorf("Routes() returned %d routes with an error", len(got))
			}
		})
	}
	if _, err := (&App{}).Routes(); err == nil {
		t.Error("an empty App built a route table")
	}
}

// The intake's error can quote what the anonymous caller sent (a joined error has a line per
// validation token); the webhook logs a bounded prefix of it.
func TestGraphWebhookErrorLogIsBounded(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	a := &App{MaxBodyBytes: 1 << 20, Intake: intakeFunc(func(context.Context, bool, []byte) error {
		return apperr.New(apperr.Unavailable, "validation keys unavailable", errors.New(strings.Repeat("validation token: unknown key\n", 40_000)))
	})}
	ctx := azfunc.WithLogger(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)))
	res := a.graphPost(ctx, &azfunc.HTTPRequest{Method: "POST", Body: []byte(`{"value":[]}`)}, false)
	if res.StatusCode != 503 {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
	if !strings.Contains(logs.String(), "notification hand-off failed") || logs.Len() > 2*core.MaxLogError {
		t.Errorf("logged %d bytes, want the failure in at most %d: %.200s", logs.Len(), 2*core.MaxLogError, logs.String())
	}
}
