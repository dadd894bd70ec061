package graphtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

func get(t *testing.T, g *graphtest.Graph, url, token string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

func errorCode(body map[string]any) (code string, inner map[string]any) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	inner, _ = e["innerError"].(map[string]any)
	return code, inner
}

// A token from the right tenant and app is still refused when it was issued for another resource:
// Graph checks the audience.
func TestGraphRefusesTokenForAnotherResource(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	g := graphtest.NewGraph(t, a)
	who := graphtest.Identity{Tenant: tenant, ClientID: clientID}
	url := g.URL() + "/v1.0/subscriptions"
	if status, _, body := get(t, g, url, a.IssueToken(who)); status != http.StatusOK {
		t.Fatalf("Graph token = %d %v", status, body)
	}
	who.Audience = "api://" + clientID
	status, hdr, body := get(t, g, url, a.IssueToken(who))
	code, inner := errorCode(body)
	if status != http.StatusUnauthorized || code != "InvalidAuthenticationToken" || inner["request-id"] == nil || inner["date"] == nil {
		t.Errorf("foreign audience = %d %v", status, body)
	}
	if status, hdr, _ = get(t, g, url, ""); status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no token = %d, WWW-Authenticate %q", status, hdr.Get("WWW-Authenticate"))
	}
}

func TestGraphThrottlesAndPages(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	g := graphtest.NewGraph(t, a)
	tok := a.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID})
	g.Fail(http.MethodGet, "/subscriptions", graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "7"},
		graphtest.Failure{Status: http.StatusServiceUnavailable})
	status, hdr, body := get(t, g, g.URL()+"/v1.0/subscriptions", tok)
	if code, _ := errorCode(body); status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "7" || code != "TooManyRequests" {
		t.Errorf("throttled = %d Retry-After %q %v", status, hdr.Get("Retry-After"), body)
	}
	if status, _, body = get(t, g, g.URL()+"/v1.0/subscriptions", tok); status != http.StatusServiceUnavailable {
		t.Errorf("unavailable = %d %v", status, body)
	}

	// The list pages with @odata.nextLink, an absolute URL to follow as is.
	g.SubscriptionsPageSize = 1
	g.PutSubscription(graphtest.Subscription{Tenant: tenant, ApplicationID: clientID, Resource: "/users", ChangeType: "updated"})
	g.PutSubscription(graphtest.Subscription{Tenant: tenant, ApplicationID: clientID, Resource: "/groups", ChangeType: "updated"})
	next, pages, items := g.URL()+"/v1.0/subscriptions", 0, 0
	for next != "" {
		status, _, body = get(t, g, next, tok)
		if status != http.StatusOK {
			t.Fatalf("page = %d %v", status, body)
		}
		pages++
		items += len(body["value"].([]any))
		next, _ = body["@odata.nextLink"].(string)
	}
	if pages != 2 || items != 2 {
		t.Errorf("pages, items = %d, %d; want 2, 2", pages, items)
	}
}

// Graph sends the validation token encoded like .NET ("+" for spaces, "%3a"); a receiver that echoes
// the raw query value instead of the decoded token fails the handshake and gets no subscription.
func TestHandshakeNeedsTheDecodedToken(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	g := graphtest.NewGraph(t, a)
	tok := a.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID})
	var raw string
	naive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw = r.URL.RawQuery
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.TrimPrefix(r.URL.RawQuery, "validationToken="))
	}))
	defer naive.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
	}))
	defer good.Close()
	create := func(notify string) int {
		body := `{"changeType":"updated","notificationUrl":"` + notify + `","resource":"/users","expirationDateTime":"` +
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","clientState":"s"}`
		req, _ := http.NewRequest(http.MethodPost, g.URL()+"/v1.0/subscriptions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := create(naive.URL); code != http.StatusBadRequest {
		t.Errorf("naive receiver: create = %d, want 400", code)
	}
	if !strings.Contains(raw, "+") || !strings.Contains(raw, "%3a") {
		t.Errorf("token sent as %q, want .NET encoding (+, %%3a)", raw)
	}
	if code := create(good.URL); code != http.StatusCreated {
		t.Errorf("decoding receiver: create = %d, want 201", code)
	}
}

// An app reads its own service principal without any permission; anyone else's needs
// Application.Read.All or kin. A tenant without it answers 404 Request_ResourceNotFound.
func TestServicePrincipalLookup(t *testing.T) {
	t.Parallel()
	a := graphtest.NewAuthority(t)
	g := graphtest.NewGraph(t, a)
	byAppID := func(appID string) string {
		return g.URL() + "/v1.0/servicePrincipals(appId='" + url.PathEscape(strings.ReplaceAll(appID, "'", "''")) + "')"
	}
	noRoles := a.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID, Roles: []string{}})

	status, _, body := get(t, g, byAppID(clientID), noRoles)
	if code, _ := errorCode(body); status != http.StatusNotFound || code != "Request_ResourceNotFound" {
		t.Errorf("before consent = %d %v, want 404 Request_ResourceNotFound", status, body)
	}
	a.GrantConsent(tenant, clientID)
	sp, _ := a.ServicePrincipal(tenant, clientID)
	status, _, body = get(t, g, byAppID(clientID)+"?$select=id,appId,accountEnabled", noRoles)
	if status != http.StatusOK || body["id"] != sp || body["appId"] != clientID || body["accountEnabled"] != true ||
		body["displayName"] != nil || !strings.HasSuffix(body["@odata.context"].(string), "#servicePrincipals/$entity") {
		t.Errorf("own service principal without roles = %d %v", status, body)
	}

	const graphApp = "00000003-0000-0000-c000-000000000000"
	status, _, body = get(t, g, byAppID(graphApp), noRoles)
	if code, _ := errorCode(body); status != http.StatusForbidden || code != "Authorization_RequestDenied" {
		t.Errorf("another app's without roles = %d %v, want 403 Authorization_RequestDenied", status, body)
	}
	reader := a.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID, Roles: []string{"Application.Read.All"}})
	if status, _, body = get(t, g, byAppID(graphApp), reader); status != http.StatusNotFound {
		t.Errorf("another app's with Application.Read.All = %d %v, want 404 (the fake knows only consented apps)", status, body)
	}
	otherTenant := a.IssueToken(graphtest.Identity{Tenant: "c0000000-0000-4000-8000-000000000009", ClientID: clientID, Roles: []string{}})
	if status, _, _ = get(t, g, byAppID(clientID), otherTenant); status != http.StatusNotFound {
		t.Errorf("own service principal in a tenant that did not consent = %d, want 404", status)
	}

	// A quote in the key is doubled inside the literal; left single, it ends the literal: a syntax error.
	if status, _, body = get(t, g, byAppID(clientID+"') or (appId eq '"+clientID), reader); status != http.StatusNotFound {
		t.Errorf("escaped quotes = %d %v, want 404 for a key that names no app", status, body)
	}
	raw := g.URL() + "/v1.0/servicePrincipals(appId='" + url.PathEscape(clientID+"' or '1") + "')"
	if status, _, body = get(t, g, raw, reader); status != http.StatusBadRequest {
		t.Errorf("unescaped quote = %d %v, want 400", status, body)
	}
}
