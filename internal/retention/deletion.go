package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// deletion is one category of one tenant's data on its way out, with its progress (checkpointed).
type deletion struct {
	Tenant   core.TenantID `json:"t"`
	Category string        `json:"k"`
	Reason   string        `json:"r"`
	EndedAt  time.Time     `json:"e"` // end of the contract: identifies the deletion with its receipts
	DueAt    time.Time     `json:"q"`
	// Cutoff (later phases): license and billing rows up to it belong to the ended contract; younger rows
	// belong to a new one, should the customer have come back.
	Cutoff time.Time `json:"o,omitzero"`
	// Sweep (later phases): also delete rows written into the other tables after the tenant's deletion
	// (a late queue message), unless the customer came back.
	Sweep bool `json:"w,omitempty"`

	KeyDestroyed  bool           `json:"kd,omitempty"`
	Census        map[string]int `json:"n,omitempty"` // rows per table before deleting
	Deleted       map[string]int `json:"x,omitempty"` // rows deleted per table so far
	Done          []string       `json:"f,omitempty"` // tables finished
	SubsDone      bool           `json:"sd,omitempty"`
	Subscriptions int            `json:"s,omitempty"`
	SecretsDone   bool           `json:"zd,omitempty"`
	Secrets       int            `json:"z,omitempty"`
}

func (d *deletion) key() string {
	return string(d.Tenant) + "/" + d.Category + "/" + d.EndedAt.UTC().Format(time.RFC3339Nano)
}

// tenantDataTables are the tables emptied with the tenant (the catalogue's tenant-data class: not
// licenses and billing, which have their own clocks, nor the registry, whose row goes last, after the
// receipt).
func (r *run) tenantDataTables() []string { return r.j.o.Catalogue.Of(tables.RetainTenantData) }

// tables lists what d deletes, in order.
func (r *run) tables(d *deletion) []string {
	switch d.Category {
	case CategoryTenant:
		return r.tenantDataTables()
	case CategoryLicenses:
		if d.Sweep {
			return append(r.j.o.Catalogue.Of(tables.RetainLicenseData), r.tenantDataTables()...)
		}
		return r.j.o.Catalogue.Of(tables.RetainLicenseData)
	default:
		if d.Sweep {
			return slices.Concat(r.j.o.Catalogue.Of(tables.RetainBillingData), r.j.o.Catalogue.Of(tables.RetainLicenseData), r.tenantDataTables())
		}
		return r.j.o.Catalogue.Of(tables.RetainBillingData)
	}
}

// errNotDue: the tenant changed (reactivated) between listing and claiming.
var errNotDue = errors.New("not due")

