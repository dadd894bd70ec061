package retention

import (
	"time"

	"github.com/connecthub/connecthub/internal/platform/registry"
)

// Policy holds the retention periods that decide when a tenant's data is due for deletion, and so how
// long it can still be reactivated. The retention job uses the same policy.
type Policy struct {
	CancelledRetention time.Duration // 24 h
	SuspendedRetention time.Duration // 7 days
	LicenseRetention   time.Duration // 30 days
	BillingRetention   time.Duration // 90 days
}

// Deletion reasons, as written on deletion receipts.
const (
	ReasonCancelled      = "cancelled"
	ReasonSuspended      = "suspended"
	ReasonConsentExpired = "consent-expired"
)

// DeletionDue says when all of t's data (but license and billing data) is due for deletion, why, and
// when its contract ended (the start of the license and billing clocks). ok is false for a tenant that
// is not on its way out (active, or pending with a valid consent link).
func (p Policy) DeletionDue(t registry.Tenant) (due time.Time, reason string, ended time.Time, ok bool) {
	switch t.State {
	case registry.TenantCancelled, registry.TenantSuspended, registry.TenantDeleting:
	case registry.TenantPending:
		if t.ConsentExpiresAt.IsZero() {
			return time.Time{}, "", time.Time{}, false
		}
		return t.ConsentExpiresAt, ReasonConsentExpired, t.ConsentExpiresAt, true
	default:
		return time.Time{}, "", time.Time{}, false
	}
	// A tenant suspended and later cancelled is due at whichever clock runs out first.
	if !t.SuspendedAt.IsZero() {
		due, reason, ended = t.SuspendedAt.Add(p.SuspendedRetention), ReasonSuspended, t.SuspendedAt
	}
	if !t.CancelledAt.IsZero() {
		if d := t.CancelledAt.Add(p.CancelledRetention); due.IsZero() || d.Before(due) {
			due, reason = d, ReasonCancelled
		}
		if ended.IsZero() || t.CancelledAt.Before(ended) {
			ended = t.CancelledAt
		}
	}
	if due.IsZero() {
		// A deleting tenant that somehow lost its times: due now, so the claimed deletion finishes.
		return t.DeletionStartedAt, ReasonCancelled, t.DeletionStartedAt, t.State == registry.TenantDeleting
	}
	return due, reason, ended, true
}
