package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/privacy"
)

const officer = "0f0f0f0f-0000-4000-8000-00000000000a"

var by = core.Actor{ID: officer, Kind: "user"}

// logLines captures JSON log lines, for the tests that assert what the timer logs.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns the lines logged since the last take.
func (l *logLines) take() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		out = append(out, m)
	}
	l.b.Reset()
	return out
}

type incidentEnv struct {
	env   *storetest.Env
	clock *clock.Fake
	inc   *privacy.Incidents
	data  *privacy.Data
	audit *audit.Log
	logs  *logLines
}

func newIncidentEnv(t *testing.T) *incidentEnv {
	t.Helper()
	fake := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	env := storetest.NewEnv(t, storetest.Options{})
	data := privacy.OpenData(env.DB)
	lg := &logLines{}
	log := audit.OpenLog(env.DB)
	known := func(ctx context.Context, t core.TenantID) error { _, err := env.Store.Tenants.Get(ctx, t); return err }
	inc := privacy.NewIncidents(data, known, env.Keys, audit.Trail{Table: log, Now: fake.Now, Log: slog.Default()},
		slog.New(slog.NewJSONHandler(lg, nil)), fake.Now)
	return &incidentEnv{env: env, clock: fake, inc: inc, data: data, audit: log, logs: lg}
}

