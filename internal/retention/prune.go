package retention

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// prune applies the rules that hold while a tenant is a customer: each module's own (Options.Sweepers:
// bookings only inside the booking window, presence sync's sync errors only for a few days), and
// nothing about users who hold no license.
func (r *run) prune(ctx context.Context, t registry.Tenant, now time.Time) error {
	ctx = core.WithTenant(ctx, t.ID)
	counts := map[string]int{}
	var errs []error
	add := func(table string, n int, err error) {
		counts[table] += n
		r.rowsLeft -= n
		if err != nil {
			errs = append(errs, err)
		}
	}

	for _, sw := range r.j.o.Sweepers {
		swept, err := sw.Sweep(ctx, t, now)
		for table, n := range swept {
			add(table, n, nil)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}

	if r.stop() {
		return errBudget // the tenant is pruned again from the start next run: sweeps are idempotent
	}
	if err := r.pruneUnlicensed(ctx, t.ID, add); err != nil {
		errs = append(errs, err)
	}

	total := 0
	for _, n := range counts {
		total += n
	}
	if total > 0 {
		args := make([]any, 0, 2*len(counts))
		for _, table := range slices.Sorted(maps.Keys(counts)) {
			args = append(args, table, counts[table])
		}
		r.log.InfoContext(ctx, "retention pruned rows", args...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune tenant %s: %w", t.ID, err)
	}
	return nil
}

// pruneUnlicensed erases the users that some module holds rows about but who hold no license: left
// behind by an unassignment that died midway, or written by a late notification after it.
func (r *run) pruneUnlicensed(ctx context.Context, tenant core.TenantID, add func(string, int, error)) error {
	licensed, err := r.j.o.Licenses.LicensedUsers(ctx, tenant)
	if err != nil {
		return err
	}
	var held []string
	for _, h := range r.j.o.Holders {
		ids, err := h.UsersWithData(ctx, tenant)
		if err != nil {
			return err
		}
		held = append(held, ids...)
	}
	for u, err := range r.st.Users.All(ctx, tenant, &tables.ListOptions{Select: []string{"Licensed"}}) {
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		held = append(held, u.ID)
	}
	seen := map[string]bool{}
	for _, userID := range held {
		if id := strings.ToLower(userID); !licensed[id] && !seen[id] {
			// A tenant with many users left behind takes several runs; each removal is whole, and the
			// next run lists what is left.
			if r.stop() {
				return errBudget
			}
			seen[id] = true
			rows, err := r.j.o.Licenses.RemoveUser(ctx, tenant, userID)
			add("unlicensed-user-rows", rows, wrap("remove unlicensed user", err))
		}
	}
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
