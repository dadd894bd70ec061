package handlers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// The CRM connection functions through the transport, on the real service against Azurite and the
// Salesforce fake: what an admin sends, what comes back, that each refusal Salesforce gives is named by
// the test, and that the private key never comes back.
func TestCRMConnectionFunctions(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	sf := sftest.New(t)
	sf.AddUser(sftest.User{Username: "sync@contoso.example", Approved: true})
	sf.AddUser(sftest.User{Username: "new@contoso.example"})
	svc, err := crm.New(crm.Options{Store: env.Store, Data: crm.OpenData(env.Store.DB()), Secrets: env.Secrets, Sealer: env.Keys,
		Salesforce: salesforce.New(salesforce.Options{LoginURL: func(string) string { return sf.URL() }}),
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{CRM: CRMServices{Admin: svc}}
	tenant := env.NewTenant(t)
	if err := env.Store.Tenants.Create(context.Background(), registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	other, err := sftest.NewApp()
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(sf.App.PrivateKeyPEM, "\n")[1]
	tp := map[string]string{"tenantId": string(tenant)}
	actor := map[string][]string{"Authorization": {"Bearer as:" + string(tenant) + ":" + operator}}
	body := func(user, host, key string) string {
		b, _ := json.Marshal(map[string]string{"consumerKey": sf.App.ConsumerKey, "username": user, "host": host, "privateKey": key})
		return string(b)
	}
	good := body("sync@contoso.example", "login.salesforce.com", sf.App.PrivateKeyPEM)
	steps := []struct {
		name, function, method string
		body                   string
		wantCode               int
		want                   []string
	}{
		{"nothing configured", "GetCRMConnection", "GET", "", 200, []string{`{"configured":false}`}},
		{"test before set", "TestCRMConnection", "POST", "", 409, []string{"no CRM connection is configured"}},
		{"unknown field", "SetCRMConnection", "PUT", `{"consumerKey":"x","clientSecret":"x"}`, 400, []string{"documented fields"}},
		{"missing key", "SetCRMConnection", "PUT", body("sync@contoso.example", "login.salesforce.com", ""), 400, []string{"privateKey is required"}},
		{"my-domain host", "SetCRMConnection", "PUT", body("sync@contoso.example", "contoso.my.salesforce.com", sf.App.PrivateKeyPEM), 400, []string{"host must be"}},
		{"set", "SetCRMConnection", "PUT", good, 200, []string{`"configured":true`, `"provider":"salesforce"`, `"consumerKey":"` + sf.App.ConsumerKey + `"`,
			`"username":"sync@contoso.example"`, `"host":"login.salesforce.com"`, `"configuredBy":"` + operator + `"`}},
		{"test passes", "TestCRMConnection", "POST", "", 200, []string{`"ok":true`, `"provider":"salesforce"`, `"dailyApiRequests":{"used":1,"max":15000}`}},
		{"get shows the last test", "GetCRMConnection", "GET", "", 200, []string{`"lastTest":{"ok":true,"testedAt":`}},
		// The Done-when of issue 17: the fake refuses a user who is not pre-authorised, and the test says so.
		{"set a user not pre-authorised", "SetCRMConnection", "PUT", body("new@contoso.example", "login.salesforce.com", sf.App.PrivateKeyPEM), 200, []string{`"configured":true`}},
		{"test names it", "TestCRMConnection", "POST", "", 200, []string{`"ok":false`, `"code":"salesforce_not_preauthorized"`, `Admin approved users are pre-authorized`}},
		{"get keeps the failure", "GetCRMConnection", "GET", "", 200, []string{`"lastTest":{"ok":false,"code":"salesforce_not_preauthorized"`}},
		{"set a key whose certificate is not uploaded", "SetCRMConnection", "PUT", body("sync@contoso.example", "login.salesforce.com", other.PrivateKeyPEM), 200, nil},
		{"bad signature", "TestCRMConnection", "POST", "", 200, []string{`"code":"salesforce_bad_signature"`}},
		{"set the sandbox host for a production org", "SetCRMConnection", "PUT", body("sync@contoso.example", "test.salesforce.com", sf.App.PrivateKeyPEM), 200, nil},
		{"wrong audience", "TestCRMConnection", "POST", "", 200, []string{`"code":"salesforce_wrong_audience"`}},
		{"delete", "DeleteCRMConnection", "DELETE", "", 204, nil},
		{"gone", "GetCRMConnection", "GET", "", 200, []string{`{"configured":false}`}},
	}
	for _, s := range steps {
		code, out, _ := invokeHTTP(t, a, httpCall{function: s.function, method: s.method, params: tp, headers: actor, body: s.body})
		if code != s.wantCode {
			t.Errorf("%s: %d %s, want %d", s.name, code, out, s.wantCode)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %s does not contain %s", s.name, out, w)
			}
		}
		if strings.Contains(out, keyLine) || strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("%s answered the private key", s.name)
		}
	}
}

func TestCRMFunctionsTransport(t *testing.T) {
	t.Parallel()
	tp := map[string]string{"tenantId": tenantA}
	a := &App{CRM: CRMServices{Admin: &crm.Service{}}}
	for _, tt := range []struct {
		name string
		call httpCall
		want int
		body string
	}{
		{"bad tenant id", httpCall{function: "SetCRMConnection", method: "PUT", params: map[string]string{"tenantId": "contoso"}}, 400, "tenant id must be a GUID"},
		{"body too large", httpCall{function: "SetCRMConnection", method: "PUT", params: tp, body: `{"privateKey":"` + strings.Repeat("x", 17<<10) + `"}`}, 413, "too large"},
		{"no token", httpCall{function: "DeleteCRMConnection", method: "DELETE", params: tp, headers: map[string][]string{"Authorization": {""}}}, 401, "a bearer token is required"},
		{"another tenant's admin", httpCall{function: "TestCRMConnection", method: "POST", params: tp, headers: map[string][]string{"Authorization": {"Bearer as:" + otherTenant + ":" + operator}}}, 403, "not allowed"},
	} {
		code, body, _ := invokeHTTP(t, a, tt.call)
		if code != tt.want || !strings.Contains(body, tt.body) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, code, body, tt.want, tt.body)
		}
	}
}

