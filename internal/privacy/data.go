// Package privacy is the data subject rights and the breach incidents of a tenant. Until the privacy
// API lands (issue 14) it holds the incidents table and its answers for a person's export and erasure.
package privacy

import (
	"context"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableIncidents holds the security incidents as they affect one tenant.
const TableIncidents = "incidents"

// Tables are the tables the privacy module owns.
var Tables = []tables.Spec{tables.SpecOf[Incident](TableIncidents, "privacy", tables.RetainTenantData)}

// Data is the module's table.
type Data struct {
	Incidents *tables.Table[Incident, *Incident]
}

// OpenData returns the module's table on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Incidents: tables.New[Incident](db, TableIncidents)}
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

// Export lists the incidents whose summary names the person. Summaries refer to people by object id,
// never by name (the operator's rule, the reason the summary is sealed anyway), so the id finds them.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return d.Incidents.ExportWhere(ctx, tenant, func(i *Incident) bool { return strings.Contains(i.Summary, userID) })
}

// Erase keeps the incidents — the record of a breach must be kept (GDPR Art. 33(5)) — and takes the
// person's id out of their summaries.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	return d.Incidents.EraseWhere(ctx, tenant, nil, func(i *Incident) bool {
		if !strings.Contains(i.Summary, userID) {
			return false
		}
		i.Summary = strings.ReplaceAll(i.Summary, userID, "[erased]")
		return true
	})
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableIncidents} }
