package tenants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// ReconcileJob is the job name of ReconcileLicenses in each tenant's jobs partition: its lease, and as
// checkpoint the users delta link to resume from.
const ReconcileJob = "reconcile-licenses"

// Reconciler is the daily ReconcileLicenses job. Per active tenant it refreshes licensed users'
// profiles from the directory (users delta query, resumed from the last delta link), removes users who
// were deleted or disabled there together with their data, and writes the day's usage snapshot with the
// billing period's figures so far. Each tenant is done under its own lease, at most once per UTC day, so
// runs can overlap, repeat or die midway; failures are collected per tenant.
type Reconciler struct {
	s      *Service
	runner *jobs.Runner
	spec   jobs.Spec
}

// NewReconciler returns the job; budget bounds one run (it stays below the invocation timeout).
func NewReconciler(s *Service, budget time.Duration) *Reconciler {
	if budget <= 0 {
		budget = 40 * time.Second
	}
	return &Reconciler{s: s, runner: jobs.New(s.leases, jobs.Options{Log: s.log}),
		spec: jobs.Spec{Name: ReconcileJob, Budget: budget, Lease: budget + 30*time.Second, FailureCode: "reconcile-failed"}}
}

// errNoDirectory: profiles cannot be refreshed without Graph; the snapshot is still taken.
var errNoDirectory = apperr.New(apperr.Unavailable, "the directory is not connected", nil)

// Run reconciles every active tenant not yet done today; the tenants the budget leaves are reported
// and done by the next run.
func (r *Reconciler) Run(ctx context.Context) error {
	done := 0
	active := func(t registry.Tenant) (core.TenantID, bool) { return t.ID, t.State == registry.TenantActive }
	tally, err := jobs.ForEach(ctx, r.runner, r.spec, r.s.st.Tenants.OperatorAll(ctx), active,
		func(ctx context.Context, l *jobs.Lease, t registry.Tenant) error {
			ran, err := r.tenant(ctx, l, t)
			if ran {
				done++
			}
			return err
		})
	r.s.log.InfoContext(ctx, "reconcile licenses done", "tenants", done, "left", tally.Left, "failures", tally.Failures)
	return err
}

// tenant reconciles one tenant under its lease; ran is false when it is done for today.
func (r *Reconciler) tenant(ctx context.Context, l *jobs.Lease, t registry.Tenant) (ran bool, err error) {
	now := r.s.now()
	if sameDay(l.Job().LastSuccessAt, now) {
		return false, nil
	}
	var errs []error
	link, err := r.refresh(ctx, t, l.Checkpoint())
	switch {
	case err == nil:
		if err := l.Save(ctx, link); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint delta link: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("refresh profiles: %w", err))
	}
	if err := r.snapshot(ctx, t.ID, now); err != nil {
		errs = append(errs, fmt.Errorf("usage snapshot: %w", err))
	}
	return true, errors.Join(errs...)
}