// deleteTenant claims a due tenant (state deleting, under ETag concurrency against a reactivation) and
// deletes its data.
func (r *run) deleteTenant(ctx context.Context, t registry.Tenant, due time.Time, reason string, ended time.Time) error {
	ctx = core.WithTenant(ctx, t.ID) // one run works through many tenants: each line names its own
	d := r.cp.find(t.ID, CategoryTenant, ended)
	if d != nil && r.attempted[d.key()] {
		return nil
	}
	if d == nil {
		now := r.j.o.Now()
		_, err := r.st.Tenants.Update(ctx, t.ID, func(x *registry.Tenant) error {
			if x.State == registry.TenantDeleting {
				return nil
			}
			if due, _, _, ok := r.j.o.Policy.DeletionDue(*x); !ok || now.Before(due) {
				return errNotDue
			}
			x.State, x.DeletionStartedAt, x.UpdatedAt = registry.TenantDeleting, now, now
			return nil
		})
		switch {
		case errors.Is(err, errNotDue), errors.Is(err, tables.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("claim tenant %s for deletion: %w", t.ID, err)
		}
		d = &deletion{Tenant: t.ID, Category: CategoryTenant, Reason: reason, EndedAt: ended, DueAt: due}
		r.cp.Deletions = append(r.cp.Deletions, d)
		if err := r.save(ctx); err != nil {
			return err
		}
		r.log.InfoContext(ctx, "tenant deletion started", "reason", reason)
	}
	return r.execute(ctx, d)
}

// execute runs d's remaining steps; each step is idempotent and checkpointed, so any prefix of them
// may already have run.
func (r *run) execute(ctx context.Context, d *deletion) error {
	ctx = core.WithTenant(ctx, d.Tenant)
	r.attempted[d.key()] = true
	err := r.steps(ctx, d)
	if err != nil && !errors.Is(err, errBudget) {
		r.log.ErrorContext(ctx, "deletion failed; the next run retries", "category", d.Category, "error", err)
		return fmt.Errorf("delete %s data of tenant %s: %w", d.Category, d.Tenant, err)
	}
	return err
}

func (r *run) steps(ctx context.Context, d *deletion) error {
	if d.Category == CategoryTenant && !d.KeyDestroyed {
		// First, before anything else: from now on every sealed value of the tenant, in every replica
		// and backup, is unreadable.
		if err := r.j.o.Keys.DestroyTenantKey(ctx, d.Tenant); err != nil {
			return fmt.Errorf("destroy data key: %w", err)
		}
		d.KeyDestroyed = true
		if err := r.save(ctx); err != nil {
			return err
		}
	}
	if d.Sweep {
		// The customer may have come back since: then the other tables hold the new contract's data.
		if _, err := r.st.Tenants.Get(ctx, d.Tenant); err == nil {
			d.Sweep = false
		} else if !errors.Is(err, tables.ErrNotFound) {
			return fmt.Errorf("read tenant: %w", err)
		}
	}
	if d.Census == nil {
		if err := r.census(ctx, d); err != nil {
			return err
		}
	}
	if d.Category == CategoryTenant {
		if err := r.subscriptions(ctx, d); err != nil {
			return err
		}
		if err := r.secrets(ctx, d); err != nil {
			return err
		}
	}
	for _, table := range r.tables(d) {
		if slices.Contains(d.Done, table) {
			continue
		}
		if err := r.deleteTable(ctx, d, table); err != nil {
			return err
		}
	}
	if err := r.receipt(ctx, d); err != nil {
		return err
	}
	if d.Category == CategoryTenant {
		if err := r.st.Tenants.Delete(ctx, d.Tenant); err != nil && !errors.Is(err, tables.ErrNotFound) {
			return fmt.Errorf("delete tenant row: %w", err)
		}
	}
	r.cp.remove(d)
	if err := r.save(ctx); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "deletion done", "category", d.Category)
	return nil
}

// census counts what is there before deleting, so the receipt is exact even if a run dies between
// deleting a batch and checkpointing the count.
func (r *run) census(ctx context.Context, d *deletion) error {
	d.Census = map[string]int{}
	var whole []string
	for _, table := range r.tables(d) {
		if r.oldContractOnly(d, table) {
			keys, err := r.j.o.Contracts.EndedContractRows(ctx, d.Tenant, table, d.Cutoff)
			if err != nil {
				return err
			}
			d.Census[table] = len(keys)
			continue
		}
		whole = append(whole, table)
	}
	if d.Category == CategoryTenant {
		whole = append(whole, r.j.o.Catalogue.Of(tables.RetainRegistry)...)
	}
	counts, err := r.parts.Count(ctx, d.Tenant, whole...)
	if err != nil {
		return fmt.Errorf("census: %w", err)
	}
	for t, n := range counts {
		d.Census[t] = n
	}
	return r.save(ctx)
}

