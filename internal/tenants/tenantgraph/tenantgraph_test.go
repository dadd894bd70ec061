package tenantgraph

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/tenants"
)

const appID = "11111111-2222-3333-4444-555555555555"

var ctx = context.Background()

// fakeMicrosoft is the fake identity platform and Graph, with the app's client certificate in a secret
// store, and the real app-only clients on top. No tenant has consented yet.
func fakeMicrosoft(t *testing.T) (*graphtest.Authority, *graphtest.Graph, *graph.AppClients) {
	t.Helper()
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	mem := secrets.NewMemory()
	if err := mem.Set(ctx, secrets.AppClientCertName, pemText); err != nil {
		t.Fatal(err)
	}
	auth := graphtest.NewAuthority(t)
	auth.AppCertificate = cert
	g := graphtest.NewGraph(t, auth)
	clients := graph.NewAppClients(graph.AppAuth{ClientID: appID, Secrets: mem, CertName: secrets.AppClientCertName,
		Auth: graph.AuthOptions{AuthorityHost: auth.Host(), HTTPClient: auth.Client()}}, graph.Options{BaseURL: g.URL()})
	return auth, g, clients
}

func uid(n string) string { return "aaaaaaaa-0000-4000-8000-00000000000" + n }

func TestDirectoryOnGraph(t *testing.T) {
	t.Parallel()
	auth, g, clients := fakeMicrosoft(t)
	tenant := storetest.NewTenantID(t)
	auth.GrantConsent(string(tenant), appID)
	g.PutUser(string(tenant), graphtest.User{ID: uid("1"), DisplayName: "Ada Lovelace", UserPrincipalName: "ada@contoso.example",
		Mail: "ada@contoso.example", BusinessPhones: []string{"+49 30 1"}, MobilePhone: "+49 170 1", Department: "R&D", JobTitle: "Engineer", AccountEnabled: true})
	g.PutUser(string(tenant), graphtest.User{ID: uid("2"), DisplayName: "Bob", MobilePhone: "+49 170 2", AccountEnabled: false})
	d := Directory{Clients: clients}

	u, err := d.User(ctx, tenant, uid("1"))
	want := tenants.DirectoryUser{ID: uid("1"), DisplayName: "Ada Lovelace", UserPrincipalName: "ada@contoso.example",
		Mail: "ada@contoso.example", Phone: "+49 30 1", Department: "R&D", JobTitle: "Engineer", Enabled: true}
	if err != nil || u != want {
		t.Errorf("User = %+v, %v\nwant   %+v", u, err, want)
	}
	if u, err := d.User(ctx, tenant, uid("2")); err != nil || u.Phone != "+49 170 2" || u.Enabled {
		t.Errorf("User(disabled, mobile only) = %+v, %v", u, err)
	}
	if _, err := d.User(ctx, tenant, uid("9")); !errors.Is(err, tenants.ErrUserNotFound) {
		t.Errorf("unknown user: err = %v, want ErrUserNotFound", err)
	}

	var got []tenants.DirectoryChange
	collect := func(c tenants.DirectoryChange) error { got = append(got, c); return nil }
	link, err := d.UsersDelta(ctx, tenant, "", collect)
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	if err != nil || link == "" || len(got) != 2 || got[0] != (tenants.DirectoryChange{ID: uid("1")}) || got[1] != (tenants.DirectoryChange{ID: uid("2"), Disabled: true}) {
		t.Fatalf("full delta = %+v, link %q, %v", got, link, err)
	}
	got = nil
	g.RemoveUser(string(tenant), uid("1"), "deleted")
	link2, err := d.UsersDelta(ctx, tenant, link, collect)
	if err != nil || link2 == "" || len(got) != 1 || got[0] != (tenants.DirectoryChange{ID: uid("1"), Removed: true}) {
		t.Errorf("delta after a deletion = %+v, %v", got, err)
	}
	g.ExpireDeltaLinks(string(tenant))
	if _, err := d.UsersDelta(ctx, tenant, link2, collect); !errors.Is(err, tenants.ErrDeltaExpired) {
		t.Errorf("expired link: err = %v, want ErrDeltaExpired", err)
	}
}

