package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
)

// NewClientState makes the random clientState for a new Graph subscription and the hash to store.
// Only the hash is kept: a leaked table does not let anyone forge notifications.
func NewClientState() (state string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("generate client state: %w", err)
	}
	state = base64.RawURLEncoding.EncodeToString(b[:]) // 43 chars; Graph allows 128
	return state, HashClientState(state), nil
}

// HashClientState is the SHA-256 of a clientState, as stored in Subscription.ClientStateHash.
func HashClientState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// ClientStateMatches reports whether given hashes to stored, in constant time. An empty or malformed
// stored hash never matches.
func ClientStateMatches(stored []byte, given string) bool {
	if len(stored) != sha256.Size {
		return false
	}
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(stored, h[:]) == 1
}

// LookupOptions size the subscription cache.
type LookupOptions struct {
	TTL         time.Duration // how long a found subscription is served from memory (default 5 min)
	NegativeTTL time.Duration // how long "no such subscription" is remembered (default 10 s)
	MaxEntries  int           // default 10,000
}

// SubscriptionLookup serves the webhook's subscription reads from memory most of the time. Writes and
// deletes through this Registry invalidate entries at once; writes by other instances are seen after TTL
// at the latest, which bounds how long a deleted subscription's notifications can still be accepted.
// Misses are cached briefly too, so a flood of made-up subscription ids does not reach storage.
type SubscriptionLookup struct {
	table *tables.Table[Subscription, *Subscription]
	cache *ttlcache.Cache[string, lookupResult]
	neg   time.Duration
	// gen counts invalidations, so a read that raced a write does not put the old row back in the cache.
	gen atomic.Uint64
}

type lookupResult struct {
	sub   Subscription
	found bool
}

// NewSubscriptionLookup returns a cached reader of s.Subscriptions.
func (s *Registry) NewSubscriptionLookup(o LookupOptions) *SubscriptionLookup {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 10 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	l := &SubscriptionLookup{
		table: s.Subscriptions,
		cache: ttlcache.New[string, lookupResult](o.TTL, o.MaxEntries, s.db.Now),
		neg:   o.NegativeTTL,
	}
	s.Subscriptions.Watch(func(t core.TenantID, rk string) {
		l.gen.Add(1)
		l.cache.Delete(lookupKey(t, rk))
	})
	return l
}

func lookupKey(t core.TenantID, id string) string { return string(t) + "/" + id }

// Get returns the tenant's subscription id, or tables.ErrNotFound.
func (l *SubscriptionLookup) Get(ctx context.Context, tenant core.TenantID, id string) (Subscription, error) {
	if err := tables.CheckKey(tenant, id); err != nil {
		return Subscription{}, err
	}
	k := lookupKey(tenant, id)
	if r, ok := l.cache.Get(k); ok {
		if !r.found {
			return Subscription{}, fmt.Errorf("get subscription: %w", tables.ErrNotFound)
		}
		sub := r.sub
		sub.ClientStateHash = slices.Clone(sub.ClientStateHash)
		return sub, nil
	}
	gen := l.gen.Load()
	sub, err := l.table.Get(ctx, tenant, id)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		if l.gen.Load() == gen {
			l.cache.SetTTL(k, lookupResult{}, l.neg)
		}
		return Subscription{}, err
	case err != nil:
		return Subscription{}, err
	}
	if l.gen.Load() == gen {
		cached := sub
		cached.ClientStateHash = slices.Clone(sub.ClientStateHash)
		l.cache.Set(k, lookupResult{sub: cached, found: true})
	}
	return sub, nil
}
