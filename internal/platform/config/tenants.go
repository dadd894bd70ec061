package config

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Tenant lifecycle, licensing and retention keys.
const (
	KeyRetentionCancelled      = "CONNECTHUB_RETENTION_CANCELLED"
	KeyRetentionSuspended      = "CONNECTHUB_RETENTION_SUSPENDED"
	KeyRetentionLicenseData    = "CONNECTHUB_RETENTION_LICENSE_DATA"
	KeyRetentionBillingData    = "CONNECTHUB_RETENTION_BILLING_DATA"
	KeyRetentionSyncErrors     = "CONNECTHUB_RETENTION_SYNC_ERRORS"
	KeyBookingWindowDays       = "CONNECTHUB_BOOKING_WINDOW_DAYS"
	KeyRetentionMaxRows        = "CONNECTHUB_RETENTION_MAX_ROWS_PER_RUN"
	KeyTenantJobsRunBudget     = "CONNECTHUB_TENANT_JOBS_RUN_BUDGET"
	KeyAdminConsentRedirectURI = "CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI"
	KeyAdminConsentTTL         = "CONNECTHUB_ADMIN_CONSENT_TTL"
	KeyAdminConsentWait        = "CONNECTHUB_ADMIN_CONSENT_WAIT"
)

// Tenants is the tenant lifecycle, licensing and retention configuration.
type Tenants struct {
	// Grace periods after which all of a tenant's data (but license and billing data) is deleted.
	CancelledRetention time.Duration
	SuspendedRetention time.Duration
	// How long license and billing data outlive the cancellation (or suspension).
	LicenseRetention time.Duration
	BillingRetention time.Duration
	// How long the names of records that failed to sync are kept.
	SyncErrorRetention time.Duration
	// BookingWindowDays is the default and the limit of each tenant's booking cache window.
	BookingWindowDays int
	// RetentionMaxRows bounds the rows one EnforceRetention run deletes.
	RetentionMaxRows int
	// JobRunBudget bounds the time of one EnforceRetention or ReconcileLicenses run; it stays below the
	// invocation timeout so a run checkpoints and stops before it is killed.
	JobRunBudget time.Duration
	// AdminConsentRedirectURI is where Microsoft sends the admin back (the AdminConsentCallback URL, as
	// registered on the app). Empty disables onboarding.
	AdminConsentRedirectURI string
	// AdminConsentTTL is how long an onboarding link stays valid; an unconsented tenant is deleted after.
	AdminConsentTTL time.Duration
	// AdminConsentWait is how long the consent callback keeps asking Microsoft while it does not (yet)
	// confirm the consent: a service principal created moments ago takes seconds to replicate.
	AdminConsentWait time.Duration
}

// Limit is a configurable period with its allowed range. The ceilings of the retention periods are the
// product's promises (design.md); the floors keep a grace period for reactivation, and license and
// billing data long enough to settle the last bill.
type Limit struct {
	Key               string
	Default, Min, Max time.Duration
	Purpose           string
}

// RetentionLimits are the periods and their legal floors and ceilings, enforced at start.
var RetentionLimits = []Limit{
	{Key: KeyRetentionCancelled, Default: 24 * time.Hour, Min: time.Hour, Max: 24 * time.Hour,
		Purpose: "delete a cancelled tenant's data this long after cancellation (promise: 24 h)"},
	{Key: KeyRetentionSuspended, Default: 7 * 24 * time.Hour, Min: 24 * time.Hour, Max: 7 * 24 * time.Hour,
		Purpose: "delete a suspended tenant's data this long after suspension (promise: 7 days)"},
	{Key: KeyRetentionLicenseData, Default: 30 * 24 * time.Hour, Min: 7 * 24 * time.Hour, Max: 30 * 24 * time.Hour,
		Purpose: "delete license data this long after cancellation (promise: 30 days)"},
	{Key: KeyRetentionBillingData, Default: 90 * 24 * time.Hour, Min: 30 * 24 * time.Hour, Max: 90 * 24 * time.Hour,
		Purpose: "delete billing data this long after cancellation (promise: 90 days)"},
	{Key: KeyRetentionSyncErrors, Default: 7 * 24 * time.Hour, Min: 24 * time.Hour, Max: 7 * 24 * time.Hour,
		Purpose: "delete the names of records that failed to sync this long after the first failure (promise: temporarily)"},
	{Key: KeyAdminConsentTTL, Default: 72 * time.Hour, Min: 15 * time.Minute, Max: 7 * 24 * time.Hour,
		Purpose: "how long an onboarding (admin consent) link stays valid"},
}

// Bounds of the other tenant settings.
const (
	DefaultBookingWindowDays = 21
	MaxBookingWindowDays     = 56 // "a few weeks": data minimisation
	DefaultRetentionMaxRows  = 50_000
	DefaultAdminConsentWait  = 15 * time.Second
	maxAdminConsentWait      = 30 * time.Second // the admin's browser waits, within the invocation timeout
	minRetentionMaxRows      = 100
	maxRetentionMaxRows      = 1_000_000
	minJobRunBudget          = 5 * time.Second
	// jobBudgetMargin is left between a run's budget and the invocation timeout for the final checkpoint
	// and lease release.
	jobBudgetMargin = 5 * time.Second
)

