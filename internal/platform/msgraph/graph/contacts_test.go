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
}
