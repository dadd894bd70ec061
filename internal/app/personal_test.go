package app

import (
	"context"
	"fmt"
	gomaps "maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/tenants"
)

// offlineRegistry is a registry on a DB that is never called: enough to list the sources.
func offlineRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	db, err := tables.OpenConnectionString("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"+
		"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"+
		"TableEndpoint=http://127.0.0.1:1/devstoreaccount1", tables.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return registry.Open(db)
}

// The coverage rule: every table with personal fields has its module's answer, and the rule catches
// each way of breaking it.
func TestEveryPersonalTableHasAModuleAnswering(t *testing.T) {
	t.Parallel()
	sources := personalData(offlineRegistry(t), secrets.NewMemory())
	if gaps := privacy.Uncovered(catalogue, sources); len(gaps) != 0 {
		t.Fatalf("tables with personal fields no module answers for: %v", gaps)
	}

	without := func(module string) []privacy.Source {
		return slices.DeleteFunc(slices.Clone(sources), func(s privacy.Source) bool { return s.Module == module })
	}
	strayCatalogue := append(slices.Clone(catalogue), tables.SpecOf[strayRow]("strays", "strays", tables.RetainTenantData))
	// A new personal table in a module that answers for its other tables but not yet for this one.
	grownCatalogue := append(slices.Clone(catalogue), tables.SpecOf[strayRow]("presencenotes", "presence", tables.RetainTenantData))
	tests := []struct {
		name     string
		cat      tables.Catalogue
		sources  []privacy.Source
		wantGaps []string
	}{
		{"a module drops its answer", catalogue, without("tenants"), []string{"licenses"}},
		{"the registry drops its answer", catalogue, without("platform/registry"), []string{"users", "subscriptions", "tenants"}},
		{"a new personal table in a module with no answer", strayCatalogue, sources, []string{"strays"}},
		{"a module's new personal table its answer does not name", grownCatalogue, sources, []string{"presencenotes"}},
		{"a table without personal fields needs no answer", catalogue, without("retention"), nil},
	}
	for _, tc := range tests {
		var got []string
		for _, g := range privacy.Uncovered(tc.cat, tc.sources) {
			got = append(got, strings.Fields(g)[0])
		}
		sort.Strings(got)
		want := slices.Clone(tc.wantGaps)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: gaps = %v, want %v", tc.name, got, want)
		}
		if _, err := privacy.NewSubjects(tc.cat, tc.sources); (err != nil) != (len(want) > 0) {
			t.Errorf("%s: NewSubjects err = %v, want an error exactly when there are gaps", tc.name, err)
		}
	}
}

// strayRow is a table some future module might add without answering for it.
type strayRow struct {
	Owner string `table:"key,personal"`
	Note  string `table:"sealed"`
}

func (r *strayRow) RowKey() (string, error)   { return tables.SimpleKey("owner", r.Owner) }
func (r *strayRow) SetRowKey(rk string) error { r.Owner = rk; return nil }

