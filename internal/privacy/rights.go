package privacy

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Request is one data subject request of a tenant and its answer (table privacyrequests): who asked,
// about whom, when it is due (one month, GDPR Art. 12(3)) and what was done.
type Request struct {
	ID          string `table:"key"` // newest first
	Kind        string // access, export, erasure, restriction, resumption
	SubjectID   string `table:"personal"` // the person's object id; a pseudonym once they are erased
	RequestedBy string `table:"personal"` // object id of the admin or privacy officer who asked
	RequestedAt time.Time
	DueAt       time.Time
	Status      string // completed, failed
	CompletedAt time.Time
	Receipt     string // JSON: counts per table, no personal data
}

func (r *Request) RowKey() (string, error)   { return tables.SimpleKey("request id", r.ID) }
func (r *Request) SetRowKey(rk string) error { r.ID = rk; return nil }

// The kinds of request.
const (
	KindAccess      = "access"
	KindExport      = "export"
	KindErasure     = "erasure"
	KindRestriction = "restriction" // processing restricted (Art. 18)
	KindResumption  = "resumption"  // the restriction lifted
	KindObjection   = "objection"   // the tenant objects to all processing (Art. 21): the service ends
	KindRectify     = "rectification"
)

// ReportSchema names the version of the report's JSON layout (docs/openapi.json, PersonalDataReport).
// A change that a reader could trip over gets a new version.
const ReportSchema = "connecthub.personal-data.v1"

// Report is what ConnectHub holds about one person of a tenant, per category, with sealed fields opened.
type Report struct {
	Schema      string           `json:"schema"`
	GeneratedAt time.Time        `json:"generatedAt"`
	Tenant      core.TenantID    `json:"tenant"`
	Subject     string           `json:"subject"`
	Controller  string           `json:"controller"`
	StoredIn    string           `json:"storedIn"`
	Categories  []ReportCategory `json:"categories"`
}

// ReportCategory is one table's rows about the person.
type ReportCategory struct {
	Table string `json:"table"`
	Category
	Retention string         `json:"retention"`
	Records   []ReportRecord `json:"records"`
}

// ReportRecord is one row: its key and its fields.
type ReportRecord struct {
	Key    string         `json:"key"`
	Fields map[string]any `json:"fields"`
}

// Receipt is the answer to an erasure: what was removed, per table, and what stays pseudonymised.
type Receipt struct {
	RequestID     string         `json:"requestId"`
	Tenant        core.TenantID  `json:"tenant"`
	ErasedAt      time.Time      `json:"erasedAt"`
	Tables        tables.Erasure `json:"tables"`
	Pseudonymised []string       `json:"pseudonymised"` // tables whose rows stay, without the person
}

// Restrictions sets a user's restriction flag, which every worker reads (registry.Registry).
type Restrictions interface {
	SetRestriction(ctx context.Context, tenant core.TenantID, userID string, on bool, reason string, at time.Time) error
}

// Rights answers data subject requests and keeps a record of each, in its table and the audit trail.
type Rights struct {
	restrict Restrictions
	subjects *Subjects
	requests *tables.Table[Request, *Request]
	log      Recorder
	storedIn string
	now      func() time.Time
}

// Recorder appends an entry to a tenant's audit trail (audit.Trail).
type Recorder interface {
	Record(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error
}

// NewRights answers requests with subjects, records them in data's requests table and in log; storedIn
// says where the data lives (the deployment's regions).
func NewRights(subjects *Subjects, data *Data, restrict Restrictions, log Recorder, storedIn string, now func() time.Time) *Rights {
	if now == nil {
		now = time.Now
	}
	return &Rights{subjects: subjects, requests: data.Requests, restrict: restrict, log: log, storedIn: storedIn, now: now}
}

// maxReason bounds a restriction's reason.
const maxReason = 500

// Restrict answers the right to restriction (on) and its end (off): the person's data stays, and no
// worker, job or connector processes it meanwhile.
func (r *Rights) Restrict(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, on bool, reason string) (Request, error) {
	kind := KindRestriction
	if !on {
		kind = KindResumption
	}
	q, err := r.restrictOrResume(ctx, by, tenant, userID, on, reason, kind)
	return q, r.log.Record(ctx, tenant, by, "privacy."+kind, "user", q.SubjectID, err)
}

func (r *Rights) restrictOrResume(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, on bool, reason, kind string) (Request, error) {
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return Request{}, err
	}
	reason = strings.TrimSpace(reason)
	if on && (reason == "" || len(reason) > maxReason) {
		return Request{SubjectID: userID}, apperr.New(apperr.Invalid, fmt.Sprintf("a reason of 1..%d characters is required", maxReason), nil)
	}
	now := r.now().UTC()
	if err := r.restrict.SetRestriction(ctx, tenant, userID, on, reason, now); err != nil {
		return Request{SubjectID: userID}, err
	}
	id, err := r.record(ctx, by, tenant, userID, kind, "completed", now, "")
	return Request{ID: id, Kind: kind, SubjectID: userID, RequestedBy: by.ID, RequestedAt: now, DueAt: now.AddDate(0, 1, 0),
		Status: "completed", CompletedAt: now}, err
}