// subscriptions deletes the tenant's Graph subscriptions, best effort: a subscription Graph cannot
// delete expires by itself within its lifetime, and its row (deleted below) no longer lets its
// notifications in.
func (r *run) subscriptions(ctx context.Context, d *deletion) error {
	if d.SubsDone {
		return nil
	}
	failed := 0
	for sub, err := range r.st.Subscriptions.All(ctx, d.Tenant, nil) {
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		if r.j.o.Graph == nil {
			failed++
			continue
		}
		if err := r.j.o.Graph.DeleteSubscription(ctx, d.Tenant, sub); err != nil {
			failed++
			r.log.WarnContext(ctx, "graph subscription not deleted; it will expire",
				"subscription_id", sub.ID, "error", err)
			continue
		}
		d.Subscriptions++
	}
	if failed > 0 {
		r.log.WarnContext(ctx, "graph subscriptions left to expire", "count", failed)
	}
	d.SubsDone = true
	return r.save(ctx)
}

// secrets deletes every secret named for the tenant (PBX credential, service-user tokens; the data key
// is gone already).
func (r *run) secrets(ctx context.Context, d *deletion) error {
	if d.SecretsDone {
		return nil
	}
	names, err := r.j.o.Secrets.List(ctx, secrets.TenantSecretPrefix(d.Tenant))
	if err != nil {
		return fmt.Errorf("list secrets: %w", err)
	}
	for _, name := range names {
		if err := r.j.o.Secrets.Delete(ctx, name); err != nil {
			return fmt.Errorf("delete secret: %w", err)
		}
		d.Secrets++
		if err := r.save(ctx); err != nil {
			return err
		}
	}
	d.SecretsDone = true
	return r.save(ctx)
}

