package graph_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

const (
	tenant   = "6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f"
	clientID = "11111111-2222-3333-4444-555555555555"
	suUser   = "aaaaaaaa-0000-4000-8000-000000000001"
)

var ctx = context.Background()

type env struct {
	auth  *graphtest.Authority
	graph *graphtest.Graph
	cert  *x509.Certificate
	pem   []byte
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	a := graphtest.NewAuthority(t)
	a.AppCertificate = cert
	a.GrantConsent(tenant, clientID) // the app-only client's tenant has onboarded
	return &env{auth: a, graph: graphtest.NewGraph(t, a), cert: cert, pem: pemText}
}

// appClient is the real azidentity certificate credential against the fake authority.
func (e *env) appClient(t *testing.T) *graph.Client {
	t.Helper()
	cred, err := graph.NewAppCredential(tenant, clientID, e.pem, graph.AuthOptions{AuthorityHost: e.auth.Host(), HTTPClient: e.auth.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(cred, graph.Options{BaseURL: e.graph.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// staticCred hands out one token the fake authority issued for a user (delegated calls).
type staticCred string

func (s staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (e *env) userClient(t *testing.T, userID string) *graph.Client {
	t.Helper()
	tok := e.auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: clientID, UserID: userID})
	c, err := graph.New(staticCred(tok), graph.Options{BaseURL: e.graph.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.graph.PutUser(tenant, graphtest.User{ID: "u1", DisplayName: "Ada Lovelace", UserPrincipalName: "ada@contoso.example",
		Mail: "ada@contoso.example", BusinessPhones: []string{"+44 20 7946 0000"}, MobilePhone: "+44 7700 900000",
		Department: "Research", JobTitle: "Analyst", AccountEnabled: true})
	c := e.appClient(t)

	got, err := c.GetUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	want := graph.User{ID: "u1", DisplayName: "Ada Lovelace", UserPrincipalName: "ada@contoso.example", Mail: "ada@contoso.example",
		BusinessPhones: []string{"+44 20 7946 0000"}, MobilePhone: "+44 7700 900000", Department: "Research", JobTitle: "Analyst", AccountEnabled: &yes}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetUser = %+v, want %+v", got, want)
	}
	if _, err := c.GetUser(ctx, "nobody"); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("unknown user err = %v, want ErrNotFound", err)
	}
	var ge *graph.Error
	if _, err := c.GetUser(ctx, "nobody"); !errors.As(err, &ge) || ge.Code != "Request_ResourceNotFound" || strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error = %v: want status and code, without Graph's message", err)
	}

	// The request was app-only, made with the app's certificate, and asked only for what we keep.
	reqs := e.graph.Requests()
	if len(reqs) == 0 || !reqs[0].Identity.AppOnly() || reqs[0].Identity.Tenant != tenant {
		t.Fatalf("requests = %+v", reqs)
	}
	sel := reqs[0].Query.Get("$select")
	for _, f := range []string{"displayName", "mail", "businessPhones", "mobilePhone", "department", "jobTitle", "accountEnabled"} {
		if !strings.Contains(sel, f) {
			t.Errorf("$select %q lacks %s", sel, f)
		}
	}
	if e.auth.Grants("client_credentials") != 1 {
		t.Errorf("client_credentials grants = %d, want 1 (token cached across calls)", e.auth.Grants("client_credentials"))
	}
}

func TestAppCredentialRefusesAnotherCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := newEnv(t)
	cred, err := graph.NewAppCredential(tenant, clientID, other.pem, graph.AuthOptions{AuthorityHost: e.auth.Host(), HTTPClient: e.auth.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(cred, graph.Options{BaseURL: e.graph.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, "u1"); err == nil {
		t.Error("a client assertion signed by the wrong certificate was accepted")
	}
	if _, err := graph.NewAppCredential(tenant, clientID, []byte("not a certificate"), graph.AuthOptions{}); err == nil {
		t.Error("garbage certificate accepted")
	}
}

func TestUsersDelta(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"u1", "u2", "u3"} {
		e.graph.PutUser(tenant, graphtest.User{ID: id, DisplayName: "User " + id, Mail: id + "@contoso.example", AccountEnabled: true})
	}
	c := e.appClient(t)
	collect := func(link string) (map[string]graph.UserChange, string, error) {
		got := map[string]graph.UserChange{}
		next, err := c.UsersDelta(ctx, link, func(u graph.UserChange) error { got[u.ID] = u; return nil })
		return got, next, err
	}

	full, link, err := collect("")
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 3 || full["u2"].Mail != "u2@contoso.example" || full["u1"].Removed || full["u1"].Disabled() {
		t.Errorf("full round = %+v", full)
	}
	if !strings.Contains(link, "deltatoken") {
		t.Fatalf("delta link = %q", link)
	}
	if n := e.graph.Count(http.MethodGet, "/users/delta"); n != 2 {
		t.Errorf("full round took %d pages, want 2 (page size 2, nextLink followed)", n)
	}

	// Changes since the link: one disabled, one soft-deleted, one permanently deleted, one new.
	e.graph.PutUser(tenant, graphtest.User{ID: "u1", DisplayName: "User u1", AccountEnabled: false})
	e.graph.RemoveUser(tenant, "u2", "changed")
	e.graph.RemoveUser(tenant, "u3", "deleted")
	e.graph.PutUser(tenant, graphtest.User{ID: "u4", DisplayName: "User u4", AccountEnabled: true})
	changes, link2, err := collect(link)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id                string
		removed, disabled bool
		reason            string
	}{
		{"u1", false, true, ""},
		{"u2", true, false, "changed"},
		{"u3", true, false, "deleted"},
		{"u4", false, false, ""},
	}
	for _, tt := range tests {
		got, ok := changes[tt.id]
		if !ok || got.Removed != tt.removed || got.Disabled() != tt.disabled || got.RemovedReason != tt.reason {
			t.Errorf("change %s = %+v (present %v), want removed=%v disabled=%v reason=%q", tt.id, got, ok, tt.removed, tt.disabled, tt.reason)
		}
	}
	if len(changes) != len(tests) {
		t.Errorf("%d changes, want %d", len(changes), len(tests))
	}

	none, _, err := collect(link2)
	if err != nil || len(none) != 0 {
		t.Errorf("no-change round = %v, %v", none, err)
	}

	// A failing callback returns the error and no new link.
	boom := errors.New("boom")
	e.graph.PutUser(tenant, graphtest.User{ID: "u5", AccountEnabled: true})
	if next, err := c.UsersDelta(ctx, link2, func(graph.UserChange) error { return boom }); !errors.Is(err, boom) || next != "" {
		t.Errorf("failing callback = %q, %v", next, err)
	}

	e.graph.ExpireDeltaLinks(tenant)
	if _, _, err := collect(link2); !errors.Is(err, graph.ErrDeltaExpired) {
		t.Errorf("expired link err = %v, want ErrDeltaExpired", err)
	}
}

// hook answers the validation handshake like the webhook does and counts other posts.
func hook(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(tok))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDeleteSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := hook(t)
	c := e.appClient(t)
	sub, err := c.CreateSubscription(ctx, graph.NewSubscription{Resource: "/users", ChangeType: "updated,deleted",
		NotificationURL: h.URL + "/n", ExpiresAt: time.Now().Add(24 * time.Hour), ClientState: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.graph.Subscriptions()[sub.ID]; ok {
		t.Error("subscription still exists")
	}
	// Gone already: best effort deletion does not fail.
	if err := c.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Errorf("second delete = %v, want nil", err)
	}
	e.graph.Fail(http.MethodDelete, "/subscriptions/", graphtest.Failure{Status: http.StatusForbidden, Code: "Forbidden"})
	if err := c.DeleteSubscription(ctx, "x"); err == nil || graph.Retryable(err) {
		t.Errorf("forbidden delete = %v, want a non-retryable error", err)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := hook(t)
	e.graph.PutUser(tenant, graphtest.User{ID: "u1", AccountEnabled: true})
	c := e.appClient(t)
	e.graph.Fail(http.MethodGet, "/users/u1", graphtest.Failure{Status: 429, RetryAfter: "0"}, graphtest.Failure{Status: 503, RetryAfter: "0"})
	if _, err := c.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("GetUser after 429 and 503 = %v", err)
	}
	if n := e.graph.Count(http.MethodGet, "/users/u1"); n != 3 {
		t.Errorf("GET calls = %d, want 3", n)
	}

	// A retried PATCH carries the same plain JSON body (no compression handler in the chain).
	sub, err := c.CreateSubscription(ctx, graph.NewSubscription{Resource: "/users", ChangeType: "updated", NotificationURL: h.URL,
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	for i := range 5 {
		e.graph.Fail(http.MethodPatch, "/subscriptions/", graphtest.Failure{Status: 503, RetryAfter: "0"})
		got, err := c.RenewSubscription(ctx, sub.ID, want)
		if err != nil || !got.Equal(want) {
			t.Fatalf("renew %d after 503 = %v, %v; want %v", i, got, err, want)
		}
	}
	// Beyond the retry budget the 429 comes back to the caller as a retryable error.
	e.graph.Fail(http.MethodGet, "/users/u1", graphtest.Failure{Status: 429, RetryAfter: "0"}, graphtest.Failure{Status: 429, RetryAfter: "0"},
		graphtest.Failure{Status: 429, RetryAfter: "0"}, graphtest.Failure{Status: 429, RetryAfter: "0"})
	if _, err := c.GetUser(ctx, "u1"); !graph.Retryable(err) {
		t.Errorf("persistent 429 err = %v, want retryable", err)
	}
}

func TestPresenceSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := hook(t)
	c := e.userClient(t, suUser)
	ids := []string{"u1", "u2"}
	resource := graphtest.PresenceResource(ids)
	exp := time.Now().Add(55 * time.Minute).UTC().Truncate(time.Second)
	certB64 := base64.StdEncoding.EncodeToString(e.cert.Raw)
	sub, err := c.CreateSubscription(ctx, graph.NewSubscription{Resource: resource, ChangeType: "updated",
		NotificationURL: h.URL + "/api/graph/notifications", LifecycleNotificationURL: h.URL + "/api/graph/lifecycle",
		ClientState: "secret", ExpiresAt: exp, IncludeResourceData: true, EncryptionCertificate: certB64, EncryptionCertificateID: "cert-1"})
	if err != nil {
		t.Fatal(err)
	}
	held := e.graph.Subscriptions()[sub.ID]
	if held.CreatorID != suUser || held.ClientState != "secret" || !held.IncludeResourceData || held.EncryptionCertificateID != "cert-1" ||
		held.EncryptionCertificate != certB64 || !slices.Equal(held.UserIDs, ids) || !held.ExpiresAt.Equal(exp) ||
		held.LifecycleNotificationURL != h.URL+"/api/graph/lifecycle" || held.LatestTLS != "v1_2" {
		t.Errorf("Graph holds %+v", held)
	}
	if sub.Resource != resource || !sub.ExpiresAt.Equal(exp) {
		t.Errorf("returned %+v", sub)
	}

	// A second presence subscription for the same service user breaks Graph's one-per-user limit.
	_, err = c.CreateSubscription(ctx, graph.NewSubscription{Resource: graphtest.PresenceResource([]string{"u3"}), ChangeType: "updated",
		NotificationURL: h.URL, ExpiresAt: exp})
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Errorf("second subscription err = %v, want 403", err)
	}
	// Presence needs a delegated token.
	if _, err := e.appClient(t).CreateSubscription(ctx, graph.NewSubscription{Resource: graphtest.PresenceResource([]string{"u9"}),
		ChangeType: "updated", NotificationURL: h.URL, ExpiresAt: exp}); !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Errorf("app-only presence subscription err = %v, want 403", err)
	}

	renewed, err := c.RenewSubscription(ctx, sub.ID, exp.Add(4*time.Minute))
	if err != nil || !renewed.Equal(exp.Add(4*time.Minute)) {
		t.Errorf("renew = %v, %v", renewed, err)
	}
	if err := c.ReauthorizeSubscription(ctx, sub.ID); err != nil || e.graph.Subscriptions()[sub.ID].Reauthorized != 1 {
		t.Errorf("reauthorize = %v (count %d)", err, e.graph.Subscriptions()[sub.ID].Reauthorized)
	}
	list, err := c.ListSubscriptions(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sub.ID || list[0].CreatorID != suUser {
		t.Errorf("list = %+v, %v", list, err)
	}
	if err := c.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RenewSubscription(ctx, sub.ID, exp); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("renew of a deleted subscription err = %v, want ErrNotFound", err)
	}
	if err := c.ReauthorizeSubscription(ctx, sub.ID); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("reauthorize of a deleted subscription err = %v, want ErrNotFound", err)
	}
}

func TestPresencesByUserID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		users     int
		wantCalls int
	}{
		{"none", 0, 0},
		{"one", 1, 1},
		{"exactly 650", 650, 1},
		{"651 needs two calls", 651, 2},
		{"2000", 2000, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.userClient(t, suUser)
			ids := make([]string, tt.users)
			for i := range ids {
				ids[i] = fmt.Sprintf("u%04d", i)
				if i%2 == 0 {
					e.graph.SetPresenceQuietly(tenant, ids[i], "Busy", "InACall")
				}
			}
			got, err := c.PresencesByUserID(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.users {
				t.Errorf("%d presences, want %d", len(got), tt.users)
			}
			for i, p := range got {
				wantAvail := "PresenceUnknown"
				if i%2 == 0 {
					wantAvail = "Busy"
				}
				if p.UserID != ids[i] || p.Availability != wantAvail || (i%2 == 0) != (p.Sequence != "") {
					t.Fatalf("presence %d = %+v", i, p)
				}
			}
			if n := e.graph.Count(http.MethodPost, "/communications/getPresencesByUserId"); n != tt.wantCalls {
				t.Errorf("calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestSetAndClearPresence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.auth.AppRoles = append(e.auth.AppRoles, "Presence.ReadWrite.All")
	c := e.appClient(t)
	const user = "aaaaaaaa-0000-4000-8000-000000000009"
	e.graph.SetPresenceQuietly(tenant, user, "Available", "Available")

	tests := []struct {
		name          string
		session       string
		avail, act    string
		expiry        time.Duration
		wantStatus    int // 0: accepted
		wantAggregate string
	}{
		{"call in progress", clientID, "Busy", "InACall", 10 * time.Minute, 0, "Busy/InACall"},
		{"DND beats busy", clientID, "DoNotDisturb", "Presenting", time.Hour, 0, "DoNotDisturb/Presenting"},
		{"meetings come from the calendar, not from apps", clientID, "Busy", "InAMeeting", 10 * time.Minute, http.StatusBadRequest, ""},
		{"another app's session id", "00000000-0000-4000-8000-000000000001", "Busy", "InACall", 10 * time.Minute, http.StatusBadRequest, ""},
		{"longer than four hours", clientID, "Busy", "InACall", 5 * time.Hour, http.StatusBadRequest, ""},
		{"shorter than five minutes", clientID, "Busy", "InACall", time.Minute, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		err := c.SetPresence(ctx, user, tt.session, tt.avail, tt.act, tt.expiry)
		var ge *graph.Error
		switch {
		case tt.wantStatus == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantStatus != 0 && (!errors.As(err, &ge) || ge.Status != tt.wantStatus):
			t.Errorf("%s: err = %v, want status %d", tt.name, err, tt.wantStatus)
		case tt.wantAggregate != "":
			if a, act := e.graph.Presence(tenant, user); a+"/"+act != tt.wantAggregate {
				t.Errorf("%s: presence = %s/%s, want %s", tt.name, a, act, tt.wantAggregate)
			}
		}
	}
	if err := c.ClearPresence(ctx, user, clientID); err != nil {
		t.Fatal(err)
	}
	if a, act := e.graph.Presence(tenant, user); a+"/"+act != "Available/Available" {
		t.Errorf("after clearing our session = %s/%s, want the user's own Available", a, act)
	}
	if err := c.ClearPresence(ctx, user, clientID); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("clearing a session that is gone = %v, want not found", err)
	}
	w := e.graph.PresenceWrites()
	if len(w) != 3 || w[0].Op != "set" || w[0].Expiration != 10*time.Minute || w[2].Op != "clear" {
		t.Errorf("writes = %+v", w)
	}
}

func TestSetPresenceNeedsPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the app holds no Presence.ReadWrite.All
	err := e.appClient(t).SetPresence(ctx, "aaaaaaaa-0000-4000-8000-000000000009", clientID, "Busy", "InACall", 5*time.Minute)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Errorf("err = %v, want 403", err)
	}
}
