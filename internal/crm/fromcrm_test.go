package crm_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// outlook lists Ada's Outlook contacts by e-mail address (lower case).
func (f *syncFixture) outlook() map[string]graphtest.Contact {
	out := map[string]graphtest.Contact{}
	for _, c := range f.graph.Contacts(string(f.tenant), f.ada, "contacts") {
		k := ""
		if len(c.Emails) > 0 {
			k = strings.ToLower(c.Emails[0])
		}
		out[k] = c
	}
	return out
}

// graphWrites counts the contact writes the sync sent to Graph.
func (f *syncFixture) graphWrites() int {
	n := 0
	for _, m := range []string{"POST", "PATCH", "DELETE"} {
		n += f.graph.Count(m, "/users/"+f.ada+"/contactFolders/contacts/contacts")
	}
	return n
}

func (f *syncFixture) state(t *testing.T) crm.SyncState {
	t.Helper()
	st, err := f.data.SyncState.Get(ctx, f.tenant, tables.JoinKey(f.ada, "contact.contacts"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Salesforce → mailbox for contacts, both directions on, run after run with the clock of both services
// set: a first run is a full resync that creates Ada's Salesforce Contacts in Outlook (stamped with
// the Salesforce id), links the one both sides have by e-mail instead of duplicating it, and leaves
// other owners' Contacts alone; the windows then start at latestDateCovered; our own writes come back
// through the windows and the delta and are dropped; an edit in Salesforce reaches Outlook; a deletion
// in Salesforce deletes the Outlook contact once and an undelete never brings it back.
func TestContactSyncFromSalesforce(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionBoth, clk)
	marie := f.sf.PutContact(map[string]any{"FirstName": "Marie", "LastName": "Curie", "Email": "marie@radium.example", "Title": "Professor",
		"MailingCity": "Paris", "MailingCountry": "France", "OwnerId": f.owner})
	alanSF := f.sf.PutContact(map[string]any{"FirstName": "Alan", "LastName": "Turing", "Email": "alan@bletchley.example", "OwnerId": f.owner})
	f.sf.PutContact(map[string]any{"FirstName": "Linus", "LastName": "Pauling", "Email": "linus@caltech.example", "OwnerId": "005000000000000AAA"})
	clk.Advance(10 * time.Second)
	alan := f.put(graphtest.Contact{GivenName: "Alan", Surname: "Turing", DisplayName: "Alan Turing", Emails: []string{"Alan@Bletchley.example"},
		JobTitle: "Cryptanalyst"})
	f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", DisplayName: "Grace Hopper", Emails: []string{"grace@navy.example"}})

	rep := f.sync(t)
	if !rep.FullResync || rep.MailboxCreated != 1 || rep.MailboxLinked != 1 || rep.Created != 1 || rep.Failed != 0 {
		t.Fatalf("first run: %+v, want a full resync creating Marie in Outlook, Alan linked, Grace created in Salesforce", rep)
	}
	ol := f.outlook()
	if len(ol) != 3 || ol["alan@bletchley.example"].ID != alan {
		t.Fatalf("Outlook after the first run: %v (Alan once, no Linus)", ol)
	}
	m := ol["marie@radium.example"]
	if m.GivenName != "Marie" || m.Surname != "Curie" || m.DisplayName != "Marie Curie" || m.JobTitle != "Professor" || m.BusinessCity != "Paris" ||
		m.BusinessCountry != "France" || m.Properties[crm.CRMIDProperty] != marie {
		t.Fatalf("Marie in Outlook: %+v", m)
	}
	// Alan was edited in Outlook after Salesforce: the mailbox's copy won and went to Salesforce.
	if a, _ := f.sf.Contact(alanSF); a["Title"] != "Cryptanalyst" || len(f.byEmail("alan@bletchley.example")) != 1 {
		t.Fatalf("Alan in Salesforce: %v", a)
	}
	if n := len(f.sf.Contacts()); n != 4 {
		t.Fatalf("Salesforce holds %d contacts, want 4", n)
	}
	// Five minutes before the current minute: Salesforce's clock may run behind ours, and a change it
	// stamps before our now must still fall in the next window.
	if st := f.state(t); !st.CRMUpdatedTo.Equal(time.Date(2026, 12, 3, 9, 55, 0, 0, time.UTC)) || !st.CRMDeletedTo.Equal(st.CRMUpdatedTo) {
		t.Fatalf("windows after a full resync start five minutes before the current minute: %+v", st)
	}

	// Two minutes on: Salesforce's window (from 10:00, the minute of the full read) brings our own
	// writes (Grace created, Alan updated) and Marie again, and the delta brings Marie as we created her;
	// none is written back.
	clk.Advance(2 * time.Minute)
	writes, graphWrites := len(f.sf.Writes()), f.graphWrites()
	rep = f.sync(t)
	if rep.FullResync || rep.Echoes != 3 || rep.MailboxCreated+rep.MailboxUpdated+rep.Created+rep.Updated != 0 {
		t.Fatalf("echo run: %+v, want three echoes: our two Salesforce writes and Marie, read in full in the same minute", rep)
	}
	if len(f.sf.Writes()) != writes || f.graphWrites() != graphWrites {
		t.Fatalf("echoes were written back: %d Salesforce writes, %d Graph writes", len(f.sf.Writes())-writes, f.graphWrites()-graphWrites)
	}
	if st := f.state(t); !st.CRMUpdatedTo.Equal(time.Date(2026, 12, 3, 10, 2, 0, 0, time.UTC)) {
		t.Fatalf("next start is latestDateCovered: %+v", st)
	}

	// Marie is edited in Salesforce at 10:02:40: the run at 10:02:50 does not see it yet (Salesforce drops
	// the seconds), the one at 10:03:10 does.
	clk.Advance(10 * time.Second)
	f.sf.PutContact(map[string]any{"Id": marie, "Title": "Nobel laureate", "Phone": "+33 1 00 00"})
	clk.Advance(10 * time.Second)
	if rep = f.sync(t); rep.MailboxUpdated != 0 {
		t.Fatalf("an edit of the current minute was read: %+v", rep)
	}
	clk.Advance(20 * time.Second)
	if rep = f.sync(t); rep.MailboxUpdated != 1 {
		t.Fatalf("edit in Salesforce: %+v", rep)
	}
	if m := f.outlook()["marie@radium.example"]; m.JobTitle != "Nobel laureate" || len(m.BusinessPhones) != 1 || m.BusinessPhones[0] != "+33 1 00 00" {
		t.Fatalf("Marie after the edit: %+v", m)
	}
	clk.Advance(time.Minute)
	writes = len(f.sf.Writes())
	if rep = f.sync(t); rep.Updated != 0 || len(f.sf.Writes()) != writes {
		t.Fatalf("our write to Outlook went back to Salesforce: %+v", rep)
	}

	// Marie is deleted in Salesforce: gone from Outlook, once; undeleted in Salesforce, she stays gone.
	f.sf.DeleteContact(marie)
	clk.Advance(time.Minute)
	if rep = f.sync(t); rep.MailboxDeleted != 1 {
		t.Fatalf("deletion in Salesforce: %+v", rep)
	}
	if _, ok := f.outlook()["marie@radium.example"]; ok {
		t.Fatal("Marie still in Outlook")
	}
	f.sf.PutContact(map[string]any{"Id": marie, "Title": "Restored"})
	clk.Advance(time.Minute)
	graphWrites = f.graphWrites()
	if rep = f.sync(t); rep.MailboxCreated+rep.MailboxDeleted != 0 || f.graphWrites() != graphWrites {
		t.Fatalf("after the undelete: %+v", rep)
	}
	if _, ok := f.outlook()["marie@radium.example"]; ok {
		t.Fatal("a deleted contact came back")
	}

	// Alan is deleted in Outlook: deleted in Salesforce; the deletion Salesforce then reports is ours and
	// does nothing.
	f.graph.DeleteContact(string(f.tenant), f.ada, "contacts", alan, "deleted")
	clk.Advance(time.Minute)
	if rep = f.sync(t); rep.Deleted != 1 {
		t.Fatalf("deletion in Outlook: %+v", rep)
	}
	clk.Advance(time.Minute)
	graphWrites = f.graphWrites()
	if rep = f.sync(t); rep.MailboxDeleted != 0 || rep.Deleted != 0 || f.graphWrites() != graphWrites {
		t.Fatalf("the echo of our deletion: %+v", rep)
	}

	// The Recycle Bin is emptied: earliestDateAvailable passes our last sync, so the next run resyncs in
	// full, and writes nothing because both sides agree.
	clk.Advance(time.Minute)
	f.sf.PurgeDeleted()
	clk.Advance(time.Minute)
	writes, graphWrites = len(f.sf.Writes()), f.graphWrites()
	if rep = f.sync(t); !rep.FullResync || len(f.sf.Writes()) != writes || f.graphWrites() != graphWrites {
		t.Fatalf("after the purge: %+v", rep)
	}

	// Nothing at rest names a contact.
	for _, name := range []string{crm.TableLedger, crm.TableSyncState, crm.TableSyncErrors} {
		raw := f.rawRows(t, name)
		for _, w := range []string{"Marie", "Curie", "radium", "Alan", "Turing", "Grace", "Hopper", "Paris", "Nobel", "Cryptanalyst"} {
			if strings.Contains(raw, w) {
				t.Errorf("%s holds %q at rest", name, w)
			}
		}
	}
}

// Edits on both sides since the last run: the later modification wins whole, on both sides, whichever
// side it is on.
func TestContactSyncLastWriterWins(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionBoth, clk)
	grace := f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}, JobTitle: "Captain"})
	f.sync(t)
	graceSF := f.byEmail("grace@navy.example")[0]["Id"].(string)
	clk.Advance(2 * time.Minute)
	f.sync(t)

	for _, tc := range []struct {
		name         string
		outlookFirst bool
		want         string
	}{
		{"outlook later", false, "Outlook title 1"},
		{"salesforce later", true, "Salesforce title 2"},
	} {
		n := tc.want[len(tc.want)-1:]
		edit := []func(){
			func() { f.sf.PutContact(map[string]any{"Id": graceSF, "Title": "Salesforce title " + n}) },
			func() {
				f.put(graphtest.Contact{ID: grace, GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}, JobTitle: "Outlook title " + n})
			},
		}
		if tc.outlookFirst {
			edit[0], edit[1] = edit[1], edit[0]
		}
		clk.Advance(10 * time.Second)
		edit[0]()
		clk.Advance(10 * time.Second)
		edit[1]()
		clk.Advance(time.Minute)
		rep := f.sync(t)
		if rep.Conflicts != 1 {
			t.Errorf("%s: %+v, want one conflict", tc.name, rep)
		}
		sf, _ := f.sf.Contact(graceSF)
		ol, _ := f.graph.Contact(string(f.tenant), f.ada, "contacts", grace)
		if sf["Title"] != tc.want || ol.JobTitle != tc.want {
			t.Fatalf("%s: Salesforce %q, Outlook %q, want %q on both", tc.name, sf["Title"], ol.JobTitle, tc.want)
		}
		// The next run finds both sides equal and writes nothing.
		clk.Advance(time.Minute)
		writes, graphWrites := len(f.sf.Writes()), f.graphWrites()
		f.sync(t)
		if len(f.sf.Writes()) != writes || f.graphWrites() != graphWrites {
			t.Fatalf("%s: the winner's write echoed", tc.name)
		}
	}
}

