// Package retention is the EnforceRetention job, which makes the retention promises true by timer:
//
//   - a tenant cancelled 24 h ago, suspended 7 days ago, or that never consented before its link
//     expired: its data key is destroyed first (crypto-shredding), its Graph subscriptions deleted (best
//     effort), its secrets deleted, then its rows in every table but licenses and billing, in
//     entity-group batches; a deletion receipt records what went;
//   - 30 days after the end of the contract its license data, 90 days after its billing data, each with
//     its own receipt (the receipts, in an operator table, drive these later phases once the tenant row
//     is gone);
//   - for every other tenant: bookings outside the booking window, sync errors older than 7 days, and
//     presence, ledger and user rows of users who hold no license.
//
// One run at a time holds the job's lease (in the operator partition of the jobs table); an overlapping
// run finds it held and does nothing. Progress is checkpointed after every step, so a run that is
// killed midway is finished by the next one. Each run stops within its time and row budget and carries
// on at the next hourly run. Per-tenant failures are collected, never stop the others.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// JobName is the job's row in the operator partition of the jobs table: lease and checkpoint.
const JobName = "enforce-retention"

// Receipt categories.
const (
	CategoryTenant   = "tenant" // all of the tenant's data but license and billing data, and its secrets
	CategoryLicenses = "licenses"
	CategoryBilling  = "billing"
)

// KeyDestroyer deletes a tenant's data key (internal/platform/tenantkey).
type KeyDestroyer interface {
	DestroyTenantKey(ctx context.Context, tenant core.TenantID) error
}

// Secrets lists and deletes secrets (internal/platform/secrets: every store there implements both).
type Secrets interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, name string) error
}

// SubscriptionDeleter deletes a Graph subscription of the tenant; one already gone counts as deleted.
type SubscriptionDeleter interface {
	DeleteSubscription(ctx context.Context, tenant core.TenantID, sub registry.Subscription) error
}

// Licenses is what the sweep of unlicensed remainders needs of the licensing capability, declared here
// and wired in internal/app, so that retention does not import it.
type Licenses interface {
	LicensedUsers(ctx context.Context, tenant core.TenantID) (map[string]bool, error)
	RemoveUser(ctx context.Context, tenant core.TenantID, userID string) (rows int, err error)
}

// ContractRows lists the rows of a license-data or billing-data table that belong to a contract which
// ended at cutoff (the tenants module answers for its licenses and billing tables; wired in app).
type ContractRows interface {
	EndedContractRows(ctx context.Context, tenant core.TenantID, table string, cutoff time.Time) ([]string, error)
}

// Sweeper applies a module's own retention rules to a live tenant's rows (bookings: only inside the
// booking window; presence sync: sync errors older than a few days) and answers the rows it deleted per table. Declared here, wired in app.
type Sweeper interface {
	Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error)
}

// UserHolder lists the users a module holds rows about, so that the sweep finds the remainders of users
// who hold no license (presence sync: presence rows and user-scoped ledger resources).
type UserHolder interface {
	UsersWithData(ctx context.Context, tenant core.TenantID) ([]string, error)
}

// Options configure the job.
type Options struct {
	Store *registry.Registry
	// Catalogue is every module's tables: which a tenant's deletion empties, on which clock.
	Catalogue tables.Catalogue
	Keys      KeyDestroyer
	Secrets   Secrets
	// Graph deletes subscriptions at Graph; nil leaves them to expire (presence subscriptions live at
	// most an hour, and their rows are deleted, so the webhook refuses their notifications).
	Graph SubscriptionDeleter
	// Contracts lists the ended contract's license and billing rows.
	Contracts ContractRows
	// Licenses answers who is licensed and removes an unlicensed user's remainder (tenants.Service).
	Licenses Licenses
	Now      func() time.Time
	Log      *slog.Logger
	Policy   Policy
	// Sweepers keep the modules' own rules for live tenants; Holders say whom the modules hold rows
	// about. Licenses.RemoveUser erases an unlicensed user from every module.
	Sweepers []Sweeper
	Holders  []UserHolder
	// MaxRows bounds the rows one run deletes; Budget its time.
	MaxRows int
	Budget  time.Duration
}

// Job is the EnforceRetention job.
type Job struct {
	o        Options
	runner   *jobs.Runner
	parts    *tables.Partitions
	receipts *ReceiptLog
}

// New returns the job.
func New(o Options) (*Job, error) {
	if o.Store == nil || o.Keys == nil || o.Secrets == nil || o.Licenses == nil || o.Contracts == nil || len(o.Catalogue) == 0 {
		return nil, errors.New("retention: store, catalogue, key ring, secrets, licenses and contracts are required")
	}
	if o.Policy.CancelledRetention <= 0 || o.Policy.SuspendedRetention <= 0 || o.Policy.LicenseRetention <= 0 ||
		o.Policy.BillingRetention <= 0 {
		return nil, errors.New("retention: every period must be set")
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 50_000
	}
	if o.Budget <= 0 {
		o.Budget = 40 * time.Second
	}
	db := o.Store.DB()
	return &Job{o: o, runner: jobs.New(jobs.OpenLeases(db), jobs.Options{Log: o.Log}), parts: o.Catalogue.Partitions(db),
		receipts: OpenReceipts(db)}, nil
}

