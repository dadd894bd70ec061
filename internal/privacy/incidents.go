package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The breach clock (GDPR Art. 33(1): the authority within 72 hours of becoming aware; the processor
// tells its controllers "without undue delay", which the product promises as the same 72 hours).
const (
	NotifyWithin = 72 * time.Hour
	WarnAfter    = 48 * time.Hour
)

// Authority is the recipient name of the supervisory authority's notification.
const Authority = "authority"

// Incident states.
const (
	IncidentOpen     = "open"
	IncidentNotified = "notified"
	IncidentResolved = "resolved"
)

// IncidentCategory is the kind the API records: the table also has room for other kinds of incident.
const IncidentCategory = "personal-data-breach"

// Bounds of what a security officer enters. maxAffectedTenants keeps the operator row (tenant list and
// sent times, about 100 bytes per tenant) well inside one property's 64 KiB; a breach wider than that
// is recorded as several incidents.
const (
	maxIncidentText    = 4000
	maxContact         = 500
	maxAffectedTenants = 250
	// discoverySkew allows a discoveredAt a little ahead of this server's clock.
	discoverySkew = 5 * time.Minute
)

// IncidentReport is what a security officer records about a breach.
type IncidentReport struct {
	Summary        string
	DiscoveredAt   time.Time
	Tenants        []string
	DataCategories []string
	Containment    string
	Impact         string
	ActionPlan     string
	Contact        string
	Severity       string
}

// IncidentView is an incident with its lists parsed: the whole incident (operator row), or, for a
// tenant's admin, what concerns their tenant (Tenants holds only that tenant; Sent only its time).
type IncidentView struct {
	ID             string
	Severity       string
	Status         string
	Summary        string
	DiscoveredAt   time.Time
	NotifyBy       time.Time
	RecordedAt     time.Time
	RecordedBy     string
	DataCategories []string
	Containment    string
	Impact         string
	ActionPlan     string
	Contact        string
	Tenants        []core.TenantID
	Sent           map[string]time.Time
	NotifiedAt     time.Time
	Warned48At     time.Time
	Warned72At     time.Time
	ResolvedAt     time.Time
	ResolvedBy     string
}

// Notification is the draft of one recipient's notification, with exactly the facts Art. 33(3) and
// 34(2) name: the nature and extent, the data affected, the likely impact, the measures taken and
// planned, and whom to contact.
type Notification struct {
	Recipient       string // a tenant id, or Authority
	Subject         string
	Extent          string
	DataAffected    []string // the categories' descriptions
	Impact          string
	Containment     string
	ActionPlan      string
	Contact         string
	DiscoveredAt    time.Time
	NotifyBy        time.Time
	Text            string // the whole draft, ready to send
	SentAt          time.Time
	AffectedTenants int // how many tenants the incident affects (the authority's extent)
}

// KnownTenant says whether a tenant is one of the service's (registry); an incident names only those.
type KnownTenant func(ctx context.Context, tenant core.TenantID) error

// OperatorKey creates the operator partition's data key when it has none (tenantkey.Keyring), so the
// operator row's texts are sealed like any tenant's and never stored in clear.
type OperatorKey interface {
	EnsureTenantKey(ctx context.Context, tenant core.TenantID) error
}

// Incidents records breaches, drafts their notifications, records when each was sent, and keeps the
// 72-hour clock (Track, the TrackIncidents timer).
type Incidents struct {
	t     *tables.Table[Incident, *Incident]
	known KnownTenant
	keys  OperatorKey
	log   Recorder
	slog  *slog.Logger
	now   func() time.Time
}

// NewIncidents keeps incidents in data's table; every change is recorded in log (the operator's audit
// trail and each affected tenant's); warnings go to lg.
func NewIncidents(data *Data, known KnownTenant, keys OperatorKey, log Recorder, lg *slog.Logger, now func() time.Time) *Incidents {
	if now == nil {
		now = time.Now
	}
	if lg == nil {
		lg = slog.Default()
	}
	return &Incidents{t: data.Incidents, known: known, keys: keys, log: log, slog: lg, now: now}
}

// operator is the partition of the operator's rows.
const operator = core.ReservedTenant

func invalid(msg string) error { return apperr.New(apperr.Invalid, msg, nil) }

func textField(name, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || utf8.RuneCountInString(v) > max {
		return "", invalid(fmt.Sprintf("%s of 1..%d characters is required", name, max))
	}
	return v, nil
}

// check validates a report and returns it normalised: texts trimmed, tenants canonical, unique and
// sorted, categories unique and sorted.
func (s *Incidents) check(ctx context.Context, r IncidentReport) (IncidentReport, []core.TenantID, error) {
	var err error
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"summary", &r.Summary, maxIncidentText}, {"containment", &r.Containment, maxIncidentText},
		{"impact", &r.Impact, maxIncidentText}, {"actionPlan", &r.ActionPlan, maxIncidentText}, {"contact", &r.Contact, maxContact}} {
		if *f.v, err = textField(f.name, *f.v, f.max); err != nil {
			return r, nil, err
		}
	}
	if !slices.Contains([]string{"low", "medium", "high"}, r.Severity) {
		return r, nil, invalid("severity must be low, medium or high")
	}
	if r.DiscoveredAt.IsZero() || r.DiscoveredAt.After(s.now().Add(discoverySkew)) {
		return r, nil, invalid("discoveredAt is required and may not be in the future")
	}
	r.DiscoveredAt = r.DiscoveredAt.UTC()
	if len(r.Tenants) == 0 || len(r.Tenants) > maxAffectedTenants {
		return r, nil, invalid(fmt.Sprintf("tenants must name 1..%d affected tenants", maxAffectedTenants))
	}
	var ts []core.TenantID
	for _, raw := range r.Tenants {
		t, err := core.ParseCustomerTenant(raw)
		if err != nil {
			return r, nil, err
		}
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	for _, t := range ts {
		if err := s.known(ctx, t); err != nil {
			if errors.Is(err, tables.ErrNotFound) {
				return r, nil, invalid("tenants: " + string(t) + " is not a tenant of this service")
			}
			return r, nil, fmt.Errorf("look up affected tenant: %w", err)
		}
	}
	if len(r.DataCategories) == 0 {
		return r, nil, invalid("dataCategories must name at least one category of personal data affected")
	}
	var cats []string
	for _, c := range r.DataCategories {
		if _, ok := Categories[c]; !ok {
			return r, nil, invalid("dataCategories: unknown category " + strings.Join(strings.Fields(core.Clip(c, 64)), " ") +
				" (one of the data inventory's tables, e.g. users, presence)")
		}
		if !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	slices.Sort(cats)
	r.DataCategories = cats
	return r, ts, nil
}

// Record records a breach: the operator row first (the authoritative record, which drafts every
// notification), then one row per affected tenant. A failure part-way leaves the operator row, and
// sending a tenant's notification or resolving the incident rewrites that tenant's row, so nothing is
// lost; the call answers the error and may be repeated as a new incident.
func (s *Incidents) Record(ctx context.Context, by core.Actor, r IncidentReport) (IncidentView, error) {
	v, err := s.record(ctx, by, r)
	err = s.log.Record(ctx, operator, by, "incident.record", "incident", v.ID, err)
	for _, t := range v.Tenants {
		err = errors.Join(err, s.logChange(ctx, t, by, "incident.record", v.ID))
	}
	return v, err
}

func (s *Incidents) record(ctx context.Context, by core.Actor, r IncidentReport) (IncidentView, error) {
	r, ts, err := s.check(ctx, r)
	if err != nil {
		return IncidentView{}, err
	}
	if err := s.keys.EnsureTenantKey(ctx, operator); err != nil {
		return IncidentView{}, fmt.Errorf("operator data key: %w", err)
	}
	now := s.now().UTC()
	inc := Incident{ID: tables.NewestFirstID(now), Category: IncidentCategory, Severity: r.Severity, Status: IncidentOpen,
		Summary: r.Summary, DetectedAt: r.DiscoveredAt, NotifyBy: r.DiscoveredAt.Add(NotifyWithin), RecordedAt: now,
		RecordedBy: by.ID, DataCategories: strings.Join(r.DataCategories, ","), Containment: r.Containment,
		Impact: r.Impact, ActionPlan: r.ActionPlan, Contact: r.Contact, Tenants: joinTenants(ts), Sent: "{}"}
	if _, err := s.t.Insert(ctx, operator, inc); err != nil {
		return IncidentView{}, fmt.Errorf("record incident: %w", err)
	}
	for _, t := range ts {
		if _, err := s.t.Insert(ctx, t, tenantRow(inc, t)); err != nil {
			return view(inc), fmt.Errorf("record incident for an affected tenant: %w", err)
		}
	}
	return view(inc), nil
}

// tenantRow is what tenant t's partition holds of the operator row inc: no other tenant, no warnings.
func tenantRow(inc Incident, t core.TenantID) Incident {
	row := inc
	row.Tenants, row.Sent, row.Warned48At, row.Warned72At = "", "", time.Time{}, time.Time{}
	row.RecordedBy, row.ResolvedBy = "", "" // staff ids are the operator's business
	row.NotifiedAt = sentTimes(inc)[string(t)]
	row.Status = inc.Status
	if row.Status != IncidentResolved {
		row.Status = IncidentOpen
		if !row.NotifiedAt.IsZero() {
			row.Status = IncidentNotified
		}
	}
	return row
}

// logChange records an incident change in an affected tenant's audit trail, so its admins see it too.
func (s *Incidents) logChange(ctx context.Context, t core.TenantID, by core.Actor, action, id string) error {
	if id == "" {
		return nil
	}
	return s.log.Record(ctx, t, by, action, "incident", id, nil)
}

func joinTenants(ts []core.TenantID) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ",")
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func sentTimes(inc Incident) map[string]time.Time {
	out := map[string]time.Time{}
	if inc.Sent != "" {
		_ = json.Unmarshal([]byte(inc.Sent), &out) // written only by this file
	}
	return out
}

