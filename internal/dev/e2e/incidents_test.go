package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/privacy"
)

// A breach through devhost and the real handler, with development tokens: a security officer records
// two incidents — one discovered 49 hours ago, one 73 hours ago — and the TrackIncidents timer logs the
// 48-hour warning for the first and the 72-hour one for the second, each once however often it fires;
// Health counts them for staff; the tenant's admin sees both; once every recipient of the first is
// recorded as notified and the second is resolved, nothing is due. (The hour-by-hour crossing on a
// fake clock is internal/privacy's TestTrackIncidentsWarnsAt48And72HoursOnce; the handler runs on the
// real clock, so here the discovery times are set back instead.)
func TestIncidentThroughDevhost(t *testing.T) {
	s := startStack(t)
	forgetIncidents(t, s)
	ctx := context.Background()
	base := s.host.URL()
	tenant := storetest.NewTenantID(t)
	if err := tenantkey.New(s.secrets, tenantkey.Options{}).CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	officer := "Bearer " + mintToken(t, base, devhost.DevTokenRequest{Tenant: config.DevOperatorTenant,
		User: "0000ffff-0000-4000-8000-000000000002", Roles: []string{access.AppRoleSecurityOfficer}})
	admin := "Bearer " + mintToken(t, base, devhost.DevTokenRequest{Tenant: string(tenant), User: e2eOperator,
		Roles: []string{access.AppRoleTenantAdmin}})
	do := func(auth, method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/api/"+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// The first admin call after start may find the token issuer's keys still loading (503): wait for them.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := do(officer, http.MethodGet, "incidents", ""); code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
	}
	record := func(ago time.Duration) string {
		t.Helper()
		body := `{"summary":"a PBX token was exposed in a support ticket","discoveredAt":"` +
			time.Now().UTC().Add(-ago).Format(time.RFC3339) + `","tenants":["` + string(tenant) + `"],` +
			`"dataCategories":["users","presence"],"containment":"token revoked","impact":"presence readable",` +
			`"actionPlan":"rotate tokens","contact":"dpo@connecthub.example","severity":"high"}`
		if code, _ := do(admin, http.MethodPost, "incidents", body); code != http.StatusForbidden {
			t.Errorf("a tenant admin recording an incident = %d, want 403", code)
		}
		code, b := do(officer, http.MethodPost, "incidents", body)
		var out struct{ ID string }
		if err := json.Unmarshal(b, &out); code != http.StatusCreated || err != nil || out.ID == "" {
			t.Fatalf("record = %d %s", code, b)
		}
		return out.ID
	}
	soon, late := record(49*time.Hour), record(73*time.Hour)

	const warn48, warn72 = "incident notification deadline in under 24 hours", "incident notification deadline passed"
	fire := func() {
		t.Helper()
		if err := s.host.FireTimer(ctx, "TrackIncidents"); err != nil {
			t.Fatalf("TrackIncidents: %v", err)
		}
	}
	fire()
	fire()
	logs := s.logs.String()
	if strings.Count(logs, warn48) != 1 || strings.Count(logs, warn72) != 1 {
		t.Errorf("after two runs: %d 48-hour and %d 72-hour warnings, want one each", strings.Count(logs, warn48), strings.Count(logs, warn72))
	}
	if strings.Contains(logs, "dpo@connecthub.example") || strings.Contains(logs, "PBX token was exposed") {
		t.Error("the handler logged an incident's text")
	}
	data := privacy.OpenData(s.store.DB())
	for id, want := range map[string]string{soon: "48", late: "72"} {
		row, err := data.Incidents.Get(ctx, core.ReservedTenant, id)
		if err != nil || row.Warned48At.IsZero() || (want == "72") == row.Warned72At.IsZero() {
			t.Errorf("incident %s: warnings %v / %v, %v; want the %s-hour one", id, row.Warned48At, row.Warned72At, err, want)
		}
	}

	health := func() map[string]any {
		t.Helper()
		_, b := do(officer, http.MethodGet, "health", "")
		var h struct{ Stats map[string]any }
		_ = json.Unmarshal(b, &h)
		return h.Stats
	}
	if st := health(); st["incidentsDueSoon"] != float64(1) || st["incidentsOverdue"] != float64(1) {
		t.Errorf("health stats = %v", st)
	}

	if code, b := do(admin, http.MethodGet, "tenants/"+string(tenant)+"/incidents", ""); code != http.StatusOK ||
		!strings.Contains(string(b), soon) || !strings.Contains(string(b), late) {
		t.Errorf("the tenant's incidents = %d %s", code, b)
	}
	for _, r := range []string{string(tenant), privacy.Authority} {
		if code, b := do(officer, http.MethodPost, "incidents/"+soon+"/notifications/"+r+"/sent", ""); code != http.StatusOK {
			t.Fatalf("sent to %s = %d %s", r, code, b)
		}
	}
	if code, b := do(officer, http.MethodPost, "incidents/"+late+"/resolve", ""); code != http.StatusOK {
		t.Fatalf("resolve = %d %s", code, b)
	}
	fire()
	if st := health(); st["incidentsDueSoon"] != float64(0) || st["incidentsOverdue"] != float64(0) {
		t.Errorf("health stats after notifying and resolving = %v", st)
	}
	if logs := s.logs.String(); strings.Count(logs, warn48) != 1 || strings.Count(logs, warn72) != 1 {
		t.Error("a warning was logged again after the incident was notified or resolved")
	}
}

// forgetIncidents deletes, when the test ends, the incidents its stack recorded in the operator
// partition. Every e2e stack shares Azurite's tables but seals with its own keys, so a later stack's
// ListIncidents could not open an earlier stack's incidents (in Azure there is one key ring).
func forgetIncidents(t *testing.T, s *stack) {
	t.Cleanup(func() {
		if _, err := privacy.OpenData(s.store.DB()).Incidents.DeletePartition(context.Background(), registry.OperatorPartition); err != nil {
			t.Errorf("forget the test's incidents: %v", err)
		}
	})
}