// tenant is an onboarded tenant: registered, with its data key.
func (e *incidentEnv) tenant(t *testing.T) core.TenantID {
	t.Helper()
	id := e.env.NewTenant(t)
	if err := e.env.Store.Tenants.Create(context.Background(), registry.Tenant{ID: id, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *incidentEnv) report(discovered time.Time, ts ...core.TenantID) privacy.IncidentReport {
	r := privacy.IncidentReport{Summary: "a PBX token of the connector was exposed in a support ticket", DiscoveredAt: discovered,
		DataCategories: []string{"users", "presence"}, Containment: "token revoked", Impact: "presence could be read for 3 hours",
		ActionPlan: "rotate every PBX token; review ticket tooling", Contact: "dpo@connecthub.example", Severity: "high"}
	for _, t := range ts {
		r.Tenants = append(r.Tenants, string(t))
	}
	return r
}

// actions lists the actions of a tenant's audit trail, oldest first.
func (e *incidentEnv) actions(t *testing.T, tenant core.TenantID) []string {
	t.Helper()
	page, err := e.audit.List(context.Background(), tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(page.Items) - 1; i >= 0; i-- {
		out = append(out, page.Items[i].Action+":"+page.Items[i].Outcome)
	}
	return out
}

// Recording writes the whole incident on the operator's side and one row per affected tenant that
// names no other tenant; the deadline is 72 hours from discovery, and every affected trail has it.
func TestRecordIncident(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a, b, unaffected := e.tenant(t), e.tenant(t), e.tenant(t)
	discovered := e.clock.Now().Add(-5 * time.Hour)
	v, err := e.inc.Record(ctx, by, e.report(discovered, b, a, a))
	if err != nil {
		t.Fatal(err)
	}
	if !v.NotifyBy.Equal(discovered.Add(72*time.Hour)) || v.Status != privacy.IncidentOpen || len(v.Tenants) != 2 ||
		strings.Join(v.DataCategories, ",") != "presence,users" {
		t.Errorf("recorded = %+v", v)
	}
	got, err := e.inc.Get(ctx, v.ID)
	if err != nil || got.Summary != v.Summary || got.Contact != "dpo@connecthub.example" || got.RecordedBy != officer || len(got.Tenants) != 2 {
		t.Errorf("operator row = %+v, %v", got, err)
	}
	for _, tenant := range []core.TenantID{a, b} {
		rows, err := e.inc.ForTenant(ctx, tenant)
		if err != nil || len(rows) != 1 || rows[0].ID != v.ID || rows[0].Impact != v.Impact {
			t.Fatalf("tenant %s rows = %+v, %v", tenant, rows, err)
		}
		stored, err := e.data.Incidents.Get(ctx, tenant, v.ID)
		if err != nil || stored.Tenants != "" || stored.Sent != "" || stored.RecordedBy != "" {
			t.Errorf("tenant row names others or staff: %+v, %v", stored, err)
		}
		if got := e.actions(t, tenant); strings.Join(got, " ") != "incident.record:success" {
			t.Errorf("tenant trail = %v", got)
		}
	}
	if rows, err := e.inc.ForTenant(ctx, unaffected); err != nil || len(rows) != 0 {
		t.Errorf("an unaffected tenant sees %+v, %v", rows, err)
	}
	if got := e.actions(t, core.ReservedTenant); strings.Join(got, " ") != "incident.record:success" {
		t.Errorf("operator trail = %v", got)
	}

	// A second incident lists first.
	e.clock.Advance(time.Minute)
	w, err := e.inc.Record(ctx, by, e.report(discovered, a))
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.inc.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != w.ID || list[1].ID != v.ID {
		t.Errorf("list = %+v, %v", list, err)
	}
}

// What the officer enters is checked: every field present and bounded, the categories those of the
// data inventory, the tenants real ones, the discovery not in the future.
func TestRecordIncidentRefusesWhatItCannotNotify(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a := e.tenant(t)
	now := e.clock.Now()
	for _, tc := range []struct {
		name string
		edit func(*privacy.IncidentReport)
	}{
		{"no summary", func(r *privacy.IncidentReport) { r.Summary = "  " }},
		{"a summary too long", func(r *privacy.IncidentReport) { r.Summary = strings.Repeat("x", 4001) }},
		{"no containment", func(r *privacy.IncidentReport) { r.Containment = "" }},
		{"no impact", func(r *privacy.IncidentReport) { r.Impact = "" }},
		{"no plan", func(r *privacy.IncidentReport) { r.ActionPlan = "" }},
		{"no contact", func(r *privacy.IncidentReport) { r.Contact = "" }},
		{"unknown severity", func(r *privacy.IncidentReport) { r.Severity = "critical" }},
		{"no discovery time", func(r *privacy.IncidentReport) { r.DiscoveredAt = time.Time{} }},
		{"discovered tomorrow", func(r *privacy.IncidentReport) { r.DiscoveredAt = now.Add(24 * time.Hour) }},
		{"no tenants", func(r *privacy.IncidentReport) { r.Tenants = nil }},
		{"not a tenant id", func(r *privacy.IncidentReport) { r.Tenants = []string{"contoso"} }},
		{"the operator partition", func(r *privacy.IncidentReport) { r.Tenants = []string{string(core.ReservedTenant)} }},
		{"a tenant the service does not have", func(r *privacy.IncidentReport) { r.Tenants = []string{string(storetest.NewTenantID(t))} }},
		{"no categories", func(r *privacy.IncidentReport) { r.DataCategories = nil }},
		{"a category not in the inventory", func(r *privacy.IncidentReport) { r.DataCategories = []string{"health records"} }},
	} {
		r := e.report(now, a)
		tc.edit(&r)
		if _, err := e.inc.Record(ctx, by, r); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: %v, want invalid", tc.name, err)
		}
	}
	if list, err := e.inc.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("refused reports left incidents: %+v, %v", list, err)
	}
}

// The drafts carry exactly the incident's facts; recording a send is idempotent, names only the
// incident's recipients, and once everyone is told the incident is notified.
func TestNotificationsAndSent(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a, b, other := e.tenant(t), e.tenant(t), e.tenant(t)
	v, err := e.inc.Record(ctx, by, e.report(e.clock.Now().Add(-time.Hour), a, b))
	if err != nil {
		t.Fatal(err)
	}
	drafts, err := e.inc.Notifications(ctx, v.ID)
	if err != nil || len(drafts) != 3 {
		t.Fatalf("drafts = %+v, %v", drafts, err)
	}
	recipients := map[string]privacy.Notification{}
	for _, n := range drafts {
		recipients[n.Recipient] = n
		for _, fact := range []string{v.Summary, v.Impact, v.Containment, v.ActionPlan, v.Contact, "Directory profile of a licensed user", "Current Teams presence"} {
			if !strings.Contains(n.Text, fact) {
				t.Errorf("%s's draft lacks %q:\n%s", n.Recipient, fact, n.Text)
			}
		}
		if !n.SentAt.IsZero() {
			t.Errorf("%s sent before anyone said so", n.Recipient)
		}
	}
	if _, ok := recipients[privacy.Authority]; !ok || !strings.Contains(recipients[string(a)].Extent, string(a)) ||
		strings.Contains(recipients[string(a)].Text, string(b)) || strings.Contains(recipients[privacy.Authority].Text, string(a)) {
		t.Errorf("drafts name the wrong tenants: %+v", recipients)
	}

	first := e.clock.Advance(time.Hour)
	n, err := e.inc.MarkSent(ctx, by, v.ID, strings.ToUpper(string(a)))
	if err != nil || !n.SentAt.Equal(first) || n.Recipient != string(a) {
		t.Fatalf("sent = %+v, %v", n, err)
	}
	e.clock.Advance(time.Hour)
	if n, err := e.inc.MarkSent(ctx, by, v.ID, string(a)); err != nil || !n.SentAt.Equal(first) {
		t.Errorf("a second call moved the time: %+v, %v", n, err)
	}
	for _, r := range []string{string(other), "nobody", string(core.ReservedTenant)} {
		if _, err := e.inc.MarkSent(ctx, by, v.ID, r); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("recipient %s: %v, want not found", r, err)
		}
	}
	if _, err := e.inc.MarkSent(ctx, by, "0000000000000000000-00000000", privacy.Authority); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown incident: %v", err)
	}
	rows, _ := e.inc.ForTenant(ctx, a)
	if len(rows) != 1 || rows[0].Status != privacy.IncidentNotified || !rows[0].NotifiedAt.Equal(first) {
		t.Errorf("tenant a's row after its notification = %+v", rows)
	}
	if got, _ := e.inc.Get(ctx, v.ID); got.Status != privacy.IncidentOpen {
		t.Errorf("incident notified while b and the authority wait: %s", got.Status)
	}
	for _, r := range []string{string(b), privacy.Authority} {
		if _, err := e.inc.MarkSent(ctx, by, v.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := e.inc.Get(ctx, v.ID)
	if got.Status != privacy.IncidentNotified || got.NotifiedAt.IsZero() || len(got.Sent) != 3 {
		t.Errorf("after every send = %+v", got)
	}
	if trail := strings.Join(e.actions(t, a), " "); trail != "incident.record:success incident.notification.sent:success incident.notification.sent:success" {
		t.Errorf("tenant a's trail = %s", trail)
	}

	// Resolving closes the incident everywhere, once.
	resolvedAt := e.clock.Advance(time.Minute)
	if _, err := e.inc.Resolve(ctx, by, v.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if r, err := e.inc.Resolve(ctx, by, v.ID); err != nil || !r.ResolvedAt.Equal(resolvedAt) || r.Status != privacy.IncidentResolved {
		t.Errorf("second resolve = %+v, %v", r, err)
	}
	if rows, _ := e.inc.ForTenant(ctx, b); len(rows) != 1 || rows[0].Status != privacy.IncidentResolved {
		t.Errorf("tenant b's row after resolution = %+v", rows)
	}
}

// The 72-hour clock on a fake clock: one error line at 48 hours and one at 72, each exactly once,
// however often the hourly timer runs; none for an incident whose recipients were all told, or that
// was resolved. Health's counters follow the same clock.
func TestTrackIncidentsWarnsAt48And72HoursOnce(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a := e.tenant(t)
	start := e.clock.Now()
	late, err := e.inc.Record(ctx, by, e.report(start, a))
	if err != nil {
		t.Fatal(err)
	}
	told, err := e.inc.Record(ctx, by, e.report(start, a))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{string(a), privacy.Authority} {
		if _, err := e.inc.MarkSent(ctx, by, told.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	closed, err := e.inc.Record(ctx, by, e.report(start, a))
	if err != nil {
		t.Fatal(err)
	}
	e.logs.take()

	type step struct {
		at       time.Duration
		resolve  bool
		want     string // the warning logged at this run ("" none)
		dueSoon  int
		overdue  int
		runTwice bool
	}
	for _, s := range []step{
		{at: time.Hour},
		{at: 47*time.Hour + 59*time.Minute},
		{at: 48 * time.Hour, want: "48h", dueSoon: 1, runTwice: true},
		{at: 49 * time.Hour, dueSoon: 1},
		{at: 71*time.Hour + 59*time.Minute, dueSoon: 1},
		{at: 72 * time.Hour, want: "72h", overdue: 1, runTwice: true},
		{at: 96 * time.Hour, overdue: 1},
		{at: 97 * time.Hour, resolve: true},
	} {
		e.clock.Set(start.Add(s.at))
		if s.resolve {
			if _, err := e.inc.Resolve(ctx, by, late.ID); err != nil {
				t.Fatal(err)
			}
		}
		runs := 1
		if s.runTwice {
			runs = 2
		}
		for range runs {
			if err := e.inc.Track(ctx); err != nil {
				t.Fatalf("at %v: %v", s.at, err)
			}
		}
		var got []string
		for _, line := range e.logs.take() {
			if line["level"] != "ERROR" || line["incident_id"] != late.ID {
				t.Errorf("at %v: unexpected line %v", s.at, line)
			}
			got = append(got, line["warning"].(string))
			// Ids, counts and times only: the texts may name people.
			for _, text := range []string{late.Summary, late.Contact, late.Impact} {
				for _, v := range line {
					if str, ok := v.(string); ok && strings.Contains(str, text) {
						t.Errorf("at %v: the line quotes the incident's text: %v", s.at, line)
					}
				}
			}
		}
		if strings.Join(got, ",") != s.want {
			t.Errorf("at %v: warnings %v, want %q", s.at, got, s.want)
		}
		c, err := e.inc.Clock(ctx)
		if err != nil || c.DueSoon != s.dueSoon || c.Overdue != s.overdue {
			t.Errorf("at %v: clock %+v, %v; want %d due soon, %d overdue", s.at, c, err, s.dueSoon, s.overdue)
		}
		if s.at == time.Hour { // an hour in, the officer closes the false alarm
			if _, err := e.inc.Resolve(ctx, by, closed.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, _ := e.inc.Get(ctx, late.ID)
	if !got.Warned48At.Equal(start.Add(48*time.Hour)) || !got.Warned72At.Equal(start.Add(72*time.Hour)) {
		t.Errorf("warnings recorded at %v and %v", got.Warned48At, got.Warned72At)
	}
	for _, id := range []string{told.ID, closed.ID} {
		if v, _ := e.inc.Get(ctx, id); !v.Warned48At.IsZero() || !v.Warned72At.IsZero() {
			t.Errorf("incident %s warned: %+v", id, v)
		}
	}
	trail := strings.Join(e.actions(t, core.ReservedTenant), " ")
	if strings.Count(trail, "incident.warn.48h") != 1 || strings.Count(trail, "incident.warn.72h") != 1 {
		t.Errorf("operator trail = %s", trail)
	}
}

// An incident discovered long before it was recorded is past 72 hours at the first run: one line, the
// 72-hour one.
func TestTrackIncidentsBackdatedDiscovery(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a := e.tenant(t)
	if _, err := e.inc.Record(ctx, by, e.report(e.clock.Now().Add(-100*time.Hour), a)); err != nil {
		t.Fatal(err)
	}
	e.logs.take()
	for range 3 {
		if err := e.inc.Track(ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
	}
	lines := e.logs.take()
	if len(lines) != 1 || lines[0]["warning"] != "72h" || lines[0]["msg"] != "incident notification deadline passed" {
		t.Errorf("lines = %v", lines)
	}
}

// Erasing a person takes their id out of the incident's texts, in the tenant's row and the operator's.
func TestIncidentErasureScrubsBothRows(t *testing.T) {
	t.Parallel()
	e := newIncidentEnv(t)
	ctx := context.Background()
	a := e.tenant(t)
	const person = "aaaaaaaa-0000-4000-8000-0000000000ad"
	r := e.report(e.clock.Now(), a)
	r.Summary = "the mailbox of " + person + " was read by a test account"
	v, err := e.inc.Record(ctx, by, r)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := e.data.Export(ctx, a, person)
	if err != nil || len(recs) != 1 {
		t.Errorf("export = %+v, %v", recs, err)
	}
	out, err := e.data.Erase(ctx, a, person)
	if err != nil || out["incidents"].Pseudonymised != 1 {
		t.Fatalf("erase = %+v, %v", out, err)
	}
	for _, p := range []core.TenantID{a, core.ReservedTenant} {
		row, err := e.data.Incidents.Get(ctx, p, v.ID)
		if err != nil || strings.Contains(row.Summary, person) || !strings.Contains(row.Summary, "[erased]") {
			t.Errorf("%s row after erasure = %q, %v", p, row.Summary, err)
		}
	}
}
