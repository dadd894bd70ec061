package appreg

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The fixtures have the shape `az ad sp show --id 00000003-0000-0000-c000-000000000000` and
// `az ad app show` print (Graph v1.0 servicePrincipal and application); their ids are made up. A
// registration made in the Azure portal starts, as app-new.json does, with the delegated User.Read.
func load[T any](t *testing.T, name string) T {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

const base = "https://connect.example.eu"

// apply is Graph's PATCH: each property given replaces the one held; in web and api only the
// sub-properties given.
func apply(app Application, p Patch) Application {
	app.IdentifierURIs = p.IdentifierURIs
	app.Web, app.API = cloneMap(app.Web), cloneMap(app.API)
	for k, v := range p.Web {
		app.Web[k] = v
	}
	for k, v := range p.API {
		app.API[k] = v
	}
	app.AppRoles, app.OptionalClaims, app.RequiredResourceAccess = p.AppRoles, p.OptionalClaims, p.RequiredResourceAccess
	// What Graph answers is JSON: go through it, so the second Plan reads what `az ad app show` would.
	b, _ := json.Marshal(app)
	var out Application
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func graphIDs(t *testing.T, graph GraphServicePrincipal, perms []Permission) []ResourceAccess {
	t.Helper()
	got, err := graphAccess(graph, perms)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPlanNewRegistration(t *testing.T) {
	graph := load[GraphServicePrincipal](t, "graph-sp.json")
	app := load[Application](t, "app-new.json")
	p, notes, err := Plan(app, graph, base+"/", Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api://" + app.AppID}; !slices.Equal(p.IdentifierURIs, want) {
		t.Errorf("identifierUris = %v, want %v", p.IdentifierURIs, want)
	}
	wantRedirects := []string{base + "/api/auth/callback", base + "/api/onboarding/consent", base + "/api/portal/callback"}
	if got := stringList(p.Web["redirectUris"]); !slices.Equal(got, wantRedirects) || len(p.Web) != 1 {
		t.Errorf("web = %v, want only redirectUris %v", p.Web, wantRedirects)
	}
	if len(p.API) != 1 || p.API["requestedAccessTokenVersion"] != 2 {
		t.Errorf("api = %v, want only requestedAccessTokenVersion 2", p.API)
	}
	if len(p.AppRoles) != len(AppRoles) {
		t.Fatalf("appRoles = %v", p.AppRoles)
	}
	for i, want := range AppRoles {
		r := p.AppRoles[i]
		if r["id"] != want.ID || r["value"] != want.Value || r["isEnabled"] != true || !slices.Equal(stringList(r["allowedMemberTypes"]), want.MemberTypes) {
			t.Errorf("appRole %d = %v, want %+v", i, r, want)
		}
	}
	if want := "Application"; stringList(p.AppRoles[3]["allowedMemberTypes"])[0] != want {
		t.Errorf("%s is for %v, want apps", p.AppRoles[3]["value"], p.AppRoles[3]["allowedMemberTypes"])
	}
	claims, _ := p.OptionalClaims["accessToken"].([]any)
	if len(claims) != 1 || claims[0].(map[string]any)["name"] != "idtyp" {
		t.Errorf("optionalClaims = %v, want idtyp on access tokens", p.OptionalClaims)
	}
	// Every permission by its id in Graph's principal and of its kind: User.Read.All is an application
	// permission (a…01), not the delegated one of the same name (b…06).
	want := []ResourceAccess{
		{"a0000000-0000-4000-8000-000000000001", Role},  // User.Read.All
		{"b0000000-0000-4000-8000-000000000001", Scope}, // openid
		{"b0000000-0000-4000-8000-000000000002", Scope}, // profile
		{"b0000000-0000-4000-8000-000000000007", Scope}, // Presence.Read.All
		{"b0000000-0000-4000-8000-000000000003", Scope}, // offline_access
		{"a0000000-0000-4000-8000-000000000002", Role},  // Presence.ReadWrite.All
		{"a0000000-0000-4000-8000-000000000003", Role},  // Place.Read.All
		{"a0000000-0000-4000-8000-000000000007", Role},  // Contacts.ReadWrite
		{"a0000000-0000-4000-8000-000000000005", Role},  // Calendars.ReadWrite (covers the rooms' Calendars.Read)
	}
	if len(p.RequiredResourceAccess) != 1 || p.RequiredResourceAccess[0].ResourceAppID != GraphAppID ||
		!slices.Equal(p.RequiredResourceAccess[0].ResourceAccess, want) {
		t.Errorf("requiredResourceAccess = %+v\nwant Graph %v", p.RequiredResourceAccess, want)
	}
	text := strings.Join(notes, "\n")
	for _, n := range []string{"delegated permission User.Read removed", "application permission Calendars.ReadWrite added",
		"app role ConnectHub.Automation added", "web redirect URI " + base + "/api/portal/callback added", "idtyp"} {
		if !strings.Contains(text, n) {
			t.Errorf("notes lack %q:\n%s", n, text)
		}
	}
}

// What ConnectHub does not own stays: other APIs' permissions, other redirect URIs, other roles, other
// optional claims; a role of ours made by hand stays as it is (Graph refuses to change an enabled role).
func TestPlanKeepsWhatItDoesNotOwn(t *testing.T) {
	graph := load[GraphServicePrincipal](t, "graph-sp.json")
	app := load[Application](t, "app-new.json")
	app.IdentifierURIs = []string{"https://contoso.example/connecthub"}
	app.Web["redirectUris"] = []any{"https://localhost:5001/signin"}
	other := RequiredResourceAccess{"00000002-0000-0ff1-ce00-000000000000", []ResourceAccess{{"c0000000-0000-4000-8000-000000000001", Role}}}
	// A second Graph entry, made by hand, with Mail.Send (a…08): merged into one, and Mail.Send removed.
	mailSend := RequiredResourceAccess{GraphAppID, []ResourceAccess{{"a0000000-0000-4000-8000-000000000008", Role}}}
	app.RequiredResourceAccess = append(app.RequiredResourceAccess, other, mailSend)
	app.AppRoles = []map[string]any{
		{"id": "11111111-0000-4000-8000-000000000001", "value": "ConnectHub.TenantAdmin", "displayName": "Admin", "isEnabled": true, "allowedMemberTypes": []any{"User"}},
		{"id": "11111111-0000-4000-8000-000000000002", "value": "Reports.Reader", "displayName": "Reports", "isEnabled": true, "allowedMemberTypes": []any{"User"}},
	}
	app.OptionalClaims = map[string]any{"idToken": []any{map[string]any{"name": "email"}}}

	p, notes, err := Plan(app, graph, base, []Capability{Presence})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.IdentifierURIs, []string{"https://contoso.example/connecthub", "api://" + app.AppID}) {
		t.Errorf("identifierUris = %v", p.IdentifierURIs)
	}
	if got := stringList(p.Web["redirectUris"]); got[0] != "https://localhost:5001/signin" || len(got) != 4 {
		t.Errorf("redirectUris = %v", got)
	}
	if !reflect.DeepEqual(p.AppRoles[0], app.AppRoles[0]) {
		t.Errorf("the hand-made TenantAdmin role = %v, want it unchanged", p.AppRoles[0])
	}
	if p.AppRoles[1]["value"] != "Reports.Reader" || len(p.AppRoles) != 5 {
		t.Errorf("appRoles = %v, want the other role kept and three added", p.AppRoles)
	}
	if p.OptionalClaims["idToken"] == nil {
		t.Errorf("optionalClaims = %v, want idToken kept", p.OptionalClaims)
	}
	if !slices.ContainsFunc(p.RequiredResourceAccess, func(r RequiredResourceAccess) bool {
		return r.ResourceAppID == other.ResourceAppID && slices.Equal(r.ResourceAccess, other.ResourceAccess)
	}) {
		t.Errorf("requiredResourceAccess = %+v, want %+v kept", p.RequiredResourceAccess, other)
	}
	// Presence alone: core and presence, no PBX → Teams, rooms or CRM permission.
	g := p.RequiredResourceAccess[len(p.RequiredResourceAccess)-1]
	if want := graphIDs(t, graph, Select([]Capability{Presence})); !slices.Equal(g.ResourceAccess, want) || len(want) != 5 {
		t.Errorf("Graph permissions = %v, want %v", g.ResourceAccess, want)
	}
	if len(p.RequiredResourceAccess) != 2 {
		t.Errorf("requiredResourceAccess = %+v, want the other API and one Graph entry", p.RequiredResourceAccess)
	}
	if slices.ContainsFunc(notes, func(s string) bool { return strings.Contains(s, "ConnectHub.TenantAdmin") }) {
		t.Errorf("notes = %v, want nothing said of the role kept", notes)
	}
	for _, n := range []string{"application permission Mail.Send removed", "delegated permission User.Read removed"} {
		if !slices.ContainsFunc(notes, func(s string) bool { return strings.Contains(s, n) }) {
			t.Errorf("notes = %v, want %q", notes, n)
		}
	}
}

// A disabled role of ours is enabled with our text (a disabled role may be changed); an enabled one for
// the wrong members cannot be changed, and the operator is told how to go on.
func TestPlanAppRolesMadeByHand(t *testing.T) {
	graph := load[GraphServicePrincipal](t, "graph-sp.json")
	app := load[Application](t, "app-new.json")
	app.AppRoles = []map[string]any{{"id": "22222222-0000-4000-8000-000000000001", "value": "ConnectHub.Operator",
		"displayName": "ops", "isEnabled": false, "allowedMemberTypes": []any{"Application"}}}
	p, notes, err := Plan(app, graph, base, Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	r := p.AppRoles[0]
	if r["id"] != "22222222-0000-4000-8000-000000000001" || r["isEnabled"] != true || r["displayName"] != AppRoles[1].DisplayName ||
		!slices.Equal(stringList(r["allowedMemberTypes"]), []string{"User"}) {
		t.Errorf("disabled Operator role = %v, want it enabled for users with its id kept", r)
	}
	if !slices.Contains(notes, "app role ConnectHub.Operator enabled (its id kept)") {
		t.Errorf("notes = %v", notes)
	}

	app.AppRoles[0]["isEnabled"] = true
	if _, _, err := Plan(app, graph, base, Capabilities); err == nil || !strings.Contains(err.Error(), "disable it in the registration") {
		t.Errorf("Plan with an enabled Operator role for apps = %v, want the way on explained", err)
	}
}

// Applied and planned again, the registration needs nothing more: the operator can run it on every
// deployment.
func TestPlanAgainChangesNothing(t *testing.T) {
	graph := load[GraphServicePrincipal](t, "graph-sp.json")
	app := load[Application](t, "app-new.json")
	p, _, err := Plan(app, graph, base, Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	after := apply(app, p)
	p2, notes, err := Plan(after, graph, base, Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("second plan notes %v, want none", notes)
	}
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(p2)
	if string(a) != string(b) {
		t.Errorf("second plan differs:\n%s\n%s", a, b)
	}
}

func TestPlanRefuses(t *testing.T) {
	graph := load[GraphServicePrincipal](t, "graph-sp.json")
	app := load[Application](t, "app-new.json")
	noPlace := load[GraphServicePrincipal](t, "graph-sp.json")
	noPlace.AppRoles = slices.DeleteFunc(noPlace.AppRoles, func(r GraphPermission) bool { return r.Value == "Place.Read.All" })
	notGraph := graph
	notGraph.AppID = "00000002-0000-0000-c000-000000000000"
	for _, tc := range []struct {
		name  string
		app   Application
		graph GraphServicePrincipal
		base  string
		want  string
	}{
		{"a permission Graph lacks", app, noPlace, base, "no enabled application permission Place.Read.All"},
		{"not Graph's principal", app, notGraph, base, "not Microsoft Graph's"},
		{"http base", app, graph, "http://connect.example.eu", "want https://<host>"},
		{"base with a path", app, graph, base + "/api", "want https://<host>"},
		{"not an application", Application{}, graph, base, "no id or appId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Plan(tc.app, tc.graph, tc.base, Capabilities)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Plan = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	values := func(ps []Permission) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Value)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		caps []Capability
		want string
	}{
		{nil, "User.Read.All openid profile"},
		{[]Capability{Rooms}, "User.Read.All openid profile Place.Read.All Calendars.Read"},
		{[]Capability{CRM}, "User.Read.All openid profile Contacts.ReadWrite Calendars.ReadWrite"},
		{[]Capability{Rooms, CRM}, "User.Read.All openid profile Place.Read.All Contacts.ReadWrite Calendars.ReadWrite"},
		{[]Capability{PBXToTeams, Presence}, "User.Read.All openid profile Presence.Read.All offline_access Presence.ReadWrite.All"},
	} {
		if got := values(Select(tc.caps)); got != tc.want {
			t.Errorf("Select(%v) = %s, want %s", tc.caps, got, tc.want)
		}
	}
	if got := ApplicationPermissions(Capabilities); strings.Join(got, " ") != "User.Read.All Presence.ReadWrite.All Place.Read.All Contacts.ReadWrite Calendars.ReadWrite" {
		t.Errorf("ApplicationPermissions = %v", got)
	}
	if _, err := ParseCapabilities("rooms,teams"); err == nil || !strings.Contains(err.Error(), `"teams"`) {
		t.Errorf("ParseCapabilities(rooms,teams) = %v, want it refused", err)
	}
	if got, _ := ParseCapabilities(" rooms,crm,rooms"); !slices.Equal(got, []Capability{Rooms, CRM}) {
		t.Errorf("ParseCapabilities = %v", got)
	}
}
