package registry_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

func TestClientStateMatches(t *testing.T) {
	t.Parallel()
	state, hash, err := registry.NewClientState()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := registry.NewClientState()
	if state == other || len(state) < 40 || len(state) > 128 {
		t.Errorf("client states %q %q: want random, 40..128 chars", state, other)
	}
	tests := []struct {
		name   string
		stored []byte
		given  string
		want   bool
	}{
		{"match", hash, state, true},
		{"other state", hash, other, false},
		{"empty given", hash, "", false},
		{"prefix of state", hash, state[:10], false},
		{"empty stored", nil, "", false},
		{"truncated stored", hash[:16], state, false},
		{"stored is the plain state", []byte(state), state, false},
	}
	for _, tc := range tests {
		if got := registry.ClientStateMatches(tc.stored, tc.given); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSubscriptionLookupCache(t *testing.T) {
	t.Parallel()
	counter := &requestCounter{}
	clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	env := storetest.NewEnv(t, storetest.Options{ClientOptions: countingOptions(counter), Now: clock.Now})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	lookup := s.NewSubscriptionLookup(registry.LookupOptions{TTL: time.Minute, NegativeTTL: 5 * time.Second})
	state, hash, _ := registry.NewClientState()
	sub := registry.Subscription{ID: "sub-1", Kind: registry.KindPresence, Resource: "/communications/presences", ChangeType: "updated",
		ExpiresAt: clock.Now().Add(time.Hour), ClientStateHash: hash, ServiceUserID: "su"}
	if _, err := s.Subscriptions.Insert(ctx, a, sub); err != nil {
		t.Fatal(err)
	}

	reads := func(f func()) int64 {
		before := counter.total.Load()
		f()
		return counter.total.Load() - before
	}
	get := func(tenant core.TenantID, id string) (registry.Subscription, error) {
		return lookup.Get(ctx, tenant, id)
	}

	if n := reads(func() {
		for range 5 {
			got, err := get(a, "sub-1")
			if err != nil || !registry.ClientStateMatches(got.ClientStateHash, state) {
				t.Fatalf("lookup = %+v, %v", got, err)
			}
		}
	}); n != 1 {
		t.Errorf("5 lookups made %d storage calls, want 1", n)
	}
	// Same id under another tenant is another entry and not found.
	if _, err := get(b, "sub-1"); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("b's lookup of a's subscription err = %v, want tables.ErrNotFound", err)
	}
	// Misses are remembered briefly: a flood of unknown ids costs one call each per NegativeTTL.
	if n := reads(func() {
		for range 5 {
			if _, err := get(a, "made-up"); !errors.Is(err, tables.ErrNotFound) {
				t.Fatalf("made-up err = %v", err)
			}
		}
	}); n != 1 {
		t.Errorf("5 misses made %d storage calls, want 1", n)
	}
	// A write through the store invalidates at once, including a remembered miss.
	if _, err := s.Subscriptions.Insert(ctx, a, registry.Subscription{ID: "made-up", Kind: registry.KindBooking}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(a, "made-up"); err != nil || got.Kind != registry.KindBooking {
		t.Errorf("after insert = %+v, %v", got, err)
	}
	if _, err := s.Subscriptions.Update(ctx, a, "sub-1", func(s *registry.Subscription) error {
		s.LastLifecycleEvent = "reauthorizationRequired"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(a, "sub-1"); got.LastLifecycleEvent != "reauthorizationRequired" {
		t.Errorf("after update: stale %+v", got)
	}
	if err := s.Subscriptions.Delete(ctx, a, "sub-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(a, "sub-1"); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("after delete err = %v, want tables.ErrNotFound", err)
	}
	// Entries expire: a write by another instance (bypassing this cache) is seen after the TTL.
	other, err := registry.NewFromConnectionString(storetest.ConnectionString(t), tables.Options{TablePrefix: env.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(a, "made-up"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Subscriptions.Update(ctx, a, "made-up", func(s *registry.Subscription) error { s.ChangeType = "created"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(a, "made-up"); got.ChangeType != "" {
		t.Errorf("within TTL got %q, want the cached value", got.ChangeType)
	}
	clock.Add(61 * time.Second)
	if got, _ := get(a, "made-up"); got.ChangeType != "created" {
		t.Errorf("after TTL got %q, want created", got.ChangeType)
	}
}

// Misses are remembered for 30 s by default and kept apart from found subscriptions: made-up ids cost
// one read each per 30 s, and however many there are, they never push a real subscription out.
func TestSubscriptionLookupMisses(t *testing.T) {
	t.Parallel()
	counter := &requestCounter{}
	clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	env := storetest.NewEnv(t, storetest.Options{ClientOptions: countingOptions(counter), Now: clock.Now})
	s := env.Store
	a := env.NewTenant(t)
	if _, err := s.Subscriptions.Insert(ctx, a, registry.Subscription{ID: "real", Kind: registry.KindPresence}); err != nil {
		t.Fatal(err)
	}
	reads := func(f func()) int64 {
		before := counter.total.Load()
		f()
		return counter.total.Load() - before
	}

	t.Run("default negative TTL", func(t *testing.T) {
		lookup := s.NewSubscriptionLookup(registry.LookupOptions{})
		miss := func() {
			if _, err := lookup.Get(ctx, a, "made-up"); !errors.Is(err, tables.ErrNotFound) {
				t.Fatalf("made-up err = %v", err)
			}
		}
		if n := reads(miss); n != 1 {
			t.Fatalf("first miss made %d storage calls, want 1", n)
		}
		if _, found, cached := lookup.Cached(a, "made-up"); !cached || found {
			t.Errorf("Cached after a miss = found %v, cached %v; want a remembered miss", found, cached)
		}
		clock.Add(29 * time.Second)
		if n := reads(miss); n != 0 {
			t.Errorf("miss after 29 s made %d storage calls, want 0", n)
		}
		clock.Add(2 * time.Second)
		if _, _, cached := lookup.Cached(a, "made-up"); cached {
			t.Error("miss still remembered after 31 s")
		}
		if n := reads(miss); n != 1 {
			t.Errorf("miss after 31 s made %d storage calls, want 1", n)
		}
	})

	t.Run("misses never evict a subscription", func(t *testing.T) {
		lookup := s.NewSubscriptionLookup(registry.LookupOptions{MaxEntries: 2, MaxMisses: 2})
		if _, _, cached := lookup.Cached(a, "real"); cached {
			t.Fatal("Cached before any read says cached")
		}
		if _, err := lookup.Get(ctx, a, "real"); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if _, err := lookup.Get(ctx, a, fmt.Sprintf("made-up-%d", i)); !errors.Is(err, tables.ErrNotFound) {
				t.Fatalf("made-up err = %v", err)
			}
		}
		if n := reads(func() {
			if sub, found, cached := lookup.Cached(a, "real"); !cached || !found || sub.ID != "real" {
				t.Errorf("Cached(real) = %+v, found %v, cached %v", sub, found, cached)
			}
			if _, err := lookup.Get(ctx, a, "real"); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("after 20 made-up ids the real subscription cost %d storage calls, want 0", n)
		}
	})

	t.Run("a key storage would refuse needs no read", func(t *testing.T) {
		lookup := s.NewSubscriptionLookup(registry.LookupOptions{})
		if _, found, cached := lookup.Cached(a, "a'b"); found || !cached {
			t.Errorf("Cached(hostile key) = found %v, cached %v; want not found without a read", found, cached)
		}
	})
}