// Report answers the right of access (kind access) or of portability (kind export): the same document,
// recorded as the kind asked.
func (r *Rights) Report(ctx context.Context, by core.Actor, tenant core.TenantID, userID, kind string) (Report, error) {
	rep, err := r.report(ctx, by, tenant, userID, kind)
	return rep, r.log.Record(ctx, tenant, by, "privacy."+kind, "user", rep.Subject, err)
}

func (r *Rights) report(ctx context.Context, by core.Actor, tenant core.TenantID, userID, kind string) (Report, error) {
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return Report{}, err
	}
	recs, err := r.subjects.Export(ctx, tenant, userID)
	if err != nil {
		return Report{}, err
	}
	now := r.now().UTC()
	rep := Report{Schema: ReportSchema, GeneratedAt: now, Tenant: tenant, Subject: userID,
		Controller: "the customer (tenant) is the controller; ConnectHub processes this data on its behalf",
		StoredIn:   r.storedIn, Categories: []ReportCategory{}}
	byTable := map[string]int{}
	for _, rec := range recs {
		i, ok := byTable[rec.Table]
		if !ok {
			spec, _ := r.subjects.cat.Lookup(rec.Table)
			i = len(rep.Categories)
			byTable[rec.Table] = i
			rep.Categories = append(rep.Categories, ReportCategory{Table: rec.Table, Category: Categories[rec.Table],
				Retention: retentionText[spec.Retention]})
		}
		rep.Categories[i].Records = append(rep.Categories[i].Records, ReportRecord{Key: rec.Key, Fields: rec.Fields})
	}
	slices.SortFunc(rep.Categories, func(a, b ReportCategory) int { return cmp.Compare(a.Table, b.Table) })
	if _, err := r.record(ctx, by, tenant, userID, kind, "completed", now, ""); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// Erase answers the right to erasure: the person leaves every module, and the receipt says what went,
// per table, and which tables keep rows without the person. The request's own record keeps only a
// pseudonym of the person (Data.Erase ran over it before it was written).
func (r *Rights) Erase(ctx context.Context, by core.Actor, tenant core.TenantID, userID string) (Receipt, error) {
	rec, err := r.erase(ctx, by, tenant, userID)
	// The trail names the request, never the person it erased (the erasure just took them out of it).
	if strings.EqualFold(by.ID, userID) {
		by.ID = ""
	}
	return rec, r.log.Record(ctx, tenant, by, "privacy.erase", "privacyrequest", rec.RequestID, err)
}

func (r *Rights) erase(ctx context.Context, by core.Actor, tenant core.TenantID, userID string) (Receipt, error) {
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return Receipt{}, err
	}
	counts, err := r.subjects.Erase(ctx, tenant, userID)
	now := r.now().UTC()
	if err != nil {
		// A retry has only the remainder to do; the failed attempt is on record.
		_, _ = r.record(ctx, by, tenant, Pseudonym(), KindErasure, "failed", now, "")
		return Receipt{}, err
	}
	rec := Receipt{Tenant: tenant, ErasedAt: now, Tables: counts, Pseudonymised: []string{}}
	for t, c := range counts {
		if c.Pseudonymised > 0 {
			rec.Pseudonymised = append(rec.Pseudonymised, t)
		}
	}
	slices.Sort(rec.Pseudonymised)
	rec.RequestID = tables.NewestFirstID(now)
	body, _ := json.Marshal(rec)
	subject := Pseudonym()
	if by.ID == userID { // a person erasing themselves is not named by their own request either
		by.ID = subject
	}
	_, err = r.recordAs(ctx, rec.RequestID, by, tenant, subject, KindErasure, "completed", now, string(body))
	return rec, err
}

// Requests lists the tenant's requests, newest first.
func (r *Rights) Requests(ctx context.Context, tenant core.TenantID) ([]Request, error) {
	var out []Request
	for q, err := range r.requests.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list privacy requests: %w", err)
		}
		out = append(out, q)
	}
	return out, nil
}

func (r *Rights) record(ctx context.Context, by core.Actor, tenant core.TenantID, subject, kind, status string, at time.Time, receipt string) (string, error) {
	return r.recordAs(ctx, tables.NewestFirstID(at), by, tenant, subject, kind, status, at, receipt)
}