// Licensing end to end against the fake Graph (documented wire format) and Azurite: assignment reads
// the profile from Graph, ReconcileLicenses follows the users delta.
func TestLicensingOnGraph(t *testing.T) {
	t.Parallel()
	auth, g, clients := fakeMicrosoft(t)
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	env := storetest.NewEnv(t, storetest.Options{Now: clk.Now})
	tenant := env.NewTenant(t)
	auth.GrantConsent(string(tenant), appID)
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive, PurchasedLicenses: 2}); err != nil {
		t.Fatal(err)
	}
	g.PutUser(string(tenant), graphtest.User{ID: uid("1"), DisplayName: "Ada", Mail: "ada@contoso.example", AccountEnabled: true})
	g.PutUser(string(tenant), graphtest.User{ID: uid("2"), DisplayName: "Bob", AccountEnabled: false})
	g.PutUser(string(tenant), graphtest.User{ID: uid("3"), DisplayName: "Cy", AccountEnabled: true})
	svc, err := tenants.New(tenants.Options{Store: env.Store, Keys: env.Keys, Directory: Directory{Clients: clients}, Now: clk.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	op := core.Actor{ID: "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c", Kind: "user"}
	if _, err := svc.Assign(ctx, op, tenant, uid("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, op, tenant, uid("2")); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("assigning a disabled account: err = %v, want Conflict", err)
	}
	if _, err := svc.Assign(ctx, op, tenant, uid("3")); err != nil {
		t.Fatal(err)
	}
	if u, err := env.Store.Users.Get(ctx, tenant, uid("1")); err != nil || u.DisplayName != "Ada" || u.Mail != "ada@contoso.example" {
		t.Errorf("profile from Graph = %+v, %v", u, err)
	}

	job := tenants.NewReconciler(svc, time.Minute)
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	g.PutUser(string(tenant), graphtest.User{ID: uid("1"), DisplayName: "Ada King", Mail: "ada@contoso.example", AccountEnabled: true})
	g.RemoveUser(string(tenant), uid("3"), "changed")
	deltasBefore := g.Count(http.MethodGet, "/users/delta")
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := env.Store.Users.Get(ctx, tenant, uid("1")); u.DisplayName != "Ada King" {
		t.Errorf("profile after reconcile = %q, want the directory's new name", u.DisplayName)
	}
	if _, err := env.Store.Users.Get(ctx, tenant, uid("3")); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("user deleted in the directory still stored: %v", err)
	}
	if n := g.Count(http.MethodGet, "/users/delta") - deltasBefore; n != 1 {
		t.Errorf("second day made %d delta calls, want 1 (resumed from the delta link, one page)", n)
	}
	rk, _ := tenants.BillingKey(clk.Now(), tenants.Product)
	if b, err := tenants.OpenData(env.DB).Billing.Get(ctx, tenant, rk); err != nil || b.Assigned != 1 || b.Purchased != 2 || b.PeriodAssigned != 2 {
		t.Errorf("day 2 snapshot = %+v, %v", b, err)
	}
}

func TestSubscriptionDeletionOnGraph(t *testing.T) {
	t.Parallel()
	auth, g, clients := fakeMicrosoft(t)
	tenant := storetest.NewTenantID(t)
	auth.GrantConsent(string(tenant), appID)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
	}))
	t.Cleanup(hook.Close)
	c, err := clients.For(ctx, string(tenant))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubscription(ctx, graph.NewSubscription{Resource: "/users/room1/events", ChangeType: "created,updated,deleted",
		NotificationURL: hook.URL, ClientState: "x", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d := Subscriptions{Clients: clients}
	if err := d.DeleteSubscription(ctx, tenant, registry.Subscription{ID: sub.ID}); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Subscriptions()[sub.ID]; ok {
		t.Error("subscription still at Graph")
	}
	if err := d.DeleteSubscription(ctx, tenant, registry.Subscription{ID: sub.ID}); err != nil {
		t.Errorf("deleting it again: %v, want nil (already gone counts as deleted)", err)
	}
}
