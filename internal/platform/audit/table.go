package audit

import (
	"context"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableAudit is the tenant's audit trail of administrative operations.
const TableAudit = "audit"

// Tables are the tables the audit trail owns.
var Tables = []tables.Spec{tables.SpecOf[Entry](TableAudit, "platform/audit", tables.RetainTenantData)}

// OpenLog returns the audit table of db.
func OpenLog(db *tables.DB) *Log { return &Log{t: tables.New[Entry](db, TableAudit), now: db.Now} }

// AuditTable exposes the typed table (the generic isolation tests).
func (a *Log) AuditTable() *tables.Table[Entry, *Entry] { return a.t }

// Entry is one administrative operation (table audit, append-only).
type Entry struct {
	ID           string `table:"key"` // newest-first time order plus randomness, set by AuditLog.Append
	At           time.Time
	ActorID      string `table:"personal"` // object id of the admin or app, or "system"
	ActorKind    string // user, app, system
	Action       string // e.g. "license.assign"
	TargetType   string // e.g. "user"
	TargetID     string `table:"personal"` // id of the object acted on
	Outcome      string // success, denied, failed
	InvocationID string // Functions invocation id, to join with logs
}

func (a *Entry) RowKey() (string, error)   { return tables.SimpleKey("audit id", a.ID) }
func (a *Entry) SetRowKey(rk string) error { a.ID = rk; return nil }

// Log is the audit table, the append-only audit trail: entries are added and listed, never changed; only the
// retention path (by table name, through the catalogue) removes them, with the rest of the tenant's data.
type Log struct {
	t   *tables.Table[Entry, *Entry]
	now func() time.Time
}

// Append adds e (its ID is assigned; At defaults to now) and returns the stored entry.
func (a *Log) Append(ctx context.Context, tenant core.TenantID, e Entry) (Entry, error) {
	if e.At.IsZero() {
		e.At = a.now().UTC()
	}
	e.ID = tables.NewestFirstID(e.At)
	_, err := a.t.Insert(ctx, tenant, e)
	return e, err
}

// List pages over the tenant's audit trail, newest first.
func (a *Log) List(ctx context.Context, tenant core.TenantID, opts *tables.ListOptions) (tables.Page[Entry], error) {
	return a.t.List(ctx, tenant, opts)
}
