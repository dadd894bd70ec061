package ingest

import (
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// Stats counts what the intake did, per tenant. Only tenants with a known subscription get their own
// entry; everything else is counted under "unknown", so forged tenant ids cannot grow the map.
type Stats struct {
	mu       sync.Mutex
	tenants  map[string]*TenantStats
	failures int64
	overRead int64
	latency  Latency
}

// TenantStats are one tenant's counters.
type TenantStats struct {
	Received int64            `json:"received"`
	Enqueued int64            `json:"enqueued"`
	Rejected map[string]int64 `json:"rejected,omitempty"`
}

// Latency summarises hand-off durations.
type Latency struct {
	Count   int64   `json:"count"`
	TotalMS float64 `json:"totalMs"`
	MaxMS   float64 `json:"maxMs"`
}

// Snapshot is what Health shows.
type Snapshot struct {
	Tenants         map[string]TenantStats `json:"tenants"`
	HandoffFailures int64                  `json:"handoffFailures"`
	Handoff         Latency                `json:"handoff"`
	// LookupsOverBudget counts POSTs answered 503 because they needed more than MaxLookups
	// subscription reads: forged traffic, or a cold instance meeting a POST of many subscriptions.
	LookupsOverBudget int64 `json:"lookupsOverBudget"`
}

// NewStats returns empty counters.
func NewStats() *Stats { return &Stats{tenants: map[string]*TenantStats{}} }

const unknownTenant = "unknown"

func (s *Stats) tenant(t string) *TenantStats {
	if t == "" {
		t = unknownTenant
	}
	ts, ok := s.tenants[t]
	if !ok {
		ts = &TenantStats{Rejected: map[string]int64{}}
		s.tenants[t] = ts
	}
	return ts
}

func (s *Stats) receivedN(t string, n int) {
	s.mu.Lock()
	s.tenant(t).Received += int64(n)
	s.mu.Unlock()
}

// enqueuedAll counts the queued messages of a POST under one lock, by their tenant property.
func (s *Stats) enqueuedAll(batches ...[]queue.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts *TenantStats
	last := ""
	for _, msgs := range batches {
		for _, m := range msgs {
			if t := m.ApplicationProperties[queue.PropTenant]; ts == nil || t != last {
				ts, last = s.tenant(t), t
			}
			ts.Enqueued++
		}
	}
}
func (s *Stats) handoffFailed()    { s.mu.Lock(); s.failures++; s.mu.Unlock() }
func (s *Stats) overLookupBudget() { s.mu.Lock(); s.overRead++; s.mu.Unlock() }

func (s *Stats) reject(t, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tenant(t)
	if t == "" {
		ts.Received++ // unknown items are received too, just not attributable
	}
	ts.Rejected[reason]++
}

func (s *Stats) handoff(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency.Count++
	s.latency.TotalMS += ms
	if ms > s.latency.MaxMS {
		s.latency.MaxMS = ms
	}
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Snapshot{Tenants: make(map[string]TenantStats, len(s.tenants)), HandoffFailures: s.failures, Handoff: s.latency,
		LookupsOverBudget: s.overRead}
	for k, v := range s.tenants {
		cp := *v
		cp.Rejected = make(map[string]int64, len(v.Rejected))
		for r, n := range v.Rejected {
			cp.Rejected[r] = n
		}
		out.Tenants[k] = cp
	}
	return out
}
