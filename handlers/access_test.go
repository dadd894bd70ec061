package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
)

// testAccess stands in for internal/access in route tests (access has its own tests against Azurite
// and a fake identity platform): "Bearer as:<tenant>:<oid>" names the caller, "Bearer as-any:<oid>"
// a caller every tenant admits; a tenant's principal may act on its own tenant only.
type testAccess struct{}

const anyTenant = core.TenantID("any")

const otherTenant = "7a2c4d5e-3b4a-4c5d-9e0f-1a2b3c4d5e6f"

func (testAccess) Authenticate(h string) (access.Principal, error) {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	switch {
	case h == "":
		return access.Principal{}, apperr.New(apperr.Unauthenticated, "a bearer token is required", nil)
	case !ok:
		return access.Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", nil)
	case strings.HasPrefix(tok, "as-any:"):
		return access.Principal{Tenant: anyTenant, ObjectID: strings.TrimPrefix(tok, "as-any:")}, nil
	case strings.HasPrefix(tok, "as:"):
		t, oid, _ := strings.Cut(strings.TrimPrefix(tok, "as:"), ":")
		return access.Principal{Tenant: core.TenantID(t), ObjectID: oid}, nil
	}
	return access.Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", nil)
}

func (testAccess) Allow(_ context.Context, p access.Principal, _ access.Permission, res access.Resource) error {
	if p.Tenant == anyTenant || res.Tenant == p.Tenant {
		return nil
	}
	return access.ErrDenied
}

// operatorToken is the default caller of the route tests: admitted everywhere.
const operatorToken = "Bearer as-any:" + operator

// publicFunctions answer without a token, by design: Graph's webhooks (clientState and validation
// tokens), the health probe, this API's description, and the two redirects the identity platform
// sends a browser to (one-time state authenticates them).
var publicFunctions = map[string]bool{"GraphWebhook": true, "GraphLifecycle": true, "Health": true, "OpenAPI": true,
	"AdminConsentCallback": true, "AuthCallback": true}

// Every HTTP function but the public ones refuses a call without a valid token (401, with the bearer
// challenge) and a caller of another tenant (403), and its service is never reached. The test walks
// the route table, so a new function is covered the day it is added.
func TestEveryAdminFunctionIsGuarded(t *testing.T) {
	t.Parallel()
	reached := &reachRecorder{}
	a := &App{Tenants: TenantServices{Admin: reached}, Connector: ConnectorServices{Admin: reached},
		Presence: PresenceServices{SignIn: reached, Status: reached}}
	routes := routeTable(t, a)
	guarded := 0
	for _, f := range httpFunctions(t) {
		if publicFunctions[f.name] {
			continue
		}
		guarded++
		params := map[string]string{"tenantId": tenantA, "userId": userA}
		for name, h := range map[string]string{"no token": "", "another scheme": "Basic b3A6cHc=", "forged": "Bearer forged",
			"other tenant": "Bearer as:" + otherTenant + ":" + operator} {
			headers := map[string][]string{}
			if h != "" {
				headers["Authorization"] = []string{h}
			}
			r := azfunctest.Invoke(t, routes, azfunctest.Call{Function: f.name, Method: strings.ToUpper(f.method), Params: params,
				Headers: headers, Body: "{}"})
			want := http.StatusUnauthorized
			if name == "other tenant" {
				want = http.StatusForbidden
			}
			if r.Status != want {
				t.Errorf("%s %s, %s: %d, want %d", f.method, f.path, name, r.Status, want)
			}
			if want == http.StatusUnauthorized && !strings.HasPrefix(r.Headers["WWW-Authenticate"], "Bearer ") {
				t.Errorf("%s %s, %s: no bearer challenge (%v)", f.method, f.path, name, r.Headers)
			}
		}
	}
	if guarded < 20 {
		t.Errorf("only %d guarded functions found", guarded)
	}
}

// reachRecorder is every admin service with no method behind it: a refused call that reached one would
// panic into a 500, which the test reports.
type reachRecorder struct {
	TenantAdmin
	ConnectorAdmin
	ServiceUserSignIn
	PresenceStatus
}
