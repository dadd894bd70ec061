package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

// The mailbox ↔ CRM sync through devhost and the real handler, against the fake Graph (contacts delta
// with @removed, contact writes with the extended property) and the fake Salesforce org (JWT bearer
// flow, SOQL, sObject Collections with per-record errors, the updated and deleted windows): a tenant
// admin connects the org and maps a user both ways through the admin API; SyncCRM runs as the timer
// would. A contact made on either side appears on the other exactly once, edits follow, deletions
// propagate and never come back, a record Salesforce keeps refusing shows by name in the health API,
// ten failed runs e-mail a notice, and fixing it clears it. Afterwards no table holds a contact's name or
// address: every row of the account is scanned.
func TestCRMSyncThroughDevhost(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	// The customer granted Mail.Send in ConnectHub's own tenant for the notice sender (README).
	c.auth.AppRoles = append(c.auth.AppRoles, "Mail.Send")
	sf := sftest.New(t)
	// Salesforce's windows drop seconds and cover only minutes that have ended (a change at 12:30:40 is in
	// no window before 12:31), so a change made in the org shows in a run only a minute later. The org's
	// clock starts 3m50s behind the handler's and a minute passes in the org before each run that must
	// see such a change (minutePasses). It stays behind, so the handler's windows never end in the
	// org's future, and within the 3 minutes of clock skew the org allows the JWT assertion.
	var lag atomic.Int64
	lag.Store(int64(3*time.Minute + 50*time.Second))
	sf.SetClock(func() time.Time { return time.Now().Add(-time.Duration(lag.Load())) })
	minutePasses := func() {
		if lag.Add(-int64(time.Minute)) < 0 {
			t.Fatal("the org's clock would run ahead of the handler's")
		}
	}
	s := startStack(t, c.settings, func(set map[string]string) {
		set[config.KeySalesforceLoginURL] = sf.URL()
		set[config.KeyCRMNoticeSender] = "crm-notices@connecthub.example"
	})
	c.serve(t, s)
	c.uploadAppCertificate(t, s)
	tenant := storetest.NewTenantID(t)
	ten := string(tenant)
	c.auth.GrantConsent(ten, appID)
	c.auth.GrantConsent(config.DevOperatorTenant, appID) // the notice is sent from ConnectHub's own tenant
	if err := tenantkey.New(s.secrets, tenantkey.Options{}).CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	const ada = "11111111-0000-4000-8000-0000000000e1"
	if _, err := s.store.Users.Upsert(ctx, tenant, registry.User{ID: ada, Mail: "ada@contoso.example", Licensed: true}); err != nil {
		t.Fatal(err)
	}
	c.graph.PutUser(ten, graphtest.User{ID: ada, DisplayName: "Ada Lovelace", Mail: "ada@contoso.example"})
	c.graph.PutUser(ten, graphtest.User{ID: "a0000000-0000-4000-8000-0000000000c1", DisplayName: "Grace Admin", Mail: "admin@contoso.example"})
	sf.AddUser(sftest.User{Username: "connecthub-sync@contoso.example", Approved: true})
	sf.AddUser(sftest.User{Username: "ada@contoso.example.crm", Email: "ada@contoso.example"})
	owner := sf.UserID("ada@contoso.example.crm")

	api := s.host.URL() + "/api/tenants/" + ten
	admin := "Bearer " + mintToken(t, s.host.URL(), devhost.DevTokenRequest{Tenant: ten, User: "a0000000-0000-4000-8000-0000000000c1",
		Roles: []string{access.AppRoleTenantAdmin}})
	do := func(method, u, body string) (int, string) {
		t.Helper()
		return callWith(t, method, u, admin, body)
	}
	sync := func() {
		t.Helper()
		// The timer runs over every active tenant in the shared Azurite, other tests' too, whose Salesforce
		// is not this one: a run may report their failures. What counts is this tenant's outcome.
		if err := s.host.FireTimer(ctx, "SyncCRM"); err != nil {
			t.Logf("SyncCRM reported: %v", err)
		}
	}

	// The tenant admin first names an integration user the org has not pre-authorised: the test says so.
	sf.AddUser(sftest.User{Username: "not-approved@contoso.example"})
	conn, _ := json.Marshal(map[string]string{"consumerKey": sf.App.ConsumerKey, "username": "not-approved@contoso.example",
		"host": "login.salesforce.com", "privateKey": sf.App.PrivateKeyPEM})
	if code, body := do("PUT", api+"/crm/connection", string(conn)); code != http.StatusOK {
		t.Fatalf("set connection = %d %s", code, body)
	}
	if code, body := do("POST", api+"/crm/connection/test", ""); code != http.StatusOK || !strings.Contains(body, `"code":"salesforce_not_preauthorized"`) {
		t.Fatalf("test with a user not pre-authorised = %d %s", code, body)
	}

	// Then the right one: the connection tests clean, and Ada is mapped both ways.
	conn, _ = json.Marshal(map[string]string{"consumerKey": sf.App.ConsumerKey, "username": "connecthub-sync@contoso.example",
		"host": "login.salesforce.com", "privateKey": sf.App.PrivateKeyPEM})
	if code, body := do("PUT", api+"/crm/connection", string(conn)); code != http.StatusOK || strings.Contains(body, "PRIVATE KEY") {
		t.Fatalf("set connection = %d %s", code, body)
	}
	if code, body := do("POST", api+"/crm/connection/test", ""); code != http.StatusOK || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("test connection = %d %s", code, body)
	}
	if code, body := do("PUT", api+"/crm/users/"+ada, `{"contacts":"both","events":"to-crm"}`); code != http.StatusOK || !strings.Contains(body, `"salesforceUserId":"`+owner+`"`) {
		t.Fatalf("map Ada = %d %s", code, body)
	}

	// One contact made in Outlook, one in Salesforce (owned by Ada's Salesforce user).
	const folder = "contacts"
	outlook := c.graph.PutContact(ten, ada, folder, graphtest.Contact{GivenName: "Zebulon", Surname: "Quixley", Emails: []string{"zebulon@quixley.example"}})
	salesforceID := sf.PutContact(map[string]any{"FirstName": "Ottoline", "LastName": "Varnavides", "Email": "ottoline@varnavides.example", "OwnerId": owner})
	inSalesforce := func(email string) []map[string]any {
		var out []map[string]any
		for _, r := range sf.Contacts() {
			if strings.EqualFold(str(r["Email"]), email) {
				out = append(out, r)
			}
		}
		return out
	}
	inOutlook := func(email string) []graphtest.Contact {
		var out []graphtest.Contact
		for _, ct := range c.graph.Contacts(ten, ada, folder) {
			if slices.ContainsFunc(ct.Emails, func(e string) bool { return strings.EqualFold(e, email) }) {
				out = append(out, ct)
			}
		}
		return out
	}
	minutePasses()
	sync()
	sync() // a second run writes nothing back: each side's copy is recognised as ours
	if got := inSalesforce("zebulon@quixley.example"); len(got) != 1 || got[0]["LastName"] != "Quixley" || got[0]["OwnerId"] != owner {
		t.Fatalf("Outlook's contact in Salesforce = %v, want exactly one, owned by Ada's user", got)
	}
	if got := inOutlook("ottoline@varnavides.example"); len(got) != 1 || got[0].Surname != "Varnavides" || got[0].Properties[crm.CRMIDProperty] != salesforceID {
		t.Fatalf("Salesforce's contact in Outlook = %+v, want exactly one carrying the Salesforce id", got)
	}
	if got := inOutlook("zebulon@quixley.example"); len(got) != 1 {
		t.Errorf("Outlook holds %d copies of its own contact, want 1", len(got))
	}
	if got := inSalesforce("ottoline@varnavides.example"); len(got) != 1 {
		t.Errorf("Salesforce holds %d copies of its own contact, want 1", len(got))
	}

	// An edit on either side is written to the other.
	c.graph.PutContact(ten, ada, folder, graphtest.Contact{ID: outlook, GivenName: "Zebulon", Surname: "Quixley", JobTitle: "Navigator",
		Emails: []string{"zebulon@quixley.example"}})
	sf.PutContact(map[string]any{"Id": salesforceID, "Title": "Cartographer"})
	minutePasses()
	sync()
	if got := inSalesforce("zebulon@quixley.example"); len(got) != 1 || got[0]["Title"] != "Navigator" {
		t.Errorf("after the Outlook edit, Salesforce has %v", got)
	}
	if got := inOutlook("ottoline@varnavides.example"); len(got) != 1 || got[0].JobTitle != "Cartographer" {
		t.Errorf("after the Salesforce edit, Outlook has %+v", got)
	}

	// A deletion on either side deletes the other copy once, and it does not come back.
	c.graph.DeleteContact(ten, ada, folder, outlook, "deleted")
	sf.DeleteContact(salesforceID)
	minutePasses()
	sync()
	sync()
	if got := inSalesforce("zebulon@quixley.example"); len(got) != 0 {
		t.Errorf("deleted in Outlook, still in Salesforce: %v", got)
	}
	if got := inOutlook("ottoline@varnavides.example"); len(got) != 0 {
		t.Errorf("deleted in Salesforce, still in Outlook: %+v", got)
	}

	// A contact Salesforce refuses (no last name) fails every run; the health API names it and says
	// what to do, and after ten failed runs in a row Ada and the admin get one e-mail.
	prince := c.graph.PutContact(ten, ada, folder, graphtest.Contact{GivenName: "Peregrine", DisplayName: "Peregrine", Emails: []string{"peregrine@falcon.example"}})
	type health struct {
		Users []struct {
			UserID     string
			FailedRuns int
			NotifiedAt *time.Time
			Failing    []struct{ DisplayName, Code, Action string }
		}
	}
	readHealth := func() health {
		t.Helper()
		code, body := do("GET", api+"/crm/health", "")
		var h health
		if err := json.Unmarshal([]byte(body), &h); code != http.StatusOK || err != nil || len(h.Users) != 1 {
			t.Fatalf("crm health = %d %s", code, body)
		}
		return h
	}
	sync()
	h := readHealth()
	if f := h.Users[0].Failing; len(f) != 1 || f[0].DisplayName != "Peregrine" || f[0].Code != "REQUIRED_FIELD_MISSING" || !strings.Contains(f[0].Action, "last name") {
		t.Fatalf("failing records = %+v, want Peregrine with what to do", f)
	}
	for range 9 {
		sync()
	}
	h = readHealth()
	if h.Users[0].FailedRuns < 10 || h.Users[0].NotifiedAt == nil {
		t.Errorf("after ten failed runs: %d in a row, notified %v", h.Users[0].FailedRuns, h.Users[0].NotifiedAt)
	}
	var notices int
	for _, m := range c.graph.Sent() {
		if strings.Contains(m.Body, "Peregrine") {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("notices naming the failing contact = %d, want 1 (%+v)", notices, c.graph.Sent())
	}

	// Fixed in Outlook: it syncs and leaves the list.
	c.graph.PutContact(ten, ada, folder, graphtest.Contact{ID: prince, GivenName: "Peregrine", Surname: "Falconer", Emails: []string{"peregrine@falcon.example"}})
	sync()
	if h = readHealth(); len(h.Users[0].Failing) != 0 || h.Users[0].FailedRuns != 0 {
		t.Errorf("after the fix: failing %+v, %d failed runs", h.Users[0].Failing, h.Users[0].FailedRuns)
	}
	if got := inSalesforce("peregrine@falcon.example"); len(got) != 1 {
		t.Errorf("the fixed contact in Salesforce = %v, want one", got)
	}

	// Graph's change notifications: SyncCRM made a subscription on Ada's contacts. Everything it has
	// notified so far (the test's changes and our own writes to the mailbox) reaches the webhook, and the
	// worker syncs Ada on each: nothing is created twice. Then a new Outlook contact reaches Salesforce
	// through its notification alone, with no timer run.
	var contactSubs int
	for _, sub := range c.graph.Subscriptions() {
		if sub.Tenant == ten && strings.EqualFold(sub.Resource, "/users/"+ada+"/contacts") {
			contactSubs++
		}
	}
	if contactSubs != 1 {
		t.Fatalf("subscriptions on Ada's contacts = %d, want 1", contactSubs)
	}
	deliver := func() int {
		t.Helper()
		ds := c.graph.TakeDeliveries()
		for _, d := range ds {
			if code, err := c.graph.Send(ctx, d); err != nil || code != http.StatusAccepted {
				t.Fatalf("notification answered %d, %v", code, err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.host.Queue(queue.Notifications).WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	if n := deliver(); n == 0 {
		t.Error("no contact notification was queued by the walk above")
	}
	if got := inSalesforce("peregrine@falcon.example"); len(got) != 1 {
		t.Errorf("after the notifications of the walk: Peregrine %d times in Salesforce, want 1", len(got))
	}
	c.graph.PutContact(ten, ada, folder, graphtest.Contact{GivenName: "Wilhelmina", Surname: "Quoddy", Emails: []string{"wilhelmina@quoddy.example"}})
	if n := deliver(); n != 1 {
		t.Errorf("notifications of one new contact = %d, want 1", n)
	}
	waitFor(t, "the notified contact in Salesforce", func() bool { return len(inSalesforce("wilhelmina@quoddy.example")) == 1 })

	// Events too: SyncCRM subscribed Ada's calendar; a meeting booked in Outlook reaches Salesforce as an
	// Event through its notification alone.
	start := time.Now().UTC().Truncate(time.Hour).Add(26 * time.Hour)
	for _, d := range c.graph.PutEvent(ten, ada, graphtest.CalEvent{ID: "AAMkAD-ev1", Subject: "Orrery review with Wilhelmina",
		Start: start, End: start.Add(time.Hour)}) {
		if code, err := c.graph.Send(ctx, d); err != nil || code != http.StatusAccepted {
			t.Fatalf("event notification answered %d, %v", code, err)
		}
	}
	waitFor(t, "the notified event in Salesforce", func() bool {
		for _, e := range sf.Records("Event") {
			if e["Subject"] == "Orrery review with Wilhelmina" {
				return true
			}
		}
		return false
	})
	deliver() // the echoes of what the sync wrote
	var events int
	for _, e := range sf.Records("Event") {
		if e["Subject"] == "Orrery review with Wilhelmina" {
			events++
		}
	}
	if events != 1 {
		t.Errorf("the meeting is %d times in Salesforce, want 1", events)
	}
	banned := []string{"wilhelmina", "quoddy", "orrery"}

	// Every row of every table in the account, as stored: no name or address of a contact anywhere.
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	banned = append(banned, "zebulon", "quixley", "ottoline", "varnavides", "peregrine", "falconer", "navigator", "cartographer")
	tablesPager := svc.NewListTablesPager(nil)
	var tables, rows int
	for tablesPager.More() {
		page, err := tablesPager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range page.Tables {
			tables++
			pager := svc.NewClient(*tb.Name).NewListEntitiesPager(nil)
			for pager.More() {
				p, err := pager.NextPage(ctx)
				var re *azcore.ResponseError
				if errors.As(err, &re) && re.ErrorCode == string(aztables.TableNotFound) {
					break // another package's test dropped its table while this one read the account
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, raw := range p.Entities {
					rows++
					low := strings.ToLower(string(raw))
					for _, w := range banned {
						if strings.Contains(low, w) {
							t.Errorf("table %s holds %q: %s", *tb.Name, w, raw)
						}
					}
				}
			}
		}
	}
	if tables < 10 || rows == 0 {
		t.Errorf("scanned %d tables, %d rows", tables, rows)
	}
}

func str(v any) string { s, _ := v.(string); return s }