// A person's export finds them in every module, and erasure takes them out of every module while
// another user of the same tenant keeps everything.
func TestSubjectExportAndErasureAcrossModules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := storetest.NewEnv(t, storetest.Options{})
	reg := env.Store
	subjects, err := privacy.NewSubjects(catalogue, personalData(reg, env.Secrets))
	if err != nil {
		t.Fatal(err)
	}
	tenant := env.NewTenant(t)
	const ada, bob = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	db := reg.DB()
	if err := reg.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive, PBXConfiguredBy: ada}); err != nil {
		t.Fatal(err)
	}
	pd, td, ad, prv := presence.OpenData(db), tenants.OpenData(db), access.OpenData(db), privacy.OpenData(db)
	log := audit.OpenLog(db)
	for i, u := range []string{ada, bob} {
		must(reg.Users.Insert(ctx, tenant, registry.User{ID: u, DisplayName: "Name of " + u, Licensed: true}))
		must(pd.PBXExtensions.Insert(ctx, tenant, presence.PBXExtension{ExtensionID: fmt.Sprint(101 + i), UserID: u, UpdatedAt: now}))
		must(pd.Presence.Insert(ctx, tenant, presence.Presence{UserID: u, Availability: "Busy", ChangedAt: now}))
		must(pd.Ledger.Insert(ctx, tenant, presence.LedgerEntry{Resource: u, RecordID: "presence", LastModified: now}))
		must(pd.SyncErrors.Insert(ctx, tenant, presence.SyncError{Resource: u, RecordID: "presence", RecordName: "x", ErrorCode: "pbx-rejected"}))
		must(serviceuser.OpenTable(db).Insert(ctx, tenant, serviceuser.ServiceUser{ID: u, UserPrincipalName: u + "@contoso.example", State: serviceuser.Active}))
		name, err := secrets.ServiceUserTokenName(tenant, u)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Secrets.Set(ctx, name, "token cache"); err != nil {
			t.Fatal(err)
		}
		must(td.Licenses.Insert(ctx, tenant, tenants.Assignment{Product: tenants.Product, UserID: u, AssignedAt: now, AssignedBy: ada}))
		must(ad.Authorisations.Insert(ctx, tenant, access.Authorisation{PrincipalID: u, Role: "tenant.admin", GrantedAt: now, GrantedBy: ada}))
		must(log.Append(ctx, tenant, audit.Entry{ActorID: ada, Action: "license.assign", TargetType: "user", TargetID: u, Outcome: "success"}))
	}
	must(reg.Subscriptions.Insert(ctx, tenant, registry.Subscription{ID: "sub-ada", Kind: registry.KindPresence,
		Resource: "/communications/presences?$filter=id in ('" + bob + "')", ServiceUserID: ada, ExpiresAt: now.Add(time.Hour)}))
	must(reg.Subscriptions.Insert(ctx, tenant, registry.Subscription{ID: "sub-bob", Kind: registry.KindPresence,
		Resource: "/communications/presences?$filter=id in ('" + ada + "','" + bob + "')", ServiceUserID: bob, ExpiresAt: now.Add(time.Hour)}))
	must(prv.Incidents.Insert(ctx, tenant, privacy.Incident{ID: "inc-1", Summary: "user " + ada + " reported a lost phone", DetectedAt: now}))
	must(bookings.OpenData(db).Bookings.Insert(ctx, tenant, bookings.Booking{RoomID: "room1", EventID: "ev1", Start: now, End: now.Add(time.Hour)}))
	must(crm.OpenData(db).Connections.Insert(ctx, tenant, crm.Connection{Provider: crm.ProviderSalesforce, Username: "sync@contoso.example", ConfiguredAt: now, ConfiguredBy: ada}))
	// Ada is signed in to the portal, Bob too: her erasure signs her out, not him.
	sessions := portal.OpenData(db).Sessions
	must(sessions.Insert(ctx, tenant, portal.Session{ID: strings.Repeat("a", 64), ObjectID: ada, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(sessions.Insert(ctx, tenant, portal.Session{ID: strings.Repeat("b", 64), ObjectID: bob, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	// Ada's own mailbox is mapped (by Bob), and she mapped Bob's.
	must(crm.OpenData(db).Users.Insert(ctx, tenant, crm.UserMapping{UserID: ada, SalesforceUserID: "005000000000001AAA", SetBy: bob, SetAt: now}))
	must(crm.OpenData(db).Ledger.Insert(ctx, tenant, crm.LedgerEntry{UserID: ada, Type: crm.RecordContact, SourceID: "AAMkADc=", TargetID: "003000000000001AAA", SyncedAt: now}))
	must(crm.OpenData(db).SyncErrors.Insert(ctx, tenant, crm.SyncError{UserID: ada, Type: crm.RecordContact, SourceID: "AAMkADd=", DisplayName: "Prince", Attempts: 1}))
	must(crm.OpenData(db).SyncState.Insert(ctx, tenant, crm.SyncState{UserID: ada, Stream: "contact.contacts", LastRunAt: now}))
	must(crm.OpenData(db).Users.Insert(ctx, tenant, crm.UserMapping{UserID: bob, SalesforceUserID: "005000000000002AAA", SetBy: ada, SetAt: now}))

	exported := func(user string) map[string]int {
		t.Helper()
		recs, err := subjects.Export(ctx, tenant, user)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, r := range recs {
			out[r.Table]++
		}
		return out
	}
	// Ada is in every table that can name her: her own rows, the rows she acted on as an admin
	// (licenses, grants and audit entries of Bob too), the tenant's row, both subscriptions.
	want := map[string]int{"users": 1, "presence": 1, "ledger": 1, "syncerrors": 1, "serviceusers": 1, "pbxextensions": 1,
		"licenses": 2, "authorisations": 2, "audit": 2, "tenants": 1, "subscriptions": 2, "incidents": 1, "crmconnections": 1, "crmusers": 2,
		"crmledger": 1, "crmsyncerrors": 1, "crmsyncstate": 1, "portalsessions": 1}
	if got := exported(ada); !gomaps.Equal(got, want) {
		t.Errorf("Ada's export = %v, want %v", got, want)
	}
	recs, err := subjects.Export(ctx, tenant, strings.ToUpper(ada))
	if err != nil || len(recs) == 0 {
		t.Errorf("export by an upper-case id = %d records, %v; want the same person", len(recs), err)
	}
	for _, r := range recs {
		if r.Table == "users" && r.Fields["DisplayName"] != "Name of "+ada {
			t.Errorf("export shows the sealed name as %v, want it opened", r.Fields["DisplayName"])
		}
	}

	counts, err := subjects.Erase(ctx, tenant, ada)
	if err != nil {
		t.Fatal(err)
	}
	// The receipt's counts are exact: every row Ada's export showed is deleted or rewritten.
	wantErased := tables.Erasure{"users": {Deleted: 1}, "presence": {Deleted: 1}, "ledger": {Deleted: 1}, "syncerrors": {Deleted: 1}, "pbxextensions": {Deleted: 1},
		"serviceusers": {Deleted: 1}, "licenses": {Deleted: 1, Pseudonymised: 1}, "authorisations": {Deleted: 1, Pseudonymised: 1},
		"audit": {Pseudonymised: 2}, "tenants": {Pseudonymised: 1}, "subscriptions": {Deleted: 1, Pseudonymised: 1}, "incidents": {Pseudonymised: 1},
		"crmconnections": {Pseudonymised: 1}, "crmusers": {Deleted: 1, Pseudonymised: 1},
		"crmledger": {Deleted: 1}, "crmsyncerrors": {Deleted: 1}, "crmsyncstate": {Deleted: 1}, "portalsessions": {Deleted: 1},
		"roles": {}, "accessrequests": {}, "bookings": {}, "parkedmessages": {}, "privacyrequests": {}}
	if !gomaps.Equal(counts, wantErased) {
		t.Errorf("erase counts = %v\nwant %v", counts, wantErased)
	}
	// Nothing names her any more: the subscription whose filter lists her among others stays for Bob
	// with her id replaced (the next reconciliation remakes it at Graph without her).
	if got := exported(ada); len(got) != 0 {
		t.Errorf("Ada's export after erasure = %v, want nothing", got)
	}
	name, _ := secrets.ServiceUserTokenName(tenant, ada)
	if _, err := env.Secrets.Get(ctx, name); err == nil {
		t.Error("Ada's service-user token survived her erasure")
	}
	// Bob keeps his rows, but for the subscription made through Ada's account (the presence manager
	// makes a new one through another service user); the rows Ada acted on no longer name her.
	if got, want := exported(bob), map[string]int{"users": 1, "presence": 1, "ledger": 1, "syncerrors": 1, "serviceusers": 1, "pbxextensions": 1,
		"licenses": 1, "authorisations": 1, "audit": 1, "subscriptions": 1, "crmusers": 1, "portalsessions": 1}; !gomaps.Equal(got, want) {
		t.Errorf("Bob's export after Ada's erasure = %v, want %v", got, want)
	}
	page, err := log.List(ctx, tenant, nil)
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("audit after erasure = %d entries, %v; want both kept", len(page.Items), err)
	}
	if a, b := page.Items[0].ActorID, page.Items[1].ActorID; !strings.HasPrefix(a, "erased-") || a != b {
		t.Errorf("audit actors after erasure = %q, %q; want one pseudonym for both", a, b)
	}
	if again, err := subjects.Erase(ctx, tenant, ada); err != nil || again.Rows() != 0 {
		t.Errorf("second erasure = %v, %v; want nothing left to do", again, err)
	}
	if _, err := subjects.Export(ctx, tenant, "not-a-guid"); err == nil {
		t.Error("export accepted a user id that is not an object id")
	}
}