// A ledger that was lost (the state and the ledger rows deleted) makes no duplicate on either side:
// the Outlook contact is found by the Salesforce id it carries, the Salesforce record by e-mail.
func TestContactSyncMatchesByCRMIDAfterLedgerLoss(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionBoth, clk)
	// Kate's address in Outlook is changed afterwards, so only the id property can find her.
	kate := f.sf.PutContact(map[string]any{"FirstName": "Kate", "LastName": "Johnson", "Email": "kate@nasa.example", "OwnerId": f.owner})
	f.sync(t)
	clk.Advance(2 * time.Minute)
	k := f.outlook()["kate@nasa.example"]
	if k.Properties[crm.CRMIDProperty] != kate {
		t.Fatalf("Kate in Outlook: %+v", k)
	}
	if _, err := f.data.Ledger.DeletePrefix(ctx, f.tenant, f.ada+tables.KeySep); err != nil {
		t.Fatal(err)
	}
	if _, err := f.data.SyncState.DeletePrefix(ctx, f.tenant, f.ada+tables.KeySep); err != nil {
		t.Fatal(err)
	}
	f.sf.PutContact(map[string]any{"Id": kate, "Email": "katherine@nasa.example"})
	clk.Advance(time.Minute)
	rep := f.sync(t)
	if rep.MailboxCreated != 0 || rep.Created != 0 || rep.MailboxLinked != 1 {
		t.Fatalf("after the ledger loss: %+v, want Kate linked by her id, nothing created", rep)
	}
	if n := len(f.graph.Contacts(string(f.tenant), f.ada, "contacts")); n != 1 || len(f.sf.Contacts()) != 1 {
		t.Fatalf("%d Outlook contacts, %d Salesforce contacts, want 1 each", n, len(f.sf.Contacts()))
	}
	if _, ok := f.outlook()["katherine@nasa.example"]; !ok {
		t.Fatalf("Kate's new address did not reach Outlook: %v", f.outlook())
	}
}

