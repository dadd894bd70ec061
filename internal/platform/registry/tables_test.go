package registry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/retention"
)

func TestTenantRegistry(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	s := env.Store
	a, b, c := env.NewTenant(t), env.NewTenant(t), env.NewTenant(t)
	for _, tc := range []struct {
		id    core.TenantID
		state registry.TenantState
	}{{a, registry.TenantActive}, {b, registry.TenantCancelled}, {c, registry.TenantCancelled}} {
		if err := s.Tenants.Create(ctx, registry.Tenant{ID: tc.id, State: tc.state, BookingWindowDays: 21}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Tenants.Create(ctx, registry.Tenant{ID: a}); !errors.Is(err, tables.ErrExists) {
		t.Errorf("second Create err = %v, want tables.ErrExists", err)
	}
	got, err := s.Tenants.Update(ctx, a, func(t *registry.Tenant) error { t.State = registry.TenantSuspended; return nil })
	if err != nil || got.State != registry.TenantSuspended || got.ID != a || got.BookingWindowDays != 21 {
		t.Errorf("Update = %+v, %v", got, err)
	}
	if _, err := s.Tenants.Update(ctx, a, func(t *registry.Tenant) error { t.ID = b; return nil }); err == nil {
		t.Error("Update that changed the tenant id succeeded")
	}
	if got, _ := s.Tenants.Get(ctx, b); got.State != registry.TenantCancelled {
		t.Errorf("b changed: %+v", got)
	}

	// Operator paths see every tenant, each with its own id.
	page, err := s.Tenants.OperatorListByState(ctx, registry.TenantCancelled, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[core.TenantID]bool{}
	for _, tn := range page.Items {
		ids[tn.ID] = true
	}
	if len(ids) != 2 || !ids[b] || !ids[c] {
		t.Errorf("cancelled tenants = %v, want b and c", ids)
	}
	n := 0
	for tn, err := range s.Tenants.OperatorAll(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if tn.ID == "" {
			t.Error("operator listing returned a tenant without id")
		}
		n++
	}
	if n != 3 {
		t.Errorf("OperatorAll = %d tenants, want 3", n)
	}
	if err := s.Tenants.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenants.Get(ctx, a); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("Get after Delete err = %v", err)
	}
}

func TestLedgerAndSyncErrors(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	lm := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, tenant := range []core.TenantID{a, b} {
		var rows []presence.LedgerEntry
		for _, res := range []string{"contacts", "contacts2", "events"} {
			for _, id := range []string{"AAMkAGI2/+=", "x", "y"} {
				rows = append(rows, presence.LedgerEntry{Resource: res, RecordID: id, LastModified: lm})
			}
		}
		if err := presence.OpenData(s.DB()).Ledger.UpsertBatch(ctx, tenant, rows); err != nil {
			t.Fatal(err)
		}
	}
	page, err := presence.OpenData(s.DB()).Ledger.ListResource(ctx, a, "contacts", nil)
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("ListResource(contacts) = %d, %v; want 3 (not contacts2's)", len(page.Items), err)
	}
	for _, e := range page.Items {
		if e.Resource != "contacts" || !e.LastModified.Equal(lm) {
			t.Errorf("entry %+v", e)
		}
	}
	k, _ := presence.LedgerKey("contacts", "AAMkAGI2/+=")
	if got, err := presence.OpenData(s.DB()).Ledger.Get(ctx, a, k); err != nil || got.RecordID != "AAMkAGI2/+=" {
		t.Errorf("Get by LedgerKey = %+v, %v", got, err)
	}
	n, err := presence.OpenData(s.DB()).Ledger.DeleteResource(ctx, a, "contacts")
	if err != nil || n != 3 {
		t.Errorf("DeleteResource = %d, %v; want 3", n, err)
	}
	if page, _ := presence.OpenData(s.DB()).Ledger.List(ctx, a, nil); len(page.Items) != 6 {
		t.Errorf("a's ledger after deleting one resource = %d, want 6", len(page.Items))
	}
	if page, _ := presence.OpenData(s.DB()).Ledger.List(ctx, b, nil); len(page.Items) != 9 {
		t.Errorf("b's ledger = %d, want 9", len(page.Items))
	}

	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tenant := range []core.TenantID{a, b} {
		for i, age := range []time.Duration{time.Hour, 6 * 24 * time.Hour, 8 * 24 * time.Hour, 30 * 24 * time.Hour} {
			e := presence.SyncError{Resource: "contacts", RecordID: string(rune('a' + i)), RecordName: "Jane Doe",
				ErrorCode: "remote-rejected", Attempts: 1, FirstFailedAt: now.Add(-age), LastFailedAt: now}
			if _, err := presence.OpenData(s.DB()).SyncErrors.Insert(ctx, tenant, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err = presence.OpenData(s.DB()).SyncErrors.DeleteFirstFailedBefore(ctx, a, now.Add(-7*24*time.Hour))
	if err != nil || n != 2 {
		t.Errorf("DeleteFirstFailedBefore = %d, %v; want 2", n, err)
	}
	if page, _ := presence.OpenData(s.DB()).SyncErrors.List(ctx, a, nil); len(page.Items) != 2 || page.Items[0].RecordName != "Jane Doe" {
		t.Errorf("a's remaining sync errors = %+v", page.Items)
	}
	if page, _ := presence.OpenData(s.DB()).SyncErrors.List(ctx, b, nil); len(page.Items) != 4 {
		t.Errorf("b's sync errors = %d, want 4", len(page.Items))
	}
}

func TestBookings(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	for _, tenant := range []core.TenantID{a, b} {
		rows := []bookings.Booking{
			{RoomID: "room1", EventID: "e-morning", Start: at(9), End: at(10), ShowAs: "busy"},
			{RoomID: "room1", EventID: "e-noon", Start: at(12), End: at(13), ShowAs: "tentative"},
			{RoomID: "room1", EventID: "e-old", Start: at(-72), End: at(-71), ShowAs: "busy"},
			{RoomID: "room1", EventID: "e-far", Start: at(24 * 60), End: at(24*60 + 1), ShowAs: "busy"},
			{RoomID: "room10", EventID: "e-other-room", Start: at(9), End: at(10), ShowAs: "busy"},
		}
		if err := bookings.OpenData(s.DB()).Bookings.UpsertBatch(ctx, tenant, rows); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"whole day", at(0), at(24), []string{"e-morning", "e-noon"}},
		{"touching end is not overlap", at(10), at(12), nil},
		{"partial overlap", at(9).Add(30 * time.Minute), at(12).Add(time.Minute), []string{"e-morning", "e-noon"}},
	}
	for _, tc := range tests {
		page, err := bookings.OpenData(s.DB()).Bookings.ListRoom(ctx, a, "room1", tc.from, tc.to, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, bk := range page.Items {
			if bk.RoomID != "room1" {
				t.Errorf("%s: got room %s", tc.name, bk.RoomID)
			}
			got = append(got, bk.EventID)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	n, err := bookings.OpenData(s.DB()).Bookings.DeleteOutsideWindow(ctx, a, at(0), at(24*28))
	if err != nil || n != 2 {
		t.Errorf("DeleteOutsideWindow = %d, %v; want 2 (old and far)", n, err)
	}
	if page, _ := bookings.OpenData(s.DB()).Bookings.List(ctx, b, nil); len(page.Items) != 5 {
		t.Errorf("b's bookings = %d, want 5", len(page.Items))
	}
}

func TestAuditAndReceiptsAppendOnly(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	env := storetest.NewEnv(t, storetest.Options{Now: func() time.Time { return clock }})
	s := env.Store
	a, b := env.NewTenant(t), env.NewTenant(t)
	var appended []audit.Entry
	for i := range 5 {
		e, err := audit.OpenLog(s.DB()).Append(ctx, a, audit.Entry{At: clock.Add(time.Duration(i) * time.Minute), Action: "license.assign", ActorID: "admin", Outcome: "success"})
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, e)
	}
	// Same instant twice: ids still differ.
	e1, _ := audit.OpenLog(s.DB()).Append(ctx, b, audit.Entry{Action: "x"})
	e2, _ := audit.OpenLog(s.DB()).Append(ctx, b, audit.Entry{Action: "x"})
	if e1.ID == e2.ID || !e1.At.Equal(clock) {
		t.Errorf("audit ids %q %q, At %v", e1.ID, e2.ID, e1.At)
	}
	page, err := audit.OpenLog(s.DB()).List(ctx, a, nil)
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("audit list = %d, %v", len(page.Items), err)
	}
	for i, e := range page.Items {
		if want := appended[4-i]; e.ID != want.ID || !e.At.Equal(want.At) {
			t.Errorf("entry %d = %s at %v, want newest first (%s)", i, e.ID, e.At, want.ID)
		}
	}

	for _, tenant := range []core.TenantID{a, b} {
		if _, err := retention.OpenReceipts(s.DB()).Append(ctx, tenant, retention.DeletionReceipt{Reason: "cancelled", KeyDestroyed: true, RowsDeleted: 7, Tables: "users=7"}); err != nil {
			t.Fatal(err)
		}
	}
	mine, err := retention.OpenReceipts(s.DB()).List(ctx, a, nil)
	if err != nil || len(mine.Items) != 1 || mine.Items[0].Tenant != a || mine.Items[0].RowsDeleted != 7 {
		t.Errorf("a's receipts = %+v, %v", mine.Items, err)
	}
	all, err := retention.OpenReceipts(s.DB()).OperatorList(ctx, nil)
	if err != nil || len(all.Items) != 2 {
		t.Fatalf("operator receipts = %d, %v", len(all.Items), err)
	}
	seen := map[core.TenantID]bool{}
	for _, r := range all.Items {
		seen[r.Tenant] = true
	}
	if !seen[a] || !seen[b] {
		t.Errorf("operator receipts tenants = %v", seen)
	}
}

func TestJobLeases(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	env := storetest.NewEnv(t, storetest.Options{Now: func() time.Time { return clock }})
	j := jobs.OpenLeases(env.Store.DB())
	a, b := env.NewTenant(t), env.NewTenant(t)

	job, err := j.AcquireLease(ctx, a, "renew", "inst-1", time.Minute)
	if err != nil || job.LeaseOwner != "inst-1" || job.Runs != 1 {
		t.Fatalf("first acquire = %+v, %v", job, err)
	}
	if _, err := j.AcquireLease(ctx, a, "renew", "inst-2", time.Minute); !errors.Is(err, jobs.ErrLeaseHeld) {
		t.Errorf("second owner err = %v, want ErrLeaseHeld", err)
	}
	if _, err := j.AcquireLease(ctx, b, "renew", "inst-2", time.Minute); err != nil {
		t.Errorf("same job name in another tenant: %v", err)
	}
	if job, err := j.AcquireLease(ctx, a, "renew", "inst-1", 2*time.Minute); err != nil || job.Runs != 1 {
		t.Errorf("renewal by the owner = %+v, %v; want Runs still 1", job, err)
	}
	if _, err := j.Checkpoint(ctx, a, "renew", "inst-1", "page-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Checkpoint(ctx, a, "renew", "inst-2", "page-9"); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("checkpoint by non-owner err = %v, want ErrLeaseLost", err)
	}

	clock = clock.Add(3 * time.Minute) // inst-1 died; its lease ran out
	job, err = j.AcquireLease(ctx, a, "renew", "inst-2", time.Minute)
	if err != nil || job.LeaseOwner != "inst-2" || job.Checkpoint != "page-2" || job.Runs != 2 {
		t.Fatalf("takeover = %+v, %v; want inst-2 resuming at page-2", job, err)
	}
	if _, err := j.Release(ctx, a, "renew", "inst-1", ""); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("release by the old owner err = %v, want ErrLeaseLost", err)
	}
	job, err = j.Release(ctx, a, "renew", "inst-2", "")
	if err != nil || job.LeaseOwner != "" || !job.LastSuccessAt.Equal(clock) {
		t.Errorf("release = %+v, %v", job, err)
	}
	if _, err := j.AcquireLease(ctx, a, "renew", "inst-3", time.Minute); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}
