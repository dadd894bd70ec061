package retention

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/tenants"
)

var (
	ctx = context.Background()
	// t0 is when the tests cancel or suspend; 10:00 UTC, so day boundaries are not hit by accident.
	t0       = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	operator = core.Actor{ID: "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c", Kind: "user"}
	policy_  = Policy{CancelledRetention: 24 * time.Hour, SuspendedRetention: 7 * 24 * time.Hour,
		LicenseRetention: 30 * 24 * time.Hour, BillingRetention: 90 * 24 * time.Hour}
)

// killSwitch fails every storage request once armed and its countdown reaches zero: the process
// "dies" at that point, as far as storage can tell.
type killSwitch struct {
	left  atomic.Int64 // requests still allowed; < 0: disarmed
	total atomic.Int64
}

var errKilled = fmt.Errorf("killed")

func (k *killSwitch) Do(req *policy.Request) (*http.Response, error) {
	k.total.Add(1)
	if k.left.Load() >= 0 && k.left.Add(-1) < 0 {
		return nil, errKilled
	}
	return req.Next()
}

// fakeGraph records subscription deletions; ids in fail are refused.
type fakeGraph struct {
	mu      sync.Mutex
	deleted []string
	fail    map[string]bool
}

func (g *fakeGraph) DeleteSubscription(_ context.Context, tenant core.TenantID, sub registry.Subscription) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail[sub.ID] {
		return fmt.Errorf("graph: status 403")
	}
	g.deleted = append(g.deleted, string(tenant)+"/"+sub.ID)
	return nil
}

type fixture struct {
	env    *storetest.Env
	st     *registry.Registry
	clock  *clock.Fake
	kill   *killSwitch
	graph  *fakeGraph
	svc    *tenants.Service
	logBuf *strings.Builder
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	kill := &killSwitch{}
	kill.left.Store(-1)
	env := storetest.NewEnv(t, storetest.Options{Now: clk.Now,
		ClientOptions: &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{kill}}}})
	pd := presence.OpenData(env.DB)
	svc, err := tenants.New(tenants.Options{Store: env.Store, Keys: env.Keys, Now: clk.Now, Policy: policy_,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), UserData: []tenants.UserData{pd}, Activity: pd})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, st: env.Store, clock: clk, kill: kill, graph: &fakeGraph{fail: map[string]bool{}}, svc: svc,
		logBuf: &strings.Builder{}}
}