// With contacts from the CRM only, the mailbox's changes stay in the mailbox, and a contact the user
// deletes in Outlook is not created again when Salesforce's copy changes.
func TestContactSyncFromCRMOnly(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionFromCRM, clk)
	ada := f.sf.PutContact(map[string]any{"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@engine.example", "OwnerId": f.owner})
	f.put(graphtest.Contact{GivenName: "Only", Surname: "Outlook", Emails: []string{"only@outlook.example"}})
	if rep := f.sync(t); rep.MailboxCreated != 1 || rep.Created != 0 {
		t.Fatalf("first run: %+v", rep)
	}
	if n := len(f.sf.Contacts()); n != 1 {
		t.Fatalf("the mailbox's contact went to Salesforce: %d contacts", n)
	}
	id := f.outlook()["ada@engine.example"].ID
	f.graph.DeleteContact(string(f.tenant), f.ada, "contacts", id, "deleted")
	clk.Advance(time.Minute)
	f.sf.PutContact(map[string]any{"Id": ada, "Title": "Countess"})
	clk.Advance(time.Minute)
	f.sync(t)
	clk.Advance(time.Minute)
	f.sf.PutContact(map[string]any{"Id": ada, "Title": "Analyst"})
	clk.Advance(time.Minute)
	if rep := f.sync(t); rep.MailboxCreated+rep.MailboxUpdated+rep.MailboxLinked != 0 {
		t.Fatalf("after the deletion in Outlook: %+v", rep)
	}
	if _, ok := f.outlook()["ada@engine.example"]; ok {
		t.Fatal("a contact deleted in Outlook came back")
	}
	if _, ok := f.sf.Contact(ada); !ok {
		t.Fatal("the Salesforce contact was deleted though mailbox changes do not go to the CRM")
	}
	// The ledger keeps the deletion, so no later run reads the contact again.
	p, err := f.data.Ledger.List(ctx, f.tenant, nil)
	if err != nil || len(p.Items) != 1 || p.Items[0].DeletedAt.IsZero() {
		t.Fatalf("ledger: %+v, %v", p.Items, err)
	}
	gets := f.graph.Count("GET", "/users/"+f.ada+"/contactFolders/contacts/contacts/"+id)
	clk.Advance(time.Minute)
	f.sf.PutContact(map[string]any{"Id": ada, "Title": "Mathematician"})
	clk.Advance(time.Minute)
	f.sync(t)
	if n := f.graph.Count("GET", "/users/"+f.ada+"/contactFolders/contacts/contacts/"+id); n != gets {
		t.Errorf("the deleted contact was read %d more times", n-gets)
	}
}

