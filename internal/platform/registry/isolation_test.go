package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/retention"
	"github.com/connecthub/connecthub/internal/tenants"
)

// tableAPI is the generic table surface; *registry.Table[E, *E] implements it.
type tableAPI[E any] interface {
	Name() string
	Get(ctx context.Context, tenant core.TenantID, rk string) (E, error)
	GetWithETag(ctx context.Context, tenant core.TenantID, rk string) (E, tables.ETag, error)
	Insert(ctx context.Context, tenant core.TenantID, e E) (tables.ETag, error)
	Upsert(ctx context.Context, tenant core.TenantID, e E) (tables.ETag, error)
	Replace(ctx context.Context, tenant core.TenantID, e E, ifMatch tables.ETag) (tables.ETag, error)
	Update(ctx context.Context, tenant core.TenantID, rk string, fn func(*E) error) (E, error)
	Delete(ctx context.Context, tenant core.TenantID, rk string) error
	List(ctx context.Context, tenant core.TenantID, opts *tables.ListOptions) (tables.Page[E], error)
	UpsertBatch(ctx context.Context, tenant core.TenantID, es []E) error
	DeleteBatch(ctx context.Context, tenant core.TenantID, rks []string) (int, error)
	DeletePartition(ctx context.Context, tenant core.TenantID) (int, error)
}

// crudAndIsolation runs CRUD on one table for tenants a and b holding rows under the same keys, and
// checks that nothing done through tenant a reads, lists, changes or deletes b's rows.
func crudAndIsolation[E any](t *testing.T, api tableAPI[E], keyFn func(E) (string, error), a, b core.TenantID) {
	key := mustKey(t, keyFn)
	ra := fill[E]("a", a)
	rb := withKeyOf(fill[E]("b", b), ra, key)
	rk := key(ra)
	if key(rb) != rk {
		t.Fatal("test setup: rows do not share a key")
	}

	// Create and read back, per tenant.
	if _, err := api.Insert(ctx, a, ra); err != nil {
		t.Fatalf("insert a: %v", err)
	}
	if _, err := api.Insert(ctx, b, rb); err != nil {
		t.Fatalf("insert b: %v", err)
	}
	if _, err := api.Insert(ctx, a, ra); !errors.Is(err, tables.ErrExists) {
		t.Errorf("second insert err = %v, want tables.ErrExists", err)
	}
	for _, tc := range []struct {
		name   string
		tenant core.TenantID
		want   E
	}{{"a", a, ra}, {"b", b, rb}} {
		got, err := api.Get(ctx, tc.tenant, rk)
		if err != nil {
			t.Fatalf("get %s: %v", tc.name, err)
		}
		if d := diff(got, tc.want); d != "" {
			t.Errorf("get %s: %s", tc.name, d)
		}
		page, err := api.List(ctx, tc.tenant, nil)
		if err != nil {
			t.Fatalf("list %s: %v", tc.name, err)
		}
		if len(page.Items) != 1 || diff(page.Items[0], tc.want) != "" || page.Next != "" {
			t.Errorf("list %s = %d items, next %q; want exactly its own row", tc.name, len(page.Items), page.Next)
		}
	}

	// Update through a changes a only.
	ra2 := withKeyOf(fill[E]("a2", a), ra, key)
	got, err := api.Update(ctx, a, rk, func(e *E) error { *e = ra2; return nil })
	if err != nil {
		t.Fatalf("update a: %v", err)
	}
	if d := diff(got, ra2); d != "" {
		t.Errorf("update result: %s", d)
	}
	if got, _ := api.Get(ctx, b, rk); diff(got, rb) != "" {
		t.Errorf("b's row changed by a's update: %s", diff(got, rb))
	}
	// Changing the key inside Update is refused.
	other := fill[E]("other-key", a)
	if key(other) != rk {
		if _, err := api.Update(ctx, a, rk, func(e *E) error { *e = other; return nil }); err == nil {
			t.Error("update that changed the row key succeeded")
		}
	}

	// Conditional replace: a stale tables.ETag conflicts.
	_, etag, err := api.GetWithETag(ctx, a, rk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Upsert(ctx, a, ra); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Replace(ctx, a, ra2, etag); !errors.Is(err, tables.ErrConflict) {
		t.Errorf("replace with stale etag err = %v, want tables.ErrConflict", err)
	}

	// A row only b has is invisible and untouchable through a.
	onlyB := fill[E]("only-b", b)
	kb := key(onlyB)
	if kb != rk { // tenants has one fixed row key per partition: there b's row is rb
		if _, err := api.Insert(ctx, b, onlyB); err != nil {
			t.Fatalf("insert only-b: %v", err)
		}
		if _, err := api.Get(ctx, a, kb); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("a reads b's row: err = %v, want tables.ErrNotFound", err)
		}
		if _, err := api.Update(ctx, a, kb, func(*E) error { return nil }); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("a updates b's row: err = %v, want tables.ErrNotFound", err)
		}
		if err := api.Delete(ctx, a, kb); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("a deletes b's row: err = %v, want tables.ErrNotFound", err)
		}
		if _, etagB, err := api.GetWithETag(ctx, b, kb); err == nil {
			if _, err := api.Replace(ctx, a, onlyB, etagB); err == nil {
				t.Error("a replaced b's row with b's etag")
			}
		}
		if n, err := api.DeleteBatch(ctx, a, []string{kb}); err != nil || n != 0 {
			t.Errorf("a batch-deletes b's row: n = %d, err = %v; want 0, nil", n, err)
		}
		if got, err := api.Get(ctx, b, kb); err != nil || diff(got, onlyB) != "" {
			t.Errorf("b's row after a's attempts: %v %s", err, diff(got, onlyB))
		}
	}

	// Delete through a removes a's row only; DeletePartition(a) leaves b whole.
	if err := api.Delete(ctx, a, rk); err != nil {
		t.Fatalf("delete a: %v", err)
	}
	if _, err := api.Get(ctx, a, rk); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("get after delete err = %v, want tables.ErrNotFound", err)
	}
	if _, err := api.Get(ctx, b, rk); err != nil {
		t.Errorf("b's row gone after a's delete: %v", err)
	}
	if err := api.UpsertBatch(ctx, a, []E{ra}); err != nil {
		t.Fatalf("upsert batch a: %v", err)
	}
	n, err := api.DeletePartition(ctx, a)
	if err != nil || n != 1 {
		t.Errorf("DeletePartition(a) = %d, %v; want 1", n, err)
	}
	wantB := 1
	if kb != rk {
		wantB = 2
	}
	if page, err := api.List(ctx, b, nil); err != nil || len(page.Items) != wantB {
		t.Errorf("b's rows after DeletePartition(a) = %d, %v; want %d", len(page.Items), err, wantB)
	}
}

