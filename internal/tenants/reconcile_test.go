package tenants

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
)

func (f *fixture) snapshot(t *testing.T, tenant core.TenantID, day time.Time) BillingSnapshot {
	t.Helper()
	rk, err := BillingKey(day, Product)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.data.Billing.Get(ctx, tenant, rk)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", day.Format("2006-01-02"), err)
	}
	return b
}

func TestReconcileRefreshesRemovesAndSnapshots(t *testing.T) {
	t.Parallel()
	dir := newFakeDirectory(user(uid(1), "ada"), user(uid(2), "bob"), user(uid(3), "cy"), user(uid(4), "dan"), user(uid(5), "eve"))
	f := newFixture(t, dir)
	id := f.activeTenant(t, 4)
	for i := 1; i <= 4; i++ {
		if _, err := f.svc.Assign(ctx, operator, id, uid(i)); err != nil {
			t.Fatal(err)
		}
	}
	// ada and bob were active within the last day, cy two days ago.
	for u, at := range map[string]time.Time{uid(1): start.Add(-time.Hour), uid(2): start.Add(-23 * time.Hour), uid(3): start.Add(-48 * time.Hour)} {
		if _, err := presence.OpenData(f.st.DB()).Presence.Upsert(ctx, id, presence.Presence{UserID: u, Availability: "Busy", ChangedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	job := NewReconciler(f.svc, time.Minute)

	// Day 1: first run enumerates the directory, refreshes profiles, snapshots.
	renamed := user(uid(1), "ada-renamed")
	dir.change(uid(1), &renamed)
	if err := job.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if u, _ := f.st.Users.Get(ctx, id, uid(1)); u.DisplayName != "ada-renamed" {
		t.Errorf("profile not refreshed: %q", u.DisplayName)
	}
	day1 := start.Truncate(24 * time.Hour)
	got := f.snapshot(t, id, day1)
	want := BillingSnapshot{Day: day1, Product: Product, Purchased: 4, Assigned: 4, Active: 2,
		PeriodStart: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), PeriodPurchased: 4, PeriodAssigned: 4, PeriodActive: 2, TakenAt: start}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("day 1 snapshot = %+v\nwant              %+v", got, want)
	}
	if n := dir.count("full"); n != 1 {
		t.Errorf("full enumerations = %d, want 1", n)
	}

	// The same day again: nothing to do, the directory is not asked.
	deltas := dir.count("delta")
	if err := job.Run(ctx); err != nil || dir.count("delta") != deltas {
		t.Errorf("second run the same day: err %v, delta calls %d → %d", err, deltas, dir.count("delta"))
	}

	// Day 2: bob deleted, cy disabled in the directory; eve changed but holds no license.
	f.clock.Advance(24 * time.Hour)
	dir.change(uid(2), nil)
	cy := user(uid(3), "cy")
	cy.Enabled = false
	dir.change(uid(3), &cy)
	eve := user(uid(5), "eve2")
	dir.change(uid(5), &eve)
	if err := job.Run(ctx); err != nil {
		t.Fatalf("Run day 2: %v", err)
	}
	for _, u := range []string{uid(2), uid(3)} {
		if _, err := f.st.Users.Get(ctx, id, u); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("user %s still stored: %v", u, err)
		}
		if _, err := presence.OpenData(f.st.DB()).Presence.Get(ctx, id, u); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("presence of %s still stored: %v", u, err)
		}
	}
	if _, err := f.st.Users.Get(ctx, id, uid(5)); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("an unlicensed user was stored: %v", err)
	}
	day2 := day1.Add(24 * time.Hour)
	got = f.snapshot(t, id, day2)
	if got.Assigned != 2 || got.Active != 0 || got.PeriodAssigned != 4 || got.PeriodActive != 2 || got.Purchased != 4 {
		t.Errorf("day 2 snapshot = %+v; want assigned 2, active 0, period peaks 4 and 2", got)
	}
	trail := strings.Join(f.auditTrail(t, id), " ")
	if n := strings.Count(trail, "license.remove/success/system"); n != 2 {
		t.Errorf("audit has %d system removals, want 2: %s", n, trail)
	}

	// Day 3: the delta link expired; a full enumeration runs instead, and a license reduction below the
	// assignments is reported, not truncated.
	f.clock.Advance(24 * time.Hour)
	dir.mu.Lock()
	dir.expired = true
	dir.mu.Unlock()
	if _, err := f.svc.SetPurchasedLicenses(ctx, operator, id, 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := job.Run(ctx); err != nil {
		t.Fatalf("Run day 3: %v", err)
	}
	if n := dir.count("full"); n != 2 {
		t.Errorf("full enumerations = %d, want 2 (after the expired link)", n)
	}
	got = f.snapshot(t, id, day2.Add(24*time.Hour))
	if got.Purchased != 1 || got.Assigned != 2 || got.PeriodPurchased != 4 {
		t.Errorf("day 3 snapshot = %+v; want purchased 1, assigned 2 kept, period purchased 4", got)
	}
	if assigned, _ := f.svc.AssignedUsers(ctx, id); len(assigned) != 2 {
		t.Errorf("assignments = %d after the reduction, want 2 (reported, not truncated)", len(assigned))
	}
	if trail := f.auditTrail(t, id); trail[len(trail)-1] != "license.overassignment.report/success/system" {
		t.Errorf("last audit entry = %s, want the over-assignment report", trail[len(trail)-1])
	}

	// Next month: the period figures start again.
	f.clock.Set(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got = f.snapshot(t, id, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if !got.PeriodStart.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || got.PeriodPurchased != 1 || got.PeriodAssigned != 2 {
		t.Errorf("new period snapshot = %+v", got)
	}
}

func TestReconcileSkipsInactiveTenantsAndReportsMissingDirectory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	active := f.activeTenant(t, 2)
	suspended := f.activeTenant(t, 2)
	if _, err := f.svc.Suspend(ctx, operator, suspended); err != nil {
		t.Fatal(err)
	}
	err := NewReconciler(f.svc, time.Minute).Run(ctx)
	if err == nil || !errors.Is(err, errNoDirectory) || apperr.CodeOf(err) != apperr.Unavailable {
		t.Errorf("Run without a directory: err = %v, want the missing directory reported", err)
	}
	// The snapshot is taken anyway; the suspended tenant is left alone.
	f.snapshot(t, active, start.Truncate(24*time.Hour))
	rk, _ := BillingKey(start, Product)
	if _, err := f.svc.data.Billing.Get(ctx, suspended, rk); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("suspended tenant got a snapshot: %v", err)
	}
}

// Overlapping runs share the work through per-tenant leases: each tenant is enumerated once.
func TestReconcileOverlappingRuns(t *testing.T) {
	t.Parallel()
	dir := newFakeDirectory(user(uid(1), "ada"))
	f := newFixture(t, dir)
	var ids []core.TenantID
	for range 4 {
		ids = append(ids, f.activeTenant(t, 1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- NewReconciler(f.svc, time.Minute).Run(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("overlapping run: %v", err)
		}
	}
	if n := dir.count("full"); n != len(ids) {
		t.Errorf("full enumerations = %d, want one per tenant (%d)", n, len(ids))
	}
	for _, id := range ids {
		f.snapshot(t, id, start.Truncate(24*time.Hour))
	}
}
