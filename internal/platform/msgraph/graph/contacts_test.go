package graph_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// A folder's contacts come through the delta query page by page with only the selected fields; the
// delta link then brings changes and removals, and an expired one says so.
func TestContactsDelta(t *testing.T) {
	e := newEnv(t)
	e.graph.ContactsPageSize = 2
	const mailbox = "11111111-0000-4000-8000-000000000001"
	ids := map[string]string{}
	for _, n := range []string{"Ada", "Bob", "Cy"} {
		ids[n] = e.graph.PutContact(tenant, mailbox, "contacts", graphtest.Contact{GivenName: n, Surname: "Smith", DisplayName: n + " Smith",
			Emails: []string{strings.ToLower(n) + "@fabrikam.example"}, BusinessPhones: []string{"+1 555 0100"}, BusinessCity: "Oslo",
			PersonalNotes: "secret notes", Birthday: "1990-01-01"})
	}
	c := e.appClient(t)
	got := map[string]graph.ContactChange{}
	collect := func(ch graph.ContactChange) error { got[ch.ID] = ch; return nil }
	link, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, "", collect)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || link == "" {
		t.Fatalf("enumeration: %d contacts, link %q", len(got), link)
	}
	ada := got[ids["Ada"]]
	if ada.GivenName != "Ada" || ada.Surname != "Smith" || len(ada.Emails) != 1 || ada.Emails[0] != "ada@fabrikam.example" ||
		ada.BusinessPhone != "+1 555 0100" || ada.Business.City != "Oslo" || ada.ChangeKey == "" || ada.LastModified.IsZero() {
		t.Errorf("ada = %+v", ada)
	}
	for _, r := range e.graph.Requests() {
		if strings.Contains(string(r.Path), "/delta") && r.Query.Get("$skiptoken") == "" && r.Query.Get("$deltatoken") == "" {
			sel := r.Query.Get("$select")
			if sel == "" || strings.Contains(sel, "personalNotes") || strings.Contains(sel, "birthday") || strings.Contains(sel, "homeAddress") {
				t.Errorf("first page's $select = %q", sel)
			}
		}
	}
	if n := e.graph.Count(http.MethodGet, "/users/"+mailbox+"/contactFolders/contacts/contacts/delta"); n != 2 {
		t.Errorf("pages = %d, want 2", n)
	}

	e.graph.PutContact(tenant, mailbox, "contacts", graphtest.Contact{ID: ids["Bob"], GivenName: "Robert", Surname: "Smith"})
	e.graph.DeleteContact(tenant, mailbox, "contacts", ids["Cy"], "deleted")
	clear(got)
	link2, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, link, collect)
	if err != nil || link2 == "" {
		t.Fatal(err)
	}
	if len(got) != 2 || got[ids["Bob"]].GivenName != "Robert" || got[ids["Bob"]].ChangeKey == ada.ChangeKey ||
		!got[ids["Cy"]].Removed || got[ids["Cy"]].RemovedReason != "deleted" {
		t.Errorf("changes = %+v", got)
	}
	one, err := c.GetContact(ctx, mailbox, graph.DefaultContactFolder, ids["Bob"])
	if err != nil || one.GivenName != "Robert" {
		t.Errorf("get = %+v, %v", one, err)
	}
	if _, err := c.GetContact(ctx, mailbox, graph.DefaultContactFolder, ids["Cy"]); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	e.graph.ExpireContactDeltaLinks(tenant, mailbox, "contacts")
	if _, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, link2, collect); !errors.Is(err, graph.ErrDeltaExpired) {
		t.Errorf("expired link: %v", err)
	}
	// The resync's fresh link is good again, though nothing changed since the expiry.
	link3, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, "", collect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, link3, collect); err != nil {
		t.Errorf("the link of the full read after the expiry: %v, want it valid", err)
	}
}

