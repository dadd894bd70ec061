// Package appreg is the one list of what ConnectHub's Entra app registration must hold — Microsoft
// Graph permissions, app roles, redirect URIs, the API's identifier and token settings — and the patch
// that brings an existing registration in line with it (`connecthub app-registration`). The README,
// the sandbox's admin consent and the operator command all read this list, so a capability that needs
// a new permission adds it here once.
//
// Graph permission ids are never written here: they are looked up by name in Microsoft Graph's own
// service principal (`az ad sp show --id 00000003-0000-0000-c000-000000000000`), whose appRoles are
// the application permissions and whose oauth2PermissionScopes are the delegated ones (Learn,
// "Add-AzADAppPermission": "Application permissions under the appRoles property correspond to Role …
// Delegated permissions … correspond to Scope").
package appreg

import (
	"fmt"
	"slices"
	"strings"

	"github.com/connecthub/connecthub/internal/access"
)

// GraphAppID is Microsoft Graph's application id, the same in every tenant.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// Kind is a permission's type, as requiredResourceAccess spells it.
type Kind string

const (
	Role  Kind = "Role"  // an application (app-only) permission: an appRole of Graph's service principal
	Scope Kind = "Scope" // a delegated permission (a signed-in user's): an oauth2PermissionScope
)

// Capability names a part of the product an operator may leave out of the registration.
type Capability string

const (
	Core       Capability = "core"         // tenants, licences, sign-in to the admin portal
	Presence   Capability = "presence"     // Teams → PBX through service users
	PBXToTeams Capability = "pbx-to-teams" // the PBX's call state written to Teams
	Rooms      Capability = "rooms"        // the Room Finder's booking cache
	CRM        Capability = "crm"          // mailbox ↔ Salesforce contacts and events
)

// Capabilities are every capability, in the order the command lists them.
var Capabilities = []Capability{Core, Presence, PBXToTeams, Rooms, CRM}

// Permission is one Microsoft Graph permission the app asks every customer tenant's admin to consent to.
type Permission struct {
	Value string
	Kind  Kind
	For   Capability
	Why   string
	// Narrower is what may replace it, and when; empty when nothing narrower does the job.
	Narrower string
}

// Permissions is what the app registration asks for. Mail.Send is not among them: the CRM sync's
// failure notices go out from ConnectHub's own tenant, where the operator grants it alone
// (README, "Prerequisites"), so no customer's consent gives the app a way to send mail as anyone.
var Permissions = []Permission{
	{"User.Read.All", Role, Core, "licensed users' profiles: licence reconcile, PBX extension matching, CRM notices", ""},
	{"openid", Scope, Core, "sign-in of service users and of portal users", ""},
	{"profile", Scope, Core, "the signed-in account's name on the sign-in page", ""},
	{"Presence.Read.All", Scope, Presence, "presence subscriptions, made through a service user (Graph allows them delegated only)", ""},
	{"offline_access", Scope, Presence, "the service user's refresh token; a sign-in without one is refused", ""},
	{"Presence.ReadWrite.All", Role, PBXToTeams, "setPresence and clearPresence from the PBX's call state (app-only)", ""},
	{"Place.Read.All", Role, Rooms, "rooms and room lists", ""},
	{"Calendars.Read", Role, Rooms, "room calendars (times and free/busy only) and their subscriptions", "scope it to room mailboxes with RBAC for Applications"},
	{"Contacts.ReadWrite", Role, CRM, "the synced users' contacts, both ways", "Contacts.Read when every user syncs to-crm only"},
	{"Calendars.ReadWrite", Role, CRM, "the synced users' events, both ways", "Calendars.Read when every user syncs to-crm only"},
}

// Select returns the permissions the chosen capabilities need (Core always), in list order, without
// a read permission that a chosen read-write one of the same name covers (Calendars.Read with
// Calendars.ReadWrite).
func Select(caps []Capability) []Permission {
	var out []Permission
	for _, p := range Permissions {
		if p.For == Core || slices.Contains(caps, p.For) {
			out = append(out, p)
		}
	}
	return slices.DeleteFunc(out, func(p Permission) bool {
		base, ok := strings.CutSuffix(p.Value, ".Read")
		return ok && slices.ContainsFunc(out, func(q Permission) bool { return q.Kind == p.Kind && q.Value == base+".ReadWrite" })
	})
}