func (f *fixture) job(t testing.TB, o Options) *Job {
	t.Helper()
	o.Store, o.Keys, o.Secrets, o.Now, o.Policy, o.Licenses = f.st, f.env.Keys, f.env.Secrets, f.clock.Now, policy_, f.svc
	o.Catalogue, o.Contracts = tables.Declared(), tenants.OpenData(f.st.DB())
	if o.Graph == nil {
		o.Graph = f.graph
	}
	pd := presence.OpenData(f.st.DB())
	pd.SyncErrorRetention = 7 * 24 * time.Hour
	bd := bookings.OpenData(f.st.DB())
	bd.MaxWindowDays = 21
	o.Sweepers, o.Holders = []Sweeper{bd, pd}, []UserHolder{pd}
	if o.Budget == 0 {
		o.Budget = time.Minute
	}
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// seeded says how many rows seedTenant put in each table and which secrets it made.
type seeded struct {
	rows    map[string]int
	secrets []string
	subs    int
}

func uid(n int) string { return fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", n) }

// seedTenant makes an active tenant with rows in every per-tenant table, all within policy (nothing
// the routine pruning would remove for weeks), and its secrets.
func (f *fixture) seedTenant(t testing.TB) (core.TenantID, seeded) {
	t.Helper()
	id := f.env.NewTenant(t)
	now := f.clock.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, PurchasedLicenses: 5, HomeRegion: "westeurope",
		BookingWindowDays: 21, ServiceUserID: uid(99), ConsentedAt: now.Add(-90 * 24 * time.Hour), CreatedAt: now, UpdatedAt: now}))
	var users []registry.User
	var presenceRows []presence.Presence
	var licenses []tenants.Assignment
	var ledger []presence.LedgerEntry
	for i := 1; i <= 3; i++ {
		users = append(users, registry.User{ID: uid(i), DisplayName: fmt.Sprintf("User %d", i), Mail: fmt.Sprintf("u%d@contoso.example", i),
			PBXUserID: fmt.Sprintf("pbx-%d", i), Licensed: true, CreatedAt: now})
		presenceRows = append(presenceRows, presence.Presence{UserID: uid(i), Availability: "Busy", Activity: "InACall", ChangedAt: now})
		licenses = append(licenses, tenants.Assignment{Product: tenants.Product, UserID: uid(i), AssignedAt: now.Add(-24 * time.Hour), AssignedBy: operator.ID})
		ledger = append(ledger, presence.LedgerEntry{Resource: uid(i), RecordID: "rec-a", LastModified: now},
			presence.LedgerEntry{Resource: uid(i), RecordID: "rec-b", LastModified: now})
	}
	ledger = append(ledger, presence.LedgerEntry{Resource: "contacts", RecordID: "c1", LastModified: now},
		presence.LedgerEntry{Resource: "contacts", RecordID: "c2", LastModified: now})
	must(f.st.Users.InsertBatch(ctx, id, users))
	must(presence.OpenData(f.st.DB()).Presence.InsertBatch(ctx, id, presenceRows))
	must(tenants.OpenData(f.st.DB()).Licenses.InsertBatch(ctx, id, licenses))
	must(presence.OpenData(f.st.DB()).Ledger.InsertBatch(ctx, id, ledger))
	must(f.st.Subscriptions.InsertBatch(ctx, id, []registry.Subscription{
		{ID: "sub-presence-" + string(id)[:8], Kind: registry.KindPresence, Resource: "/communications/presences", ExpiresAt: now.Add(time.Hour)},
		{ID: "sub-rooms-" + string(id)[:8], Kind: registry.KindBooking, Resource: "/users/room1/events", ExpiresAt: now.Add(time.Hour)},
	}))
	must(presence.OpenData(f.st.DB()).SyncErrors.InsertBatch(ctx, id, []presence.SyncError{
		{Resource: "contacts", RecordID: "c9", RecordName: "Jane Doe", ErrorCode: "conflict", Attempts: 1, FirstFailedAt: now, LastFailedAt: now},
		{Resource: "contacts", RecordID: "c8", RecordName: "John Doe", ErrorCode: "conflict", Attempts: 2, FirstFailedAt: now, LastFailedAt: now},
	}))
	must(bookings.OpenData(f.st.DB()).Bookings.InsertBatch(ctx, id, []bookings.Booking{
		{RoomID: "room1", EventID: "ev/1+", Start: now.Add(10 * 24 * time.Hour), End: now.Add(10*24*time.Hour + time.Hour), ShowAs: "busy"},
		{RoomID: "room1", EventID: "ev/2=", Start: now.Add(12 * 24 * time.Hour), End: now.Add(12*24*time.Hour + time.Hour), ShowAs: "tentative"},
	}))
	day := now.Truncate(24 * time.Hour)
	must(tenants.OpenData(f.st.DB()).Billing.InsertBatch(ctx, id, []tenants.BillingSnapshot{
		{Day: day.Add(-48 * time.Hour), Product: tenants.Product, Purchased: 5, Assigned: 3, TakenAt: now},
		{Day: day.Add(-24 * time.Hour), Product: tenants.Product, Purchased: 5, Assigned: 3, TakenAt: now},
	}))
	_, err := audit.OpenLog(f.st.DB()).Append(ctx, id, audit.Entry{At: now.Add(-time.Hour), ActorID: operator.ID, ActorKind: "user",
		Action: "license.assign", TargetType: "user", TargetID: uid(1), Outcome: "success"})
	must(err)
	_, err = access.OpenData(f.st.DB()).Authorisations.Insert(ctx, id, access.Authorisation{PrincipalID: uid(1), Role: "tenant.admin", PrincipalKind: "user", GrantedAt: now})
	must(err)
	_, err = privacy.OpenData(f.st.DB()).Incidents.Insert(ctx, id, privacy.Incident{ID: "inc-1", Category: "unauthorised-access", Severity: "low", Status: "open",
		Summary: "User 1 reported a stranger", DetectedAt: now, NotifyBy: now.Add(72 * time.Hour)})
	must(err)
	_, err = jobs.OpenLeases(f.st.DB()).Insert(ctx, id, jobs.Job{Name: tenants.ReconcileJob, Checkpoint: "https://graph.example/delta?token=x", Runs: 3})
	must(err)

	su, err := secrets.ServiceUserTokenName(id, uid(99))
	must(err)
	must(f.env.Secrets.Set(ctx, su, "refresh-token"))
	must(f.env.Secrets.Set(ctx, secrets.PBXCredentialName(id), "pbx-token"))

	return id, seeded{
		rows: map[string]int{registry.TableTenants: 1, registry.TableUsers: 3, presence.TablePresence: 3, tenants.TableLicenses: 3,
			presence.TableLedger: 8, registry.TableSubscriptions: 2, presence.TableSyncErrors: 2, bookings.TableBookings: 2,
			tenants.TableBilling: 2, audit.TableAudit: 1, access.TableAuthorisations: 1, privacy.TableIncidents: 1, jobs.TableJobs: 1},
		secrets: []string{secrets.TenantDataKeyName(id), secrets.PBXCredentialName(id), su},
		subs:    2,
	}
}

// scan counts the tenant's rows in every table that exists in Azurite under the test's prefix —
// whatever the store thinks its tables are.
func (f *fixture) scan(t testing.TB, tenant core.TenantID) map[string]int {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	found := 0
	pager := svc.NewListTablesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range page.Tables {
			name := *tp.Name
			if !strings.HasPrefix(name, f.env.Prefix) {
				continue
			}
			found++
			filter := fmt.Sprintf("PartitionKey eq '%s'", tenant)
			ep := svc.NewClient(name).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
			for ep.More() {
				p, err := ep.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(p.Entities); n > 0 {
					out[strings.TrimPrefix(name, f.env.Prefix)] += n
				}
			}
		}
	}
	if found < len(tables.Declared().TenantTables())+1 {
		t.Fatalf("scan found %d tables under the prefix, want at least %d", found, len(tables.Declared().TenantTables())+1)
	}
	return out
}

func (f *fixture) secretsOf(t testing.TB, tenant core.TenantID) []string {
	t.Helper()
	names, err := f.env.Secrets.List(ctx, secrets.TenantSecretPrefix(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func (f *fixture) receipts(t testing.TB, tenant core.TenantID) []DeletionReceipt {
	t.Helper()
	page, err := OpenReceipts(f.st.DB()).List(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func only(m map[string]int, tables ...string) map[string]int {
	out := map[string]int{}
	for _, t := range tables {
		if m[t] > 0 {
			out[t] = m[t]
		}
	}
	return out
}

func without(m map[string]int, tables ...string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	for _, t := range tables {
		delete(out, t)
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
