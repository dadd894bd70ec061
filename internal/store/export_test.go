package store

import (
	"context"
	"encoding/json"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
)

// Hooks for the external tests: they reach below the typed API only to prove what it cannot do by
// itself (what is at rest, what a raw filter returns).

var OdataFilter = odataFilter

// RowKeyOf returns the row key an entity is stored under.
func RowKeyOf[E any, P entityPtr[E]](e E) (string, error) { return P(&e).rowKey() }

// QueryForTest runs a raw filter through the typed query path (partition check included).
func (t *Table[E, P]) QueryForTest(ctx context.Context, tenant core.TenantID, filter string) (Page[E], error) {
	return t.query(ctx, tenant, filter, nil)
}

// RawForTest reads a row's stored properties without decoding or opening sealed fields.
func (t *Table[E, P]) RawForTest(ctx context.Context, tenant core.TenantID, rk string) (map[string]any, error) {
	resp, err := t.client.GetEntity(ctx, string(tenant), rk, nil)
	if err != nil {
		return nil, classify(err)
	}
	var m map[string]any
	err = json.Unmarshal(resp.Value, &m)
	return m, err
}

// PutRawForTest writes an entity as given (for rows another version or tool might have written).
func (t *Table[E, P]) PutRawForTest(ctx context.Context, props map[string]any) error {
	b, err := json.Marshal(props)
	if err != nil {
		return err
	}
	_, err = t.client.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	return err
}

// TenantTable exposes the registry's table for the generic isolation tests.
func (r *TenantRegistry) TenantTable() *Table[Tenant, *Tenant] { return r.t }

// AuditTable and ReceiptTable likewise.
func (a *AuditLog) AuditTable() *Table[AuditEntry, *AuditEntry]               { return a.t }
func (r *ReceiptLog) ReceiptTable() *Table[DeletionReceipt, *DeletionReceipt] { return r.t }
