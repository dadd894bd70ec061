package retention

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/tenants"
)

// benchRows is the size of the tenant deleted in BenchmarkDeleteTenant.
const benchRows = 100_000

// BenchmarkDeleteTenant deletes a tenant of 100,000 rows from Azurite three ways and reports the
// storage requests and the time each takes:
//
//   - job: the EnforceRetention run (claim, key, census, subscriptions, secrets, bounded batch steps
//     with a checkpoint after each, receipt);
//   - store-batch: tables.Partitions.Delete alone (list keys, entity-group batches of 100);
//   - one-by-one: list keys, one DeleteEntity per row, with the same 4 requests in flight as the
//     batch path, so the difference is batching alone.
//
// Rows are seeded in batches outside the timer. Run with make bench (BENCHTIME=1x is enough: one
// iteration deletes 100,000 rows).
func BenchmarkDeleteTenant(b *testing.B) {
	for _, mode := range []string{"job", "store-batch", "one-by-one"} {
		b.Run(mode, func(b *testing.B) {
			f := newFixture(b)
			var requests int64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				id, rows := seedBulk(b, f)
				if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
					b.Fatal(err)
				}
				f.clock.Set(t0.Add(day + time.Minute))
				before := f.kill.total.Load()
				start := time.Now()
				b.StartTimer()

				switch mode {
				case "job":
					job := f.job(b, Options{MaxRows: 1_000_000, Budget: time.Hour})
					if err := job.Run(ctx); err != nil {
						b.Fatal(err)
					}
				case "store-batch":
					if _, err := tables.Declared().Partitions(f.st.DB()).Delete(ctx, id, tables.Declared().Of(tables.RetainTenantData)...); err != nil {
						b.Fatal(err)
					}
				case "one-by-one":
					deleteOneByOne(b, f, id)
				}

				b.StopTimer()
				elapsed += time.Since(start)
				requests += f.kill.total.Load() - before
				left := f.scan(b, id)
				if n := total(without(left, tenants.TableLicenses, tenants.TableBilling, TableDeletionReceipts, registry.TableTenants)); n != 0 || rows < benchRows {
					b.Fatalf("%s left %d rows of %d: %v", mode, n, rows, left)
				}
				f.clock.Set(t0)
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(benchRows*b.N)/elapsed.Seconds(), "rows/s")
		})
	}
}

// seedBulk makes a tenant with the usual rows plus ledger rows up to benchRows in all, written in
// batches (not timed).
func seedBulk(b *testing.B, f *fixture) (core.TenantID, int) {
	b.Helper()
	id, seed := f.seedTenant(b)
	n := total(seed.rows)
	var batch []presence.LedgerEntry
	flush := func() {
		if err := presence.OpenData(f.st.DB()).Ledger.UpsertBatch(ctx, id, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 0; n < benchRows; i, n = i+1, n+1 {
		batch = append(batch, presence.LedgerEntry{Resource: uid(i % 500), RecordID: fmt.Sprintf("record-%06d", i), LastModified: t0})
		if len(batch) == 2000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return id, n
}

// deleteOneByOne is the baseline without entity-group transactions.
func deleteOneByOne(b *testing.B, f *fixture, tenant core.TenantID) {
	b.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(b),
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{f.kill}}})
	if err != nil {
		b.Fatal(err)
	}
	filter, sel := fmt.Sprintf("PartitionKey eq '%s'", tenant), "RowKey"
	for _, table := range tables.Declared().Of(tables.RetainTenantData) {
		client := svc.NewClient(f.env.Prefix + table)
		var keys []string
		pager := client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range page.Entities {
				keys = append(keys, rowKeyOf(e))
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		for range 4 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(keys)) {
						return
					}
					if _, err := client.DeleteEntity(ctx, string(tenant), keys[i], nil); err != nil {
						failed.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
}

func rowKeyOf(entity []byte) string {
	var e struct{ RowKey string }
	_ = json.Unmarshal(entity, &e)
	return e.RowKey
}