func (r *Rights) recordAs(ctx context.Context, id string, by core.Actor, tenant core.TenantID, subject, kind, status string, at time.Time, receipt string) (string, error) {
	q := Request{ID: id, Kind: kind, SubjectID: subject, RequestedBy: by.ID, RequestedAt: at,
		DueAt: at.AddDate(0, 1, 0), Status: status, CompletedAt: at, Receipt: receipt}
	if _, err := r.requests.Insert(ctx, tenant, q); err != nil {
		return "", fmt.Errorf("record privacy request: %w", err)
	}
	return q.ID, nil
}

// Object answers a tenant's objection to all processing. As the presence product's privacy policy
// says, objecting is equivalent to terminating the service: end cancels the tenant (processing stops at
// once, the retention clock of a cancellation starts), and the request is recorded.
func (r *Rights) Object(ctx context.Context, by core.Actor, tenant core.TenantID, end func(context.Context) error) (Request, error) {
	now := r.now().UTC()
	err := end(ctx)
	status := "completed"
	if err != nil {
		status = "failed"
	}
	id, rerr := r.record(ctx, by, tenant, "tenant", KindObjection, status, now, "")
	q := Request{ID: id, Kind: KindObjection, SubjectID: "tenant", RequestedBy: by.ID, RequestedAt: now,
		DueAt: now.AddDate(0, 1, 0), Status: status, CompletedAt: now}
	if err == nil {
		err = rerr
	}
	return q, r.log.Record(ctx, tenant, by, "privacy."+KindObjection, "tenant", "", err)
}

// Rectify answers the right to rectification (Art. 16): fix corrects what is ConnectHub's to correct
// and refreshes what was copied from Microsoft 365 (corrected there), and the request is recorded.
func (r *Rights) Rectify(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, fix func(context.Context, string) error) (Request, error) {
	q, err := r.rectify(ctx, by, tenant, userID, fix)
	return q, r.log.Record(ctx, tenant, by, "privacy."+KindRectify, "user", q.SubjectID, err)
}

func (r *Rights) rectify(ctx context.Context, by core.Actor, tenant core.TenantID, userID string, fix func(context.Context, string) error) (Request, error) {
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return Request{}, err
	}
	if err := fix(ctx, userID); err != nil {
		return Request{SubjectID: userID}, err
	}
	now := r.now().UTC()
	id, err := r.record(ctx, by, tenant, userID, KindRectify, "completed", now, "")
	return Request{ID: id, Kind: KindRectify, SubjectID: userID, RequestedBy: by.ID, RequestedAt: now, DueAt: now.AddDate(0, 1, 0),
		Status: "completed", CompletedAt: now}, err
}

// RequestClock is where data subject requests stand, for Health: requests not completed a month after
// they were made (GDPR Art. 12(3)), and — in one tenant's view — the users whose processing is
// restricted now.
type RequestClock struct {
	Overdue    int  `json:"privacyRequestsOverdue"`
	Restricted *int `json:"restrictedUsers,omitempty"`
}

// RestrictedCounter counts a tenant's restricted users (registry.Registry).
type RestrictedCounter interface {
	RestrictedUsers(ctx context.Context, tenant core.TenantID) (int, error)
}

// Clock answers Health. With a tenant it reads that tenant's partitions only; without one (staff) it
// counts overdue requests across tenants, a query of the small privacyrequests table, and leaves the
// restricted users out: counting them for every tenant would read every tenant's users.
func (r *Rights) Clock(ctx context.Context, tenant core.TenantID, users RestrictedCounter) (RequestClock, error) {
	var c RequestClock
	open := tables.Filter("Status ne ? and DueAt lt ?", "completed", r.now().UTC())
	opts := &tables.ListOptions{Select: []string{"Status", "DueAt"}}
	var overdue iter.Seq2[Request, error]
	if tenant != "" {
		overdue = tables.Pages(func(o *tables.ListOptions) (tables.Page[Request], error) {
			return r.requests.Query(ctx, tenant, tables.Filter("PartitionKey eq ? and ", tenant)+open, o)
		}, opts)
	} else {
		overdue = tables.Pages(func(o *tables.ListOptions) (tables.Page[Request], error) {
			return tables.OperatorQuery(ctx, r.requests, open, o)
		}, opts)
	}
	for _, err := range overdue {
		if err != nil {
			return c, fmt.Errorf("list overdue privacy requests: %w", err)
		}
		c.Overdue++
	}
	if tenant != "" && users != nil {
		n, err := users.RestrictedUsers(ctx, tenant)
		if err != nil {
			return c, fmt.Errorf("count restricted users: %w", err)
		}
		c.Restricted = &n
	}
	return c, nil
}
