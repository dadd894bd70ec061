package crm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// licensed adds a licensed user with the mailbox address mail and returns the object id.
func (f *fixture) licensed(t testing.TB, tenant core.TenantID, id, mail string, licensed bool) string {
	t.Helper()
	if _, err := f.env.Store.Users.Upsert(ctx, tenant, registry.User{ID: id, Mail: mail, Licensed: licensed}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A mailbox maps to the one active Salesforce user with its address (compared as SOQL compares e-mail:
// case-insensitively), or to the user an admin names; every way it cannot is refused and says what to
// do; the row keeps the Salesforce id only, never the address it was found by.
func TestSetUserMapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	ada := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000001", "Ada.Lovelace@contoso.example", true)
	quote := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000002", "o'brien@contoso.example", true)
	nobody := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000003", "nobody@contoso.example", true)
	twice := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000004", "shared@contoso.example", true)
	unlicensed := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000005", "gone@contoso.example", false)
	f.sf.AddUser(sftest.User{Username: "ada@contoso.example.crm", Email: "ada.lovelace@contoso.example"})
	f.sf.AddUser(sftest.User{Username: "obrien@contoso.example.crm", Email: "o'brien@contoso.example"})
	// Someone whose address ends like o'brien's: a query built by pasting the address could match it.
	f.sf.AddUser(sftest.User{Username: "other@contoso.example.crm", Email: "x@contoso.example"})
	f.sf.AddUser(sftest.User{Username: "shared1@contoso.example.crm", Email: "shared@contoso.example"})
	f.sf.AddUser(sftest.User{Username: "shared2@contoso.example.crm", Email: "shared@contoso.example"})
	f.sf.AddUser(sftest.User{Username: "left@contoso.example.crm", Email: "left@contoso.example", Inactive: true})

	both := crm.MappingInput{Contacts: crm.DirectionBoth, Events: crm.DirectionToCRM}
	if _, err := f.svc.SetUserMapping(ctx, admin, tenant, ada, both); apperr.CodeOf(err) != apperr.Conflict ||
		!strings.Contains(err.Error(), "no CRM connection") {
		t.Fatalf("before the connection: %v", err)
	}
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	m, err := f.svc.SetUserMapping(ctx, admin, tenant, ada, both)
	if err != nil {
		t.Fatal(err)
	}
	if m.SalesforceUserID != f.sf.UserID("ada@contoso.example.crm") || m.MatchedBy != crm.MatchedByEmail ||
		m.Contacts != crm.DirectionBoth || m.Events != crm.DirectionToCRM || m.SetBy != admin.ID || !m.SetAt.Equal(start) {
		t.Fatalf("mapping %+v", m)
	}
	if m, err := f.svc.SetUserMapping(ctx, admin, tenant, quote, crm.MappingInput{Contacts: crm.DirectionToCRM}); err != nil ||
		m.SalesforceUserID != f.sf.UserID("obrien@contoso.example.crm") || m.Events != crm.DirectionOff {
		t.Fatalf("an address with a quote: %+v, %v", m, err)
	}
	for _, tt := range []struct {
		name   string
		user   string
		in     crm.MappingInput
		code   apperr.Code
		saying string
	}{
		{"no Salesforce user has the address", nobody, both, apperr.Conflict, "give salesforceUserId"},
		{"two have it", twice, both, apperr.Conflict, "more than one"},
		{"not licensed", unlicensed, both, apperr.NotFound, "no licensed user"},
		{"no such user", "11111111-0000-4000-8000-0000000000ff", both, apperr.NotFound, "no licensed user"},
		{"not an object id", "ada", both, apperr.Invalid, "GUID"},
		{"a direction that is not one", ada, crm.MappingInput{Contacts: "sideways"}, apperr.Invalid, "one of off, to-crm, from-crm, both"},
		{"an override that is no id", nobody, crm.MappingInput{SalesforceUserID: "0051' OR Id != '"}, apperr.Invalid, "starting with 005"},
		{"an override of an inactive user", nobody, crm.MappingInput{SalesforceUserID: f.sf.UserID("left@contoso.example.crm")}, apperr.Invalid, "no active user"},
	} {
		if _, err := f.svc.SetUserMapping(ctx, admin, tenant, tt.user, tt.in); apperr.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.saying) {
			t.Errorf("%s: %v, want %s saying %q", tt.name, err, tt.code, tt.saying)
		}
	}
	// The admin overrides: the mailbox without a match maps to the user named.
	m, err = f.svc.SetUserMapping(ctx, admin, tenant, nobody, crm.MappingInput{SalesforceUserID: f.sf.UserID("shared1@contoso.example.crm"), Contacts: crm.DirectionToCRM})
	if err != nil || m.MatchedBy != crm.MatchedByOverride || m.SalesforceUserID != f.sf.UserID("shared1@contoso.example.crm") {
		t.Fatalf("override: %+v, %v", m, err)
	}

	got, ok, err := f.svc.GetUserMapping(ctx, tenant, ada)
	if err != nil || !ok || got.SalesforceUserID != f.sf.UserID("ada@contoso.example.crm") {
		t.Fatalf("get: %+v %v %v", got, ok, err)
	}
	if _, ok, err := f.svc.GetUserMapping(ctx, tenant, twice); err != nil || ok {
		t.Fatalf("get unmapped: %v %v", ok, err)
	}
	p, err := f.svc.ListUserMappings(ctx, tenant, "", 2)
	if err != nil || len(p.Mappings) != 2 || p.Next == "" {
		t.Fatalf("list page 1: %+v, %v", p, err)
	}
	p2, err := f.svc.ListUserMappings(ctx, tenant, p.Next, 2)
	if err != nil || len(p2.Mappings) != 1 || p2.Next != "" {
		t.Fatalf("list page 2: %+v, %v", p2, err)
	}
	if _, err := f.svc.ListUserMappings(ctx, tenant, "", 501); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("page size 501: %v", err)
	}

	// At rest: ids and directions, no address.
	for _, id := range []string{ada, quote, nobody} {
		props, err := f.data.Users.GetRaw(ctx, tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(props)
		if strings.Contains(strings.ToLower(string(b)), "contoso.example") || strings.Contains(string(b), "brien") {
			t.Errorf("an address at rest: %s", b)
		}
	}

	if err := f.svc.DeleteUserMapping(ctx, admin, tenant, quote); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.svc.GetUserMapping(ctx, tenant, quote); ok {
		t.Fatal("mapping still there after delete")
	}
	// Each change and refusal is audited against the user.
	acts := f.userActions(t, tenant)
	want := map[string]int{"crm.user.set success": 3, "crm.user.set denied": 1 + 7, "crm.user.delete success": 1}
	got2 := map[string]int{}
	for _, a := range acts {
		got2[a]++
	}
	for k, v := range want {
		if got2[k] != v {
			t.Errorf("audit %q: %d, want %d (all: %v)", k, got2[k], v, acts)
		}
	}
}

// userActions lists the audit entries about users as "action outcome".
func (f *fixture) userActions(t *testing.T, tenant core.TenantID) []string {
	t.Helper()
	var out []string
	p, err := auditList(f, tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p {
		if e.TargetType == "user" {
			out = append(out, e.Action+" "+e.Outcome)
		}
	}
	return out
}

// A person's export finds their mapping and the mappings they set; erasure deletes their own and takes
// their id out of the others.
func TestUserMappingPersonalData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	ada := f.licensed(t, tenant, "11111111-0000-4000-8000-000000000001", "ada@contoso.example", true)
	f.sf.AddUser(sftest.User{Username: "ada@contoso.example.crm", Email: "ada@contoso.example"})
	// The admin maps themself too.
	f.licensed(t, tenant, admin.ID, "admin@contoso.example", true)
	f.sf.AddUser(sftest.User{Username: "admin@contoso.example.crm", Email: "admin@contoso.example"})
	for _, u := range []string{ada, admin.ID} {
		if _, err := f.svc.SetUserMapping(ctx, admin, tenant, u, crm.MappingInput{Contacts: crm.DirectionToCRM}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := f.data.Export(ctx, tenant, ada)
	if err != nil || len(recs) != 1 || recs[0].Table != crm.TableUsers {
		t.Fatalf("export of ada: %v, %v", recs, err)
	}
	recs, err = f.data.Export(ctx, tenant, admin.ID)
	if err != nil || len(recs) != 3 {
		t.Fatalf("export of the admin (connection, two mappings): %v, %v", recs, err)
	}
	n, err := f.data.Erase(ctx, tenant, admin.ID)
	if err != nil || n[crm.TableUsers].Deleted != 1 || n[crm.TableUsers].Pseudonymised != 1 || n[crm.TableConnections].Pseudonymised != 1 {
		t.Fatalf("erase: %v, %v", n, err)
	}
	if m, ok, _ := f.svc.GetUserMapping(ctx, tenant, ada); !ok || m.SetBy != "" {
		t.Fatalf("ada's mapping after the admin's erasure: %+v %v", m, ok)
	}
	if _, ok, _ := f.svc.GetUserMapping(ctx, tenant, admin.ID); ok {
		t.Fatal("the admin's own mapping survived their erasure")
	}
}

func auditList(f *fixture, tenant core.TenantID) ([]audit.Entry, error) {
	p, err := audit.OpenLog(f.env.Store.DB()).List(ctx, tenant, nil)
	return p.Items, err
}
