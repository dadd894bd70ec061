package presence

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the presence counters shown by Health: outcomes of this instance and, per tenant, what the
// last subscription run found (ids and counts only, never names).
type Stats struct {
	pushed, unchanged, stale, skipped, inactive, failed, retried, gaveUp, confirmed, echoes atomic.Int64

	mu      sync.Mutex
	tenants map[string]TenantStatus
	pbx     map[string]int64 // PBX → Teams outcomes and webhook drops, by name
}

// AddPBX counts one outcome of the PBX → Teams direction (a webhook drop reason, a worker outcome).
// Names are constants of package presence/pbx, never input.
func (s *Stats) AddPBX(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pbx == nil {
		s.pbx = map[string]int64{}
	}
	s.pbx[name]++
}

// PBX returns the PBX → Teams counters.
func (s *Stats) PBX() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.pbx)
}

// TenantStatus is one tenant's presence sync health as the last subscription run saw it.
type TenantStatus struct {
	Licensed            int `json:"licensed"`
	ServiceUsers        int `json:"serviceUsers"`
	NeedsReconsent      int `json:"needsReconsent"`
	Subscriptions       int `json:"subscriptions"`
	ServiceUsersNeeded  int `json:"serviceUsersNeeded"`
	ServiceUsersMissing int `json:"serviceUsersMissing"`
	Unassigned          int `json:"unassignedUsers"`
	Errors              int `json:"errors"`
	// AsOf is when the licensed users were counted (Manager.Status: live for small tenants, the last
	// reconcile for large ones).
	AsOf time.Time `json:"asOf"`
	// PBX is the PBX → Teams direction's subscription at the PBX (Manager.Status only; nil when none).
	PBX *PBXStatus `json:"pbxToTeams,omitempty"`
}

// PBXStatus is what an admin sees of the tenant's webhook subscription at the PBX.
type PBXStatus struct {
	Status     string    `json:"status"`              // the PBX's status at the last check (Active, Blacklisted)
	Extensions int       `json:"extensions"`          // extensions covered
	ExpiresAt  time.Time `json:"expiresAt"`           // renewed well before
	LastError  string    `json:"lastError,omitempty"` // our code for the last lifecycle failure, e.g. handshake_refused
	Recreated  int       `json:"recreated"`           // times it was made anew after the PBX blacklisted it
}

// NewStats returns empty counters.
func NewStats() *Stats { return &Stats{tenants: map[string]TenantStatus{}} }

func (s *Stats) count(o Outcome) {
	switch o {
	case Pushed:
		s.pushed.Add(1)
	case Unchanged:
		s.unchanged.Add(1)
	case Stale:
		s.stale.Add(1)
	case Skipped:
		s.skipped.Add(1)
	case Inactive:
		s.inactive.Add(1)
	case Failed:
		s.failed.Add(1)
	case Echo:
		s.echoes.Add(1)
	}
}

func (s *Stats) setTenant(tenant string, st TenantStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants[tenant] = st
}

// dropTenant forgets a tenant that is no longer active: it needs no admin's attention.
func (s *Stats) dropTenant(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tenants, tenant)
}

// Snapshot is the Health view.
type Snapshot struct {
	Pushed    int64 `json:"pushed"`
	Unchanged int64 `json:"unchanged"`
	Stale     int64 `json:"stale"`
	Skipped   int64 `json:"skipped"`
	// Inactive counts items of suspended or cancelled tenants the worker dropped (completed, not pushed).
	Inactive int64 `json:"inactive"`
	Failed   int64 `json:"failed"`
	Retried  int64 `json:"retried"`
	GaveUp   int64 `json:"gaveUp"`
	// Confirmed counts notifications checked against a presence read from Graph before any push
	// (no sequence number proved them newer, or they waited too long).
	Confirmed int64 `json:"confirmed"`
	// Echoes counts Teams notifications of the presence our own PBX-driven session set: not pushed back.
	Echoes int64 `json:"echoes"`
	// PBXToTeams counts the PBX → Teams direction: webhook drops by reason, worker outcomes.
	PBXToTeams map[string]int64 `json:"pbxToTeams,omitempty"`
	// Attention lists only the tenants that need an admin: service users to reconnect or to add.
	Attention map[string]TenantStatus `json:"attention,omitempty"`
}

// Snapshot returns the counters and the tenants needing attention.
func (s *Stats) Snapshot() Snapshot {
	out := Snapshot{Pushed: s.pushed.Load(), Unchanged: s.unchanged.Load(), Stale: s.stale.Load(),
		Skipped: s.skipped.Load(), Inactive: s.inactive.Load(), Failed: s.failed.Load(), Retried: s.retried.Load(), GaveUp: s.gaveUp.Load(),
		Confirmed: s.confirmed.Load(), Echoes: s.echoes.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pbx) > 0 {
		out.PBXToTeams = maps.Clone(s.pbx)
	}
	att := maps.Clone(s.tenants)
	maps.DeleteFunc(att, func(_ string, t TenantStatus) bool { return t.NeedsReconsent == 0 && t.ServiceUsersMissing == 0 })
	if len(att) > 0 {
		out.Attention = att
	}
	return out
}

// Tenant returns the last status recorded for a tenant.
func (s *Stats) Tenant(tenant string) (TenantStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenant]
	return t, ok
}
