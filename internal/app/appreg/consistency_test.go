package appreg

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

// Every delegated permission a sign-in asks for is one the registration lists (else Entra asks the
// user for consent the tenant's admin never gave), and every one listed is asked for by some sign-in.
func TestDelegatedPermissionsAreTheOnesAskedFor(t *testing.T) {
	asked := slices.Concat(serviceuser.ResourceScopes, serviceuser.SignInScopes, portal.SignInScopes)
	var listed []string
	for _, p := range Permissions {
		if p.Kind == Scope {
			listed = append(listed, p.Value)
		}
	}
	for _, s := range asked {
		if !slices.Contains(listed, s) {
			t.Errorf("a sign-in asks for %s, which the app registration does not list", s)
		}
	}
	for _, s := range listed {
		if !slices.Contains(asked, s) {
			t.Errorf("the app registration lists %s, which no sign-in asks for", s)
		}
	}
}

// Every redirect URI is a route an anonymous GET function serves (functions/*/function.json, read as
// devhost reads them).
func TestRedirectPathsAreServed(t *testing.T) {
	app, err := devhost.LoadApp("../../..")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, f := range app.Functions {
		if b := f.Trigger(); b != nil && b.Type == "httpTrigger" && b.AuthLevel == "anonymous" && slices.Contains(b.Methods, "get") {
			routes = append(routes, b.Route)
		}
	}
	for _, p := range RedirectPaths {
		route, ok := strings.CutPrefix(p, "/api/")
		if !ok {
			t.Errorf("redirect path %s is not under /api/", p)
			continue
		}
		if !slices.ContainsFunc(routes, func(r string) bool {
			prefix, catchAll := strings.CutSuffix(r, "{*path}")
			return r == route || catchAll && strings.HasPrefix(route, prefix)
		}) {
			t.Errorf("redirect path %s: no anonymous GET function serves %s (routes %v)", p, route, routes)
		}
	}
}

// The README's Prerequisites name every permission and redirect URI the registration holds, so the
// admin who reads it before consenting sees what the command will set.
func TestReadmePrerequisitesNameTheRegistration(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Prerequisites\n")
	if !ok {
		t.Fatal("README has no Prerequisites section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	for _, p := range Permissions {
		if !strings.Contains(section, "`"+p.Value+"`") {
			t.Errorf("README Prerequisites do not name %s (%s)", p.Value, p.For)
		}
	}
	for _, p := range RedirectPaths {
		if !strings.Contains(section, "<public base>"+p) {
			t.Errorf("README Prerequisites do not name the redirect URI <public base>%s", p)
		}
	}
	for _, r := range AppRoles {
		if !strings.Contains(string(b), "`"+r.Value+"`") {
			t.Errorf("README does not name the app role %s", r.Value)
		}
	}
}