// deleteTable deletes d's rows in one table in steps of at most 1,000 (entity-group batches of 100),
// checkpointing after each step and stopping when the run's budget is used up.
func (r *run) deleteTable(ctx context.Context, d *deletion, table string) error {
	if d.Deleted == nil {
		d.Deleted = map[string]int{}
	}
	for {
		if r.stop() {
			return errBudget
		}
		var n int
		var more bool
		var err error
		if r.oldContractOnly(d, table) {
			n, more, err = r.deleteOldContract(ctx, d, table, min(1000, r.rowsLeft))
		} else {
			n, more, err = r.parts.DeleteUpTo(ctx, d.Tenant, table, min(1000, r.rowsLeft))
		}
		d.Deleted[table] += n
		r.rowsLeft -= n
		if err != nil {
			_ = r.save(ctx)
			return err
		}
		if !more {
			d.Done = append(d.Done, table)
		}
		if err := r.save(ctx); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// oldContractOnly: in its own phase, a license-data or billing-data table loses only the ended
// contract's rows.
func (r *run) oldContractOnly(d *deletion, table string) bool {
	spec, _ := r.j.o.Catalogue.Lookup(table)
	return (d.Category == CategoryLicenses && spec.Retention == tables.RetainLicenseData) ||
		(d.Category == CategoryBilling && spec.Retention == tables.RetainBillingData)
}

func (r *run) deleteOldContract(ctx context.Context, d *deletion, table string, max int) (int, bool, error) {
	keys, err := r.j.o.Contracts.EndedContractRows(ctx, d.Tenant, table, d.Cutoff)
	if err != nil || len(keys) == 0 {
		return 0, false, err
	}
	more := len(keys) > max
	keys = keys[:min(len(keys), max)]
	n, err := r.parts.DeleteKeys(ctx, d.Tenant, table, keys)
	return n, more, err
}

// receipt records the deletion, exactly once: a run that died after writing it finds it here.
func (r *run) receipt(ctx context.Context, d *deletion) error {
	for rec, err := range r.receipts(ctx, d.Tenant) {
		if err != nil {
			return err
		}
		if rec.Categories == d.Category && rec.EndedAt.Equal(d.EndedAt) {
			return nil
		}
	}
	counts := map[string]int{}
	for t, n := range d.Census {
		counts[t] = n
	}
	for t, n := range d.Deleted {
		counts[t] = max(counts[t], n) // rows written after the census were deleted too
	}
	var parts []string
	total := 0
	for t, n := range counts {
		if n > 0 {
			parts = append(parts, t+"="+strconv.Itoa(n))
			total += n
		}
	}
	sort.Strings(parts)
	_, err := r.j.receipts.Append(ctx, d.Tenant, DeletionReceipt{
		Reason: d.Reason, Categories: d.Category, EndedAt: d.EndedAt, RequestedAt: d.DueAt,
		CompletedAt: r.j.o.Now(), KeyDestroyed: d.KeyDestroyed, RowsDeleted: total,
		Tables: strings.Join(parts, ","), Secrets: d.Secrets, Subscriptions: d.Subscriptions,
	})
	if err != nil {
		return fmt.Errorf("write deletion receipt: %w", err)
	}
	return nil
}

// receipts iterates over one tenant's deletion receipts.
func (r *run) receipts(ctx context.Context, tenant core.TenantID) func(func(DeletionReceipt, error) bool) {
	return func(yield func(DeletionReceipt, error) bool) {
		opts := &tables.ListOptions{}
		for {
			page, err := r.j.receipts.List(ctx, tenant, opts)
			if err != nil {
				yield(DeletionReceipt{}, fmt.Errorf("list receipts: %w", err))
				return
			}
			for _, rec := range page.Items {
				if !yield(rec, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			opts.Token = page.Next
		}
	}
}

// contract is a tenant deletion found on the receipts: its license and billing data are due later.
type contract struct {
	tenant core.TenantID
	reason string
	ended  time.Time
	cutoff time.Time
}

// laterPhases deletes license and billing data whose time has come, for tenants deleted earlier. It
// reports whether the run's budget stopped it, and the per-tenant failures.
func (r *run) laterPhases(ctx context.Context, now time.Time) (bool, []error) {
	byKey := map[string]*contract{}
	var order []string
	done := map[string]bool{}
	opts := &tables.ListOptions{}
	for {
		page, err := r.j.receipts.OperatorList(ctx, opts)
		if err != nil {
			return false, []error{fmt.Errorf("list deletion receipts: %w", err)}
		}
		for _, rec := range page.Items {
			k := string(rec.Tenant) + "/" + rec.EndedAt.UTC().Format(time.RFC3339Nano)
			switch rec.Categories {
			case CategoryTenant:
				if rec.Reason == ReasonConsentExpired {
					continue // never a customer: no license or billing data
				}
				byKey[k] = &contract{tenant: rec.Tenant, reason: rec.Reason, ended: rec.EndedAt, cutoff: rec.CompletedAt}
				order = append(order, k)
			default:
				done[k+"/"+rec.Categories] = true
			}
		}
		if page.Next == "" {
			break
		}
		opts.Token = page.Next
	}
	sort.Strings(order)
	var errs []error
	for _, k := range order {
		c := byKey[k]
		for _, category := range []string{CategoryLicenses, CategoryBilling} {
			if done[k+"/"+category] {
				continue
			}
			if category == CategoryBilling && !done[k+"/"+CategoryLicenses] {
				break // license data goes first; billing cannot be due before it
			}
			period := r.j.o.Policy.LicenseRetention
			if category == CategoryBilling {
				period = r.j.o.Policy.BillingRetention
			}
			due := c.ended.Add(period)
			if now.Before(due) {
				break
			}
			d := r.cp.find(c.tenant, category, c.ended)
			if d != nil && r.attempted[d.key()] {
				break
			}
			if r.stop() {
				return true, errs
			}
			if d == nil {
				d = &deletion{Tenant: c.tenant, Category: category, Reason: c.reason, EndedAt: c.ended, DueAt: due,
					Cutoff: c.cutoff, Sweep: true}
				r.cp.Deletions = append(r.cp.Deletions, d)
			}
			err := r.execute(ctx, d)
			if errors.Is(err, errBudget) {
				return true, errs
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			done[k+"/"+category] = true
		}
	}
	return false, errs
}
