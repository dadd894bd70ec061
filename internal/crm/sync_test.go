package crm_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

const clientID = "11111111-2222-3333-4444-555555555555"

// appGraph is the real app-only Graph client (certificate credential) against the fake authority and
// Graph.
type appGraph struct {
	auth *graphtest.Authority
	g    *graphtest.Graph
	pem  []byte
	mu   sync.Mutex
	m    map[core.TenantID]*graph.Client
}

func (a *appGraph) For(ctx context.Context, t core.TenantID) (crm.Mailbox, error) {
	return a.client(ctx, t)
}

// forget drops the cached clients (and their tokens).
func (a *appGraph) forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.m)
}

func (a *appGraph) client(_ context.Context, t core.TenantID) (*graph.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.m[t]; ok {
		return c, nil
	}
	cred, err := graph.NewAppCredential(string(t), clientID, a.pem, graph.AuthOptions{AuthorityHost: a.auth.Host(), HTTPClient: a.auth.Client()})
	if err != nil {
		return nil, err
	}
	c, err := graph.New(cred, graph.Options{BaseURL: a.g.URL()})
	if err != nil {
		return nil, err
	}
	a.m[t] = c
	return c, nil
}

type syncFixture struct {
	*fixture
	auth      *graphtest.Authority
	mailboxes *appGraph
	graph     *graphtest.Graph
	syncer    *crm.Syncer
	tenant    core.TenantID
	ada       string // the mapped user's object id (and mailbox)
	owner     string // Ada's Salesforce user id
}

func newSyncFixture(t testing.TB) *syncFixture {
	t.Helper()
	return newSyncFixtureWith(t, crm.DirectionToCRM, nil)
}

