// Package ttlcache is a small, bounded, concurrency-safe in-memory cache whose entries expire after a
// fixed time. The store (subscription lookup), the secrets store and the tenant key ring use it to keep
// hot-path reads off the network without holding stale values for long.
package ttlcache

import (
	"sync"
	"time"
)

// Cache maps K to V for at most TTL per entry and holds at most Max entries.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[K]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a cache; ttl and max must be positive. now may be nil (time.Now); tests pass a fake clock.
func New[K comparable, V any](ttl time.Duration, max int, now func() time.Time) *Cache[K, V] {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if max <= 0 {
		max = 1024
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{ttl: ttl, max: max, now: now, entries: make(map[K]entry[V])}
}

// Get returns the value for k if present and not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, k)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Set stores v under k with the cache's TTL.
func (c *Cache[K, V]) Set(k K, v V) { c.SetTTL(k, v, c.ttl) }

// SetTTL stores v under k for ttl (capped at the cache's TTL), e.g. a shorter life for negative results.
func (c *Cache[K, V]) SetTTL(k K, v V, ttl time.Duration) {
	if ttl > c.ttl || ttl <= 0 {
		ttl = c.ttl
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = entry[V]{v: v, expires: now.Add(ttl)}
}

// evict drops expired entries and, if the cache is still full, arbitrary ones (map order is random):
// cheaper than LRU bookkeeping and good enough for caches whose misses cost one storage call.
func (c *Cache[K, V]) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, k)
	}
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// Len reports the number of entries held, expired ones included until they are touched.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
