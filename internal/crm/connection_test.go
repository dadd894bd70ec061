package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

var (
	ctx   = context.Background()
	start = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	admin = core.Actor{ID: "9a8b7c6d-1111-2222-3333-444455556666", Kind: "user", InvocationID: "inv-1"}
)

type fixture struct {
	env  *storetest.Env
	sf   *sftest.Server
	data *crm.Data
	svc  *crm.Service
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	env := storetest.NewEnv(t, storetest.Options{})
	sf := sftest.New(t)
	sf.AddUser(sftest.User{Username: "sync@example.com", Approved: true})
	data := crm.OpenData(env.Store.DB())
	svc, err := crm.New(crm.Options{Store: env.Store, Data: data, Secrets: env.Secrets, Sealer: env.Keys,
		Salesforce: salesforce.New(salesforce.Options{LoginURL: func(string) string { return sf.URL() }}),
		Now:        clock.NewFake(start).Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, sf: sf, data: data, svc: svc}
}

func (f *fixture) tenant(t testing.TB, state registry.TenantState) core.TenantID {
	t.Helper()
	id := f.env.NewTenant(t)
	if err := f.env.Store.Tenants.Create(ctx, registry.Tenant{ID: id, State: state}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) input() crm.ConnectionInput {
	return crm.ConnectionInput{ConsumerKey: f.sf.App.ConsumerKey, Username: "sync@example.com",
		Host: salesforce.LoginHost, PrivateKey: f.sf.App.PrivateKeyPEM}
}

// actions lists the tenant's audit entries, oldest first, as "action outcome".
func (f *fixture) actions(t *testing.T, tenant core.TenantID) []string {
	t.Helper()
	p, err := audit.OpenLog(f.env.Store.DB()).List(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(p.Items) - 1; i >= 0; i-- {
		e := p.Items[i]
		if e.TargetType != "crm" || e.TargetID != crm.ProviderSalesforce {
			t.Errorf("audit target %s/%s, want crm/salesforce (ids only)", e.TargetType, e.TargetID)
		}
		out = append(out, e.Action+" "+e.Outcome)
	}
	return out
}

// An admin sets the connection, sees it without the key, tests it, and deletes it; the credential is
// sealed in the secret store and gone after the delete; every step is audited.
func TestConnectionLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)

	if v, err := f.svc.GetConnection(ctx, tenant); err != nil || v.Provider != "" {
		t.Fatalf("before set: %+v, %v", v, err)
	}
	if _, err := f.svc.TestConnection(ctx, admin, tenant); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("test without a connection: %v, want conflict", err)
	}
	v, err := f.svc.SetConnection(ctx, admin, tenant, f.input())
	if err != nil {
		t.Fatal(err)
	}
	if v.Provider != "salesforce" || v.ConsumerKey != f.sf.App.ConsumerKey || v.Username != "sync@example.com" ||
		v.Host != salesforce.LoginHost || !v.ConfiguredAt.Equal(start) || v.ConfiguredBy != admin.ID {
		t.Fatalf("view %+v", v)
	}
	// The secret store holds the credential sealed: neither the key nor the username in clear.
	raw, err := f.env.Secrets.Get(ctx, secrets.CRMCredentialName(tenant))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "PRIVATE KEY") || strings.Contains(raw, "sync@example.com") || strings.Contains(raw, "BEGIN") {
		t.Fatal("credential stored in clear")
	}

	res, err := f.svc.TestConnection(ctx, admin, tenant)
	if err != nil || !res.OK || res.Code != "" || res.Usage.Max != 15000 {
		t.Fatalf("test: %+v, %v", res, err)
	}
	if got, _ := f.svc.GetConnection(ctx, tenant); !got.TestedAt.Equal(start) || got.TestCode != "" {
		t.Fatalf("after test: %+v", got)
	}

	// The user loses pre-authorisation in Salesforce: the test names it and the row remembers it.
	f.sf.AddUser(sftest.User{Username: "sync@example.com"})
	res, err = f.svc.TestConnection(ctx, admin, tenant)
	if err != nil || res.OK || res.Code != salesforce.CodeNotPreauthorized || !strings.Contains(res.Message, "pre-authorized") {
		t.Fatalf("test: %+v, %v", res, err)
	}
	if got, _ := f.svc.GetConnection(ctx, tenant); got.TestCode != salesforce.CodeNotPreauthorized {
		t.Fatalf("after failed test: %+v", got)
	}

	if err := f.svc.DeleteConnection(ctx, admin, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Secrets.Get(ctx, secrets.CRMCredentialName(tenant)); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("credential after delete: %v", err)
	}
	if v, err := f.svc.GetConnection(ctx, tenant); err != nil || v.Provider != "" {
		t.Fatalf("after delete: %+v, %v", v, err)
	}
	// Deleting again succeeds: the admin wants it gone and it is.
	if err := f.svc.DeleteConnection(ctx, admin, tenant); err != nil {
		t.Fatal(err)
	}
	want := []string{"crm.connection.set success", "crm.connection.test success", "crm.connection.test failed",
		"crm.connection.delete success", "crm.connection.delete success"}
	if got := f.actions(t, tenant); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("audit %v, want %v", got, want)
	}
}