// refresh applies the directory's changes since link to the licensed users and returns the new link.
func (r *Reconciler) refresh(ctx context.Context, t registry.Tenant, link string) (string, error) {
	if r.s.dir == nil {
		return "", errNoDirectory
	}
	licensed, err := r.s.assignedUsers(ctx, t.ID)
	if err != nil {
		return "", err
	}
	changes := map[string]DirectoryChange{}
	collect := func(c DirectoryChange) error {
		if licensed[c.ID] {
			changes[c.ID] = c
		}
		return nil
	}
	full := link == ""
	next, err := r.s.dir.UsersDelta(ctx, t.ID, link, collect)
	if errors.Is(err, ErrDeltaExpired) {
		full, changes = true, map[string]DirectoryChange{}
		next, err = r.s.dir.UsersDelta(ctx, t.ID, "", collect)
	}
	if err != nil {
		return "", err
	}
	// A full enumeration lists every user that exists: a licensed user it did not list is gone. Users
	// whose profile row is missing (an interrupted assignment) are re-read as well.
	users, err := r.userIDs(ctx, t.ID)
	if err != nil {
		return "", err
	}
	for id := range licensed {
		if _, seen := changes[id]; !seen && (full || !users[id]) {
			changes[id] = DirectoryChange{ID: id}
		}
	}
	var errs []error
	now := r.s.now()
	for _, c := range changes {
		if err := r.apply(ctx, t.ID, c, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the old link: the same changes come again next run.
		return "", err
	}
	return next, nil
}

// apply refreshes one licensed user's profile, or removes the user and their data when the directory no
// longer has them or disabled them.
func (r *Reconciler) apply(ctx context.Context, tenant core.TenantID, c DirectoryChange, now time.Time) error {
	gone := c.Removed || c.Disabled
	var du DirectoryUser
	if !gone {
		var err error
		du, err = r.s.dir.User(ctx, tenant, c.ID)
		switch {
		case errors.Is(err, ErrUserNotFound):
			gone = true
		case err != nil:
			return fmt.Errorf("read user: %w", err)
		case !du.Enabled:
			gone = true
		}
	}
	if !gone {
		return r.s.writeProfile(ctx, tenant, du, now)
	}
	if _, err := r.s.removeUserData(ctx, tenant, c.ID); err != nil {
		return fmt.Errorf("remove user: %w", err)
	}
	r.s.log.InfoContext(ctx, "licensed user removed: deleted or disabled in the directory")
	return r.s.audit(ctx, tenant, core.System, "license.remove", "user", c.ID, nil)
}

func (r *Reconciler) userIDs(ctx context.Context, tenant core.TenantID) (map[string]bool, error) {
	out := map[string]bool{}
	opts := &tables.ListOptions{Select: []string{"Licensed"}}
	for {
		page, err := r.s.st.Users.List(ctx, tenant, opts)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, u := range page.Items {
			out[u.ID] = true
		}
		if page.Next == "" {
			return out, nil
		}
		opts.Token = page.Next
	}
}

// snapshot writes the day's usage (purchased, assigned, active) with the billing period's peaks so
// far. Rewriting the same day gives the same row, so a repeated run is harmless. More licenses assigned
// than purchased is reported (log and audit), never corrected here.
func (r *Reconciler) snapshot(ctx context.Context, tenant core.TenantID, now time.Time) error {
	t, err := r.s.st.Tenants.Get(ctx, tenant) // fresh: licenses may have changed during the refresh
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	assigned, err := r.s.assignedUsers(ctx, tenant)
	if err != nil {
		return err
	}
	active, err := r.activeUsers(ctx, tenant, assigned, now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	day := now.UTC().Truncate(24 * time.Hour)
	period := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
	snap := BillingSnapshot{Day: day, Product: Product, Purchased: t.PurchasedLicenses, Assigned: len(assigned),
		Active: active, PeriodStart: period, TakenAt: now}
	snap.PeriodPurchased, snap.PeriodAssigned, snap.PeriodActive = snap.Purchased, snap.Assigned, snap.Active
	opts := &tables.ListOptions{}
	for {
		page, err := r.s.data.Billing.ListPrefix(ctx, tenant, period.Format("2006-01-"), opts)
		if err != nil {
			return fmt.Errorf("list billing period: %w", err)
		}
		for _, b := range page.Items {
			if b.Product == Product && b.Day.Before(day) {
				snap.PeriodPurchased = max(snap.PeriodPurchased, b.Purchased)
				snap.PeriodAssigned = max(snap.PeriodAssigned, b.Assigned)
				snap.PeriodActive = max(snap.PeriodActive, b.Active)
			}
		}
		if page.Next == "" {
			break
		}
		opts.Token = page.Next
	}
	if _, err := r.s.data.Billing.Upsert(ctx, tenant, snap); err != nil {
		return fmt.Errorf("write usage snapshot: %w", err)
	}
	if over := snap.Assigned - snap.Purchased; over > 0 {
		r.s.log.WarnContext(ctx, "licenses over-assigned", "purchased", snap.Purchased, "assigned", snap.Assigned)
		return r.s.audit(ctx, tenant, core.System, "license.overassignment.report", "tenant", string(tenant), nil)
	}
	return nil
}

// activeUsers counts licensed users with synchronised activity since from.
func (r *Reconciler) activeUsers(ctx context.Context, tenant core.TenantID, licensed map[string]bool, from time.Time) (int, error) {
	if r.s.o.Activity == nil {
		return 0, nil
	}
	return r.s.o.Activity.ActiveUsers(ctx, tenant, licensed, from)
}

func sameDay(a, b time.Time) bool {
	return !a.IsZero() && a.UTC().Truncate(24*time.Hour).Equal(b.UTC().Truncate(24*time.Hour))
}
