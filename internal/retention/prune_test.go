package retention

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/tenants"
)

func TestRoutinePruning(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.env.NewTenant(t)
	now := t0
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, BookingWindowDays: 14, PurchasedLicenses: 5}); err != nil {
		t.Fatal(err)
	}
	today := now.Truncate(day)
	windowEnd := today.Add(14 * day)
	cases := []struct {
		id         string
		start, end time.Time
		keep       bool
	}{
		{"ended-before-today", today.Add(-2 * time.Hour), today.Add(-time.Second), false},
		{"ended-exactly-at-midnight", today.Add(-time.Hour), today, false},
		// A booking goes as soon as it has ended (issue 15), not at the end of its day.
		{"ended-earlier-today", today.Add(-time.Hour), today.Add(time.Second), false},
		{"ended-just-now", now.Add(-time.Hour), now, false},
		{"running-now", now.Add(-time.Hour), now.Add(time.Second), true},
		{"later-today", now.Add(time.Hour), now.Add(2 * time.Hour), true},
		{"starts-just-before-window-end", windowEnd.Add(-time.Second), windowEnd.Add(time.Hour), true},
		{"starts-at-window-end", windowEnd, windowEnd.Add(time.Hour), false},
		{"far-future", windowEnd.Add(30 * day), windowEnd.Add(30*day + time.Hour), false},
	}
	var bs []bookings.Booking
	for _, b := range cases {
		bs = append(bs, bookings.Booking{RoomID: "room1", EventID: b.id, Start: b.start, End: b.end, ShowAs: "busy"})
	}
	if err := bookings.OpenData(f.st.DB()).Bookings.InsertBatch(ctx, id, bs); err != nil {
		t.Fatal(err)
	}
	syncErrors := []struct {
		id    string
		first time.Time
		keep  bool
	}{
		{"old", now.Add(-7*day - time.Second), false},
		{"way-old", now.Add(-30 * day), false},
		{"young", now.Add(-7*day + time.Second), true},
		{"fresh", now, true},
	}
	var ses []presence.SyncError
	for _, s := range syncErrors {
		ses = append(ses, presence.SyncError{Resource: "contacts", RecordID: s.id, RecordName: "Name " + s.id, ErrorCode: "x", FirstFailedAt: s.first, LastFailedAt: now})
	}
	if err := presence.OpenData(f.st.DB()).SyncErrors.InsertBatch(ctx, id, ses); err != nil {
		t.Fatal(err)
	}
	// uid(1) licensed with all its rows; uid(2) unassigned but left behind; uid(3) presence only (late
	// notification); uid(4) ledger only.
	if _, err := tenants.OpenData(f.st.DB()).Licenses.Insert(ctx, id, tenants.Assignment{Product: tenants.Product, UserID: uid(1), AssignedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []int{1, 2} {
		if _, err := f.st.Users.Insert(ctx, id, registry.User{ID: uid(u), DisplayName: "x", Licensed: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []int{1, 2, 3} {
		if _, err := presence.OpenData(f.st.DB()).Presence.Upsert(ctx, id, presence.Presence{UserID: uid(u), Availability: "Away", ChangedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var ledger []presence.LedgerEntry
	for _, r := range []string{uid(1), uid(2), uid(4), "contacts"} {
		ledger = append(ledger, presence.LedgerEntry{Resource: r, RecordID: "a", LastModified: now}, presence.LedgerEntry{Resource: r, RecordID: "b", LastModified: now})
	}
	if err := presence.OpenData(f.st.DB()).Ledger.InsertBatch(ctx, id, ledger); err != nil {
		t.Fatal(err)
	}

	f.clock.Set(now)
	if err := f.job(t, Options{}).Run(ctx); err != nil {
		t.Fatal(err)
	}

	for _, b := range cases {
		rk, _ := bookings.BookingKey("room1", b.id)
		_, err := bookings.OpenData(f.st.DB()).Bookings.Get(ctx, id, rk)
		if kept := err == nil; kept != b.keep {
			t.Errorf("booking %s: kept = %v, want %v (%v)", b.id, kept, b.keep, err)
		}
	}
	for _, s := range syncErrors {
		rk, _ := presence.SyncErrorKey("contacts", s.id)
		_, err := presence.OpenData(f.st.DB()).SyncErrors.Get(ctx, id, rk)
		if kept := err == nil; kept != s.keep {
			t.Errorf("sync error %s: kept = %v, want %v", s.id, kept, s.keep)
		}
	}
	var users, present []string
	for u, err := range f.st.Users.All(ctx, id, &tables.ListOptions{Select: []string{"Licensed"}}) {
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	for p, err := range presence.OpenData(f.st.DB()).Presence.All(ctx, id, nil) {
		if err != nil {
			t.Fatal(err)
		}
		present = append(present, p.UserID)
	}
	resources, err := presence.OpenData(f.st.DB()).Ledger.Resources(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(resources)
	if fmt.Sprint(users) != fmt.Sprint([]string{uid(1)}) || fmt.Sprint(present) != fmt.Sprint([]string{uid(1)}) ||
		fmt.Sprint(resources) != fmt.Sprint([]string{uid(1), "contacts"}) {
		t.Errorf("after pruning: users %v, presence %v, ledger resources %v; want only the licensed user's and the shared resource", users, present, resources)
	}
	if _, err := f.st.Tenants.Get(ctx, id); err != nil {
		t.Errorf("tenant row: %v", err)
	}
	if recs := f.receipts(t, id); len(recs) != 0 {
		t.Errorf("routine pruning wrote receipts: %+v", recs)
	}
}

// A booking window above the configured limit is capped by it.
func TestBookingWindowCappedByConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.env.NewTenant(t)
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, BookingWindowDays: 365}); err != nil {
		t.Fatal(err)
	}
	limit := t0.Truncate(day).Add(21 * day) // fixture's configured window
	if err := bookings.OpenData(f.st.DB()).Bookings.InsertBatch(ctx, id, []bookings.Booking{
		{RoomID: "r", EventID: "in", Start: limit.Add(-time.Hour), End: limit},
		{RoomID: "r", EventID: "out", Start: limit, End: limit.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.job(t, Options{}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	in, _ := bookings.BookingKey("r", "in")
	out, _ := bookings.BookingKey("r", "out")
	if _, err := bookings.OpenData(f.st.DB()).Bookings.Get(ctx, id, in); err != nil {
		t.Errorf("booking inside the capped window deleted: %v", err)
	}
	if _, err := bookings.OpenData(f.st.DB()).Bookings.Get(ctx, id, out); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("booking beyond the configured limit kept: %v", err)
	}
}

// Pruning stops inside a tenant when the run's rows are used up (as when its time is), not after the
// tenant: many users left behind take several runs, each within its budget, and the cursor does not pass
// the tenant until it is done.
func TestPruningStopsInsideATenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.env.NewTenant(t)
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, PurchasedLicenses: 5}); err != nil {
		t.Fatal(err)
	}
	pd := presence.OpenData(f.st.DB())
	const left = 9
	for u := range left {
		if _, err := pd.Presence.Upsert(ctx, id, presence.Presence{UserID: uid(100 + u), Availability: "Away", ChangedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		n := 0
		for _, err := range pd.Presence.All(ctx, id, nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	f.clock.Set(t0)
	runs := 0
	for n := count(); n > 0; runs++ {
		if runs == 10 {
			t.Fatalf("%d presence rows left after %d runs", n, runs)
		}
		if err := f.job(t, Options{MaxRows: 2}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		m := count()
		if n-m > 2 || n-m == 0 {
			t.Fatalf("run %d removed %d users' rows; want 1 or 2 (a budget of 2 rows)", runs, n-m)
		}
		n = m
	}
	if runs < (left+1)/2 {
		t.Errorf("pruned %d users in %d runs with a budget of 2 rows", left, runs)
	}
}
