package registry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
)

// DefaultTenantStateTTL is how long TenantStateLookup trusts a tenant's state by default: the most
// another instance keeps accepting a suspended tenant's notifications at the webhook.
const DefaultTenantStateTTL = 10 * time.Second

// TenantStateOptions size the tenant state cache.
type TenantStateOptions struct {
	TTL        time.Duration // default DefaultTenantStateTTL
	MaxEntries int           // default 10,000
}

// TenantStateLookup answers "is this tenant active?" for the webhook's hot path from memory: one storage
// read per tenant per TTL, not one per item. A state change through this Registry invalidates at once; a
// change made by another instance is seen after TTL at the latest.
type TenantStateLookup struct {
	table *tables.Table[Tenant, *Tenant]
	cache *ttlcache.Cache[core.TenantID, tenantState]
	now   func() time.Time
	gen   atomic.Uint64 // invalidations, so a read racing a write does not cache the old state
}

type tenantState struct {
	active bool
	at     time.Time // when it was read
}

// NewTenantStateLookup returns a cached reader of the tenants' states.
func (s *Registry) NewTenantStateLookup(o TenantStateOptions) *TenantStateLookup {
	if o.TTL <= 0 {
		o.TTL = DefaultTenantStateTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	l := &TenantStateLookup{table: s.Tenants.t, cache: ttlcache.New[core.TenantID, tenantState](o.TTL, o.MaxEntries, s.db.Now), now: s.db.Now}
	s.Tenants.t.Watch(func(t core.TenantID, _ string) {
		l.gen.Add(1)
		l.cache.Delete(t)
	})
	return l
}

// Active reports whether the tenant is active; an unknown tenant is not. An answer cached before
// notBefore is read again: a subscription created after we last looked proves the tenant was active
// when it was made (subscriptions are only made for active tenants), so a cached "inactive" older than
// it may be a reactivation this instance has not seen yet.
func (l *TenantStateLookup) Active(ctx context.Context, tenant core.TenantID, notBefore time.Time) (bool, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return false, err
	}
	if st, ok := l.cache.Get(tenant); ok && !st.at.Before(notBefore) {
		return st.active, nil
	}
	gen, at := l.gen.Load(), l.now()
	t, err := l.table.Get(ctx, tenant, tenantRowKey)
	switch {
	case errors.Is(err, tables.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("read tenant state: %w", err)
	}
	active := err == nil && t.State == TenantActive
	if l.gen.Load() == gen {
		l.cache.Set(tenant, tenantState{active: active, at: at})
	}
	return active, nil
}
