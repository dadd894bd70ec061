package app

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/privacy"
)

// seedUsers writes n licensed users with a presence row each, in batches.
func seedUsers(tb testing.TB, env *storetest.Env, tenant core.TenantID, n int) {
	tb.Helper()
	ctx := context.Background()
	pd := presence.OpenData(env.Store.DB())
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for start := 0; start < n; start += 100 {
		var us []registry.User
		var ps []presence.Presence
		for i := start; i < min(start+100, n); i++ {
			id := fmt.Sprintf("a0000000-0000-4000-8000-%012d", i)
			us = append(us, registry.User{ID: id, DisplayName: "User " + id, Licensed: true})
			ps = append(ps, presence.Presence{UserID: id, Availability: "Available", ChangedAt: now})
		}
		if err := env.Store.Users.UpsertBatch(ctx, tenant, us); err != nil {
			tb.Fatal(err)
		}
		if err := pd.Presence.UpsertBatch(ctx, tenant, ps); err != nil {
			tb.Fatal(err)
		}
	}
}

// The whole-tenant export visits every row of every per-tenant table once, page by page, with sealed
// fields opened, and refuses a token it did not make.
func TestTenantExportPagesThroughEveryTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := storetest.NewEnv(t, storetest.Options{})
	tenant, other := env.NewTenant(t), env.NewTenant(t)
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	seedUsers(t, env, tenant, 250)
	seedUsers(t, env, other, 3)
	x := privacy.NewTenantExport(env.Store.DB(), catalogue)
	seen := map[string]int{}
	token, pages := "", 0
	for {
		recs, next, err := x.Page(ctx, tenant, token, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 64 {
			t.Fatalf("page of %d rows, want at most 64", len(recs))
		}
		for _, r := range recs {
			seen[r.Table+"/"+r.Key]++
			if r.Table == "users" && r.Fields["DisplayName"] != "User "+r.Key {
				t.Errorf("user %s exported as %v, want the sealed name opened", r.Key, r.Fields["DisplayName"])
			}
		}
		pages++
		if next == "" {
			break
		}
		token = next
	}
	tablesSeen := map[string]int{}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s exported %d times", k, n)
		}
		table, _, _ := strings.Cut(k, "/")
		tablesSeen[table]++
	}
	if tablesSeen["users"] != 250 || tablesSeen["presence"] != 250 || tablesSeen["tenants"] != 1 || len(tablesSeen) != 3 || pages < 8 {
		t.Errorf("exported %v in %d pages; want 250 users, 250 presence rows, the tenant row, nothing of the other tenant", tablesSeen, pages)
	}
	if _, _, err := x.Page(ctx, tenant, "bm90LWEtdG9rZW4", 10); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("a forged token: %v", err)
	}
}

// BenchmarkTenantExport100k exports a tenant of 100,000 licensed users (200,000 rows) page by page and
// reports the largest heap seen between pages: bounded by the page, not by the tenant.
func BenchmarkTenantExport100k(b *testing.B) {
	ctx := context.Background()
	env := storetest.NewEnv(b, storetest.Options{})
	tenant := env.NewTenant(b)
	seedUsers(b, env, tenant, 100_000)
	x := privacy.NewTenantExport(env.Store.DB(), catalogue)
	var peak uint64
	rows := 0
	for b.Loop() {
		rows = 0
		token := ""
		for {
			recs, next, err := x.Page(ctx, tenant, token, privacy.MaxExportPage)
			if err != nil {
				b.Fatal(err)
			}
			rows += len(recs)
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			if next == "" {
				break
			}
			token = next
		}
	}
	if rows != 200_000 {
		b.Fatalf("exported %d rows, want 200000", rows)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(rows), "µs/row")
}
