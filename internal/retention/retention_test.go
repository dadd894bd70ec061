package retention

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/tenants"
)

const day = 24 * time.Hour

// The promise, at each boundary: nothing is deleted a minute (or an hour) before a period ends, and
// exactly what is due is gone a minute (or an hour) after, provably by a scan of every table.
func TestRetentionBoundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		end           func(f *fixture, id core.TenantID) error
		before, after time.Duration // around the tenant-data deadline
		period        time.Duration
		reason        string
	}{
		{"cancelled: 23h59m vs 24h01m", func(f *fixture, id core.TenantID) error { _, err := f.svc.Cancel(ctx, operator, id); return err },
			23*time.Hour + 59*time.Minute, 24*time.Hour + time.Minute, day, ReasonCancelled},
		{"suspended: 6d23h vs 7d1h", func(f *fixture, id core.TenantID) error { _, err := f.svc.Suspend(ctx, operator, id); return err },
			6*day + 23*time.Hour, 7*day + time.Hour, 7 * day, ReasonSuspended},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id, seed := f.seedTenant(t)
			other, _ := f.seedTenant(t) // an active neighbour that must not lose a row
			if err := tt.end(f, id); err != nil {
				t.Fatal(err)
			}
			full := f.scan(t, id)
			wantFull := maps.Clone(seed.rows)
			wantFull[audit.TableAudit]++ // the cancel/suspend action's own entry
			if fmt.Sprint(full) != fmt.Sprint(wantFull) {
				t.Fatalf("seeded scan = %v, want %v", full, wantFull)
			}
			otherBefore := f.scan(t, other)
			job := f.job(t, Options{})
			runAt := func(at time.Duration) {
				t.Helper()
				f.clock.Set(t0.Add(at))
				if err := job.Run(ctx); err != nil {
					t.Fatalf("Run at +%s: %v", at, err)
				}
			}

			runAt(tt.before)
			if got := f.scan(t, id); fmt.Sprint(got) != fmt.Sprint(full) {
				t.Errorf("at +%s: scan = %v, want everything kept: %v", tt.before, got, full)
			}
			if got := f.secretsOf(t, id); len(got) != 3 {
				t.Errorf("at +%s: secrets = %v, want all 3 kept", tt.before, got)
			}

			runAt(tt.after)
			got := f.scan(t, id)
			want := map[string]int{tenants.TableLicenses: 3, tenants.TableBilling: 2, TableDeletionReceipts: 1}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("at +%s: scan = %v, want only license and billing data and the receipt: %v", tt.after, got, want)
			}
			if got := f.secretsOf(t, id); len(got) != 0 {
				t.Errorf("at +%s: secrets left: %v", tt.after, got)
			}
			if _, err := f.env.Keys.Seal(ctx, id, "users", "x", []byte("x")); !errors.Is(err, tenantkey.ErrNoKey) {
				t.Errorf("data key after deletion: Seal err = %v, want ErrNoKey", err)
			}
			if !slices.Equal(f.graph.deleted, []string{string(id) + "/sub-presence-" + string(id)[:8], string(id) + "/sub-rooms-" + string(id)[:8]}) {
				t.Errorf("graph deletions = %v", f.graph.deleted)
			}
			// The neighbour keeps everything but what ages out by the routine rules (sync errors after 7 days).
			if got, want := without(f.scan(t, other), presence.TableSyncErrors), without(otherBefore, presence.TableSyncErrors); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("neighbour tenant changed: %v, was %v", got, want)
			}
			recs := f.receipts(t, id)
			if len(recs) != 1 {
				t.Fatalf("receipts = %+v, want 1", recs)
			}
			deleted := without(full, tenants.TableLicenses, tenants.TableBilling)
			var parts []string
			for k, v := range deleted {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(parts)
			r := recs[0]
			if r.Reason != tt.reason || r.Categories != CategoryTenant || !r.EndedAt.Equal(t0) || !r.RequestedAt.Equal(t0.Add(tt.period)) ||
				!r.CompletedAt.Equal(t0.Add(tt.after)) || !r.KeyDestroyed || r.RowsDeleted != total(deleted) ||
				r.Tables != strings.Join(parts, ",") || r.Secrets != 2 || r.Subscriptions != 2 {
				t.Errorf("receipt = %+v\nwant reason %s, %d rows: %s, 2 secrets, 2 subscriptions", r, tt.reason, total(deleted), strings.Join(parts, ","))
			}
			if strings.Contains(fmt.Sprint(r), "User 1") || strings.Contains(fmt.Sprint(r), "contoso") {
				t.Error("receipt holds personal data")
			}

			// License data: 30 days after the end of the contract; billing: 90.
			runAt(29 * day)
			if got := f.scan(t, id); got[tenants.TableLicenses] != 3 {
				t.Errorf("at +29d: licenses = %d, want 3 kept", got[tenants.TableLicenses])
			}
			runAt(31 * day)
			if got, want := f.scan(t, id), map[string]int{tenants.TableBilling: 2, TableDeletionReceipts: 2}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("at +31d: scan = %v, want %v", got, want)
			}
			runAt(89 * day)
			if got := f.scan(t, id); got[tenants.TableBilling] != 2 {
				t.Errorf("at +89d: billing = %d, want 2 kept", got[tenants.TableBilling])
			}
			runAt(91 * day)
			if got, want := f.scan(t, id), map[string]int{TableDeletionReceipts: 3}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("at +91d: scan = %v, want only the 3 receipts", got)
			}
			var summary []string
			for _, r := range f.receipts(t, id) {
				summary = append(summary, fmt.Sprintf("%s:%s:%d:%s", r.Categories, r.Reason, r.RowsDeleted, r.Tables))
			}
			sort.Strings(summary)
			want2 := []string{"billing:" + tt.reason + ":2:billing=2", "licenses:" + tt.reason + ":3:licenses=3",
				fmt.Sprintf("tenant:%s:%d:%s", tt.reason, total(deleted), strings.Join(parts, ","))}
			if fmt.Sprint(summary) != fmt.Sprint(want2) {
				t.Errorf("receipts = %v\nwant       %v", summary, want2)
			}
			runAt(120 * day) // nothing more to do, nothing written twice
			if n := len(f.receipts(t, id)); n != 3 {
				t.Errorf("receipts after a further run = %d, want 3", n)
			}
		})
	}
}

