package registry_test

import (
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

func TestTenantStateLookup(t *testing.T) {
	t.Parallel()
	counter := &requestCounter{}
	clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	env := storetest.NewEnv(t, storetest.Options{ClientOptions: countingOptions(counter), Now: clock.Now})
	s := env.Store
	a, unknown := env.NewTenant(t), env.NewTenant(t)
	if err := s.Tenants.Create(ctx, registry.Tenant{ID: a, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	lookup := s.NewTenantStateLookup(registry.TenantStateOptions{TTL: 10 * time.Second})
	reads := func(f func()) int64 {
		before := counter.total.Load()
		f()
		return counter.total.Load() - before
	}
	active := func(tenant core.TenantID, notBefore time.Time) bool {
		t.Helper()
		ok, err := lookup.Active(ctx, tenant, notBefore)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	setState := func(st *registry.Registry, state registry.TenantState) {
		t.Helper()
		if _, err := st.Tenants.Update(ctx, a, func(t *registry.Tenant) error { t.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
	}

	// The hot path: one read per tenant per TTL, however many items.
	if n := reads(func() {
		for range 5 {
			if !active(a, time.Time{}) {
				t.Fatal("active tenant reported inactive")
			}
		}
	}); n != 1 {
		t.Errorf("5 lookups made %d storage calls, want 1", n)
	}
	if active(unknown, time.Time{}) {
		t.Error("a tenant without a registry row is active")
	}

	// A state change through this store is seen at once.
	setState(s, registry.TenantSuspended)
	if active(a, time.Time{}) {
		t.Error("suspended through this store, still active")
	}

	// Another instance's change is seen after the TTL at the latest: that is the bound.
	other, err := registry.NewFromConnectionString(storetest.ConnectionString(t), tables.Options{TablePrefix: env.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	setState(other, registry.TenantActive)
	if active(a, time.Time{}) {
		t.Error("within the TTL the cached state is expected")
	}
	// ... unless a subscription newer than the cached answer proves the tenant active again.
	clock.Add(2 * time.Second)
	if !active(a, clock.Now()) {
		t.Error("a subscription made after the cached answer did not force a fresh read")
	}
	setState(other, registry.TenantCancelled)
	clock.Add(9 * time.Second)
	if !active(a, time.Time{}) {
		t.Error("within the TTL the cached state is expected")
	}
	clock.Add(2 * time.Second)
	if active(a, time.Time{}) {
		t.Error("after the TTL another instance's cancellation is still not seen")
	}
}