// recipients are everyone an incident must be told: each affected tenant and the authority.
func recipients(inc Incident) []string { return append(splitList(inc.Tenants), Authority) }

// pending are the recipients not yet notified.
func pending(inc Incident) []string {
	sent := sentTimes(inc)
	return slices.DeleteFunc(recipients(inc), func(r string) bool { return !sent[r].IsZero() })
}

func view(inc Incident) IncidentView {
	v := IncidentView{ID: inc.ID, Severity: inc.Severity, Status: inc.Status, Summary: inc.Summary, DiscoveredAt: inc.DetectedAt,
		NotifyBy: inc.NotifyBy, RecordedAt: inc.RecordedAt, RecordedBy: inc.RecordedBy, DataCategories: splitList(inc.DataCategories),
		Containment: inc.Containment, Impact: inc.Impact, ActionPlan: inc.ActionPlan, Contact: inc.Contact,
		Sent: sentTimes(inc), NotifiedAt: inc.NotifiedAt, Warned48At: inc.Warned48At, Warned72At: inc.Warned72At,
		ResolvedAt: inc.ResolvedAt, ResolvedBy: inc.ResolvedBy, Tenants: []core.TenantID{}}
	for _, t := range splitList(inc.Tenants) {
		v.Tenants = append(v.Tenants, core.TenantID(t))
	}
	return v
}