func TestEveryTableCRUDAndTenantIsolation(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{registry.TableTenants, func(t *testing.T) {
			crudAndIsolation(t, s.Tenants.TenantTable(), registry.RowKeyOf[registry.Tenant], a, b)
		}},
		{registry.TableUsers, func(t *testing.T) { crudAndIsolation(t, s.Users, registry.RowKeyOf[registry.User], a, b) }},
		{presence.TablePresence, func(t *testing.T) {
			crudAndIsolation(t, presence.OpenData(s.DB()).Presence, registry.RowKeyOf[presence.Presence], a, b)
		}},
		{registry.TableSubscriptions, func(t *testing.T) {
			crudAndIsolation(t, s.Subscriptions, registry.RowKeyOf[registry.Subscription], a, b)
		}},
		{presence.TableLedger, func(t *testing.T) {
			crudAndIsolation(t, presence.OpenData(s.DB()).Ledger, registry.RowKeyOf[presence.LedgerEntry], a, b)
		}},
		{presence.TableSyncErrors, func(t *testing.T) {
			crudAndIsolation(t, presence.OpenData(s.DB()).SyncErrors, registry.RowKeyOf[presence.SyncError], a, b)
		}},
		{bookings.TableBookings, func(t *testing.T) {
			crudAndIsolation(t, bookings.OpenData(s.DB()).Bookings, registry.RowKeyOf[bookings.Booking], a, b)
		}},
		{tenants.TableLicenses, func(t *testing.T) {
			crudAndIsolation(t, tenants.OpenData(s.DB()).Licenses, registry.RowKeyOf[tenants.Assignment], a, b)
		}},
		{tenants.TableBilling, func(t *testing.T) {
			crudAndIsolation(t, tenants.OpenData(s.DB()).Billing, registry.RowKeyOf[tenants.BillingSnapshot], a, b)
		}},
		{audit.TableAudit, func(t *testing.T) {
			crudAndIsolation(t, audit.OpenLog(s.DB()).AuditTable(), registry.RowKeyOf[audit.Entry], a, b)
		}},
		{access.TableAuthorisations, func(t *testing.T) {
			crudAndIsolation(t, access.OpenData(s.DB()).Authorisations, registry.RowKeyOf[access.Authorisation], a, b)
		}},
		{privacy.TableIncidents, func(t *testing.T) {
			crudAndIsolation(t, privacy.OpenData(s.DB()).Incidents, registry.RowKeyOf[privacy.Incident], a, b)
		}},
		{jobs.TableJobs, func(t *testing.T) { crudAndIsolation(t, jobs.OpenLeases(s.DB()), registry.RowKeyOf[jobs.Job], a, b) }},
		{serviceuser.TableServiceUsers, func(t *testing.T) {
			crudAndIsolation(t, serviceuser.OpenTable(s.DB()), registry.RowKeyOf[serviceuser.ServiceUser], a, b)
		}},
		{queue.TableParked, func(t *testing.T) {
			crudAndIsolation(t, tables.New[queue.Parked](s.DB(), queue.TableParked), registry.RowKeyOf[queue.Parked], a, b)
		}},
		{retention.TableDeletionReceipts, func(t *testing.T) {
			crudAndIsolation(t, retention.OpenReceipts(s.DB()).ReceiptTable(), registry.RowKeyOf[retention.DeletionReceipt], a, b)
		}},
	}
	if declared := tables.Declared(); len(tests) != len(declared) {
		t.Fatalf("%d table cases, but the modules declare %d tables: %v", len(tests), len(declared), declared.Names())
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}
