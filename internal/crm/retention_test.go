package crm_test

import (
	"slices"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// A failed record's name is forgotten after the retention period; a user who loses the license loses
// their sync (mapping, ledger, errors, state), and the retention job finds such users.
func TestSyncRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	ada, bob := "11111111-0000-4000-8000-00000000000a", "11111111-0000-4000-8000-00000000000b"
	old, fresh := start.Add(-10*24*time.Hour), start.Add(-time.Hour)
	for _, e := range []crm.SyncError{
		{UserID: ada, Type: crm.RecordContact, SourceID: "AAMkold=", DisplayName: "Old", FirstFailedAt: old, LastFailedAt: fresh},
		{UserID: ada, Type: crm.RecordContact, SourceID: "AAMkfresh=", DisplayName: "Fresh", FirstFailedAt: fresh, LastFailedAt: fresh},
	} {
		if _, err := f.data.SyncErrors.Insert(ctx, tenant, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.data.Users.Insert(ctx, tenant, crm.UserMapping{UserID: ada, SalesforceUserID: "005000000000001AAA", SetBy: bob}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.data.SyncState.Insert(ctx, tenant, crm.SyncState{UserID: bob, Stream: "contact.contacts", LastRunAt: fresh}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.data.Ledger.Insert(ctx, tenant, crm.LedgerEntry{UserID: ada, Type: crm.RecordContact, SourceID: "AAMkx=", TargetID: "003000000000001AAA"}); err != nil {
		t.Fatal(err)
	}
	f.data.SyncErrorRetention = 7 * 24 * time.Hour
	n, err := f.data.Sweep(ctx, registry.Tenant{ID: tenant}, start)
	if err != nil || n[crm.TableSyncErrors] != 1 {
		t.Fatalf("sweep: %v, %v", n, err)
	}
	p, _ := f.data.SyncErrors.List(ctx, tenant, nil)
	if len(p.Items) != 1 || p.Items[0].DisplayName != "Fresh" {
		t.Fatalf("left: %+v", p.Items)
	}
	users, err := f.data.UsersWithData(ctx, tenant)
	slices.Sort(users)
	if err != nil || !slices.Equal(users, []string{ada, bob}) {
		t.Fatalf("users with data: %v, %v", users, err)
	}
	e, err := crm.Unlicensed{Data: f.data}.Erase(ctx, tenant, ada)
	if err != nil || e.Rows() != 3 {
		t.Fatalf("unlicensed: %v, %v (mapping, ledger, error)", e, err)
	}
	if users, _ := f.data.UsersWithData(ctx, tenant); !slices.Equal(users, []string{bob}) {
		t.Fatalf("after: %v", users)
	}
}
