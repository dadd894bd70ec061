package graph_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// newcomer is a tenant that has not consented (newEnv consents only for tenant).
const newcomer = "c0000000-0000-4000-8000-00000000000a"

// appClients are the real app-only clients with the app's certificate, as internal/app wires them;
// token requests are not retried, so that a staged outage shows at once.
func (e *env) appClients(t *testing.T) *graph.AppClients {
	t.Helper()
	mem := secrets.NewMemory()
	if err := mem.Set(ctx, secrets.AppClientCertName, string(e.pem)); err != nil {
		t.Fatal(err)
	}
	return graph.NewAppClients(graph.AppAuth{ClientID: clientID, Secrets: mem, CertName: secrets.AppClientCertName,
		Auth: graph.AuthOptions{AuthorityHost: e.auth.Host(), HTTPClient: e.auth.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}},
		graph.Options{BaseURL: e.graph.URL()})
}

// Consent is what Microsoft says, not what a redirect says: no token before the admin consented, the
// app's own service principal after, read with no application permission at all.
func TestProveConsent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.auth.AppRoles = []string{} // consented, but granted nothing: reading its own service principal needs nothing
	clients := e.appClients(t)

	err := clients.ProveConsent(ctx, newcomer)
	var ae *graph.AuthError
	if !errors.Is(err, graph.ErrNotConsented) || !errors.As(err, &ae) || graph.Retryable(err) ||
		!reflect.DeepEqual(*ae, graph.AuthError{Status: http.StatusBadRequest, Code: "unauthorized_client", AADSTS: []int{700016}}) {
		t.Fatalf("before consent: err = %#v, want a non-retryable ErrNotConsented with AADSTS700016", err)
	}
	if strings.Contains(err.Error(), "directory") || strings.Contains(err.Error(), newcomer) {
		t.Errorf("error %q repeats the identity platform's description", err)
	}
	if n := e.graph.Count(http.MethodGet, "/servicePrincipals"); n != 0 {
		t.Errorf("Graph asked %d times without a token", n)
	}

	e.auth.GrantConsent(newcomer, clientID)
	if err := clients.ProveConsent(ctx, newcomer); err != nil {
		t.Fatalf("after consent: %v", err)
	}
	reqs := e.graph.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/servicePrincipals(appId='"+clientID+"')" || !last.Identity.AppOnly() || last.Identity.Tenant != newcomer ||
		last.Query.Get("$select") != "id,appId,accountEnabled" || last.Status != http.StatusOK {
		t.Errorf("Graph request = %+v", last)
	}

	// A cached client's token outlives the service principal; every proof asks the token endpoint anew.
	c, err := clients.For(ctx, newcomer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServicePrincipalByAppID(ctx, clientID); err != nil {
		t.Fatal(err)
	}
	before := e.auth.Grants("client_credentials")
	if err := clients.ProveConsent(ctx, newcomer); err != nil || e.auth.Grants("client_credentials") != before+1 {
		t.Errorf("proof with a token cached elsewhere: %v, %d token requests; want one of its own", err, e.auth.Grants("client_credentials")-before)
	}
	e.auth.RemoveServicePrincipal(newcomer, clientID)
	if err := clients.ProveConsent(ctx, newcomer); !errors.Is(err, graph.ErrNotConsented) || !errors.As(err, &ae) {
		t.Errorf("after the enterprise app was deleted: err = %v, want the token endpoint's refusal", err)
	}
}

// What is not an answer is not a "no": outages of the identity platform or Graph, and a deadline, stay
// retryable and never match ErrNotConsented. A 404 from Graph after a token (the principal deleted in
// between) is a "no".
func TestProveConsentWithoutAnAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clients := e.appClients(t)

	e.auth.FailTokens(graphtest.TokenFailure{Status: http.StatusServiceUnavailable})
	err := clients.ProveConsent(ctx, tenant)
	var ae *graph.AuthError
	if errors.Is(err, graph.ErrNotConsented) || !graph.Retryable(err) || !errors.As(err, &ae) || ae.Status != 503 || ae.AADSTS[0] != 90033 {
		t.Errorf("token outage: err = %v, want a retryable AuthError 503 AADSTS90033", err)
	}

	outage := graphtest.Failure{Status: http.StatusServiceUnavailable, RetryAfter: "0"}
	e.graph.Fail(http.MethodGet, "/servicePrincipals", outage, outage, outage, outage)
	if err := clients.ProveConsent(ctx, tenant); errors.Is(err, graph.ErrNotConsented) || !graph.Retryable(err) {
		t.Errorf("Graph outage: err = %v, want retryable", err)
	}

	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if err := clients.ProveConsent(expired, tenant); err == nil || errors.Is(err, graph.ErrNotConsented) || !graph.Retryable(err) {
		t.Errorf("past deadline: err = %v, want retryable", err)
	}

	e.graph.Fail(http.MethodGet, "/servicePrincipals", graphtest.Failure{Status: http.StatusNotFound, Code: "Request_ResourceNotFound"})
	if err := clients.ProveConsent(ctx, tenant); !errors.Is(err, graph.ErrNotConsented) || graph.Retryable(err) {
		t.Errorf("no service principal at Graph: err = %v, want ErrNotConsented", err)
	}
	if err := clients.ProveConsent(ctx, tenant); err != nil {
		t.Errorf("once all answer: %v", err)
	}
}

// The app id is an OData string literal in the URL: a quote in it is doubled, never closes the literal.
func TestServicePrincipalKeyIsEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID, Roles: []string{"Application.Read.All"}})
	c, err := graph.New(staticCred(tok), graph.Options{BaseURL: e.graph.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if sp, err := c.ServicePrincipalByAppID(ctx, clientID); err != nil || sp.AppID != clientID || sp.ID == "" || sp.AccountEnabled == nil || !*sp.AccountEnabled {
		t.Fatalf("own service principal = %+v, %v", sp, err)
	}
	injected := "x') or (appId eq '" + clientID
	if _, err := c.ServicePrincipalByAppID(ctx, injected); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("app id with quotes: err = %v, want ErrNotFound (one literal naming no app)", err)
	}
}