// A first run matches Salesforce's Contacts to the mailbox's without duplicating either side, whether
// it looks each up (a few) or lists the folder once (many): two Salesforce Contacts with one address
// take one Outlook contact and a new one, never the same one twice.
func TestContactSyncFirstRunMatching(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		n       int
		listing bool
	}{{"lookups", 3, false}, {"listing", 40, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
			f := newSyncFixtureWith(t, crm.DirectionFromCRM, clk)
			f.graph.ContactsPageSize = 7
			for i := range tc.n {
				f.sf.PutContact(map[string]any{"LastName": fmt.Sprintf("Person %d", i), "Email": fmt.Sprintf("p%d@example.org", i), "OwnerId": f.owner})
			}
			twin := f.sf.PutContact(map[string]any{"LastName": "Twin", "Email": "p0@example.org", "OwnerId": f.owner})
			f.put(graphtest.Contact{Surname: "Person 0 (Outlook)", Emails: []string{"P0@example.org"}})
			f.put(graphtest.Contact{Surname: "Person 1 (Outlook)", Emails: []string{"p1@example.org"}})
			clk.Advance(10 * time.Second)
			rep := f.sync(t)
			if rep.MailboxLinked != 2 || rep.MailboxCreated != tc.n-1 {
				t.Fatalf("%+v, want 2 linked and %d created", rep, tc.n-1)
			}
			all := f.graph.Contacts(string(f.tenant), f.ada, "contacts")
			if len(all) != tc.n+1 {
				t.Fatalf("%d Outlook contacts, want %d", len(all), tc.n+1)
			}
			carriers := map[string]int{}
			for _, c := range all {
				carriers[c.Properties[crm.CRMIDProperty]]++
			}
			if carriers[twin] != 1 {
				t.Fatalf("the twin is in Outlook %d times", carriers[twin])
			}
			lookups := 0
			for _, r := range f.graph.Requests() {
				if r.Method == "GET" && r.Query.Get("$filter") != "" {
					lookups++
				}
			}
			if tc.listing != (lookups == 0) {
				t.Errorf("%d lookups by $filter (listing the folder: %v)", lookups, tc.listing)
			}
		})
	}
}

