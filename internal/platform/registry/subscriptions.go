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
	TTL        time.Duration // how long a found subscription is served from memory (default 5 min)
	MaxEntries int           // found subscriptions held (default 10,000)
	// NegativeTTL is how long "no such subscription" is remembered (default 30 s), so that made-up ids
	// repeated in POST after POST cost one storage read each per NegativeTTL, not one per POST. It
	// stays short because it is also how long another instance may drop the notifications of a
	// subscription created after it cached the miss (writes through this Registry clear the entry at
	// once): only a notification that arrives between Graph creating the subscription and our insert
	// can cause that, and the resync after creation covers what changed before it.
	NegativeTTL time.Duration
	// MaxMisses bounds the remembered misses (default 20,000). They are kept apart from the found
	// subscriptions so that a flood of made-up ids evicts other made-up ids, never a real subscription.
	MaxMisses int
}

// SubscriptionLookup serves the webhook's subscription reads from memory most of the time. Writes and
// deletes through this Registry invalidate entries at once; writes by other instances are seen after TTL
// at the latest, which bounds how long a deleted subscription's notifications can still be accepted.
// Misses are cached briefly too (NegativeTTL), so made-up subscription ids do not reach storage on
// every POST.
type SubscriptionLookup struct {
	table  *tables.Table[Subscription, *Subscription]
	found  *ttlcache.Cache[string, Subscription]
	misses *ttlcache.Cache[string, struct{}]
	// gen counts invalidations, so a read that raced a write does not put the old row back in the cache.
	gen atomic.Uint64
}

// NewSubscriptionLookup returns a cached reader of s.Subscriptions.
func (s *Registry) NewSubscriptionLookup(o LookupOptions) *SubscriptionLookup {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 30 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.MaxMisses <= 0 {
		o.MaxMisses = 20_000
	}
	l := &SubscriptionLookup{
		table:  s.Subscriptions,
		found:  ttlcache.New[string, Subscription](o.TTL, o.MaxEntries, s.db.Now),
		misses: ttlcache.New[string, struct{}](o.NegativeTTL, o.MaxMisses, s.db.Now),
	}
	s.Subscriptions.Watch(func(t core.TenantID, rk string) {
		l.gen.Add(1)
		k := lookupKey(t, rk)
		l.found.Delete(k)
		l.misses.Delete(k)
	})
	return l
}

func lookupKey(t core.TenantID, id string) string { return string(t) + "/" + id }

// Cached answers from memory alone: cached is false when Get would have to read storage, so a caller
// can bound the reads one request may cause.
func (l *SubscriptionLookup) Cached(tenant core.TenantID, id string) (sub Subscription, found, cached bool) {
	if tables.CheckKey(tenant, id) != nil {
		return Subscription{}, false, true // Get refuses such a key without a read
	}
	k := lookupKey(tenant, id)
	if sub, ok := l.found.Get(k); ok {
		sub.ClientStateHash = slices.Clone(sub.ClientStateHash)
		return sub, true, true
	}
	if _, ok := l.misses.Get(k); ok {
		return Subscription{}, false, true
	}
	return Subscription{}, false, false
}

// Get returns the tenant's subscription id, or tables.ErrNotFound.
func (l *SubscriptionLookup) Get(ctx context.Context, tenant core.TenantID, id string) (Subscription, error) {
	if err := tables.CheckKey(tenant, id); err != nil {
		return Subscription{}, err
	}
	if sub, found, cached := l.Cached(tenant, id); cached {
		if !found {
			return Subscription{}, fmt.Errorf("get subscription: %w", tables.ErrNotFound)
		}
		return sub, nil
	}
	k := lookupKey(tenant, id)
	gen := l.gen.Load()
	sub, err := l.table.Get(ctx, tenant, id)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		if l.gen.Load() == gen {
			l.misses.Set(k, struct{}{})
		}
		return Subscription{}, err
	case err != nil:
		return Subscription{}, err
	}
	if l.gen.Load() == gen {
		cached := sub
		cached.ClientStateHash = slices.Clone(sub.ClientStateHash)
		l.found.Set(k, cached)
	}
	return sub, nil
}
