package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// Export lists the audit entries that name the person, as actor or as target.
func (a *Log) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	var out []tables.Record
	for e, err := range a.t.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		if e.ActorID == userID || e.TargetID == userID {
			rec, err := a.t.Record(e)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Erase keeps the audit trail whole — what was done, when, with which outcome — but replaces the
// person's id in it with a random pseudonym, the same for every entry of this erasure, so the entries
// still read as one (erased) principal's and no longer lead to the person. It is the only change an
// entry ever sees.
func (a *Log) Erase(ctx context.Context, tenant core.TenantID, userID string) (int, error) {
	var keys []string
	for e, err := range a.t.All(ctx, tenant, &tables.ListOptions{Select: []string{"ActorID", "TargetID"}}) {
		if err != nil {
			return 0, fmt.Errorf("list audit: %w", err)
		}
		if e.ActorID == userID || e.TargetID == userID {
			keys = append(keys, e.ID)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	pseudonym := "erased-" + hex.EncodeToString(r[:])
	n := 0
	for _, id := range keys {
		_, err := a.t.Update(ctx, tenant, id, func(e *Entry) error {
			if e.ActorID == userID {
				e.ActorID = pseudonym
			}
			if e.TargetID == userID {
				e.TargetID = pseudonym
			}
			return nil
		})
		if err != nil && !errors.Is(err, tables.ErrNotFound) {
			return n, fmt.Errorf("pseudonymise audit entry: %w", err)
		}
		n++
	}
	return n, nil
}

// Answers names the tables a person's export and erasure cover here.
func (a *Log) Answers() []string { return []string{TableAudit} }
