package crm_test

import (
	"fmt"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// BenchmarkContactSyncToSalesforce runs one user's sync of 200 new mailbox contacts per iteration
// through the real Graph and Salesforce clients against the fakes and the ledger on Azurite: the delta
// pages, the e-mail match query, one collection of 200 and the ledger batch. It reports contacts synced
// per second.
func BenchmarkContactSyncToSalesforce(b *testing.B) {
	f := newSyncFixture(b)
	f.graph.ContactsPageSize = 100
	f.sf.DailyMax = 1 << 30
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range 200 {
			f.put(graphtest.Contact{GivenName: "P", Surname: fmt.Sprintf("Person %d-%d", i, j), Emails: []string{fmt.Sprintf("p%d-%d@example.org", i, j)}})
		}
		b.StartTimer()
		rep, err := f.syncer.SyncUser(ctx, f.tenant, f.ada)
		if err != nil || rep.Created != 200 {
			b.Fatalf("%+v, %v", rep, err)
		}
		n += rep.Created
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "contacts/s")
}
