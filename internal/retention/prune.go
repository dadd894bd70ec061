package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/store"
)

// prune applies the rules that hold while a tenant is a customer: bookings only inside the booking
// window, sync errors only for a few days, and nothing about users who hold no license.
func (r *run) prune(ctx context.Context, t store.Tenant, now time.Time) error {
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

	days := t.BookingWindowDays
	if days <= 0 || days > r.j.o.BookingWindowDays {
		days = r.j.o.BookingWindowDays
	}
	from := now.UTC().Truncate(24 * time.Hour) // today's bookings stay for the whole day
	n, err := r.st.Bookings.DeleteOutsideWindow(ctx, t.ID, from, from.AddDate(0, 0, days))
	add(store.TableBookings, n, wrap("prune bookings", err))

	n, err = r.st.SyncErrors.DeleteFirstFailedBefore(ctx, t.ID, now.Add(-r.j.o.SyncErrorRetention))
	add(store.TableSyncErrors, n, wrap("prune sync errors", err))

	if err := r.pruneUnlicensed(ctx, t.ID, add); err != nil {
		errs = append(errs, err)
	}

	total := 0
	for _, n := range counts {
		total += n
	}
	if total > 0 {
		r.log.InfoContext(ctx, "retention pruned rows", "bookings", counts[store.TableBookings],
			"syncerrors", counts[store.TableSyncErrors], "presence", counts[store.TablePresence],
			"ledger", counts[store.TableLedger], "users", counts[store.TableUsers])
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune tenant %s: %w", t.ID, err)
	}
	return nil
}

// pruneUnlicensed deletes presence, ledger and user rows of users without a license: left behind by an
// unassignment that died midway, or written by a late notification after it.
func (r *run) pruneUnlicensed(ctx context.Context, tenant core.TenantID, add func(string, int, error)) error {
	licensed, err := r.j.o.Licenses.LicensedUsers(ctx, tenant)
	if err != nil {
		return err
	}
	remove := func(userID string) {
		rows, err := r.j.o.Licenses.RemoveUser(ctx, tenant, userID)
		add(store.TableUsers, rows, wrap("remove unlicensed user", err))
	}
	seen := map[string]bool{}
	for p, err := range r.st.Presence.All(ctx, tenant, &store.ListOptions{Select: []string{"ChangedAt"}}) {
		if err != nil {
			return fmt.Errorf("list presence: %w", err)
		}
		if id := strings.ToLower(p.UserID); !licensed[id] && !seen[id] {
			seen[id] = true
			remove(p.UserID)
		}
	}
	for u, err := range r.st.Users.All(ctx, tenant, &store.ListOptions{Select: []string{"Licensed"}}) {
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		if id := strings.ToLower(u.ID); !licensed[id] && !seen[id] {
			seen[id] = true
			remove(u.ID)
		}
	}
	resources, err := r.st.Ledger.Resources(ctx, tenant)
	if err != nil {
		return fmt.Errorf("list ledger resources: %w", err)
	}
	for _, res := range resources {
		// Only user-scoped resources (named by the user's object id) belong to a user.
		id, err := core.ParseTenantID(res)
		if err != nil || licensed[string(id)] || seen[string(id)] {
			continue
		}
		n, err := r.st.Ledger.DeleteResource(ctx, tenant, res)
		add(store.TableLedger, n, wrap("prune ledger", err))
	}
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