// A window with more ids than Salesforce answers (EXCEEDED_ID_LIMIT) is narrowed: each run takes the
// part that fits and the next goes on from its latestDateCovered, until every change has arrived.
func TestContactSyncNarrowsAWindowTooLarge(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionFromCRM, clk)
	var ids []string
	for i := range 6 {
		ids = append(ids, f.sf.PutContact(map[string]any{"LastName": fmt.Sprintf("P%d", i), "Email": fmt.Sprintf("p%d@example.org", i), "OwnerId": f.owner}))
	}
	f.sync(t) // the full first read
	f.sf.IDLimit = 2
	for i, id := range ids {
		clk.Advance(time.Minute)
		f.sf.PutContact(map[string]any{"Id": id, "Title": fmt.Sprintf("T%d", i)})
	}
	clk.Advance(time.Minute)
	refusedBefore := f.sf.Calls("GET /sobjects/Contact/updated/")
	updated := 0
	for run := 0; run < 6 && updated < 6; run++ {
		rep := f.sync(t)
		updated += rep.MailboxUpdated
		clk.Advance(10 * time.Second)
	}
	if updated != 6 {
		t.Fatalf("%d of 6 edits arrived", updated)
	}
	for i, c := range f.graph.Contacts(string(f.tenant), f.ada, "contacts") {
		if c.JobTitle == "" {
			t.Errorf("contact %d without its edit: %+v", i, c)
		}
	}
	if calls := f.sf.Calls("GET /sobjects/Contact/updated/") - refusedBefore; calls <= 3 {
		t.Errorf("%d window calls: the window was never narrowed", calls)
	}
}