// checkpoint is the job's resume point, stored as JSON on its job row.
type checkpoint struct {
	// Deletions in progress, by tenant and category: a failing one does not block the others.
	Deletions []*deletion `json:"d,omitempty"`
	// Cursor is the last tenant the routine pruning finished; the next run continues after it.
	Cursor core.TenantID `json:"c,omitempty"`
}

func (c *checkpoint) find(tenant core.TenantID, category string, ended time.Time) *deletion {
	for _, d := range c.Deletions {
		if d.Tenant == tenant && d.Category == category && d.EndedAt.Equal(ended) {
			return d
		}
	}
	return nil
}

func (c *checkpoint) remove(d *deletion) {
	c.Deletions = slices.DeleteFunc(c.Deletions, func(x *deletion) bool { return x == d })
}

// errBudget stops a run that used its time or rows; the next run carries on. It is not a failure.
var errBudget = errors.New("run budget used up")

// run is one invocation's state.
type run struct {
	j        *Job
	st       *registry.Registry
	parts    *tables.Partitions
	log      *slog.Logger
	lease    *jobs.Lease
	rowsLeft int
	cp       checkpoint
	// attempted marks deletions this run has worked on, so a failing one is tried once per run.
	attempted map[string]bool
}

// Run enforces every rule once, within the budget.
func (j *Job) Run(ctx context.Context) error {
	r := &run{j: j, st: j.o.Store, parts: j.parts, log: j.o.Log, rowsLeft: j.o.MaxRows, attempted: map[string]bool{}}
	failures := 0
	ran, err := j.runner.Run(ctx, registry.OperatorPartition, jobs.Spec{Name: JobName, Budget: j.o.Budget, FailureCode: "retention-failed"},
		func(ctx context.Context, l *jobs.Lease) error {
			r.lease = l
			if cp := l.Checkpoint(); cp != "" {
				if err := json.Unmarshal([]byte(cp), &r.cp); err != nil {
					// A checkpoint we cannot read only costs repeated work: tenants being deleted are found by state.
					r.log.WarnContext(ctx, "retention checkpoint unreadable; starting afresh", "error", err)
					r.cp = checkpoint{}
				}
			}
			errs := r.all(ctx)
			// Save even if the invocation is being cancelled, so the next run resumes at once.
			fctx, cancel := jobs.Finishing(ctx)
			defer cancel()
			if err := r.save(fctx); err != nil {
				errs = append(errs, err)
			}
			failures = len(errs)
			return errors.Join(errs...)
		})
	if !ran {
		if err != nil {
			return fmt.Errorf("acquire retention lease: %w", err)
		}
		return nil // another run holds the lease: it does the work
	}
	r.log.InfoContext(ctx, "retention run done", "rows_deleted", j.o.MaxRows-r.rowsLeft,
		"deletions_in_progress", len(r.cp.Deletions), "failures", failures)
	return err
}

// all runs the passes in order of urgency: interrupted deletions, tenants due, later phases, pruning.
func (r *run) all(ctx context.Context) []error {
	var errs []error
	fail := func(err error) bool {
		if errors.Is(err, errBudget) {
			return true
		}
		if err != nil {
			errs = append(errs, err)
		}
		return false
	}

	// 1. Deletions a previous run started.
	for _, d := range slices.Clone(r.cp.Deletions) {
		if fail(r.execute(ctx, d)) {
			return errs
		}
	}

	// 2. Tenants due for deletion.
	var all []registry.Tenant
	for t, err := range r.st.Tenants.OperatorAll(ctx) {
		if err != nil {
			return append(errs, fmt.Errorf("list tenants: %w", err))
		}
		all = append(all, t)
	}
	now := r.j.o.Now()
	for _, t := range all {
		due, reason, ended, ok := r.j.o.Policy.DeletionDue(t)
		if !ok || (t.State != registry.TenantDeleting && now.Before(due)) {
			continue
		}
		if r.stop() {
			return errs
		}
		if fail(r.deleteTenant(ctx, t, due, reason, ended)) {
			return errs
		}
	}

	// 3. License and billing data of tenants deleted earlier.
	stopped, perr := r.laterPhases(ctx, now)
	if errs = append(errs, perr...); stopped {
		return errs
	}

	// 4. Routine pruning of the others, continuing after the last run's cursor.
	for _, t := range all {
		if r.cp.Cursor != "" && t.ID <= r.cp.Cursor {
			continue
		}
		if t.State == registry.TenantDeleting || t.State == registry.TenantPending {
			continue
		}
		if due, _, _, ok := r.j.o.Policy.DeletionDue(t); ok && !now.Before(due) {
			continue // handled (or tried) by the deletion pass above
		}
		if r.stop() {
			return errs
		}
		err := r.prune(ctx, t, now)
		if fail(err) {
			return errs
		}
		r.cp.Cursor = t.ID
	}
	r.cp.Cursor = "" // a full pass is done: the next run starts at the beginning
	return errs
}

// stop says whether the run's time or rows are used up.
func (r *run) stop() bool { return r.rowsLeft <= 0 || r.lease.Spent() }

// save writes the checkpoint (while this run holds the lease).
func (r *run) save(ctx context.Context) error {
	b, err := json.Marshal(r.cp)
	if err != nil {
		return fmt.Errorf("encode retention checkpoint: %w", err)
	}
	return r.lease.Save(ctx, string(b))
}
