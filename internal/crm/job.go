package crm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// SyncCRMJob is the job name of SyncCRM in each tenant's jobs partition.
const SyncCRMJob = "sync-crm"

// SyncJob is the SyncCRM timer: per active tenant with a CRM connection, under the tenant's lease, each
// mapped user's sync in user id order, resuming after the last user the previous run finished (the
// checkpoint), so a tenant with more users than one run's budget gets round to all of them and one
// tenant's backlog never holds up another's (each tenant's lease and budget are its own). A user's
// failure is collected and the others go on; the org's daily allocation running low stops the tenant
// until the next run.
type SyncJob struct {
	syncer  *Syncer
	tenants func(context.Context) iter.Seq2[registry.Tenant, error]
	runner  *jobs.Runner
	spec    jobs.Spec
	log     *slog.Logger
	notices *Notifications // nil: no contact subscriptions
}

// WithNotifications lets each run keep the tenant's contact subscriptions (Notifications.Maintain).
func (j *SyncJob) WithNotifications(n *Notifications) *SyncJob {
	j.notices = n
	return j
}

// NewSyncJob returns the job; budget bounds one run.
func NewSyncJob(s *Syncer, tenants func(context.Context) iter.Seq2[registry.Tenant, error], leases jobs.Table,
	budget time.Duration, log *slog.Logger) *SyncJob {
	if budget <= 0 {
		budget = 40 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SyncJob{syncer: s, tenants: tenants, runner: jobs.New(leases, jobs.Options{Log: log}), log: log,
		spec: jobs.Spec{Name: SyncCRMJob, Budget: budget, Lease: budget + 30*time.Second, FailureCode: "sync-crm-failed"}}
}

// Run syncs every active tenant's mapped users.
func (j *SyncJob) Run(ctx context.Context) error {
	users := 0
	active := func(t registry.Tenant) (core.TenantID, bool) { return t.ID, t.State == registry.TenantActive }
	tally, err := jobs.ForEach(ctx, j.runner, j.spec, j.tenants(ctx), active,
		func(ctx context.Context, l *jobs.Lease, t registry.Tenant) error {
			n, err := j.tenant(ctx, l, t.ID)
			users += n
			return err
		})
	j.log.InfoContext(ctx, "sync crm done", "tenants", tally.Ran, "users", users, "left", tally.Left, "failures", tally.Failures)
	return err
}

// tenant runs the tenant's users from the one after the checkpoint, wrapping round once.
func (j *SyncJob) tenant(ctx context.Context, l *jobs.Lease, tenant core.TenantID) (int, error) {
	d := j.syncer.o.Data
	var errs []error
	if _, err := d.Connections.Get(ctx, tenant, ProviderSalesforce); errors.Is(err, tables.ErrNotFound) {
		if j.notices != nil { // disconnected: no subscription is left behind
			return 0, j.notices.Maintain(ctx, tenant, nil)
		}
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("read connection: %w", err)
	}
	var ids []string
	notified := map[string]bool{}
	for m, err := range d.Users.All(ctx, tenant, &tables.ListOptions{Select: []string{"Contacts", "Events"}}) {
		if err != nil {
			return 0, fmt.Errorf("list mappings: %w", err)
		}
		if m.Contacts != DirectionOff && m.Contacts != "" || m.Events != DirectionOff && m.Events != "" {
			ids = append(ids, m.UserID)
		}
		for _, r := range Resources(m) {
			notified[r] = true
		}
	}
	if j.notices != nil {
		if err := j.notices.Maintain(ctx, tenant, notified); err != nil {
			errs = append(errs, fmt.Errorf("contact subscriptions: %w", err))
		}
	}
	// Start after the last user done (ids come in key order); wrap round to those before it.
	start := 0
	for i, id := range ids {
		if id > l.Checkpoint() {
			start = i
			break
		}
		start = i + 1
	}
	order := append(append([]string{}, ids[start:]...), ids[:start]...)
	n := 0
	for _, id := range order {
		if l.Spent() {
			break
		}
		_, err := j.syncer.SyncUser(ctx, tenant, id)
		n++
		if errors.Is(err, ErrDailyLimit) {
			j.log.WarnContext(ctx, "crm sync stopped: salesforce daily allocation nearly used up")
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", id, err))
		}
		cp := id
		if id == ids[len(ids)-1] {
			cp = "" // the last in order: the next run starts from the first
		}
		if err := l.Save(ctx, cp); err != nil {
			errs = append(errs, fmt.Errorf("save checkpoint: %w", err))
			break
		}
	}
	return n, errors.Join(errs...)
}