func TestReactivationWithinGraceKeepsEverything(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, _ := f.seedTenant(t)
	if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(23 * time.Hour))
	if _, err := f.svc.Reactivate(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	before := f.scan(t, id)
	job := f.job(t, Options{})
	for _, at := range []time.Duration{24*time.Hour + time.Minute, 8 * day, 31 * day, 91 * day} {
		f.clock.Set(t0.Add(at))
		if err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Bookings and sync errors age out by the routine rules as days pass; everything else stays.
		got := without(f.scan(t, id), bookings.TableBookings, presence.TableSyncErrors)
		if want := without(before, bookings.TableBookings, presence.TableSyncErrors); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("at +%s: scan = %v, want %v", at, got, want)
		}
	}
	if len(f.secretsOf(t, id)) != 3 || len(f.receipts(t, id)) != 0 {
		t.Errorf("secrets %v, receipts %v: want all kept, none written", f.secretsOf(t, id), f.receipts(t, id))
	}
	if _, err := f.env.Keys.Seal(ctx, id, "users", "x", []byte("x")); err != nil {
		t.Errorf("data key gone: %v", err)
	}
}

// A reactivation racing the job's claim: exactly one wins. Here the job claims first, so the
// reactivation is refused even inside a grace period that it sees as barely over.
func TestClaimedTenantCannotBeReactivated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, _ := f.seedTenant(t)
	if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(day + time.Second))
	f.kill.left.Store(12) // die right after the claim and the first steps
	if err := f.job(t, Options{}).Run(ctx); err == nil {
		t.Fatal("the killed run reported success")
	}
	f.kill.left.Store(-1)
	if tn, err := f.st.Tenants.Get(ctx, id); err != nil || tn.State != registry.TenantDeleting {
		t.Fatalf("tenant = %+v, %v; want claimed (deleting)", tn, err)
	}
	f.clock.Set(t0.Add(time.Hour)) // even a clock that says "within grace" cannot undo the claim
	if _, err := f.svc.Reactivate(ctx, operator, id); err == nil {
		t.Error("a claimed tenant was reactivated")
	}
}