// get reads the operator row; an unknown or malformed id is NotFound.
func (s *Incidents) get(ctx context.Context, id string) (Incident, error) {
	if tables.ValidateKeyPart("incident id", id) != nil {
		return Incident{}, apperr.New(apperr.NotFound, "no such incident", nil)
	}
	inc, err := s.t.Get(ctx, operator, id)
	if errors.Is(err, tables.ErrNotFound) {
		return Incident{}, apperr.New(apperr.NotFound, "no such incident", err)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("read incident: %w", err)
	}
	return inc, nil
}

// Get answers the whole incident (security officers).
func (s *Incidents) Get(ctx context.Context, id string) (IncidentView, error) {
	inc, err := s.get(ctx, id)
	return view(inc), err
}

// List answers every incident, newest first (the operator partition's row keys sort so).
func (s *Incidents) List(ctx context.Context) ([]IncidentView, error) {
	out := []IncidentView{}
	for inc, err := range s.t.All(ctx, operator, nil) {
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, view(inc))
	}
	return out, nil
}

// ForTenant answers the incidents that affect tenant, newest first, from the tenant's own rows: what
// its admins were (or will be) told, and when.
func (s *Incidents) ForTenant(ctx context.Context, tenant core.TenantID) ([]IncidentView, error) {
	out := []IncidentView{}
	for inc, err := range s.t.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list the tenant's incidents: %w", err)
		}
		v := view(inc)
		v.Tenants = []core.TenantID{tenant}
		if !inc.NotifiedAt.IsZero() {
			v.Sent = map[string]time.Time{string(tenant): inc.NotifiedAt}
		}
		out = append(out, v)
	}
	return out, nil
}

// Notifications drafts every recipient's notification: one per affected tenant, then the authority's.
func (s *Incidents) Notifications(ctx context.Context, id string) ([]Notification, error) {
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []Notification{}
	for _, r := range recipients(inc) {
		out = append(out, draft(inc, r))
	}
	return out, nil
}

