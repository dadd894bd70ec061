// Package jobs is the one runner of timer jobs (EnforceRetention, ReconcileLicenses,
// RenewSubscriptions): each run holds a lease on its job row, so runs may overlap, repeat or die midway
// without two of them doing the same partition at once; it reads and writes the row's checkpoint, so the
// next run resumes where a run stopped; it keeps to a budget, a deadline taken from the configured budget
// and the invocation's own deadline, checked between items so no item is cut off halfway; and it collects
// per-partition failures with errors.Join instead of stopping at the first.
//
//	r := jobs.New(st.Jobs, jobs.Options{Log: log})
//	ran, err := r.Run(ctx, core.ReservedTenant, jobs.Spec{Name: "enforce-retention", Budget: 40 * time.Second},
//		func(ctx context.Context, l *jobs.Lease) error { ...; return l.Save(ctx, next) })
//	tally, err := jobs.ForEach(ctx, r, spec, st.Tenants.OperatorAll(ctx), partition, work)
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

// Table is what the runner needs of the jobs table: leases and checkpoints on one row per job and
// partition. The ETag check behind AcquireLease makes exactly one of racing owners win.
type Table interface {
	AcquireLease(ctx context.Context, tenant core.TenantID, name, owner string, ttl time.Duration) (Job, error)
	Checkpoint(ctx context.Context, tenant core.TenantID, name, owner, checkpoint string) (Job, error)
	Release(ctx context.Context, tenant core.TenantID, name, owner, errCode string) (Job, error)
}

var _ Table = (*Leases)(nil)

// ErrBudget: the run's budget ran out with partitions left; the next run does them. ForEach reports it
// (wrapped, with the count) so an operator sees a job that never gets through its partitions.
var ErrBudget = errors.New("run budget used up")

const (
	// finishGrace is kept back from the invocation's deadline for the final checkpoint and the release.
	finishGrace = 5 * time.Second
	// finishTimeout bounds the final checkpoint and the release, which run even when the invocation's
	// context is done: otherwise a lease would block the next run until it lapses.
	finishTimeout = 10 * time.Second
	// leaseSlack: a lease outlives its run's budget by this, so a run that dies holds its job up only a
	// little longer than it could have run.
	leaseSlack = time.Minute
	// pollEvery is how often a waiting caller tries a held lease again.
	pollEvery = 250 * time.Millisecond
)

// Options configure a runner.
type Options struct {
	// Instance names this process in lease owners (default: the host name). Each run adds a random
	// part, so two runs in one process exclude each other as two processes do.
	Instance string
	// Now is the real-time clock of budgets and lease waits (default time.Now): the invocation's timeout
	// does not follow a test's fake clock, so only a test of the runner itself substitutes it. Lease
	// expiry follows the table's clock.
	Now func() time.Time
	Log *slog.Logger
}

// Runner runs jobs under leases on a jobs table.
type Runner struct {
	t Table
	o Options
}

// New returns a runner on t.
func New(t Table, o Options) *Runner {
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{t: t, o: o}
}

// NewOwner makes a lease owner id: instance (the host name when empty) and a random part. It is the
// one owner-id generator; the runner calls it once per run, and a lock held outside a job (the license
// assignment lease) calls it too.
func NewOwner(instance string) string {
	if instance == "" {
		instance, _ = os.Hostname()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return instance + "-" + hex.EncodeToString(b[:])
}

// Spec describes one job.
type Spec struct {
	// Name is the job's row in each partition of the jobs table.
	Name string
	// Budget is how long a run may start new work; 0 leaves only the invocation's deadline.
	Budget time.Duration
	// Lease is how long an acquired lease holds (default Budget + 1 min, or 5 min without a budget).
	Lease time.Duration
	// Wait is how long Run waits for a lease another run holds; 0 skips the partition at once.
	Wait time.Duration
	// FailureCode is recorded on the job row when a run fails; a code, never a message with data in it.
	FailureCode string
}

func (s Spec) leaseTTL() time.Duration {
	switch {
	case s.Lease > 0:
		return s.Lease
	case s.Budget > 0:
		return s.Budget + leaseSlack
	default:
		return 5 * time.Minute
	}
}

// deadline is when a run that starts now must stop starting work: the budget's end, or earlier when
// the invocation ends sooner (less the time kept for finishing).
func (r *Runner) deadline(ctx context.Context, budget time.Duration) time.Time {
	var d time.Time
	if budget > 0 {
		d = r.o.Now().Add(budget)
	}
	if cd, ok := ctx.Deadline(); ok {
		if cd = cd.Add(-finishGrace); d.IsZero() || cd.Before(d) {
			d = cd
		}
	}
	return d
}

// Lease is a run's hold on one job row: its checkpoint, its budget, and the row as acquired.
type Lease struct {
	r        *Runner
	spec     Spec
	tenant   core.TenantID
	owner    string
	job      Job
	deadline time.Time // zero: none
}

// Partition is the partition the lease is on.
func (l *Lease) Partition() core.TenantID { return l.tenant }

// Job is the job row as this run acquired it (last success, runs, last error).
func (l *Lease) Job() Job { return l.job }

// Checkpoint is where the job stands: what the last Save wrote, or "" when nothing was ever saved.
func (l *Lease) Checkpoint() string { return l.job.Checkpoint }

// Save writes cp as the job's checkpoint, while the lease is held (ErrLeaseLost otherwise).
func (l *Lease) Save(ctx context.Context, cp string) error {
	job, err := l.r.t.Checkpoint(ctx, l.tenant, l.spec.Name, l.owner, cp)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", l.spec.Name, err)
	}
	l.job = job
	return nil
}

