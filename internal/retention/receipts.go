package retention

import (
	"context"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableDeletionReceipts is the operator's proof of deletion; it holds no personal data and outlives
// the tenant's other rows.
const TableDeletionReceipts = "deletionreceipts"

// Tables are the tables retention owns.
var Tables = []tables.Spec{
	tables.SpecOf[DeletionReceipt](TableDeletionReceipts, "retention", tables.RetainReceipts),
}

// OpenReceipts returns the receipts table of db.
func OpenReceipts(db *tables.DB) *ReceiptLog {
	return &ReceiptLog{t: tables.New[DeletionReceipt](db, TableDeletionReceipts), now: db.Now}
}

// DeletionReceipt proves that a tenant's data was deleted (operator table deletionreceipts). It holds
// counts and times, no personal data, and is kept after the tenant's other rows are gone.
type DeletionReceipt struct {
	Tenant        core.TenantID `table:"key"` // the PartitionKey
	ID            string        `table:"key"` // newest-first, set by ReceiptLog.Append
	Reason        string        // cancelled, suspended, request, consent-expired
	Categories    string        // what this receipt covers: tenant (all but license and billing data), licenses, billing
	EndedAt       time.Time     // cancellation or suspension: the start of the license and billing clocks
	RequestedAt   time.Time
	CompletedAt   time.Time
	KeyDestroyed  bool   // the tenant data key was deleted (and purged where allowed)
	RowsDeleted   int    // total over all tables
	Tables        string // per-table counts, "users=12,presence=12"
	Secrets       int    // Key Vault secrets of the tenant deleted
	Subscriptions int    // Graph subscriptions deleted at Graph (best effort; their rows count in Tables)
}

func (r *DeletionReceipt) RowKey() (string, error)       { return tables.SimpleKey("receipt id", r.ID) }
func (r *DeletionReceipt) SetRowKey(rk string) error     { r.ID = rk; return nil }
func (r *DeletionReceipt) SetPartition(id core.TenantID) { r.Tenant = id }

// ReceiptLog is the operator table of deletion receipts.
type ReceiptLog struct {
	t   *tables.Table[DeletionReceipt, *DeletionReceipt]
	now func() time.Time
}

// Append records a receipt (its ID is assigned from CompletedAt, or now).
func (r *ReceiptLog) Append(ctx context.Context, tenant core.TenantID, rec DeletionReceipt) (DeletionReceipt, error) {
	at := rec.CompletedAt
	if at.IsZero() {
		at = r.now()
	}
	rec.ID = tables.NewestFirstID(at)
	_, err := r.t.Insert(ctx, tenant, rec)
	return rec, err
}

// List pages over one tenant's receipts, newest first.
func (r *ReceiptLog) List(ctx context.Context, tenant core.TenantID, opts *tables.ListOptions) (tables.Page[DeletionReceipt], error) {
	return r.t.List(ctx, tenant, opts)
}

// OperatorList pages over every receipt of every tenant (operator path: deletion reporting).
func (r *ReceiptLog) OperatorList(ctx context.Context, opts *tables.ListOptions) (tables.Page[DeletionReceipt], error) {
	return tables.OperatorQuery(ctx, r.t, "", opts)
}