// draft writes recipient's notification from the incident's facts, and nothing else: a tenant's names
// that tenant only (with how many are affected), the authority's counts the tenants.
func draft(inc Incident, recipient string) Notification {
	tenants := splitList(inc.Tenants)
	n := Notification{Recipient: recipient, Impact: inc.Impact, Containment: inc.Containment, ActionPlan: inc.ActionPlan,
		Contact: inc.Contact, DiscoveredAt: inc.DetectedAt, NotifyBy: inc.NotifyBy, SentAt: sentTimes(inc)[recipient],
		AffectedTenants: len(tenants), DataAffected: []string{}}
	for _, c := range splitList(inc.DataCategories) {
		n.DataAffected = append(n.DataAffected, Categories[c].Name)
	}
	if recipient == Authority {
		n.Subject = "Notification of a personal data breach (GDPR Art. 33) — ConnectHub incident " + inc.ID
		n.Extent = fmt.Sprintf("%s Customer organisations (tenants) affected: %d.", inc.Summary, len(tenants))
	} else {
		n.Subject = "Personal data breach affecting your ConnectHub tenant — incident " + inc.ID
		n.Extent = fmt.Sprintf("%s Your organisation (tenant %s) is affected, one of %d customer organisations.", inc.Summary, recipient, len(tenants))
	}
	n.Text = fmt.Sprintf("%s\n\nDiscovered: %s\nWhat happened and its extent: %s\nPersonal data affected: %s\n"+
		"Likely impact: %s\nMeasures taken to contain it: %s\nMeasures planned: %s\nContact for more information: %s\n",
		n.Subject, inc.DetectedAt.UTC().Format(time.RFC3339), n.Extent, strings.Join(n.DataAffected, "; "),
		inc.Impact, inc.Containment, inc.ActionPlan, inc.Contact)
	return n
}

// MarkSent records that recipient's notification was sent, and answers it. Idempotent: the first time
// stays. When every recipient has been told, the incident is notified.
func (s *Incidents) MarkSent(ctx context.Context, by core.Actor, id, recipient string) (Notification, error) {
	n, err := s.markSent(ctx, id, recipient)
	err = s.log.Record(ctx, operator, by, "incident.notification.sent", "incident", id, err)
	if err == nil && n.Recipient != Authority {
		err = s.logChange(ctx, core.TenantID(n.Recipient), by, "incident.notification.sent", id)
	}
	return n, err
}

func (s *Incidents) markSent(ctx context.Context, id, recipient string) (Notification, error) {
	inc, err := s.get(ctx, id)
	if err != nil {
		return Notification{}, err
	}
	if recipient != Authority {
		t, err := core.ParseCustomerTenant(recipient)
		if err != nil || !slices.Contains(splitList(inc.Tenants), string(t)) {
			return Notification{}, apperr.New(apperr.NotFound, "no such recipient of this incident", nil)
		}
		recipient = string(t)
	}
	now := s.now().UTC()
	inc, err = s.t.Update(ctx, operator, id, func(i *Incident) error {
		sent := sentTimes(*i)
		if !sent[recipient].IsZero() {
			return nil
		}
		sent[recipient] = now
		b, _ := json.Marshal(sent)
		i.Sent = string(b)
		if len(pending(*i)) == 0 && i.Status == IncidentOpen {
			i.Status, i.NotifiedAt = IncidentNotified, now
		}
		return nil
	})
	if err != nil {
		return Notification{}, fmt.Errorf("record notification: %w", err)
	}
	if recipient != Authority {
		if err := s.syncTenantRow(ctx, inc, core.TenantID(recipient)); err != nil {
			return Notification{}, err
		}
	}
	return draft(inc, recipient), nil
}

// syncTenantRow rewrites tenant t's row from the operator row (it may be missing after a failed
// Record).
func (s *Incidents) syncTenantRow(ctx context.Context, inc Incident, t core.TenantID) error {
	want := tenantRow(inc, t)
	_, err := s.t.UpdateOrCreate(ctx, t, inc.ID, func(row *Incident, _ bool) error {
		*row = want
		return nil
	})
	if err != nil {
		return fmt.Errorf("update the tenant's incident row: %w", err)
	}
	return nil
}

// Resolve closes the incident: its warnings stop. A security officer may resolve an incident whose
// notifications are not all sent (a false alarm); the record keeps what was and was not sent.
// Idempotent: the first resolution's time stays.
func (s *Incidents) Resolve(ctx context.Context, by core.Actor, id string) (IncidentView, error) {
	v, err := s.resolve(ctx, by, id)
	err = s.log.Record(ctx, operator, by, "incident.resolve", "incident", id, err)
	if err == nil {
		for _, t := range v.Tenants {
			err = errors.Join(err, s.logChange(ctx, t, by, "incident.resolve", id))
		}
	}
	return v, err
}

