package crm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Sweep deletes the tenant's sync errors first recorded more than SyncErrorRetention ago: a name kept
// for a record that never synced is forgotten after the period (the record is tried again when it is
// next edited). The retention job calls it for live tenants.
func (d *Data) Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error) {
	if d.SyncErrorRetention <= 0 {
		return nil, errors.New("crm sweep: no sync error retention configured")
	}
	if err := tables.CheckTenant(t.ID); err != nil {
		return nil, err
	}
	n, err := d.SyncErrors.DeleteWhere(ctx, t.ID, tables.Filter("PartitionKey eq ? and FirstFailedAt lt ?", t.ID, now.Add(-d.SyncErrorRetention)))
	if err != nil {
		err = fmt.Errorf("prune crm sync errors: %w", err)
	}
	return map[string]int{TableSyncErrors: n}, err
}

// UsersWithData lists the users the sync holds rows about (a mapping or a sync state), so the
// retention job finds those who no longer hold a license.
func (d *Data) UsersWithData(ctx context.Context, tenant core.TenantID) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for m, err := range d.Users.All(ctx, tenant, &tables.ListOptions{Select: []string{"SetAt"}}) {
		if err != nil {
			return nil, fmt.Errorf("list crm users: %w", err)
		}
		add(m.UserID)
	}
	for s, err := range d.SyncState.All(ctx, tenant, &tables.ListOptions{Select: []string{"LastRunAt"}}) {
		if err != nil {
			return nil, fmt.Errorf("list crm sync state: %w", err)
		}
		add(s.UserID)
	}
	return out, nil
}

// Unlicensed is the answer for a user who lost the license: their mapping and everything the sync holds
// of them go (ids they left as an admin on others' mappings stay: that is not their data being
// erased, only their use of the product ending).
type Unlicensed struct{ *Data }

// Erase deletes the user's mapping, ledger, sync errors and state.
func (u Unlicensed) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n := tables.Erasure{TableUsers: {}}
	switch err := u.Users.Delete(ctx, tenant, userID); {
	case err == nil:
		n.Add(TableUsers, 1, 0)
	case !errors.Is(err, tables.ErrNotFound):
		return n, fmt.Errorf("delete crm mapping: %w", err)
	}
	return n, u.eraseUser(ctx, tenant, userID, n)
}
