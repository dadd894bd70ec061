// Package privacy is the data subject rights and the breach incidents of a tenant: a person's report
// and export, erasure with its receipt, the tracked requests (Rights), and the incidents table.
package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Incident is a security incident as it affects one tenant (table incidents); NotifyBy is the 72-hour
// deadline for telling the tenant.
type Incident struct {
	ID         string `table:"key"`
	Category   string // e.g. "unauthorised-access"
	Severity   string // low, medium, high
	Status     string // open, notified, resolved
	Summary    string `table:"sealed"` // free text may name people despite the rule not to
	DetectedAt time.Time
	NotifyBy   time.Time
	NotifiedAt time.Time
	ResolvedAt time.Time
}

func (i *Incident) RowKey() (string, error)   { return tables.SimpleKey("incident id", i.ID) }
func (i *Incident) SetRowKey(rk string) error { i.ID = rk; return nil }

// Export lists the incidents whose summary names the person, and the person's privacy requests (about
// them, or made by them as an admin). Summaries refer to people by object id, never by name (the
// operator's rule, the reason the summary is sealed anyway), so the id finds them.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	inc, err := d.Incidents.ExportWhere(ctx, tenant, func(i *Incident) bool { return strings.Contains(i.Summary, userID) })
	if err != nil {
		return nil, err
	}
	req, err := d.Requests.ExportWhere(ctx, tenant, func(r *Request) bool { return r.SubjectID == userID || r.RequestedBy == userID })
	return append(inc, req...), err
}

// Erase keeps the incidents — the record of a breach must be kept (GDPR Art. 33(5)) — and takes the
// person's id out of their summaries. It keeps the privacy requests too, as the proof that they were
// answered (Art. 5(2)), with the person's id replaced by one pseudonym per erasure.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	out, err := d.Incidents.EraseWhere(ctx, tenant, nil, func(i *Incident) bool {
		if !strings.Contains(i.Summary, userID) {
			return false
		}
		i.Summary = strings.ReplaceAll(i.Summary, userID, "[erased]")
		return true
	})
	if err != nil {
		return out, err
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