// ApplicationPermissions are the values of the app-only permissions of caps: what an admin's consent
// grants the app in a customer tenant.
func ApplicationPermissions(caps []Capability) []string {
	var out []string
	for _, p := range Select(caps) {
		if p.Kind == Role {
			out = append(out, p.Value)
		}
	}
	return out
}

// ParseCapabilities reads a comma list ("all" or empty: every capability).
func ParseCapabilities(s string) ([]Capability, error) {
	if s == "" || s == "all" {
		return slices.Clone(Capabilities), nil
	}
	var out []Capability
	for _, f := range strings.Split(s, ",") {
		c := Capability(strings.TrimSpace(f))
		if !slices.Contains(Capabilities, c) {
			return nil, fmt.Errorf("unknown capability %q (want a comma list of %s)", c, joinCaps(Capabilities))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func joinCaps(cs []Capability) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// AppRole is one of ConnectHub's own app roles (README, "Roles"). ID is used when the registration has
// no role of that value yet; an existing role keeps its id (Graph refuses to drop an enabled role).
type AppRole struct {
	Value, DisplayName, Description string
	MemberTypes                     []string // "User" (users and groups) or "Application"
	ID                              string
}

// AppRoles are the roles the admin API reads from a token's roles claim.
var AppRoles = []AppRole{
	{access.AppRoleTenantAdmin, "ConnectHub tenant admin", "Administers ConnectHub for their own tenant.", []string{"User"}, "7d081d2e-ac29-4176-86a2-e0622de8064a"},
	{access.AppRoleOperator, "ConnectHub operator", "ConnectHub staff: lists tenants; enters one only after a security officer approved it.", []string{"User"}, "f7960dd0-393b-4e8c-bc65-ca9822d96d88"},
	{access.AppRoleSecurityOfficer, "ConnectHub security officer", "ConnectHub staff: approves operator access, records breach incidents.", []string{"User"}, "25e30c91-f3fe-420a-a3dd-3028593a9864"},
	{access.AppRoleAutomation, "ConnectHub billing automation", "ConnectHub's billing and provisioning: onboarding, state, purchased licences.", []string{"Application"}, "c0ecde0e-1768-42dc-a4ab-1eb3030d3adb"},
}

// RedirectPaths are the web redirect URIs under the public base URL: the service user's sign-in
// (AuthCallback), the admin consent of onboarding (AdminConsentCallback) and the portal's sign-in.
var RedirectPaths = []string{"/api/auth/callback", "/api/onboarding/consent", "/api/portal/callback"}

// ----- the patch -----

// GraphServicePrincipal is what the patch reads of Microsoft Graph's service principal, in the wire
// form `az ad sp show` prints (Graph v1.0 servicePrincipal).
type GraphServicePrincipal struct {
	AppID    string            `json:"appId"`
	AppRoles []GraphPermission `json:"appRoles"`
	Scopes   []GraphPermission `json:"oauth2PermissionScopes"`
}

// GraphPermission is one of Graph's appRoles or oauth2PermissionScopes.
type GraphPermission struct {
	ID        string `json:"id"`
	Value     string `json:"value"`
	IsEnabled *bool  `json:"isEnabled"`
}

// Application is an application object as `az ad app show` prints it (Graph v1.0 application): the
// properties the patch reads.
type Application struct {
	ID                     string                   `json:"id"`
	AppID                  string                   `json:"appId"`
	IdentifierURIs         []string                 `json:"identifierUris"`
	AppRoles               []map[string]any         `json:"appRoles"`
	Web                    map[string]any           `json:"web"`
	API                    map[string]any           `json:"api"`
	OptionalClaims         map[string]any           `json:"optionalClaims"`
	RequiredResourceAccess []RequiredResourceAccess `json:"requiredResourceAccess"`
}

// RequiredResourceAccess is one API's permissions in the registration.
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// ResourceAccess is one permission by id.
type ResourceAccess struct {
	ID   string `json:"id"`
	Type Kind   `json:"type"`
}

// Patch is the body of PATCH /applications/{id}: the properties it sets. A list property is replaced
// whole by Graph, so each list carries what the registration had that ConnectHub leaves alone.
type Patch struct {
	IdentifierURIs         []string                 `json:"identifierUris"`
	Web                    map[string]any           `json:"web"`
	API                    map[string]any           `json:"api"`
	AppRoles               []map[string]any         `json:"appRoles"`
	OptionalClaims         map[string]any           `json:"optionalClaims"`
	RequiredResourceAccess []RequiredResourceAccess `json:"requiredResourceAccess"`
}

// Plan builds the patch that makes app hold what caps need, for a deployment answering at publicBase
// (https://host, no path). Nothing of the registration is dropped but Graph permissions ConnectHub
// does not use (least privilege); notes say what changed, for the operator to read before applying.
func Plan(app Application, graph GraphServicePrincipal, publicBase string, caps []Capability) (Patch, []string, error) {
	if app.ID == "" || app.AppID == "" {
		return Patch{}, nil, fmt.Errorf("the application JSON has no id or appId (want the output of az ad app show)")
	}
	if app.AppID == GraphAppID {
		return Patch{}, nil, fmt.Errorf("the application JSON is Microsoft Graph's, not ConnectHub's registration")
	}
	if graph.AppID != GraphAppID {
		return Patch{}, nil, fmt.Errorf("the service principal JSON is not Microsoft Graph's (appId %q, want %s)", graph.AppID, GraphAppID)
	}
	base := strings.TrimRight(publicBase, "/")
	if !strings.HasPrefix(base, "https://") || strings.Count(base, "/") != 2 {
		return Patch{}, nil, fmt.Errorf("public base %q: want https://<host> with no path", publicBase)
	}
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }

	p := Patch{IdentifierURIs: slices.Clone(app.IdentifierURIs)}
	if uri := "api://" + app.AppID; !slices.Contains(p.IdentifierURIs, uri) {
		p.IdentifierURIs = append(p.IdentifierURIs, uri)
		note("identifier URI %s added", uri)
	}

	// Only the sub-properties set are sent, as `az ad app update --web-redirect-uris` sends them: web's
	// redirectUriSettings mirrors redirectUris, and a stale copy beside a longer list is refused
	// ("Invalid value specified for property 'web'", msgraph-sdk-powershell issue 3149).
	redirects := stringList(app.Web["redirectUris"])
	for _, path := range RedirectPaths {
		if u := base + path; !slices.Contains(redirects, u) {
			redirects = append(redirects, u)
			note("web redirect URI %s added", u)
		}
	}
	p.Web = map[string]any{"redirectUris": redirects}

	// The portal's sign-in is documented with version 2 access tokens (docs/runbook.md); the admin API
	// accepts both versions.
	p.API = map[string]any{"requestedAccessTokenVersion": 2}
	if v, _ := app.API["requestedAccessTokenVersion"].(float64); v != 2 {
		note("access tokens for the API set to version 2")
	}

	// Graph refuses to change an enabled role ("CannotDeleteOrUpdateEnabledEntitlement: Permission
	// (scope or role) cannot be deleted or updated unless disabled first"), and takes the list whole:
	// every role is sent, an enabled one of ours as it is.
	p.AppRoles = make([]map[string]any, 0, len(app.AppRoles)+len(AppRoles))
	for _, r := range app.AppRoles {
		p.AppRoles = append(p.AppRoles, cloneMap(r))
	}
	for _, want := range AppRoles {
		i := slices.IndexFunc(p.AppRoles, func(r map[string]any) bool { return r["value"] == want.Value })
		switch {
		case i < 0:
			p.AppRoles = append(p.AppRoles, map[string]any{"id": want.ID})
			i = len(p.AppRoles) - 1
			note("app role %s added", want.Value)
		case p.AppRoles[i]["isEnabled"] != true:
			note("app role %s enabled (its id kept)", want.Value)
		case slices.Equal(stringList(p.AppRoles[i]["allowedMemberTypes"]), want.MemberTypes):
			continue // enabled and right: left as it is
		default:
			return Patch{}, nil, fmt.Errorf("app role %s is for %v, ConnectHub needs it for %v, and Graph refuses to change an enabled role: "+
				"disable it in the registration (App roles → %s → clear \"enable this app role\"), then run this again",
				want.Value, stringList(p.AppRoles[i]["allowedMemberTypes"]), want.MemberTypes, want.Value)
		}
		r := p.AppRoles[i]
		r["value"], r["displayName"], r["description"] = want.Value, want.DisplayName, want.Description
		r["allowedMemberTypes"], r["isEnabled"] = want.MemberTypes, true
	}

	// idtyp tells an app-only token from a user's (access.Authenticator); Entra adds it only on request.
	p.OptionalClaims = cloneMap(app.OptionalClaims)
	claims, _ := p.OptionalClaims["accessToken"].([]any)
	if !slices.ContainsFunc(claims, func(c any) bool { m, _ := c.(map[string]any); return m["name"] == "idtyp" }) {
		claims = append(claims, map[string]any{"name": "idtyp", "essential": false, "additionalProperties": []any{}})
		note("optional claim idtyp added to access tokens")
	}
	p.OptionalClaims["accessToken"] = claims

	want, err := graphAccess(graph, Select(caps))
	if err != nil {
		return Patch{}, nil, err
	}
	p.RequiredResourceAccess = []RequiredResourceAccess{}
	var had []ResourceAccess
	for _, r := range app.RequiredResourceAccess {
		if r.ResourceAppID == GraphAppID { // one entry, or several if made by hand: they become one
			had = append(had, r.ResourceAccess...)
			continue
		}
		p.RequiredResourceAccess = append(p.RequiredResourceAccess, r)
	}
	p.RequiredResourceAccess = append(p.RequiredResourceAccess, RequiredResourceAccess{ResourceAppID: GraphAppID, ResourceAccess: want})
	names := graphNames(graph)
	for _, a := range want {
		if !slices.Contains(had, a) {
			note("Microsoft Graph %s permission %s added", kindName(a.Type), names[a])
		}
	}
	for _, a := range had {
		if !slices.Contains(want, a) {
			name := names[a]
			if name == "" {
				name = a.ID
			}
			note("Microsoft Graph %s permission %s removed: ConnectHub does not use it", kindName(a.Type), name)
		}
	}
	return p, notes, nil
}

// graphAccess looks each permission up by value in Graph's service principal.
func graphAccess(graph GraphServicePrincipal, perms []Permission) ([]ResourceAccess, error) {
	out := make([]ResourceAccess, 0, len(perms))
	for _, p := range perms {
		id := ""
		switch p.Kind {
		case Role:
			for _, r := range graph.AppRoles {
				if r.Value == p.Value && (r.IsEnabled == nil || *r.IsEnabled) {
					id = r.ID
				}
			}
		case Scope:
			for _, s := range graph.Scopes {
				if s.Value == p.Value && (s.IsEnabled == nil || *s.IsEnabled) {
					id = s.ID
				}
			}
		}
		if id == "" {
			return nil, fmt.Errorf("Microsoft Graph's service principal has no enabled %s permission %s", kindName(p.Kind), p.Value)
		}
		out = append(out, ResourceAccess{ID: id, Type: p.Kind})
	}
	return out, nil
}

func graphNames(graph GraphServicePrincipal) map[ResourceAccess]string {
	m := map[ResourceAccess]string{}
	for _, r := range graph.AppRoles {
		m[ResourceAccess{r.ID, Role}] = r.Value
	}
	for _, s := range graph.Scopes {
		m[ResourceAccess{s.ID, Scope}] = s.Value
	}
	return m
}

func kindName(k Kind) string {
	if k == Role {
		return "application"
	}
	return "delegated"
}

// stringList reads a JSON array of strings (as decoded into any, or as set by Plan).
func stringList(v any) []string {
	switch v := v.(type) {
	case []string:
		return slices.Clone(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{}
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}