// The sync's writes: a contact created with an extended property is found by it (and by address, with
// a quote in it) with the property expanded, an update clears what it leaves empty and keeps the
// property, each write answers a new changeKey, and a deleted contact is 404 to a second delete and to
// an update.
func TestContactWrites(t *testing.T) {
	e := newEnv(t)
	const mailbox = "11111111-0000-4000-8000-000000000002"
	const prop = "String {6f1f6a4e-8f0c-4b6a-9a9e-3b1c2d4e5f60} Name CrmId"
	c := e.appClient(t)
	_, err := c.ContactsDelta(ctx, mailbox, graph.DefaultContactFolder, "", func(graph.ContactChange) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	e.graph.PutContact(tenant, mailbox, "contacts", graphtest.Contact{GivenName: "Other", Emails: []string{"other@example.org"}})
	created, err := c.CreateContact(ctx, mailbox, graph.DefaultContactFolder, graph.ContactWrite{GivenName: "Shaquille", Surname: "O'Neal",
		DisplayName: "Shaquille O'Neal", Emails: []string{"o'neal@lakers.example"}, JobTitle: "Center", BusinessPhone: "+1 555 0134",
		Business: graph.Address{City: "Los Angeles", CountryOrRegion: "US"}, Properties: map[string]string{prop: "003000000000001AAA"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.ChangeKey == "" || created.LastModified.IsZero() || created.Extended != nil {
		t.Fatalf("created %+v (the answer carries no extended property)", created)
	}
	stored, _ := e.graph.Contact(tenant, mailbox, "contacts", created.ID)
	if stored.Surname != "O'Neal" || stored.BusinessCity != "Los Angeles" || stored.BusinessCountry != "US" || stored.Properties[prop] != "003000000000001AAA" {
		t.Fatalf("stored %+v", stored)
	}
	for name, find := range map[string][2]string{"by property": {"003000000000001AAA", ""}, "by address": {"", "O'NEAL@lakers.example"}} {
		got, err := c.FindContacts(ctx, mailbox, graph.DefaultContactFolder, prop, find[0], find[1])
		if err != nil || len(got) != 1 || got[0].ID != created.ID || got[0].Extended[prop] != "003000000000001AAA" {
			t.Fatalf("%s: %+v, %v", name, got, err)
		}
	}
	if got, err := c.FindContacts(ctx, mailbox, graph.DefaultContactFolder, prop, "003000000000002AAA", ""); err != nil || len(got) != 0 {
		t.Fatalf("another value: %+v, %v", got, err)
	}
	updated, err := c.UpdateContact(ctx, mailbox, graph.DefaultContactFolder, created.ID, graph.ContactWrite{GivenName: "Shaq", Surname: "O'Neal",
		Emails: []string{"o'neal@lakers.example"}})
	if err != nil || updated.ChangeKey == created.ChangeKey {
		t.Fatalf("update: %+v, %v", updated, err)
	}
	stored, _ = e.graph.Contact(tenant, mailbox, "contacts", created.ID)
	if stored.GivenName != "Shaq" || stored.JobTitle != "" || len(stored.BusinessPhones) != 0 || stored.BusinessCity != "" ||
		stored.DisplayName != "Shaquille O'Neal" || stored.Properties[prop] != "003000000000001AAA" {
		t.Fatalf("after update %+v", stored)
	}
	if err := c.DeleteContact(ctx, mailbox, graph.DefaultContactFolder, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteContact(ctx, mailbox, graph.DefaultContactFolder, created.ID); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.UpdateContact(ctx, mailbox, graph.DefaultContactFolder, created.ID, graph.ContactWrite{Surname: "x"}); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("update of a deleted contact: %v", err)
	}
}

// ListContacts follows Outlook's $skip pages and expands the property on every contact.
func TestListContacts(t *testing.T) {
	e := newEnv(t)
	e.graph.ContactsPageSize = 2
	const mailbox = "11111111-0000-4000-8000-000000000003"
	const prop = "String {6f1f6a4e-8f0c-4b6a-9a9e-3b1c2d4e5f60} Name CrmId"
	c := e.appClient(t)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		e.graph.PutContact(tenant, mailbox, "contacts", graphtest.Contact{Surname: n, Emails: []string{n + "@example.org"},
			Properties: map[string]string{prop: "003" + strings.Repeat(n, 15)}, PersonalNotes: "not selected"})
	}
	got := map[string]string{}
	err := c.ListContacts(ctx, mailbox, graph.DefaultContactFolder, prop, func(ct graph.Contact) error {
		got[ct.Surname] = ct.Extended[prop]
		return nil
	})
	if err != nil || len(got) != 5 || got["c"] != "003ccccccccccccccc" {
		t.Fatalf("listed %v, %v", got, err)
	}
	pages := 0
	for _, r := range e.graph.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/contactFolders/contacts/contacts") {
			pages++
			if !strings.Contains(r.Query.Get("$select"), "surname") || strings.Contains(r.Query.Get("$select"), "personalNotes") {
				t.Errorf("page without the $select: %v", r.Query)
			}
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
}
