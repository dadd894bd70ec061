package registry_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/retention"
)

// The retention job deletes in bounded steps and reports a census: both must count exactly, stay in the
// tenant's partition and say truthfully whether rows remain.
func TestDeleteTenantRowsUpToAndCount(t *testing.T) {
	t.Parallel()
	c := &requestCounter{}
	env := storetest.NewEnv(t, storetest.Options{ClientOptions: countingOptions(c)})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	seed := func(tenant core.TenantID, n int) {
		var es []presence.LedgerEntry
		for i := range n {
			es = append(es, presence.LedgerEntry{Resource: "r", RecordID: fmt.Sprintf("rec-%04d", i), LastModified: time.Now()})
		}
		if err := presence.OpenData(s.DB()).Ledger.InsertBatch(ctx, tenant, es); err != nil {
			t.Fatal(err)
		}
	}
	seed(a, 250)
	seed(b, 7)

	counts, err := tables.Declared().Partitions(s.DB()).Count(ctx, a, presence.TableLedger, registry.TableUsers)
	if err != nil || counts[presence.TableLedger] != 250 || counts[registry.TableUsers] != 0 {
		t.Fatalf("CountTenantRows = %v, %v; want ledger 250, users 0", counts, err)
	}

	type step struct {
		n    int
		more bool
	}
	var got []step
	before := c.batches.Load()
	for range 10 {
		n, more, err := tables.Declared().Partitions(s.DB()).DeleteUpTo(ctx, a, presence.TableLedger, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, step{n, more})
		if !more {
			break
		}
	}
	want := []step{{100, true}, {100, true}, {50, false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if batches := c.batches.Load() - before; batches != 3 {
		t.Errorf("batches = %d, want 3 (one per step of at most 100)", batches)
	}
	if n, more, err := tables.Declared().Partitions(s.DB()).DeleteUpTo(ctx, a, presence.TableLedger, 100); n != 0 || more || err != nil {
		t.Errorf("on an empty partition = %d, %v, %v; want 0, false, nil", n, more, err)
	}
	if counts, _ := tables.Declared().Partitions(s.DB()).Count(ctx, b, presence.TableLedger); counts[presence.TableLedger] != 7 {
		t.Errorf("other tenant's rows = %d, want 7 untouched", counts[presence.TableLedger])
	}
	if _, _, err := tables.Declared().Partitions(s.DB()).DeleteUpTo(ctx, a, retention.TableDeletionReceipts, 10); err == nil {
		t.Error("deleting receipts through the per-tenant path succeeded; receipts outlive the tenant")
	}
	if _, err := tables.Declared().Partitions(s.DB()).Count(ctx, core.TenantID("not-a-guid")); err == nil {
		t.Error("count with an invalid tenant id succeeded")
	}
}

func TestTenantRegistryUpdateOrCreate(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	s := env.Store
	id := storetest.NewTenantID(t)
	var sawExists []bool
	for _, n := range []int{5, 7} {
		got, err := s.Tenants.UpdateOrCreate(ctx, id, func(t *registry.Tenant, exists bool) error {
			sawExists = append(sawExists, exists)
			t.State, t.PurchasedLicenses = registry.TenantPending, n
			return nil
		})
		if err != nil || got.ID != id || got.PurchasedLicenses != n {
			t.Fatalf("UpdateOrCreate = %+v, %v", got, err)
		}
	}
	if fmt.Sprint(sawExists) != "[false true]" {
		t.Errorf("exists = %v, want [false true]", sawExists)
	}
	other := storetest.NewTenantID(t)
	if _, err := s.Tenants.UpdateOrCreate(ctx, id, func(t *registry.Tenant, _ bool) error { t.ID = other; return nil }); err == nil {
		t.Error("UpdateOrCreate that changed the id succeeded")
	}
	if _, err := s.Tenants.Get(ctx, other); err == nil {
		t.Error("a row appeared under the other id")
	}
}

func TestLedgerResourcesSkipScan(t *testing.T) {
	t.Parallel()
	c := &requestCounter{}
	env := storetest.NewEnv(t, storetest.Options{ClientOptions: countingOptions(c)})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	var es []presence.LedgerEntry
	for _, r := range []string{"contacts", "aaaaaaaa-0000-4000-8000-000000000001", "zeta", "contacts2"} {
		for i := range 50 {
			es = append(es, presence.LedgerEntry{Resource: r, RecordID: fmt.Sprintf("%s-%d", r, i), LastModified: time.Now()})
		}
	}
	if err := presence.OpenData(s.DB()).Ledger.UpsertBatch(ctx, a, es[:100]); err != nil {
		t.Fatal(err)
	}
	if err := presence.OpenData(s.DB()).Ledger.UpsertBatch(ctx, a, es[100:]); err != nil {
		t.Fatal(err)
	}
	if err := presence.OpenData(s.DB()).Ledger.UpsertBatch(ctx, b, []presence.LedgerEntry{{Resource: "other", RecordID: "x"}}); err != nil {
		t.Fatal(err)
	}
	before := c.total.Load()
	got, err := presence.OpenData(s.DB()).Ledger.Resources(ctx, a)
	want := []string{"aaaaaaaa-0000-4000-8000-000000000001", "contacts2", "contacts", "zeta"} // key order: "2" < "|"
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Resources = %v, %v; want %v", got, err, want)
	}
	if n := c.total.Load() - before; n > int64(len(want))+2 {
		t.Errorf("Resources made %d requests for 200 rows in %d resources; want about one per resource", n, len(want))
	}
	if got, err := presence.OpenData(s.DB()).Ledger.Resources(ctx, storetest.NewTenantID(t)); err != nil || len(got) != 0 {
		t.Errorf("Resources of an empty ledger = %v, %v", got, err)
	}
}
