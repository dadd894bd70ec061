// Package privacy is the data subject rights and the breach incidents of a tenant: a person's report
// and export, erasure with its receipt, the tracked requests (Rights), and the incidents table.
package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The module's tables.
const (
	TableIncidents = "incidents"       // the security incidents as they affect one tenant
	TableRequests  = "privacyrequests" // data subject requests and their answers
)

// Tables are the tables the privacy module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Incident](TableIncidents, "privacy", tables.RetainTenantData),
	tables.SpecOf[Request](TableRequests, "privacy", tables.RetainTenantData),
}

// Data is the module's tables.
type Data struct {
	Incidents *tables.Table[Incident, *Incident]
	Requests  *tables.Table[Request, *Request]
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Incidents: tables.New[Incident](db, TableIncidents), Requests: tables.New[Request](db, TableRequests)}
}

// Incident is a personal-data breach (table incidents), in two kinds of row under one incident id:
// one per affected tenant (PartitionKey = the tenant) with what that tenant is told and when it was
// told, and one operator row (PartitionKey = core.ReservedTenant, sealed under the operator's own data
// key) holding the whole incident: every affected tenant, when each recipient was notified, and the
// timer's warnings. Only the operator row fills Tenants, Sent, Warned48At and Warned72At, so no tenant's
// row names another tenant. NotifyBy is the 72-hour deadline from discovery.
type Incident struct {
	ID             string `table:"key"` // newest first (tables.NewestFirstID of when it was recorded)
	Category       string // kind of incident; "personal-data-breach" for those the API records
	Severity       string // low, medium, high
	Status         string // open, notified (every recipient told: this tenant, or all of them), resolved
	Summary        string `table:"sealed"` // free text may name people despite the rule not to
	DetectedAt     time.Time
	NotifyBy       time.Time
	NotifiedAt     time.Time
	ResolvedAt     time.Time
	RecordedAt     time.Time
	RecordedBy     string `table:"personal"` // the security officer's object id (operator tenant)
	ResolvedBy     string `table:"personal"`
	DataCategories string // comma-separated categories of personal data affected (keys of Categories)
	Containment    string `table:"sealed"` // what was done to contain it
	Impact         string `table:"sealed"` // its impact on the service and the people concerned
	ActionPlan     string `table:"sealed"` // what will be done
	Contact        string `table:"sealed"` // whom recipients ask for more (may name a person)
	Tenants        string // operator row: the affected tenant ids, comma-separated
	Sent           string // operator row: JSON object, recipient (tenant id or "authority") → when notified
	Warned48At     time.Time
	Warned72At     time.Time
}

func (i *Incident) RowKey() (string, error)   { return tables.SimpleKey("incident id", i.ID) }
func (i *Incident) SetRowKey(rk string) error { i.ID = rk; return nil }

// texts are the incident's free-text fields: the ones that may name a person.
func (i *Incident) texts() []*string {
	return []*string{&i.Summary, &i.Containment, &i.Impact, &i.ActionPlan, &i.Contact}
}

func (i *Incident) names(userID string) bool {
	for _, t := range i.texts() {
		if strings.Contains(*t, userID) {
			return true
		}
	}
	return false
}

func (i *Incident) scrub(userID string) {
	for _, t := range i.texts() {
		*t = strings.ReplaceAll(*t, userID, "[erased]")
	}
}

// Export lists the incidents whose free texts name the person, and the person's privacy requests (about
// them, or made by them as an admin). Summaries refer to people by object id, never by name (the
// operator's rule, the reason the summary is sealed anyway), so the id finds them.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	inc, err := d.Incidents.ExportWhere(ctx, tenant, func(i *Incident) bool { return i.names(userID) })
	if err != nil {
		return nil, err
	}
	req, err := d.Requests.ExportWhere(ctx, tenant, func(r *Request) bool { return r.SubjectID == userID || r.RequestedBy == userID })
	return append(inc, req...), err
}

// Erase keeps the incidents — the record of a breach must be kept (GDPR Art. 33(5)) — and takes the
// person's id out of their free texts, in the tenant's rows and in the operator's. It keeps the privacy requests too, as the proof that they were
// answered (Art. 5(2)), with the person's id replaced by one pseudonym per erasure.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	var named []string
	out, err := d.Incidents.EraseWhere(ctx, tenant, nil, func(i *Incident) bool {
		if !i.names(userID) {
			return false
		}
		i.scrub(userID)
		named = append(named, i.ID)
		return true
	})
	if err != nil {
		return out, err
	}
	// The operator row of each such incident holds the same texts (it drafts the notifications): scrub
	// it too, or the person would stay in the record of the breach. It is not the tenant's row, so the
	// receipt does not count it.
	for _, id := range named {
		_, err := d.Incidents.Update(ctx, core.ReservedTenant, id, func(i *Incident) error { i.scrub(userID); return nil })
		if err != nil && !errors.Is(err, tables.ErrNotFound) {
			return out, fmt.Errorf("erase from the operator's incident record: %w", err)
		}
	}
	pseudonym := Pseudonym()
	req, err := d.Requests.EraseWhere(ctx, tenant, nil, func(r *Request) bool {
		changed := false
		if r.SubjectID == userID {
			r.SubjectID, changed = pseudonym, true
		}
		if r.RequestedBy == userID {
			r.RequestedBy, changed = pseudonym, true
		}
		return changed
	})
	out.Merge(req)
	return out, err
}

// Pseudonym stands for an erased person in the rows that must stay: random, so it links the rows of one
// erasure to each other and to nothing else.
func Pseudonym() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "erased-" + hex.EncodeToString(r[:])
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableIncidents, TableRequests} }