// Renew extends the lease by the spec's lease time from now, for a run that may outlast it.
func (l *Lease) Renew(ctx context.Context) error {
	job, err := l.r.t.AcquireLease(ctx, l.tenant, l.spec.Name, l.owner, l.spec.leaseTTL())
	if errors.Is(err, ErrLeaseHeld) {
		err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("renew lease on %s: %w", l.spec.Name, err)
	}
	l.job = job
	return nil
}

// Deadline is when the run must stop starting work (zero: no deadline).
func (l *Lease) Deadline() time.Time { return l.deadline }

// Spent says whether the run's budget is used up: check it between items, never inside one.
func (l *Lease) Spent() bool { return !l.deadline.IsZero() && !l.r.o.Now().Before(l.deadline) }

// Finishing returns a context for a run's last writes (final checkpoint, release) that the
// invocation's cancellation does not reach, bounded on its own.
func Finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
}

// Run runs fn holding the lease of spec's job in partition. ran is false (with a nil error) when
// another run holds the lease and spec.Wait is 0, or an error when it is still held after waiting. The
// lease is released when fn returns, recording spec.FailureCode if fn failed.
func (r *Runner) Run(ctx context.Context, partition core.TenantID, spec Spec, fn func(context.Context, *Lease) error) (ran bool, err error) {
	return r.run(ctx, partition, spec, r.deadline(ctx, spec.Budget), fn)
}

func (r *Runner) run(ctx context.Context, partition core.TenantID, spec Spec, deadline time.Time, fn func(context.Context, *Lease) error) (bool, error) {
	l := &Lease{r: r, spec: spec, tenant: partition, owner: NewOwner(r.o.Instance), deadline: deadline}
	if partition != core.ReservedTenant {
		ctx = core.WithTenant(ctx, partition) // the job's log lines name the tenant it works for
	}
	waitUntil := r.o.Now().Add(spec.Wait)
	for {
		job, err := r.t.AcquireLease(ctx, partition, spec.Name, l.owner, spec.leaseTTL())
		if err == nil {
			l.job = job
			break
		}
		if !errors.Is(err, ErrLeaseHeld) {
			return false, fmt.Errorf("acquire lease: %w", err)
		}
		if spec.Wait <= 0 {
			r.o.Log.InfoContext(ctx, "job skipped: another run holds the lease", "job", spec.Name)
			return false, nil
		}
		if r.o.Now().After(waitUntil) {
			return false, fmt.Errorf("acquire lease: %w", err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	ferr := work(ctx, l, fn)
	code := ""
	if ferr != nil {
		code = spec.FailureCode
	}
	fctx, cancel := Finishing(ctx)
	defer cancel()
	if _, err := r.t.Release(fctx, partition, spec.Name, l.owner, code); err != nil {
		ferr = errors.Join(ferr, fmt.Errorf("release lease: %w", err))
	}
	return true, ferr
}

// work runs fn in a context that ends finishGrace before the invocation does: Spent stops a run between
// items, but one item (a tenant of 100,000 users) can outlast the rest of the budget, and then its calls
// fail at this deadline instead of running past the invocation's, which leaves the final checkpoint and
// the release their time.
func work(ctx context.Context, l *Lease, fn func(context.Context, *Lease) error) error {
	if cd, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, cd.Add(-finishGrace))
		defer cancel()
	}
	return fn(ctx, l)
}

// Tally counts what a ForEach pass did.
type Tally struct {
	Ran  int // partitions worked under their lease
	Held int // partitions skipped: another run holds them
	Left int // partitions left for the next run: the budget was used up
	// Failures counts the errors joined into ForEach's error: failed partitions, a failed listing, and
	// the budget's report.
	Failures int
}

// ForEach runs fn for every item that partition maps to a partition (ok false skips the item), each
// under its own lease of spec's job, in one budget for the whole pass: once it is used up the rest are
// left for the next run and reported as ErrBudget. A held partition is skipped (someone is on it). Per
// partition failures are collected and joined; a failing listing ends the pass.
func ForEach[T any](ctx context.Context, r *Runner, spec Spec, items iter.Seq2[T, error],
	partition func(T) (core.TenantID, bool), fn func(context.Context, *Lease, T) error) (Tally, error) {
	deadline := r.deadline(ctx, spec.Budget)
	var tally Tally
	var errs []error
	for item, err := range items {
		if err != nil {
			errs = append(errs, fmt.Errorf("list tenants: %w", err))
			break
		}
		p, ok := partition(item)
		if !ok {
			continue
		}
		if !deadline.IsZero() && !r.o.Now().Before(deadline) {
			tally.Left++
			continue
		}
		ran, err := r.run(ctx, p, spec, deadline, func(ctx context.Context, l *Lease) error { return fn(ctx, l, item) })
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", p, err))
		}
		if ran {
			tally.Ran++
		} else if err == nil {
			tally.Held++
		}
	}
	if tally.Left > 0 {
		errs = append(errs, fmt.Errorf("%s: %w with %d tenants left for the next run", spec.Name, ErrBudget, tally.Left))
	}
	tally.Failures = len(errs)
	return tally, errors.Join(errs...)
}