// tenantKeys are the keys Tenants reads (listed in Keys).
var tenantKeys = func() []Key {
	keys := make([]Key, 0, len(RetentionLimits)+4)
	for _, l := range RetentionLimits {
		keys = append(keys, Key{l.Key, false, l.Purpose + fmt.Sprintf(" (Go duration, %s..%s)", l.Min, l.Max)})
	}
	return append(keys,
		Key{KeyBookingWindowDays, false, fmt.Sprintf("days of bookings cached ahead, default and limit per tenant (1..%d)", MaxBookingWindowDays)},
		Key{KeyRetentionMaxRows, false, fmt.Sprintf("rows one EnforceRetention run deletes at most (%d..%d)", minRetentionMaxRows, maxRetentionMaxRows)},
		Key{KeyTenantJobsRunBudget, false, "time one EnforceRetention or ReconcileLicenses run may take; below the invocation timeout"},
		Key{KeyAdminConsentRedirectURI, false, "URL of AdminConsentCallback as registered on the app; empty disables onboarding"},
		Key{KeyAdminConsentWait, false, fmt.Sprintf("how long the consent callback keeps asking Microsoft to confirm a consent given moments ago (Go duration, 0..%s; 0 asks once)", maxAdminConsentWait)},
	)
}()

func loadTenants(get func(string) string, c *Config) []error {
	var errs []error
	periods := map[string]time.Duration{}
	for _, l := range RetentionLimits {
		d, err := durationOr(get(l.Key), l.Default)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: want a Go duration, got %q", l.Key, get(l.Key)))
		case d < l.Min || d > l.Max:
			errs = append(errs, fmt.Errorf("%s: %s is outside the allowed %s..%s (%s)", l.Key, d, l.Min, l.Max, l.Purpose))
		}
		periods[l.Key] = d
	}
	t := Tenants{
		CancelledRetention: periods[KeyRetentionCancelled],
		SuspendedRetention: periods[KeyRetentionSuspended],
		LicenseRetention:   periods[KeyRetentionLicenseData],
		BillingRetention:   periods[KeyRetentionBillingData],
		SyncErrorRetention: periods[KeyRetentionSyncErrors],
		AdminConsentTTL:    periods[KeyAdminConsentTTL],
	}

	var err error
	if t.BookingWindowDays, err = intOr(get(KeyBookingWindowDays), DefaultBookingWindowDays); err != nil ||
		t.BookingWindowDays < 1 || t.BookingWindowDays > MaxBookingWindowDays {
		errs = append(errs, fmt.Errorf("%s: want whole days in 1..%d, got %q", KeyBookingWindowDays, MaxBookingWindowDays, get(KeyBookingWindowDays)))
	}
	if t.RetentionMaxRows, err = intOr(get(KeyRetentionMaxRows), DefaultRetentionMaxRows); err != nil ||
		t.RetentionMaxRows < minRetentionMaxRows || t.RetentionMaxRows > maxRetentionMaxRows {
		errs = append(errs, fmt.Errorf("%s: want %d..%d, got %q", KeyRetentionMaxRows, minRetentionMaxRows, maxRetentionMaxRows, get(KeyRetentionMaxRows)))
	}

	// Unset, the budget is two thirds of the invocation timeout (40 s of the default 60 s).
	maxBudget := c.InvocationTimeout - jobBudgetMargin
	if t.JobRunBudget, err = durationOr(get(KeyTenantJobsRunBudget), c.InvocationTimeout*2/3); err != nil ||
		t.JobRunBudget < minJobRunBudget || t.JobRunBudget > maxBudget {
		errs = append(errs, fmt.Errorf("%s: want a Go duration in %s..%s (%s below %s), got %q",
			KeyTenantJobsRunBudget, minJobRunBudget, maxBudget, jobBudgetMargin, KeyInvocationTimeout, get(KeyTenantJobsRunBudget)))
	}

	if t.AdminConsentWait, err = durationOr(get(KeyAdminConsentWait), DefaultAdminConsentWait); err != nil ||
		t.AdminConsentWait < 0 || t.AdminConsentWait > maxAdminConsentWait {
		errs = append(errs, fmt.Errorf("%s: want a Go duration in 0..%s, got %q", KeyAdminConsentWait, maxAdminConsentWait, get(KeyAdminConsentWait)))
	}

	t.AdminConsentRedirectURI = get(KeyAdminConsentRedirectURI)
	if err := checkRedirectURI(t.AdminConsentRedirectURI); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", KeyAdminConsentRedirectURI, err))
	}
	c.Tenants = t
	return errs
}

// checkRedirectURI accepts "" (onboarding off), https URLs, and http only on a loopback host, as Entra
// ID itself does for redirect URIs.
func checkRedirectURI(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("not an absolute URL without query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("http is allowed for localhost only; use https")
	}
	return fmt.Errorf("scheme must be https")
}