// newSyncFixtureWith maps Ada's contacts in direction dir; clk (if not nil) is the clock of the syncer,
// the Salesforce client, the fake org and the fake mailbox's contacts alike, so that modification
// times on both sides and Salesforce's minute windows can be set exactly.
func newSyncFixtureWith(t testing.TB, dir crm.Direction, clk *clock.Fake, opts ...func(*crm.SyncOptions)) *syncFixture {
	t.Helper()
	f := newFixture(t)
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	auth := graphtest.NewAuthority(t)
	auth.AppCertificate = cert
	g := graphtest.NewGraph(t, auth)
	tenant := f.tenant(t, registry.TenantActive)
	auth.GrantConsent(string(tenant), clientID)
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	ada := f.licensed(t, tenant, "11111111-0000-4000-8000-00000000000a", "ada@contoso.example", true)
	f.sf.AddUser(sftest.User{Username: "ada@contoso.example.crm", Email: "ada@contoso.example"})
	if _, err := f.svc.SetUserMapping(ctx, admin, tenant, ada, crm.MappingInput{Contacts: dir}); err != nil {
		t.Fatal(err)
	}
	mailboxes := &appGraph{auth: auth, g: g, pem: pemText, m: map[core.TenantID]*graph.Client{}}
	var now func() time.Time
	if clk != nil {
		now = clk.Now
		f.sf.SetClock(now)
		g.ContactClock = now
	}
	o := crm.SyncOptions{Store: f.env.Store, Data: f.data, Secrets: f.env.Secrets, Sealer: f.env.Keys,
		Salesforce: salesforce.New(salesforce.Options{LoginURL: func(string) string { return f.sf.URL() }, Now: now}),
		Mailboxes:  mailboxes,
		Now:        now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	syncer, err := crm.NewSyncer(o)
	if err != nil {
		t.Fatal(err)
	}
	return &syncFixture{fixture: f, auth: auth, mailboxes: mailboxes, graph: g, syncer: syncer, tenant: tenant, ada: ada, owner: f.sf.UserID("ada@contoso.example.crm")}
}

func (f *syncFixture) put(c graphtest.Contact) string {
	return f.graph.PutContact(string(f.tenant), f.ada, "contacts", c)
}

func (f *syncFixture) sync(t *testing.T) crm.Report {
	t.Helper()
	rep, err := f.syncer.SyncUser(ctx, f.tenant, f.ada)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// byEmail lists Salesforce's live contacts with this address.
func (f *syncFixture) byEmail(email string) []map[string]any {
	var out []map[string]any
	for _, c := range f.sf.Contacts() {
		if strings.EqualFold(fmt.Sprint(c["Email"]), email) {
			out = append(out, c)
		}
	}
	return out
}

func (f *syncFixture) syncErrors(t *testing.T) []crm.SyncError {
	t.Helper()
	p, err := f.data.SyncErrors.List(ctx, f.tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// The mailbox → Salesforce direction for contacts, run after run: new contacts are created once (with
// Ada as owner and our client id on the write), one Salesforce already has is linked by its address
// instead of duplicated, a contact Salesforce refuses stays in the sync errors by name until it is
// fixed, an edit is written, an edit of nothing Salesforce holds is not, a deletion goes through once
// and the contact never comes back — neither from a replayed delta nor from a full resync.
func TestContactSyncToSalesforce(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	f.graph.ContactsPageSize = 2
	// Alan is in Salesforce already (entered by hand, before the sync was turned on).
	alanID := f.sf.PutContact(map[string]any{"FirstName": "Alan", "LastName": "Turing", "Email": "Alan.Turing@bletchley.example"})
	grace := f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", DisplayName: "Grace Hopper", Emails: []string{"grace@navy.example"},
		JobTitle: "Rear Admiral", BusinessPhones: []string{"+1 555 0101"}, BusinessCity: "Arlington", PersonalNotes: "never synced"})
	f.put(graphtest.Contact{GivenName: "Alan", Surname: "Turing", DisplayName: "Alan Turing", Emails: []string{"alan.turing@bletchley.example"}})
	prince := f.put(graphtest.Contact{GivenName: "Prince", DisplayName: "Prince", Emails: []string{"prince@paisley.example"}})
	oneil := f.put(graphtest.Contact{GivenName: "Shaquille", Surname: "O'Neal", DisplayName: "Shaquille O'Neal", Emails: []string{"o'neal@lakers.example"}})

	rep := f.sync(t)
	if rep.Created != 2 || rep.Linked != 1 || rep.Failed != 1 {
		t.Fatalf("first run: %+v, want 2 created, 1 linked, 1 failed", rep)
	}
	if n := len(f.sf.Contacts()); n != 3 {
		t.Fatalf("Salesforce holds %d contacts, want 3 (Alan once)", n)
	}
	if got := f.byEmail("alan.turing@bletchley.example"); len(got) != 1 || got[0]["Id"] != alanID {
		t.Fatalf("Alan: %v", got)
	}
	g := f.byEmail("grace@navy.example")
	if len(g) != 1 || g[0]["LastName"] != "Hopper" || g[0]["Title"] != "Rear Admiral" || g[0]["Phone"] != "+1 555 0101" ||
		g[0]["MailingCity"] != "Arlington" || g[0]["OwnerId"] != f.owner || g[0]["Description"] != nil {
		t.Fatalf("Grace in Salesforce: %v", g)
	}
	graceID := g[0]["Id"].(string)
	if len(f.byEmail("o'neal@lakers.example")) != 1 {
		t.Fatal("O'Neal not created")
	}
	for _, w := range f.sf.Writes() {
		if w.Client != salesforce.DefaultCallClient {
			t.Errorf("a write without our client id: %+v", w)
		}
	}
	errs := f.syncErrors(t)
	if len(errs) != 1 || errs[0].SourceID != prince || errs[0].DisplayName != "Prince" || errs[0].Code != "REQUIRED_FIELD_MISSING" ||
		errs[0].Fields != "LastName" || errs[0].Attempts != 1 {
		t.Fatalf("sync errors: %+v", errs)
	}
	st, err := f.data.SyncState.Get(ctx, f.tenant, tables.JoinKey(f.ada, "contact.contacts"))
	if err != nil || st.DeltaLink == "" || st.LastCode != crm.CodeRecordsFailed || st.Synced != 3 || st.Failed != 1 {
		t.Fatalf("state: %+v, %v", st, err)
	}
	firstLink := st.DeltaLink

	// Nothing changed: nothing is written; the failed record is read again and fails again.
	writes := len(f.sf.Writes())
	rep = f.sync(t)
	if rep.Created+rep.Updated+rep.Deleted+rep.Linked != 0 || rep.Failed != 1 {
		t.Fatalf("quiet run: %+v", rep)
	}
	if errs := f.syncErrors(t); len(errs) != 1 || errs[0].Attempts != 2 {
		t.Fatalf("attempts: %+v", errs)
	}

	// Grace is edited; O'Neal gets a new change key without any field Salesforce holds changing; Prince
	// gets a surname.
	f.put(graphtest.Contact{ID: grace, GivenName: "Grace", Surname: "Hopper", DisplayName: "Grace Hopper", Emails: []string{"grace@navy.example"},
		JobTitle: "Commodore", BusinessCity: "Arlington"})
	f.put(graphtest.Contact{ID: oneil, GivenName: "Shaquille", Surname: "O'Neal", DisplayName: "Shaquille O'Neal", Emails: []string{"o'neal@lakers.example"},
		PersonalNotes: "changed notes only"})
	f.put(graphtest.Contact{ID: prince, GivenName: "Prince", Surname: "Nelson", DisplayName: "Prince", Emails: []string{"prince@paisley.example"}})
	rep = f.sync(t)
	if rep.Updated != 1 || rep.Created != 1 || rep.Unchanged != 1 || rep.Failed != 0 {
		t.Fatalf("edits: %+v, want 1 updated, 1 created, 1 unchanged", rep)
	}
	if c, _ := f.sf.Contact(graceID); c["Title"] != "Commodore" || c["Phone"] != nil {
		t.Fatalf("Grace after the edit: %v (a field emptied in Outlook is cleared)", c)
	}
	if got := len(f.sf.Writes()) - writes; got != 2 {
		t.Errorf("%d records written, want 2 (O'Neal's edit changed nothing Salesforce holds)", got)
	}
	if errs := f.syncErrors(t); len(errs) != 0 {
		t.Fatalf("sync errors after the fix: %+v", errs)
	}

	// Grace is deleted in Outlook: deleted in Salesforce once.
	f.graph.DeleteContact(string(f.tenant), f.ada, "contacts", grace, "deleted")
	if rep = f.sync(t); rep.Deleted != 1 {
		t.Fatalf("deletion: %+v", rep)
	}
	if _, ok := f.sf.Contact(graceID); ok {
		t.Fatal("Grace still in Salesforce")
	}
	// A replay: the run starts again from the first delta link (as after a crash before the link was
	// saved); Graph brings every change since, Grace's creation included as its last state (deleted).
	if _, err := f.data.SyncState.Update(ctx, f.tenant, tables.JoinKey(f.ada, "contact.contacts"), func(s *crm.SyncState) error {
		s.DeltaLink = firstLink
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	writes = len(f.sf.Writes())
	f.sync(t)
	// And a full resync after the link expired.
	f.graph.ExpireContactDeltaLinks(string(f.tenant), f.ada, "contacts")
	f.sync(t)
	if got := len(f.sf.Writes()) - writes; got != 0 {
		t.Errorf("replay and resync wrote %d records, want none", got)
	}
	if len(f.byEmail("grace@navy.example")) != 0 || len(f.sf.Contacts()) != 3 {
		t.Fatalf("after replay and resync: %v", f.sf.Contacts())
	}
	// A stale change of the deleted item arriving late (Graph retries and replays) does not bring it back.
	f.put(graphtest.Contact{ID: grace, GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}})
	f.sync(t)
	if len(f.byEmail("grace@navy.example")) != 0 {
		t.Fatal("a deleted contact came back")
	}

	// Nothing at rest names a contact: the ledger and the state hold ids, dates and digests; the sync
	// error's name was sealed (and is gone now).
	for _, name := range []string{crm.TableLedger, crm.TableSyncState, crm.TableSyncErrors} {
		raw := f.rawRows(t, name)
		for _, w := range []string{"Grace", "Hopper", "Alan", "Turing", "Prince", "Neal", "navy.example", "bletchley", "Arlington", "Commodore"} {
			if strings.Contains(raw, w) {
				t.Errorf("%s holds %q at rest", name, w)
			}
		}
	}

	// Erasing Ada removes what the sync holds of her.
	n, err := f.data.Erase(ctx, f.tenant, f.ada)
	if err != nil || n[crm.TableLedger].Deleted != 4 || n[crm.TableSyncState].Deleted != 1 {
		t.Fatalf("erase: %v, %v", n, err)
	}
}

// rawRows is every row of a table in the tenant's partition as stored (sealed fields still sealed).
func (f *syncFixture) rawRows(t *testing.T, name string) string {
	t.Helper()
	var sb strings.Builder
	var keys []string
	switch name {
	case crm.TableLedger:
		p, err := f.data.Ledger.List(ctx, f.tenant, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			rk, _ := e.RowKey()
			keys = append(keys, rk)
		}
		for _, rk := range keys {
			props, err := f.data.Ledger.GetRaw(ctx, f.tenant, rk)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(props)
			sb.Write(b)
		}
	case crm.TableSyncState:
		p, err := f.data.SyncState.List(ctx, f.tenant, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			props, err := f.data.SyncState.GetRaw(ctx, f.tenant, tables.JoinKey(f.ada, e.Stream))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(props)
			sb.Write(b)
		}
	case crm.TableSyncErrors:
		p, err := f.data.SyncErrors.List(ctx, f.tenant, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			rk, _ := e.RowKey()
			props, err := f.data.SyncErrors.GetRaw(ctx, f.tenant, rk)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(props)
			sb.Write(b)
		}
	}
	return sb.String()
}

// The failed record's name is sealed at rest while it waits.
func TestSyncErrorNameSealed(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	f.put(graphtest.Contact{GivenName: "Cher", DisplayName: "Cher Sarkisian", Emails: []string{"cher@example.org"}})
	if rep := f.sync(t); rep.Failed != 1 {
		t.Fatalf("%+v", rep)
	}
	if raw := f.rawRows(t, crm.TableSyncErrors); raw == "" || strings.Contains(raw, "Cher") || strings.Contains(raw, "Sarkisian") {
		t.Fatalf("sync error at rest: %s", raw)
	}
	recs, err := f.data.Export(ctx, f.tenant, f.ada)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || r.Table == crm.TableSyncErrors && r.Fields["DisplayName"] == "Cher Sarkisian"
	}
	if !found {
		t.Fatalf("export does not show the failed record's name opened: %+v", recs)
	}
}

// 450 new contacts go in three collections of at most 200; before that, a run that would leave the org
// less than a tenth of its daily allocation stops, and one refused with REQUEST_LIMIT_EXCEEDED stops
// too, without advancing: the next run does the work, nothing twice.
func TestContactSyncBatchesAndLimits(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	f.graph.ContactsPageSize = 100
	for i := range 450 {
		f.put(graphtest.Contact{GivenName: "P", Surname: fmt.Sprintf("Person %d", i), Emails: []string{fmt.Sprintf("p%d@example.org", i)}})
	}
	f.sf.DailyMax = 100
	f.sf.SetUsage(85) // 9 match queries bring it to 94: less than 10 left
	if _, err := f.syncer.SyncUser(ctx, f.tenant, f.ada); !errors.Is(err, crm.ErrDailyLimit) {
		t.Fatalf("near the limit: %v", err)
	}
	if n := len(f.sf.Contacts()); n != 0 {
		t.Fatalf("%d contacts created past the reserve", n)
	}
	f.sf.SetUsage(100)
	if _, err := f.syncer.SyncUser(ctx, f.tenant, f.ada); !errors.Is(err, crm.ErrDailyLimit) {
		t.Fatalf("allocation used up: %v", err)
	}
	st, _ := f.data.SyncState.Get(ctx, f.tenant, tables.JoinKey(f.ada, "contact.contacts"))
	if st.DeltaLink != "" || st.LastCode != crm.CodeDailyLimit {
		t.Fatalf("state after a stop: %+v", st)
	}
	f.sf.DailyMax = 15000
	f.sf.SetUsage(0)
	before := f.sf.Calls("POST /composite/sobjects")
	if rep := f.sync(t); rep.Created != 450 {
		t.Fatalf("%+v", rep)
	}
	if n := f.sf.Calls("POST /composite/sobjects") - before; n != 3 {
		t.Errorf("%d create calls, want 3", n)
	}
	if n := len(f.sf.Contacts()); n != 450 {
		t.Errorf("%d contacts", n)
	}
}

// One tenant's sync cannot reach another's rows: a user of another tenant with the same object id
// has nothing to sync, and the first tenant's ledger is untouched.
func TestContactSyncTenantScoped(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	f.put(graphtest.Contact{GivenName: "Ada", Surname: "Byron", Emails: []string{"byron@example.org"}})
	f.sync(t)
	other := f.tenant2(t)
	rep, err := f.syncer.SyncUser(ctx, other, f.ada)
	if err != nil || rep.Skipped != "not-mapped" {
		t.Fatalf("another tenant: %+v, %v", rep, err)
	}
	p, err := f.data.Ledger.List(ctx, other, nil)
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("another tenant's ledger: %+v, %v", p.Items, err)
	}
}

func (f *syncFixture) tenant2(t *testing.T) core.TenantID {
	return f.fixture.tenant(t, registry.TenantActive)
}
