package setup_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
	"github.com/connecthub/connecthub/internal/presence/setup"
)

var (
	ctx   = context.Background()
	start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	admin = core.Actor{ID: "9a8b7c6d-1111-2222-3333-444455556666", Kind: "user", InvocationID: "inv-1"}
)

type fixture struct {
	env *storetest.Env
	rc  *rctest.Server
	rcc *ringcentral.Connector
	svc *setup.Service

	mu      sync.Mutex
	changed []core.TenantID // tenants the Changed hook was called for
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(start)
	env := storetest.NewEnv(t, storetest.Options{})
	rc := rctest.New(t)
	rcc := ringcentral.New(ringcentral.Options{BaseURL: rc.URL(), HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, env.Secrets, env.Keys)
	wh := webhook.New(webhook.Options{AllowHTTP: true, HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, env.Secrets, env.Keys)
	f := &fixture{env: env, rc: rc, rcc: rcc}
	svc, err := setup.New(setup.Options{Store: env.Store, Secrets: env.Secrets, Sealer: env.Keys,
		Changed: func(_ context.Context, tenant core.TenantID) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changed = append(f.changed, tenant)
			return nil
		},
		Connectors:     map[string]connector.Tester{ringcentral.Kind: rcc, webhook.Kind: wh},
		DefaultMapping: presence.DefaultMapping(), AllowHTTP: true, Now: clk.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// tenant registers a tenant in state with its data key.
func (f *fixture) tenant(t *testing.T, state registry.TenantState) core.TenantID {
	t.Helper()
	id := f.env.NewTenant(t)
	if err := f.env.Store.Tenants.Create(ctx, registry.Tenant{ID: id, State: state}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) audit(t *testing.T, tenant core.TenantID) []audit.Entry {
	t.Helper()
	p, err := audit.OpenLog(f.env.Store.DB()).List(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// sameEntries compares audit summaries as multisets: the fake clock stands still, so entries written at
// the same instant have no order.
func sameEntries(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

func wantCode(t *testing.T, err error, code apperr.Code, msgPart string) {
	t.Helper()
	if err == nil || apperr.CodeOf(err) != code || !strings.Contains(apperr.PublicMessage(err), msgPart) {
		t.Errorf("err = %v (code %d), want code %d with %q", err, apperr.CodeOf(err), code, msgPart)
	}
}

func (f *fixture) rcInput() setup.ConnectorInput {
	return setup.ConnectorInput{Kind: ringcentral.Kind, ClientID: f.rc.ClientID, ClientSecret: f.rc.ClientSecret, JWT: f.rc.JWT}
}

func TestRingCentralConnector(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)

	v, err := f.svc.SetConnector(ctx, admin, tenant, f.rcInput())
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != ringcentral.Kind || v.ClientID != f.rc.ClientID || v.ConfiguredBy != admin.ID || !v.ConfiguredAt.Equal(start) || v.Endpoint != "" {
		t.Errorf("view = %+v", v)
	}
	if got, _ := f.svc.GetConnector(ctx, tenant); got != v {
		t.Errorf("GetConnector = %+v, want %+v", got, v)
	}
	row, _ := f.env.Store.Tenants.Get(ctx, tenant)
	if row.PBXKind != ringcentral.Kind || strings.Contains(row.PBXSettings, f.rc.ClientSecret) || strings.Contains(row.PBXSettings, f.rc.JWT) {
		t.Errorf("tenant row kind %q settings %q: want the kind and no secret", row.PBXKind, row.PBXSettings)
	}
	// Sealed with the tenant key: the stored value shows neither secret, and opens to the credential.
	raw, err := f.env.Secrets.Get(ctx, secrets.PBXCredentialName(tenant))
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := base64.StdEncoding.DecodeString(raw)
	if strings.Contains(raw+string(dec), f.rc.ClientSecret) || strings.Contains(raw+string(dec), f.rc.JWT) {
		t.Error("the stored credential is not sealed")
	}
	var cred ringcentral.Credential
	if err := connector.LoadCredential(ctx, f.env.Secrets, f.env.Keys, tenant, &cred); err != nil || cred.JWT != f.rc.JWT || cred.ClientSecret != f.rc.ClientSecret {
		t.Errorf("stored credential = %v", err)
	}

	res, err := f.svc.TestConnector(ctx, admin, tenant)
	if err != nil || !res.OK || res.Kind != ringcentral.Kind {
		t.Fatalf("test = %+v, %v", res, err)
	}

	// A push caches a token; a new (wrong) credential must not be hidden behind it.
	ada := connector.User{ID: "u1", Email: "ada@contoso.example"}
	f.rc.AddExtension(rctest.Extension{ID: 101, Number: "101", Email: ada.Email})
	if err := f.rcc.Push(ctx, tenant, ada, connector.Busy); err != nil {
		t.Fatal(err)
	}
	wrongJWT := f.rcInput()
	f.rc.JWT = f.rc.JWT[:len(f.rc.JWT)-4] + "AAAA" // the platform now refuses the one we store
	if _, err := f.svc.SetConnector(ctx, admin, tenant, wrongJWT); err != nil {
		t.Fatal(err)
	}
	if err := f.rcc.Push(ctx, tenant, ada, connector.Available); !errors.Is(err, connector.ErrNotConfigured) {
		t.Errorf("push after a credential change = %v, want the new (refused) credential used", err)
	}
	res, err = f.svc.TestConnector(ctx, admin, tenant)
	if err != nil || res.OK || res.Code != "ringcentral_jwt_refused" || !strings.Contains(res.Message, "JWT") {
		t.Errorf("test with a refused JWT = %+v, %v", res, err)
	}
	wrongSecret := f.rcInput()
	wrongSecret.ClientSecret = "not-the-secret"
	if _, err := f.svc.SetConnector(ctx, admin, tenant, wrongSecret); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.svc.TestConnector(ctx, admin, tenant); res.OK || res.Code != "ringcentral_client_refused" {
		t.Errorf("test with a refused client secret = %+v", res)
	}

	if err := f.svc.DeleteConnector(ctx, admin, tenant); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.svc.GetConnector(ctx, tenant); v != (setup.ConnectorView{}) {
		t.Errorf("after delete: %+v", v)
	}
	if _, err := f.env.Secrets.Get(ctx, secrets.PBXCredentialName(tenant)); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("credential after delete: %v", err)
	}
	_, err = f.svc.TestConnector(ctx, admin, tenant)
	wantCode(t, err, apperr.Conflict, "no connector")

	var got []string
	for _, e := range f.audit(t, tenant) {
		if e.ActorID != admin.ID || e.InvocationID != "inv-1" || e.TargetType != "connector" {
			t.Errorf("audit entry %+v", e)
		}
		got = append(got, e.Action+":"+e.Outcome)
	}
	want := []string{"connector.set:success", "connector.test:success", "connector.set:success", "connector.test:failed",
		"connector.set:success", "connector.test:failed", "connector.delete:success"}
	if !sameEntries(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func TestConnectorValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	enc := base64.RawURLEncoding.EncodeToString
	expired := enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"exp":1700000000}`)) + "." + enc([]byte("sig"))
	rc := f.rcInput()
	with := func(fn func(*setup.ConnectorInput)) setup.ConnectorInput { in := rc; fn(&in); return in }
	secret := strings.Repeat("s", 40)
	tests := []struct {
		name string
		in   setup.ConnectorInput
		msg  string
	}{
		{"no kind", setup.ConnectorInput{}, "kind is required"},
		{"unknown kind", setup.ConnectorInput{Kind: "teams"}, "kind must be ringcentral or webhook"},
		{"no client id", with(func(i *setup.ConnectorInput) { i.ClientID = "" }), "clientId is required"},
		{"odd client id", with(func(i *setup.ConnectorInput) { i.ClientID = "a b" }), "clientId must be"},
		{"no client secret", with(func(i *setup.ConnectorInput) { i.ClientSecret = "" }), "clientSecret is required"},
		{"no jwt", with(func(i *setup.ConnectorInput) { i.JWT = "" }), "jwt is required"},
		{"jwt fragment", with(func(i *setup.ConnectorInput) { i.JWT = "eyJhbGciOiJSUzI1NiJ9" }), "jwt must be a JWT"},
		{"jwt not base64", with(func(i *setup.ConnectorInput) { i.JWT = "a.b!.c" }), "jwt must be a JWT"},
		{"jwt expired", with(func(i *setup.ConnectorInput) { i.JWT = expired }), "jwt expired on 2023-11-14"},
		{"webhook fields on ringcentral", with(func(i *setup.ConnectorInput) { i.URL = "https://x.example" }), "url and secret belong to kind webhook"},
		{"no url", setup.ConnectorInput{Kind: webhook.Kind, Secret: secret}, "url is required"},
		{"relative url", setup.ConnectorInput{Kind: webhook.Kind, URL: "/hook", Secret: secret}, "absolute URL"},
		{"ftp url", setup.ConnectorInput{Kind: webhook.Kind, URL: "ftp://pbx.example/hook", Secret: secret}, "https"},
		{"password in url", setup.ConnectorInput{Kind: webhook.Kind, URL: "https://u:p@pbx.example/hook", Secret: secret}, "user name or password"},
		{"short secret", setup.ConnectorInput{Kind: webhook.Kind, URL: "https://pbx.example/hook", Secret: "short"}, "at least 32"},
		{"ringcentral fields on webhook", setup.ConnectorInput{Kind: webhook.Kind, URL: "https://pbx.example/hook", Secret: secret, JWT: "x"}, "belong to kind ringcentral"},
	}
	for _, tt := range tests {
		_, err := f.svc.SetConnector(ctx, admin, tenant, tt.in)
		if err == nil || apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.PublicMessage(err), tt.msg) {
			t.Errorf("%s: err = %v, want invalid with %q", tt.name, err, tt.msg)
		}
		if msg := apperr.PublicMessage(err); strings.Contains(msg, rc.ClientSecret) || strings.Contains(msg, secret) {
			t.Errorf("%s: the error %q repeats a secret", tt.name, msg)
		}
	}
	if _, err := f.env.Secrets.Get(ctx, secrets.PBXCredentialName(tenant)); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("a refused configuration was stored: %v", err)
	}
	entries := f.audit(t, tenant)
	if len(entries) != len(tests) {
		t.Fatalf("audit has %d entries, want one per refusal (%d)", len(entries), len(tests))
	}
	for _, e := range entries {
		if e.Outcome != "denied" || e.Action != "connector.set" || !slices.Contains([]string{"ringcentral", "webhook", "invalid"}, e.TargetID) {
			t.Errorf("audit entry %+v", e)
		}
	}

	// Outside local, http is refused too.
	strict, _ := setup.New(setup.Options{Store: f.env.Store, Secrets: f.env.Secrets, Sealer: f.env.Keys})
	_, err := strict.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: "http://pbx.example/hook", Secret: secret})
	wantCode(t, err, apperr.Invalid, "url must use https")
	for _, internal := range []string{"https://localhost/x", "https://127.0.0.1:8443/x", "https://10.1.2.3/x", "https://169.254.169.254/metadata",
		"https://[::1]/x", "https://[::ffff:192.168.0.1]/x", "https://vault.internal/x"} {
		_, err := strict.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: internal, Secret: secret})
		wantCode(t, err, apperr.Invalid, "public host")
	}
	if _, err := strict.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: "https://203.0.113.7/hook", Secret: secret}); err != nil {
		t.Errorf("a public address was refused: %v", err)
	}
}

func TestTenantStates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.svc.SetConnector(ctx, admin, storetest.NewTenantID(t), f.rcInput())
	wantCode(t, err, apperr.NotFound, "no such tenant")
	_, err = f.svc.GetMapping(ctx, storetest.NewTenantID(t))
	wantCode(t, err, apperr.NotFound, "no such tenant")

	pending := f.tenant(t, registry.TenantPending)
	_, err = f.svc.SetConnector(ctx, admin, pending, f.rcInput())
	wantCode(t, err, apperr.Conflict, "admin consent")
	cancelled := f.tenant(t, registry.TenantCancelled)
	_, err = f.svc.SetMapping(ctx, admin, cancelled, map[string]string{"Away": "Busy"})
	wantCode(t, err, apperr.Conflict, "cancelled")
	deleting := f.tenant(t, registry.TenantDeleting)
	_, err = f.svc.SetConnector(ctx, admin, deleting, f.rcInput())
	wantCode(t, err, apperr.Conflict, "being deleted")
	if n := len(f.audit(t, deleting)); n != 0 {
		t.Errorf("%d audit entries written into a tenant being deleted", n)
	}
	if n := len(f.audit(t, pending)); n != 1 {
		t.Errorf("pending tenant: %d audit entries, want the refusal", n)
	}

	suspended := f.tenant(t, registry.TenantSuspended)
	if _, err := f.svc.SetConnector(ctx, admin, suspended, f.rcInput()); err != nil {
		t.Errorf("a suspended tenant's admin prepares its return: %v", err)
	}
}

// receiver verifies the webhook signature like a customer's endpoint would.
type receiver struct {
	secret string
	mu     sync.Mutex
	events []webhook.Event
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if webhook.Verify([]byte(r.secret), req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, webhook.Event{Type: string(body)})
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookConnector(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	secret := strings.Repeat("k", 48)
	r := &receiver{secret: secret}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	v, err := f.svc.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: srv.URL + "/hooks/presence?token=abc", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != webhook.Kind || v.Endpoint != srv.URL || v.ClientID != "" {
		t.Errorf("view = %+v: want the endpoint's scheme and host only", v)
	}
	if res, err := f.svc.TestConnector(ctx, admin, tenant); err != nil || !res.OK {
		t.Fatalf("test = %+v, %v", res, err)
	}
	r.mu.Lock()
	if len(r.events) != 1 || !strings.Contains(r.events[0].Type, `"type":"test"`) {
		t.Errorf("receiver got %+v, want one signed test event", r.events)
	}
	r.mu.Unlock()

	if _, err := f.svc.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: srv.URL, Secret: strings.Repeat("w", 40)}); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.TestConnector(ctx, admin, tenant)
	if err != nil || res.OK || res.Code != "webhook_status_401" {
		t.Errorf("test with a secret the receiver does not share = %+v, %v", res, err)
	}
}

func TestExtensions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	f.rc.AddExtension(rctest.Extension{ID: 101, Number: "101", Email: "ada@contoso.example"})
	f.rc.AddExtension(rctest.Extension{ID: 102, Number: "102", Email: "desk@contoso.example", BusinessPhone: "+14255550102"})
	f.rc.AddExtension(rctest.Extension{ID: 103, Number: "103", Email: "x@contoso.example"})

	ada, grace, alan, linus, unlicensed := storetest.NewTenantID(t), storetest.NewTenantID(t), storetest.NewTenantID(t), storetest.NewTenantID(t), storetest.NewTenantID(t)
	users := []registry.User{
		{ID: string(ada), Mail: "Ada@contoso.example", Licensed: true},
		{ID: string(grace), Mail: "grace@contoso.example", Phone: "+1 (425) 555-0102", Licensed: true},
		{ID: string(alan), UserPrincipalName: "alan@contoso.example", PBXUserID: "103", Licensed: true},
		{ID: string(linus), Mail: "linus@contoso.example", Phone: "425 555 0102", Licensed: true},
		{ID: string(unlicensed), Mail: "ada@contoso.example"},
	}
	for _, u := range users {
		if _, err := f.env.Store.Users.Insert(ctx, tenant, u); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]setup.UserExtension{
		string(ada):   {UserID: string(ada), ExtensionID: "101", ExtensionNumber: "101", MatchedBy: "email"},
		string(grace): {UserID: string(grace), ExtensionID: "102", ExtensionNumber: "102", MatchedBy: "phone"},
		string(alan):  {UserID: string(alan), ExtensionID: "103", ExtensionNumber: "103", MatchedBy: "override"},
		string(linus): {UserID: string(linus), MatchedBy: "none"}, // a national number never matches
	}

	// Without a connector, only overrides are known.
	p, err := f.svc.ListExtensions(ctx, tenant, "", 0)
	if err != nil || p.Directory || p.DirectoryError != "pbx_not_configured" || len(p.Users) != 4 {
		t.Fatalf("listing without a connector = %+v, %v", p, err)
	}

	if _, err := f.svc.SetConnector(ctx, admin, tenant, f.rcInput()); err != nil {
		t.Fatal(err)
	}
	got := map[string]setup.UserExtension{}
	token, pages := "", 0
	for {
		p, err := f.svc.ListExtensions(ctx, tenant, token, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Directory || p.Kind != ringcentral.Kind || len(p.Users) > 2 {
			t.Errorf("page = %+v", p)
		}
		for _, u := range p.Users {
			got[u.UserID] = u
		}
		pages++
		if token = p.Next; token == "" {
			break
		}
	}
	if pages < 3 || len(got) != len(want) {
		t.Errorf("%d pages, users %+v", pages, got)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("user %s = %+v, want %+v", id, got[id], w)
		}
	}
	// The push path matches the same way: grace's presence goes to 102.
	g, _ := f.env.Store.Users.Get(ctx, tenant, string(grace))
	if err := f.rcc.Push(ctx, tenant, connector.UserOf(g), connector.DND); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.rc.Presence("102"); !ok {
		t.Error("grace's push did not reach extension 102, which the listing showed")
	}

	// Overrides.
	_, err = f.svc.SetUserExtension(ctx, admin, tenant, string(linus), "999")
	wantCode(t, err, apperr.Invalid, "lists no enabled extension")
	_, err = f.svc.SetUserExtension(ctx, admin, tenant, string(linus), "10 1")
	wantCode(t, err, apperr.Invalid, "extensionId must be")
	_, err = f.svc.SetUserExtension(ctx, admin, tenant, string(unlicensed), "101")
	wantCode(t, err, apperr.NotFound, "no licensed user")
	_, err = f.svc.GetUserExtension(ctx, tenant, string(storetest.NewTenantID(t)))
	wantCode(t, err, apperr.NotFound, "no licensed user")
	_, err = f.svc.GetUserExtension(ctx, tenant, "not-a-guid")
	wantCode(t, err, apperr.Invalid, "GUID")
	e, err := f.svc.SetUserExtension(ctx, admin, tenant, string(linus), "102")
	if err != nil || e != (setup.UserExtension{UserID: string(linus), ExtensionID: "102", ExtensionNumber: "102", MatchedBy: "override"}) {
		t.Errorf("set override = %+v, %v", e, err)
	}
	if e, _ := f.svc.GetUserExtension(ctx, tenant, string(linus)); e.MatchedBy != "override" || e.ExtensionID != "102" || e.ExtensionNumber != "102" {
		t.Errorf("get after set = %+v", e)
	}
	if err := f.svc.DeleteUserExtension(ctx, admin, tenant, string(alan)); err != nil {
		t.Fatal(err)
	}
	if e, _ := f.svc.GetUserExtension(ctx, tenant, string(alan)); e.MatchedBy != "none" {
		t.Errorf("alan after the override is removed = %+v (his sign-in name matches no extension)", e)
	}

	var actions []string
	for _, e := range f.audit(t, tenant) {
		if e.TargetType == "user" {
			actions = append(actions, e.Action+":"+e.Outcome+":"+e.TargetID)
		}
	}
	wantActions := []string{"user.extension.set:denied:" + string(linus), "user.extension.set:denied:" + string(linus),
		"user.extension.set:success:" + string(linus), "user.extension.delete:success:" + string(alan)}
	if !sameEntries(actions, wantActions) {
		t.Errorf("audit = %v, want %v", actions, wantActions)
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)

	v, err := f.svc.GetMapping(ctx, tenant)
	if err != nil || len(v.Overrides) != 0 || v.Effective["away"] != "Away" || v.Effective["*/inameeting"] != "Busy" {
		t.Fatalf("default mapping = %+v, %v", v, err)
	}
	v, err = f.svc.SetMapping(ctx, admin, tenant, map[string]string{"Away": "available", "*/InAMeeting": "DND", "Busy/InACall": "Busy"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Effective["away"] != "Available" || v.Effective["*/inameeting"] != "DND" || v.Effective["busy"] != "Busy" || len(v.Overrides) != 3 {
		t.Errorf("after set = %+v", v)
	}
	row, _ := f.env.Store.Tenants.Get(ctx, tenant)
	if row.PresenceMap != "*/inameeting=DND;away=Available;busy/inacall=Busy" {
		t.Errorf("stored %q", row.PresenceMap)
	}
	// What is stored is what the worker parses.
	m, err := presence.ParseMapping(presence.DefaultMapping(), row.PresenceMap)
	if err != nil || m.State("Away", "Away") != connector.Available || m.State("Busy", "InAMeeting") != connector.DND {
		t.Errorf("worker's view: %v", err)
	}

	for name, bad := range map[string]map[string]string{
		"unknown availability": {"Awya": "Busy"},
		"unknown activity":     {"*/InAMeting": "Busy"},
		"bare star":            {"*": "Busy"},
		"unknown state":        {"Away": "Lunch"},
		"separator in key":     {"Away;Busy": "Busy"},
	} {
		_, err := f.svc.SetMapping(ctx, admin, tenant, bad)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	if v, _ := f.svc.GetMapping(ctx, tenant); v.Effective["away"] != "Available" {
		t.Errorf("a refused mapping changed the stored one: %+v", v)
	}
	if v, err := f.svc.SetMapping(ctx, admin, tenant, nil); err != nil || len(v.Overrides) != 0 || v.Effective["away"] != "Away" {
		t.Errorf("reset = %+v, %v", v, err)
	}
	var outcomes []string
	for _, e := range f.audit(t, tenant) {
		outcomes = append(outcomes, e.Action+":"+e.Outcome)
	}
	wantOutcomes := []string{"presence.mapping.set:success", "presence.mapping.set:success"}
	for range 5 {
		wantOutcomes = append(wantOutcomes, "presence.mapping.set:denied")
	}
	if !sameEntries(outcomes, wantOutcomes) {
		t.Errorf("audit = %v", outcomes)
	}
}

func TestSyncDirectionSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenant := f.tenant(t, registry.TenantActive)
	v, err := f.svc.SetConnector(ctx, admin, tenant, f.rcInput())
	if err != nil {
		t.Fatal(err)
	}
	if v.Direction != presence.DirectionTeamsToPBX || v.CallPresence != presence.CallBusy {
		t.Errorf("defaults = %s, %s; want teams-to-pbx (no Teams writes without the tenant's choice), Busy/InACall", v.Direction, v.CallPresence)
	}
	in := f.rcInput()
	in.Direction, in.CallPresence = presence.DirectionBoth, presence.CallDND
	if v, err = f.svc.SetConnector(ctx, admin, tenant, in); err != nil || v.Direction != "both" || v.CallPresence != presence.CallDND {
		t.Fatalf("set = %+v, %v", v, err)
	}
	// A new credential without the fields keeps the choice.
	if v, err = f.svc.SetConnector(ctx, admin, tenant, f.rcInput()); err != nil || v.Direction != "both" || v.CallPresence != presence.CallDND {
		t.Errorf("after a credential change = %+v, %v; want the direction kept", v, err)
	}
	row, _ := f.env.Store.Tenants.Get(ctx, tenant)
	if got := presence.ParseSyncSettings(row.PBXSettings); got.Direction != "both" || !got.ToTeams() || !got.ToPBX() {
		t.Errorf("the sync reads %+v from the tenant row", got)
	}
	f.mu.Lock()
	calls := len(f.changed)
	f.mu.Unlock()
	if calls != 3 {
		t.Errorf("Changed hook calls = %d, want one per change", calls)
	}

	tests := []struct {
		name string
		in   setup.ConnectorInput
		msg  string
	}{
		{"unknown direction", setup.ConnectorInput{Direction: "sideways"}, "direction must be"},
		{"a pair Teams does not let apps set for a call", setup.ConnectorInput{CallPresence: "Busy/InAMeeting"}, "callPresence must be"},
	}
	for _, tt := range tests {
		in := tt.in
		if in.Kind == "" {
			base := f.rcInput()
			base.Direction, base.CallPresence = in.Direction, in.CallPresence
			in = base
		}
		_, err := f.svc.SetConnector(ctx, admin, tenant, in)
		wantCode(t, err, apperr.Invalid, tt.msg)
	}
	// The webhook connector's PBX posts signed events back: both directions are open to it.
	v, err = f.svc.SetConnector(ctx, admin, tenant, setup.ConnectorInput{Kind: webhook.Kind, URL: "http://pbx.example/hook", Secret: strings.Repeat("s", 40)})
	if err != nil || v.Direction != "both" {
		t.Errorf("webhook connector = %+v, %v; want the direction kept", v, err)
	}
}