// The mapping functions through the transport: a mailbox mapped by its address, shown, listed, refused
// when no Salesforce user has it, and removed; the answers carry ids, never the address.
func TestCRMUserMappingFunctions(t *testing.T) {
	t.Parallel()
	env := storetest.NewEnv(t, storetest.Options{})
	sf := sftest.New(t)
	sf.AddUser(sftest.User{Username: "sync@contoso.example", Approved: true})
	sf.AddUser(sftest.User{Username: "ada@contoso.example.crm", Email: "ada@contoso.example"})
	svc, err := crm.New(crm.Options{Store: env.Store, Data: crm.OpenData(env.Store.DB()), Secrets: env.Secrets, Sealer: env.Keys,
		Salesforce: salesforce.New(salesforce.Options{LoginURL: func(string) string { return sf.URL() }}),
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{CRM: CRMServices{Admin: svc}}
	ctx := context.Background()
	tenant := env.NewTenant(t)
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	const ada, bob = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
	for id, mail := range map[string]string{ada: "ada@contoso.example", bob: "bob@contoso.example"} {
		if _, err := env.Store.Users.Upsert(ctx, tenant, registry.User{ID: id, Mail: mail, Licensed: true}); err != nil {
			t.Fatal(err)
		}
	}
	actor := map[string][]string{"Authorization": {"Bearer as:" + string(tenant) + ":" + operator}}
	conn, _ := json.Marshal(map[string]string{"consumerKey": sf.App.ConsumerKey, "username": "sync@contoso.example",
		"host": "login.salesforce.com", "privateKey": sf.App.PrivateKeyPEM})
	if code, out, _ := invokeHTTP(t, a, httpCall{function: "SetCRMConnection", method: "PUT", params: map[string]string{"tenantId": string(tenant)},
		headers: actor, body: string(conn)}); code != 200 {
		t.Fatalf("connection: %d %s", code, out)
	}
	user := func(id string) map[string]string { return map[string]string{"tenantId": string(tenant), "userId": id} }
	steps := []struct {
		name, function, method string
		params                 map[string]string
		body                   string
		wantCode               int
		want                   []string
	}{
		{"unmapped", "GetCRMUserMapping", "GET", user(ada), "", 200, []string{`{"userId":"` + ada + `","mapped":false}`}},
		{"unknown field", "SetCRMUserMapping", "PUT", user(ada), `{"email":"ada@contoso.example"}`, 400, []string{"documented fields"}},
		{"map by address", "SetCRMUserMapping", "PUT", user(ada), `{"contacts":"to-crm"}`, 200, []string{`"mapped":true`,
			`"salesforceUserId":"` + sf.UserID("ada@contoso.example.crm") + `"`, `"matchedBy":"email"`, `"contacts":"to-crm"`, `"events":"off"`}},
		{"no Salesforce user has it", "SetCRMUserMapping", "PUT", user(bob), `{"contacts":"both"}`, 409, []string{"give salesforceUserId"}},
		{"shown", "GetCRMUserMapping", "GET", user(ada), "", 200, []string{`"mapped":true`, `"setBy":"` + operator + `"`}},
		{"health", "GetCRMSyncHealth", "GET", map[string]string{"tenantId": string(tenant)}, "", 200, []string{`"connected":true`,
			`"users":[{"userId":"` + ada + `","contacts":"to-crm","events":"off","synced":0,"failed":0,"failedRuns":0,"failing":[]}]`}},
		{"listed", "ListCRMUserMappings", "GET", map[string]string{"tenantId": string(tenant)}, "", 200, []string{`{"users":[{"userId":"` + ada + `"`}},
		{"removed", "DeleteCRMUserMapping", "DELETE", user(ada), "", 204, nil},
		{"gone", "ListCRMUserMappings", "GET", map[string]string{"tenantId": string(tenant)}, "", 200, []string{`{"users":[]}`}},
	}
	for _, s := range steps {
		code, out, _ := invokeHTTP(t, a, httpCall{function: s.function, method: s.method, params: s.params, headers: actor, body: s.body})
		if code != s.wantCode {
			t.Errorf("%s: %d %s, want %d", s.name, code, out, s.wantCode)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %s does not contain %s", s.name, out, w)
			}
		}
		if strings.Contains(out, "@contoso.example") {
			t.Errorf("%s answered an address: %s", s.name, out)
		}
	}
	if code, out, _ := invokeHTTP(t, a, httpCall{function: "ListCRMUserMappings", method: "GET", params: map[string]string{"tenantId": string(tenant)},
		query: map[string]string{"pageSize": "0"}, headers: actor}); code != 400 {
		t.Errorf("pageSize 0: %d %s", code, out)
	}
}