// A run killed at any point is finished by the next one, with an exact receipt and nothing left over.
func TestKilledRunIsFinishedByTheNext(t *testing.T) {
	t.Parallel()
	// How many storage requests one uninterrupted deletion run makes, to die at points across all of it
	// (claim, key, census, subscriptions, secrets, each table, receipt, registry row, checkpoints).
	probe := newFixture(t)
	pid, _ := probe.seedTenant(t)
	if _, err := probe.svc.Cancel(ctx, operator, pid); err != nil {
		t.Fatal(err)
	}
	probe.clock.Set(t0.Add(day + time.Minute))
	before := probe.kill.total.Load()
	if err := probe.job(t, Options{}).Run(ctx); err != nil || len(probe.receipts(t, pid)) != 1 {
		t.Fatalf("probe run: %v", err)
	}
	n := probe.kill.total.Load() - before
	var points []int64
	for i := int64(1); i < 12; i++ {
		points = append(points, max(1, n*i/12))
	}
	points = append(points, n-2, n-1)
	for _, after := range points {
		t.Run(fmt.Sprintf("killed after %d of %d requests", after, n), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id, seed := f.seedTenant(t)
			if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
				t.Fatal(err)
			}
			full := f.scan(t, id)
			f.clock.Set(t0.Add(day + time.Minute))
			f.kill.left.Store(after)
			err := f.job(t, Options{}).Run(ctx)
			f.kill.left.Store(-1)
			if err == nil && len(f.receipts(t, id)) == 0 {
				t.Fatal("the killed run reported success without finishing")
			}
			// The dead run's lease blocks others until it expires.
			if err := f.job(t, Options{}).Run(ctx); err != nil {
				t.Fatalf("run while the lease is held: %v", err)
			}
			f.clock.Set(t0.Add(day + time.Minute + 3*time.Minute))
			if err := f.job(t, Options{}).Run(ctx); err != nil {
				t.Fatalf("restarted run: %v", err)
			}
			if got, want := f.scan(t, id), map[string]int{tenants.TableLicenses: 3, tenants.TableBilling: 2, TableDeletionReceipts: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("scan after restart = %v, want %v", got, want)
			}
			if len(f.secretsOf(t, id)) != 0 {
				t.Errorf("secrets left: %v", f.secretsOf(t, id))
			}
			recs := f.receipts(t, id)
			if want := total(without(full, tenants.TableLicenses, tenants.TableBilling)); len(recs) != 1 || recs[0].RowsDeleted != want || recs[0].Secrets != len(seed.secrets)-1 {
				t.Errorf("receipts = %+v; want one with %d rows and %d secrets", recs, want, len(seed.secrets)-1)
			}
		})
	}
}

// Two runs at once: one works, the other sees the lease and does nothing; neither fails.
func TestOverlappingRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []core.TenantID
	want := 0
	for range 3 {
		id, seed := f.seedTenant(t)
		if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		want = total(without(seed.rows, tenants.TableLicenses, tenants.TableBilling)) + 1 // + the cancel's audit entry
	}
	f.clock.Set(t0.Add(day + time.Minute))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = f.job(t, Options{}).Run(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	// Whatever the interleaving, a later run finishes what is left, and nothing is done twice.
	if err := f.job(t, Options{}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if recs := f.receipts(t, id); len(recs) != 1 || recs[0].RowsDeleted != want {
			t.Errorf("tenant %s receipts = %+v; want exactly one of %d rows", id, recs, want)
		}
		if got := f.scan(t, id); got[registry.TableUsers] != 0 || got[registry.TableTenants] != 0 {
			t.Errorf("tenant %s not deleted: %v", id, got)
		}
	}
	if n := len(f.graph.deleted); n != 6 {
		t.Errorf("graph deletions = %d, want 6 (2 per tenant, once)", n)
	}
}

// The row budget bounds each run; the work carries over and the receipt still counts every row.
func TestRunIsBoundedAndResumes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, _ := f.seedTenant(t)
	var extra []presence.LedgerEntry
	for i := range 500 {
		extra = append(extra, presence.LedgerEntry{Resource: "contacts", RecordID: fmt.Sprintf("bulk-%03d", i), LastModified: t0})
	}
	if err := presence.OpenData(f.st.DB()).Ledger.UpsertBatch(ctx, id, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	full := f.scan(t, id)
	f.clock.Set(t0.Add(day + time.Minute))
	runs := 0
	for ; runs < 50 && len(f.receipts(t, id)) == 0; runs++ {
		before := total(f.scan(t, id))
		if err := f.job(t, Options{MaxRows: 100}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		if deleted := before - total(f.scan(t, id)); deleted > 101 { // + the receipt row itself
			t.Errorf("run %d deleted %d rows, over its budget of 100", runs, deleted)
		}
	}
	want := total(without(full, tenants.TableLicenses, tenants.TableBilling))
	if runs < want/100 {
		t.Errorf("finished in %d runs; a budget of 100 rows needs at least %d", runs, want/100)
	}
	if recs := f.receipts(t, id); len(recs) != 1 || recs[0].RowsDeleted != want {
		t.Errorf("receipt = %+v, want %d rows", recs, want)
	}
}

// Graph refusing a subscription deletion does not hold the tenant's deletion back.
func TestGraphFailureIsBestEffort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, _ := f.seedTenant(t)
	f.graph.fail["sub-presence-"+string(id)[:8]] = true
	if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(day + time.Minute))
	if err := f.job(t, Options{}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if recs := f.receipts(t, id); len(recs) != 1 || recs[0].Subscriptions != 1 || f.scan(t, id)[registry.TableSubscriptions] != 0 {
		t.Errorf("receipts = %+v, scan %v; want the deletion done with 1 subscription deleted at Graph", recs, f.scan(t, id))
	}
}