func (s *Incidents) resolve(ctx context.Context, by core.Actor, id string) (IncidentView, error) {
	if _, err := s.get(ctx, id); err != nil {
		return IncidentView{}, err
	}
	now := s.now().UTC()
	inc, err := s.t.Update(ctx, operator, id, func(i *Incident) error {
		if i.Status != IncidentResolved {
			i.Status, i.ResolvedAt, i.ResolvedBy = IncidentResolved, now, by.ID
		}
		return nil
	})
	if err != nil {
		return IncidentView{}, fmt.Errorf("resolve incident: %w", err)
	}
	var errs []error
	for _, t := range splitList(inc.Tenants) {
		errs = append(errs, s.syncTenantRow(ctx, inc, core.TenantID(t)))
	}
	return view(inc), errors.Join(errs...)
}

// Clock is where an open incident stands: how many are past the warning and past the deadline with
// recipients not yet told (Health's staff counters).
type Clock struct {
	DueSoon int `json:"incidentsDueSoon"` // past 48 h, not yet 72 h
	Overdue int `json:"incidentsOverdue"` // past 72 h
}

// open iterates over the open incidents (some recipient not yet told, not resolved).
func (s *Incidents) open(ctx context.Context) ([]Incident, error) {
	var out []Incident
	page := &tables.ListOptions{}
	for {
		p, err := s.t.Query(ctx, operator, tables.Filter("PartitionKey eq ? and Status eq ?", operator, IncidentOpen), page)
		if err != nil {
			return nil, fmt.Errorf("list open incidents: %w", err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		page = &tables.ListOptions{Token: p.Next}
	}
}

// Clock counts the open incidents near and past their deadline, now.
func (s *Incidents) Clock(ctx context.Context) (Clock, error) {
	incs, err := s.open(ctx)
	if err != nil {
		return Clock{}, err
	}
	now := s.now()
	var c Clock
	for _, inc := range incs {
		switch age := now.Sub(inc.DetectedAt); {
		case len(pending(inc)) == 0:
		case age >= NotifyWithin:
			c.Overdue++
		case age >= WarnAfter:
			c.DueSoon++
		}
	}
	return c, nil
}

// Track is the TrackIncidents timer: for each open incident past 48 hours from discovery with
// recipients not yet told it logs one error line and records the warning on the row, so the line is
// logged once; again at 72 hours. Overlapping or repeated runs log nothing twice: the warning is
// written with the row's ETag, and only the run whose write set it logs. Per-incident failures are
// joined, and the next hour's run retries them.
func (s *Incidents) Track(ctx context.Context) error {
	incs, err := s.open(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, inc := range incs {
		errs = append(errs, s.track(ctx, inc.ID))
	}
	return errors.Join(errs...)
}

// Run is Track: the timer's job.
func (s *Incidents) Run(ctx context.Context) error { return s.Track(ctx) }

func (s *Incidents) track(ctx context.Context, id string) error {
	now := s.now().UTC()
	var raised string
	var waiting int
	var inc Incident
	inc, err := s.t.Update(ctx, operator, id, func(i *Incident) error {
		raised, waiting = "", len(pending(*i))
		if i.Status != IncidentOpen || waiting == 0 {
			return nil
		}
		switch age := now.Sub(i.DetectedAt); {
		case age >= NotifyWithin && i.Warned72At.IsZero():
			raised, i.Warned72At = "72h", now
			if i.Warned48At.IsZero() { // found late (a backdated discovery): the 48-hour line is moot
				i.Warned48At = now
			}
		case age >= WarnAfter && age < NotifyWithin && i.Warned48At.IsZero():
			raised, i.Warned48At = "48h", now
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("track incident %s: %w", id, err)
	}
	if raised == "" {
		return nil
	}
	// Ids, counts and times only: the texts may name people.
	msg := "incident notification deadline in under 24 hours"
	if raised == "72h" {
		msg = "incident notification deadline passed"
	}
	s.slog.ErrorContext(ctx, msg, "incident_id", inc.ID, "warning", raised, "recipients_pending", waiting,
		"notify_by", inc.NotifyBy.UTC().Format(time.RFC3339))
	return s.log.Record(ctx, operator, core.System, "incident.warn."+raised, "incident", inc.ID, nil)
}
