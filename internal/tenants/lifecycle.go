package tenants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Get returns the operator's view of a tenant.
func (s *Service) Get(ctx context.Context, tenant core.TenantID) (View, error) {
	t, err := s.getTenant(ctx, tenant)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, t)
}

// Suspend stops processing for an active tenant; its data is deleted 7 days later unless it is
// reactivated first. Suspending a suspended tenant changes nothing (operators may retry; the retry also
// retries stopping the processing).
func (s *Service) Suspend(ctx context.Context, a core.Actor, tenant core.TenantID) (View, error) {
	v, err := s.transition(ctx, a, tenant, "tenant.suspend", func(t *registry.Tenant, now time.Time) error {
		switch t.State {
		case registry.TenantActive:
			t.State, t.SuspendedAt = registry.TenantSuspended, now
		case registry.TenantSuspended:
		default:
			return apperr.New(apperr.Conflict, fmt.Sprintf("a %s tenant cannot be suspended", t.State), nil)
		}
		return nil
	})
	return s.follow(ctx, tenant, v, err)
}

// Cancel ends the contract: the tenant's data is deleted 24 h later (license data after 30 days,
// billing data after 90) unless it is reactivated first. Processing stops at once. Cancelling twice
// changes nothing.
func (s *Service) Cancel(ctx context.Context, a core.Actor, tenant core.TenantID) (View, error) {
	v, err := s.transition(ctx, a, tenant, "tenant.cancel", func(t *registry.Tenant, now time.Time) error {
		switch t.State {
		case registry.TenantActive, registry.TenantSuspended, registry.TenantPending:
			t.State, t.CancelledAt = registry.TenantCancelled, now
		case registry.TenantCancelled:
		default:
			return apperr.New(apperr.Conflict, fmt.Sprintf("a %s tenant cannot be cancelled", t.State), nil)
		}
		return nil
	})
	return s.follow(ctx, tenant, v, err)
}

// Reactivate returns a suspended or cancelled tenant to active while its deletion is not yet due. The
// retention job claims a due tenant with the same optimistic concurrency, so exactly one of the two
// wins: a reactivated tenant keeps everything, a claimed one cannot come back. Processing starts again
// (presence sync re-creates its subscriptions and resyncs).
func (s *Service) Reactivate(ctx context.Context, a core.Actor, tenant core.TenantID) (View, error) {
	v, err := s.transition(ctx, a, tenant, "tenant.reactivate", func(t *registry.Tenant, now time.Time) error {
		switch t.State {
		case registry.TenantSuspended, registry.TenantCancelled:
			due, _, _, _ := s.o.Policy.DeletionDue(*t)
			if !now.Before(due) {
				return apperr.New(apperr.Conflict, "the grace period is over: the tenant's data is due for deletion", nil)
			}
			t.State, t.SuspendedAt, t.CancelledAt, t.ReactivatedAt = registry.TenantActive, time.Time{}, time.Time{}, now
		case registry.TenantActive:
		default:
			return apperr.New(apperr.Conflict, fmt.Sprintf("a %s tenant cannot be reactivated", t.State), nil)
		}
		return nil
	})
	return s.follow(ctx, tenant, v, err)
}

// follow tells Options.Processing the state a successful action left, once it is stored and audited.
// It never fails the action: the change stands, and what the hook could not do in time (Graph down or
// slow) the capability's job does. The hook's deadline is the request's, or ProcessingTimeout if
// sooner, so the operator gets an answer well inside the invocation's time.
func (s *Service) follow(ctx context.Context, tenant core.TenantID, v View, err error) (View, error) {
	if err != nil || s.o.Processing == nil {
		return v, err
	}
	hctx, cancel := context.WithTimeout(ctx, s.o.ProcessingTimeout)
	defer cancel()
	if herr := s.o.Processing.OnStateChange(hctx, tenant, v.State); herr != nil {
		s.log.WarnContext(ctx, "tenant processing not yet in line with its state; the jobs will retry",
			"state", string(v.State), "error", herr)
	}
	return v, nil
}

// SetPurchasedLicenses changes how many licenses the tenant bought. A reduction below the number
// assigned is accepted and reported (View.OverAssigned); no assignment is taken away silently.
func (s *Service) SetPurchasedLicenses(ctx context.Context, a core.Actor, tenant core.TenantID, n int) (View, error) {
	if n < 0 || n > MaxPurchasedLicenses {
		return View{}, apperr.New(apperr.Invalid, fmt.Sprintf("purchased licenses must be 0..%d", MaxPurchasedLicenses), nil)
	}
	v, err := s.transition(ctx, a, tenant, "tenant.licenses.set", func(t *registry.Tenant, _ time.Time) error {
		switch t.State {
		case registry.TenantPending, registry.TenantActive, registry.TenantSuspended:
			t.PurchasedLicenses = n
		default:
			return apperr.New(apperr.Conflict, fmt.Sprintf("licenses of a %s tenant cannot change", t.State), nil)
		}
		return nil
	})
	if err == nil && v.OverAssigned > 0 {
		s.log.WarnContext(ctx, "licenses over-assigned after a reduction",
			"purchased", v.PurchasedLicenses, "assigned", v.AssignedLicenses)
	}
	return v, err
}

// transition changes the tenant row under ETag concurrency and audits the outcome (also a refusal).
func (s *Service) transition(ctx context.Context, a core.Actor, tenant core.TenantID, action string, change func(*registry.Tenant, time.Time) error) (View, error) {
	now := s.now()
	t, err := s.st.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if t.State == registry.TenantDeleting {
			return errDeleting
		}
		if err := change(t, now); err != nil {
			return err
		}
		t.UpdatedAt = now
		return nil
	})
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return View{}, errNoTenant // nothing to audit into: the tenant does not exist
	case err != nil && apperr.CodeOf(err) == apperr.Internal:
		err = fmt.Errorf("%s: %w", action, err)
	}
	if err := s.audit(ctx, tenant, a, action, "tenant", string(tenant), err); err != nil {
		return View{}, err
	}
	s.log.InfoContext(ctx, "tenant action done", "action", action, "state", string(t.State))
	return s.view(ctx, t)
}
