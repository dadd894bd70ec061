package registry_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/tables"

	"github.com/connecthub/connecthub/internal/app"
)

// row helpers on untyped rows (each a *E behind tables.Entity).

func fillRow(api tables.Untyped, seed string, tenant core.TenantID) tables.Entity {
	e := api.New()
	fillValue(reflect.ValueOf(e).Elem(), seed, tenant)
	return e
}

func rowKey(t *testing.T, e tables.Entity) string {
	t.Helper()
	k, err := e.RowKey()
	if err != nil {
		t.Fatalf("row key: %v", err)
	}
	return k
}

// rowWithKeyOf returns other's content under from's key: key fields are found by trying which fields
// change the row key.
func rowWithKeyOf(t *testing.T, api tables.Untyped, other, from tables.Entity) tables.Entity {
	out := api.New()
	ov, fv := reflect.ValueOf(out).Elem(), reflect.ValueOf(from).Elem()
	ov.Set(reflect.ValueOf(other).Elem())
	for i := range ov.NumField() {
		probe := api.New()
		pv := reflect.ValueOf(probe).Elem()
		pv.Set(fv)
		pv.Field(i).Set(ov.Field(i))
		if rowKey(t, probe) != rowKey(t, from) {
			ov.Field(i).Set(fv.Field(i))
		}
	}
	return out
}

func rowDiff(a, b tables.Entity) string {
	return diff(reflect.ValueOf(a).Elem().Interface(), reflect.ValueOf(b).Elem().Interface())
}

// crudAndIsolation runs CRUD on one table for tenants a and b holding rows under the same keys, and
// checks that nothing done through tenant a reads, lists, changes or deletes b's rows.
func crudAndIsolation(t *testing.T, api tables.Untyped, a, b core.TenantID) {
	ra := fillRow(api, "a", a)
	rb := rowWithKeyOf(t, api, fillRow(api, "b", b), ra)
	rk := rowKey(t, ra)
	if rowKey(t, rb) != rk {
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
		want   tables.Entity
	}{{"a", a, ra}, {"b", b, rb}} {
		got, err := api.Get(ctx, tc.tenant, rk)
		if err != nil {
			t.Fatalf("get %s: %v", tc.name, err)
		}
		if d := rowDiff(got, tc.want); d != "" {
			t.Errorf("get %s: %s", tc.name, d)
		}
		page, err := api.List(ctx, tc.tenant, nil)
		if err != nil {
			t.Fatalf("list %s: %v", tc.name, err)
		}
		if len(page.Items) != 1 || rowDiff(page.Items[0], tc.want) != "" || page.Next != "" {
			t.Errorf("list %s = %d items, next %q; want exactly its own row", tc.name, len(page.Items), page.Next)
		}
	}

	// Update through a changes a only.
	ra2 := rowWithKeyOf(t, api, fillRow(api, "a2", a), ra)
	set := func(src tables.Entity) func(tables.Entity) error {
		return func(e tables.Entity) error { reflect.ValueOf(e).Elem().Set(reflect.ValueOf(src).Elem()); return nil }
	}
	got, err := api.Update(ctx, a, rk, set(ra2))
	if err != nil {
		t.Fatalf("update a: %v", err)
	}
	if d := rowDiff(got, ra2); d != "" {
		t.Errorf("update result: %s", d)
	}
	if got, _ := api.Get(ctx, b, rk); rowDiff(got, rb) != "" {
		t.Errorf("b's row changed by a's update: %s", rowDiff(got, rb))
	}
	// Changing the key inside Update is refused.
	other := fillRow(api, "other-key", a)
	if rowKey(t, other) != rk {
		if _, err := api.Update(ctx, a, rk, set(other)); err == nil {
			t.Error("update that changed the row key succeeded")
		}
	}

	// Conditional replace: a stale ETag conflicts.
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
	onlyB := fillRow(api, "only-b", b)
	kb := rowKey(t, onlyB)
	if kb != rk { // tenants has one fixed row key per partition: there b's row is rb
		if _, err := api.Insert(ctx, b, onlyB); err != nil {
			t.Fatalf("insert only-b: %v", err)
		}
		if _, err := api.Get(ctx, a, kb); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("a reads b's row: err = %v, want tables.ErrNotFound", err)
		}
		if _, err := api.Update(ctx, a, kb, func(tables.Entity) error { return nil }); !errors.Is(err, tables.ErrNotFound) {
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
		if got, err := api.Get(ctx, b, kb); err != nil || rowDiff(got, onlyB) != "" {
			t.Errorf("b's row after a's attempts: %v %s", err, rowDiff(got, onlyB))
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
	if err := api.UpsertBatch(ctx, a, []tables.Entity{ra}); err != nil {
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

// Every table of every module, walked from the application's catalogue: a module's new table is
// covered without being named here.
func TestEveryTableCRUDAndTenantIsolation(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	a, b := env.NewTenant(t), env.NewTenant(t)
	for _, spec := range app.Catalogue() {
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			crudAndIsolation(t, spec.Open(env.DB), a, b)
		})
	}
}