// The username is sealed in the table: the row at rest does not show it.
func TestUsernameSealedAtRest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	props, err := f.data.Connections.GetRaw(ctx, tenant, crm.ProviderSalesforce)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(props)
	if strings.Contains(string(b), "sync@example.com") {
		t.Fatalf("username in clear at rest: %s", b)
	}
}

// Bad input is refused with a message that says what is wrong without repeating the value, and the
// refusal is audited; nothing is stored.
func TestSetConnectionValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	other, err := sftest.NewApp()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*crm.ConnectionInput)
		want   string
	}{
		{"no consumer key", func(in *crm.ConnectionInput) { in.ConsumerKey = "" }, "consumerKey is required"},
		{"consumer key with spaces", func(in *crm.ConnectionInput) { in.ConsumerKey = "3MVG9 not a key" }, "consumerKey must be"},
		{"no username", func(in *crm.ConnectionInput) { in.Username = "" }, "username is required"},
		{"username not e-mail-like", func(in *crm.ConnectionInput) { in.Username = "sync" }, "username must be"},
		{"my domain host", func(in *crm.ConnectionInput) { in.Host = "example.my.salesforce.com" }, "host must be"},
		{"certificate instead of key", func(in *crm.ConnectionInput) {
			in.PrivateKey = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
		}, "privateKey: "},
		{"no key", func(in *crm.ConnectionInput) { in.PrivateKey = "" }, "privateKey is required"},
		{"key of another app is accepted here (only the test can tell)", func(in *crm.ConnectionInput) { in.PrivateKey = other.PrivateKeyPEM }, ""},
	}
	for _, tt := range tests {
		in := f.input()
		tt.change(&in)
		_, err := f.svc.SetConnection(ctx, admin, tenant, in)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.Invalid || !strings.Contains(ae.Public, tt.want) {
			t.Errorf("%s: %v, want invalid %q", tt.name, err, tt.want)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || (in.Username != "" && strings.Contains(ae.Public, in.Username)) {
			t.Errorf("%s: the message repeats the value", tt.name)
		}
	}
	// Only the last (valid) input was stored; a wrong key shows in the test as a bad signature.
	res, err := f.svc.TestConnection(ctx, admin, tenant)
	if err != nil || res.OK || res.Code != salesforce.CodeBadSignature {
		t.Fatalf("test with another app's key: %+v, %v", res, err)
	}
}

// A pending tenant (no data key) and a cancelled one cannot be connected; one being deleted gets no
// audit entry either.
func TestConnectionNeedsAWritableTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, st := range []registry.TenantState{registry.TenantPending, registry.TenantCancelled, registry.TenantDeleting} {
		tenant := f.tenant(t, st)
		if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("%s: %v, want conflict", st, err)
		}
		if _, err := f.env.Secrets.Get(ctx, secrets.CRMCredentialName(tenant)); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("%s: a credential was stored", st)
		}
	}
	if _, err := f.svc.GetConnection(ctx, core.TenantID("00000000-0000-0000-0000-00000000dead")); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown tenant: %v", err)
	}
}

// A credential that vanished from the secret store (restored backup, manual delete) is named, not a 503.
func TestMissingCredentialIsNamed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Secrets.Delete(ctx, secrets.CRMCredentialName(tenant)); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.TestConnection(ctx, admin, tenant)
	if err != nil || res.OK || res.Code != "crm_credential_missing" {
		t.Fatalf("%+v, %v", res, err)
	}
}

// Erasure takes the admin's id out of the connection and keeps the connection; export finds it first.
func TestPersonalData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	if _, err := f.svc.SetConnection(ctx, admin, tenant, f.input()); err != nil {
		t.Fatal(err)
	}
	recs, err := f.data.Export(ctx, tenant, admin.ID)
	if err != nil || len(recs) != 1 || recs[0].Table != crm.TableConnections {
		t.Fatalf("export %v, %v", recs, err)
	}
	n, err := f.data.Erase(ctx, tenant, admin.ID)
	if err != nil || n[crm.TableConnections].Pseudonymised != 1 {
		t.Fatalf("erase %v, %v", n, err)
	}
	v, err := f.svc.GetConnection(ctx, tenant)
	if err != nil || v.Provider != "salesforce" || v.ConfiguredBy != "" {
		t.Fatalf("after erase %+v, %v", v, err)
	}
}
