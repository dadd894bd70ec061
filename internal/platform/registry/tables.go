package registry

import (
	"context"
	"errors"
	"iter"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TenantRegistry is the tenants table: one row per tenant. Listing across tenants is an operator path.
type TenantRegistry struct {
	t *tables.Table[Tenant, *Tenant]
}

// Get reads the tenant's registry row.
func (r *TenantRegistry) Get(ctx context.Context, tenant core.TenantID) (Tenant, error) {
	return r.t.Get(ctx, tenant, tenantRowKey)
}

// Create registers a tenant (t.ID); tables.ErrExists if it is registered already.
func (r *TenantRegistry) Create(ctx context.Context, t Tenant) error {
	_, err := r.t.Insert(ctx, t.ID, t)
	return err
}

// Update changes the tenant's row with optimistic concurrency (see Table.Update).
func (r *TenantRegistry) Update(ctx context.Context, tenant core.TenantID, fn func(*Tenant) error) (Tenant, error) {
	return r.t.Update(ctx, tenant, tenantRowKey, func(t *Tenant) error {
		if err := fn(t); err != nil {
			return err
		}
		if t.ID != tenant {
			return errors.New("update tenant: the id cannot change")
		}
		return nil
	})
}

// UpdateOrCreate is Update that also creates an absent row (exists=false, ID set): onboarding.
func (r *TenantRegistry) UpdateOrCreate(ctx context.Context, tenant core.TenantID, fn func(t *Tenant, exists bool) error) (Tenant, error) {
	return r.t.UpdateOrCreate(ctx, tenant, tenantRowKey, func(t *Tenant, exists bool) error {
		if !exists {
			t.ID = tenant
		}
		if err := fn(t, exists); err != nil {
			return err
		}
		if t.ID != tenant {
			return errors.New("update tenant: the id cannot change")
		}
		return nil
	})
}

// Delete removes the tenant's registry row.
func (r *TenantRegistry) Delete(ctx context.Context, tenant core.TenantID) error {
	return r.t.Delete(ctx, tenant, tenantRowKey)
}

// OperatorList pages over every tenant (operator path: retention, renewal and licensing jobs).
func (r *TenantRegistry) OperatorList(ctx context.Context, opts *tables.ListOptions) (tables.Page[Tenant], error) {
	return r.operatorQuery(ctx, tables.Filter("RowKey eq ?", tenantRowKey), opts)
}

// OperatorListByState pages over the tenants in one state (operator path).
func (r *TenantRegistry) OperatorListByState(ctx context.Context, state TenantState, opts *tables.ListOptions) (tables.Page[Tenant], error) {
	return r.operatorQuery(ctx, tables.Filter("RowKey eq ? and State eq ?", tenantRowKey, string(state)), opts)
}

// OperatorAll iterates over every tenant (operator path).
func (r *TenantRegistry) OperatorAll(ctx context.Context) iter.Seq2[Tenant, error] {
	return tables.Pages(func(o *tables.ListOptions) (tables.Page[Tenant], error) { return r.OperatorList(ctx, o) }, nil)
}

func (r *TenantRegistry) operatorQuery(ctx context.Context, filter string, opts *tables.ListOptions) (tables.Page[Tenant], error) {
	return tables.OperatorQuery(ctx, r.t, filter, opts)
}
