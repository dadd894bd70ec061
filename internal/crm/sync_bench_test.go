package crm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/clock"
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

// BenchmarkContactSyncFromSalesforce runs one user's sync of 200 new Salesforce Contacts per iteration
// (both directions on, as a user who turned on two-way sync) through the real clients against the
// fakes and the ledger on Azurite: the getDeleted and getUpdated windows, the SOQL read of the changed
// records, the matching against one listing of the folder, 200 Graph creates and the ledger batch. It
// reports contacts synced per second.
func BenchmarkContactSyncFromSalesforce(b *testing.B) {
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(b, crm.DirectionBoth, clk)
	f.graph.ContactsPageSize = 100
	f.sf.DailyMax = 1 << 30
	if _, err := f.syncer.SyncUser(ctx, f.tenant, f.ada); err != nil { // the first, full read
		b.Fatal(err)
	}
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clk.Advance(time.Minute)
		for j := range 200 {
			f.sf.PutContact(map[string]any{"FirstName": "P", "LastName": fmt.Sprintf("Person %d-%d", i, j),
				"Email": fmt.Sprintf("p%d-%d@example.org", i, j), "OwnerId": f.owner})
		}
		clk.Advance(time.Minute)
		b.StartTimer()
		rep, err := f.syncer.SyncUser(ctx, f.tenant, f.ada)
		if err != nil || rep.MailboxCreated != 200 {
			b.Fatalf("%+v, %v", rep, err)
		}
		n += rep.MailboxCreated
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "contacts/s")
}

// BenchmarkEventSyncToSalesforce runs one user's sync of 200 new mailbox events per iteration through
// the real clients against the fakes and the ledger on Azurite: the calendarView delta pages, the
// subject match query, one collection of 200 and the ledger batch. It reports events synced per second.
func BenchmarkEventSyncToSalesforce(b *testing.B) {
	f, clk := newEventFixture(b, crm.DirectionToCRM)
	f.graph.CalendarPageSize = 100
	f.sf.DailyMax = 1 << 30
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clk.Advance(time.Second)
		for j := range 200 {
			start := day.Add(time.Duration(j) * time.Hour)
			f.putEvent(graphtest.CalEvent{ID: fmt.Sprintf("AAMkAGEb%d-%d=", i, j), Subject: fmt.Sprintf("Meeting %d-%d", i, j),
				Start: start, End: start.Add(30 * time.Minute), Location: "Room", Body: "agenda"})
		}
		b.StartTimer()
		rep, err := f.syncer.SyncUser(ctx, f.tenant, f.ada)
		if err != nil || rep.Created != 200 {
			b.Fatalf("%+v, %v", rep, err)
		}
		n += rep.Created
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventSyncFromSalesforce runs one user's sync of 200 new Salesforce Events per iteration
// (both directions on) through the real clients against the fakes and the ledger on Azurite: the
// getDeleted and getUpdated windows, the SOQL read of the changed Events, a lookup by the Salesforce
// id and a create (with transactionId) per event in Graph, and the ledger batch. It reports events
// synced per second.
func BenchmarkEventSyncFromSalesforce(b *testing.B) {
	f, clk := newEventFixture(b, crm.DirectionBoth)
	f.graph.CalendarPageSize = 100
	f.sf.DailyMax = 1 << 30
	if _, err := f.syncer.SyncUser(ctx, f.tenant, f.ada); err != nil { // the first, full read
		b.Fatal(err)
	}
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clk.Advance(time.Minute)
		for j := range 200 {
			start := day.Add(time.Duration(j) * time.Hour)
			f.sf.PutEvent(map[string]any{"Subject": fmt.Sprintf("Visit %d-%d", i, j), "IsAllDayEvent": false, "OwnerId": f.owner,
				"StartDateTime": start.Format("2006-01-02T15:04:05.000+0000"), "EndDateTime": start.Add(time.Hour).Format("2006-01-02T15:04:05.000+0000")})
		}
		clk.Advance(time.Minute)
		b.StartTimer()
		rep, err := f.syncer.SyncUser(ctx, f.tenant, f.ada)
		if err != nil || rep.MailboxCreated != 200 {
			b.Fatalf("%+v, %v", rep, err)
		}
		n += rep.MailboxCreated
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