// A tenant that never consented is deleted when its consent link expires; it has no later phases.
func TestExpiredConsentIsDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc, err := tenants.New(tenants.Options{Store: f.st, Keys: f.env.Keys, Now: f.clock.Now, Policy: policy_,
		AppID: "app", RedirectURI: "https://x.example.eu/cb", ConsentTTL: 72 * time.Hour, Regions: map[string]bool{"westeurope": true}})
	if err != nil {
		t.Fatal(err)
	}
	id := f.env.NewTenant(t)
	if _, err := svc.StartOnboarding(ctx, operator, id, tenants.OnboardingRequest{PurchasedLicenses: 3, HomeRegion: "westeurope"}); err != nil {
		t.Fatal(err)
	}
	job := f.job(t, Options{})
	f.clock.Set(t0.Add(71 * time.Hour))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.scan(t, id); got[registry.TableTenants] != 1 {
		t.Errorf("pending tenant deleted before its link expired: %v", got)
	}
	f.clock.Set(t0.Add(73 * time.Hour))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(200 * day))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	recs := f.receipts(t, id)
	if got := f.scan(t, id); fmt.Sprint(got) != fmt.Sprint(map[string]int{TableDeletionReceipts: 1}) ||
		len(recs) != 1 || recs[0].Reason != ReasonConsentExpired || recs[0].Tables != "audit=1,tenants=1" {
		t.Errorf("scan %v, receipts %+v; want one consent-expired receipt for audit=1,tenants=1", got, recs)
	}
}

// A customer who comes back after the deletion starts a new contract: the old contract's license and
// billing data still go on time, the new contract's rows stay.
func TestReturningCustomerKeepsNewContract(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, _ := f.seedTenant(t)
	if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	job := f.job(t, Options{})
	f.clock.Set(t0.Add(2 * day))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Back on day 10, with a new license and a billing row.
	back := t0.Add(10 * day)
	f.clock.Set(back)
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, PurchasedLicenses: 1, CreatedAt: back}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.OpenData(f.st.DB()).Licenses.Insert(ctx, id, tenants.Assignment{Product: tenants.Product, UserID: uid(7), AssignedAt: back}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.OpenData(f.st.DB()).Billing.Insert(ctx, id, tenants.BillingSnapshot{Day: back.Truncate(day), Product: tenants.Product, Purchased: 1, TakenAt: back}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{31 * day, 91 * day} {
		f.clock.Set(t0.Add(at))
		if err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := f.scan(t, id)
	if got[tenants.TableLicenses] != 1 || got[tenants.TableBilling] != 1 || got[registry.TableTenants] != 1 || got[TableDeletionReceipts] != 3 {
		t.Errorf("scan = %v; want the new contract's license, billing and tenant rows kept, 3 receipts", got)
	}
}

// flakySecrets fails deletions of names containing broken (a Key Vault outage for one tenant).
type flakySecrets struct {
	Secrets
	mu     sync.Mutex
	broken string
}

func (s *flakySecrets) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken != "" && strings.Contains(name, broken) {
		return errors.New("vault: 503")
	}
	return s.Secrets.Delete(ctx, name)
}

// One tenant's failure is reported and retried next run; the others are deleted meanwhile.
func TestPerTenantFailuresDoNotStopOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := f.seedTenant(t)
	b, _ := f.seedTenant(t)
	for _, id := range []core.TenantID{a, b} {
		if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
			t.Fatal(err)
		}
	}
	fs := &flakySecrets{Secrets: f.env.Secrets, broken: string(a)}
	job := f.job(t, Options{})
	job.o.Secrets = fs
	f.clock.Set(t0.Add(day + time.Minute))
	err := job.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), string(a)) || strings.Contains(err.Error(), string(b)) {
		t.Fatalf("Run err = %v; want tenant %s's failure only", err, a)
	}
	if len(f.receipts(t, b)) != 1 || len(f.receipts(t, a)) != 0 {
		t.Errorf("receipts: a %d, b %d; want b deleted, a pending", len(f.receipts(t, a)), len(f.receipts(t, b)))
	}
	if tn, err := f.st.Tenants.Get(ctx, a); err != nil || tn.State != registry.TenantDeleting {
		t.Errorf("tenant a = %+v, %v; want still claimed", tn, err)
	}
	fs.mu.Lock()
	fs.broken = ""
	fs.mu.Unlock()
	f.clock.Advance(time.Hour)
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if recs := f.receipts(t, a); len(recs) != 1 || recs[0].Secrets != 2 || len(f.secretsOf(t, a)) != 0 {
		t.Errorf("after the retry: receipts %+v, secrets %v", recs, f.secretsOf(t, a))
	}
}