// A Salesforce Contact Outlook refuses is kept by its Salesforce name in the sync errors (sealed), the
// others go on and the windows move on; it is read again every run and leaves the errors once it goes
// through.
func TestContactSyncOutlookRefusesARecord(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionFromCRM, clk)
	f.sync(t)
	clk.Advance(time.Minute)
	a := f.sf.PutContact(map[string]any{"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@engine.example", "OwnerId": f.owner})
	b := f.sf.PutContact(map[string]any{"FirstName": "Charles", "LastName": "Babbage", "Email": "charles@engine.example", "OwnerId": f.owner})
	clk.Advance(time.Minute)
	// The first create (in Salesforce id order) is refused as Graph refuses a value it does not take.
	f.graph.Fail("POST", "/users/"+f.ada+"/contactFolders/contacts/contacts", graphtest.Failure{Status: http.StatusBadRequest, Code: "ErrorInvalidProperty"})
	rep := f.sync(t)
	if rep.MailboxCreated != 1 || rep.Failed != 1 {
		t.Fatalf("%+v", rep)
	}
	refused, other := "Ada Lovelace", b
	if b < a {
		refused, other = "Charles Babbage", a
	}
	errs := f.syncErrors(t)
	if len(errs) != 1 || errs[0].Type != crm.RecordCRMContact || errs[0].SourceID == other || errs[0].DisplayName != refused ||
		errs[0].Code != "outlook_ErrorInvalidProperty" {
		t.Fatalf("sync errors %+v", errs)
	}
	st := f.state(t)
	if st.LastCode != crm.CodeRecordsFailed || !st.CRMUpdatedTo.Equal(time.Date(2026, 12, 3, 10, 2, 0, 0, time.UTC)) {
		t.Fatalf("state %+v: the window moves on past a refused record", st)
	}
	if raw := f.rawRows(t, crm.TableSyncErrors); strings.Contains(raw, "Lovelace") || strings.Contains(raw, "Babbage") {
		t.Fatalf("the name is not sealed: %s", raw)
	}
	h, err := f.svc.SyncHealth(ctx, f.tenant)
	if err != nil || len(h.Users[0].Failing) != 1 || !strings.Contains(h.Users[0].Failing[0].Action, "Outlook refused") {
		t.Fatalf("health %+v, %v", h, err)
	}
	// Nothing changes in Salesforce; the next run reads the refused Contact again and it goes through.
	clk.Advance(time.Minute)
	if rep = f.sync(t); rep.MailboxCreated != 1 || rep.Failed != 0 {
		t.Fatalf("retry: %+v", rep)
	}
	if len(f.syncErrors(t)) != 0 || len(f.graph.Contacts(string(f.tenant), f.ada, "contacts")) != 2 {
		t.Fatalf("after the retry: errors %+v", f.syncErrors(t))
	}
}

// Mailbox → Salesforce matches a new Outlook contact by the Salesforce id it carries before its address
// (which may have changed): it is linked, not created again; one whose Salesforce Contact is gone is
// created.
func TestContactSyncToCRMMatchesByCarriedID(t *testing.T) {
	t.Parallel()
	for _, many := range []bool{false, true} {
		t.Run(fmt.Sprintf("listing=%v", many), func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
			f := newSyncFixtureWith(t, crm.DirectionToCRM, clk)
			kate := f.sf.PutContact(map[string]any{"FirstName": "Kate", "LastName": "Johnson", "Email": "kate@nasa.example"})
			gone := f.sf.PutContact(map[string]any{"LastName": "Gone", "Email": "gone@example.org"})
			f.sf.DeleteContact(gone)
			clk.Advance(10 * time.Second) // the mailbox's copies are newer
			f.put(graphtest.Contact{GivenName: "Kate", Surname: "Johnson", Emails: []string{"katherine@nasa.example"},
				Properties: map[string]string{crm.CRMIDProperty: kate}})
			f.put(graphtest.Contact{Surname: "Gone", Emails: []string{"gone@example.org"}, Properties: map[string]string{crm.CRMIDProperty: gone}})
			extra := 0
			if many {
				for i := range 30 {
					f.put(graphtest.Contact{Surname: fmt.Sprintf("P%d", i), Emails: []string{fmt.Sprintf("p%d@example.org", i)}})
				}
				extra = 30
			}
			rep := f.sync(t)
			if rep.Linked != 1 || rep.Created != 1+extra {
				t.Fatalf("%+v, want Kate linked by her id and the contact of the deleted record created", rep)
			}
			if n := len(f.sf.Contacts()); n != 2+extra {
				t.Fatalf("%d Salesforce contacts, want %d", n, 2+extra)
			}
			if c, _ := f.sf.Contact(kate); c["Email"] != "katherine@nasa.example" {
				t.Fatalf("Kate in Salesforce: %v (the mailbox's copy is newer)", c)
			}
		})
	}
}
