package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// TestPresenceSetUpAsTheREADMETellsIt is the whole set-up path of the README's "Set up presence sync for
// a tenant", through devhost and the real handler, with nothing written to storage by the test: every
// step is an HTTP function, the identity platform's redirects or the operator command. The fakes answer
// like Entra ID (scope echo without offline_access, v1 Graph tokens, single-use codes, PKCE), Graph and
// RingCentral (see their package comments).
func TestPresenceSetUpAsTheREADMETellsIt(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	auth, g, rc, front := c.auth, c.graph, c.rc, c.front
	var settings map[string]string
	s := startStack(t, func(set map[string]string) {
		c.settings(set)
		set["CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI"] = front + "/api/onboarding/consent"
		settings = set
	})
	c.serve(t, s)
	api := s.host.URL() + "/api"
	tenant := storetest.NewTenantID(t)
	tp := api + "/tenants/" + string(tenant)
	must := func(step string, code int, body string, want int, contains ...string) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %d %s, want %d", step, code, body, want)
		}
		for _, c := range contains {
			if !strings.Contains(body, c) {
				t.Fatalf("%s: %s does not contain %s", step, body, c)
			}
		}
	}

	// 1. Certificates. The handler made a local app certificate on first start (as make run does); the
	// operator shows its public part with the connecthub command and uploads it to the app registration,
	// which here is the fake authority's trusted certificate.
	settingsFile := filepath.Join(t.TempDir(), "local.settings.json")
	raw, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Values": settings})
	if err := os.WriteFile(settingsFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary(t, "cmd/connecthub"), "certs", "show", "--settings", settingsFile, "--name", "app-client-cert", "--pem")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("connecthub certs show: %v: %s", err, errOut.String())
	}
	if strings.Contains(out.String(), "PRIVATE KEY") {
		t.Fatal("connecthub certs show printed the private key")
	}
	block, _ := pem.Decode(out.Bytes()[bytes.Index(out.Bytes(), []byte("-----BEGIN CERTIFICATE")):])
	if block == nil {
		t.Fatalf("no certificate in %q", out.String())
	}
	appCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	auth.AppCertificate = appCert

	// 2. Onboarding by admin consent: the operator starts it, the customer's admin follows the link to
	// the identity platform, which redirects back to AdminConsentCallback.
	code, body := call(t, "POST", tp+"/onboarding", "fk", `{"purchasedLicenses":3,"homeRegion":"westeurope"}`)
	must("StartOnboarding", code, body, http.StatusCreated, "consentUrl")
	var ob struct{ ConsentURL string }
	_ = json.Unmarshal([]byte(body), &ob)
	code, body = call(t, "GET", c.adminConsents(t, ob.ConsentURL, front+"/api/onboarding/consent?"), "", "")
	must("AdminConsentCallback", code, body, http.StatusOK, "now connected")
	// The callback believed Microsoft, not the redirect: it asked for an app-only token for the tenant
	// with the certificate from step 1 and read the app's service principal with it.
	if auth.Grants("client_credentials") == 0 || g.Count(http.MethodGet, "/servicePrincipals(appId='"+appID+"')") != 1 {
		t.Fatalf("consent proof: %d app-only token requests, %d service principal reads", auth.Grants("client_credentials"),
			g.Count(http.MethodGet, "/servicePrincipals"))
	}

	// 3. Licenses: three users in the customer's directory, licensed through the admin API (which reads
	// their profiles app-only with the certificate from step 1).
	users := []graphtest.User{
		{ID: "b0000000-0000-4000-8000-000000000001", DisplayName: "Ada", Mail: "ada@contoso.example", AccountEnabled: true},
		{ID: "b0000000-0000-4000-8000-000000000002", DisplayName: "Grace", Mail: "grace@contoso.example", BusinessPhones: []string{"+1 425 555 0102"}, AccountEnabled: true},
		{ID: "b0000000-0000-4000-8000-000000000003", DisplayName: "Edsger", Mail: "edsger@contoso.example", AccountEnabled: true},
	}
	for _, u := range users {
		g.PutUser(string(tenant), u)
	}
	rc.AddExtension(rctest.Extension{ID: 3001, Number: "301", Email: "ada@contoso.example"})
	rc.AddExtension(rctest.Extension{ID: 3002, Number: "302", BusinessPhone: "+14255550102"})
	rc.AddExtension(rctest.Extension{ID: 3003, Number: "303", Email: "someone-else@contoso.example"})
	for _, u := range users {
		code, body = call(t, "PUT", tp+"/users/"+u.ID+"/license", "fk", "")
		must("AssignLicense "+u.DisplayName, code, body, http.StatusOK)
	}

	// 4. The PBX connector: a wrong credential is refused by the test function with what failed, the
	// right one passes; extensions match by e-mail and phone, and an override maps the third user.
	cred := func(jwt string) string {
		return fmt.Sprintf(`{"kind":"ringcentral","clientId":%q,"clientSecret":%q,"jwt":%q}`, rc.ClientID, rc.ClientSecret, jwt)
	}
	code, body = call(t, "PUT", tp+"/connector", "fk", cred(rc.JWT[:len(rc.JWT)-4]+"AAAA"))
	must("SetConnector (wrong JWT)", code, body, http.StatusOK, `"kind":"ringcentral"`)
	code, body = call(t, "POST", tp+"/connector/test", "fk", "")
	must("TestConnector (wrong JWT)", code, body, http.StatusOK, `"ok":false`, `"code":"ringcentral_jwt_refused"`)
	code, body = call(t, "PUT", tp+"/connector", "fk", cred(rc.JWT))
	must("SetConnector", code, body, http.StatusOK)
	if strings.Contains(body, rc.ClientSecret) || strings.Contains(body, rc.JWT) {
		t.Fatalf("SetConnector echoed a secret: %s", body)
	}
	code, body = call(t, "POST", tp+"/connector/test", "fk", "")
	must("TestConnector", code, body, http.StatusOK, `"ok":true`)
	code, body = call(t, "PUT", tp+"/users/"+users[2].ID+"/extension", "fk", `{"extensionId":"3003"}`)
	must("SetUserExtension", code, body, http.StatusOK, `"matchedBy":"override"`)
	code, body = call(t, "GET", tp+"/extensions", "fk", "")
	must("ListExtensions", code, body, http.StatusOK,
		`{"userId":"`+users[0].ID+`","extensionId":"3001","extensionNumber":"301","matchedBy":"email"}`,
		`{"userId":"`+users[1].ID+`","extensionId":"3002","extensionNumber":"302","matchedBy":"phone"}`,
		`{"userId":"`+users[2].ID+`","extensionId":"3003","extensionNumber":"303","matchedBy":"override"}`)

	// 5. The service user signs in through ConnectServiceUser, the identity platform and AuthCallback.
	e := &presenceEnv{s: s, auth: auth, graph: g, rc: rc, front: front, tenant: tenant}
	e.connectServiceUser(t)
	code, body = call(t, "GET", tp+"/presence", "fk", "")
	must("GetPresenceStatus", code, body, http.StatusOK, `"licensed":3`, `"serviceUsers":1`, `"serviceUsersMissing":0`)

	// 6. RenewSubscriptions subscribes the licensed users and resyncs them onto the PBX.
	sub := e.subscribe(t)
	waitFor(t, "initial resync of three users", func() bool {
		return len(e.pushesTo("3001")) == 1 && len(e.pushesTo("3002")) == 1 && len(e.pushesTo("3003")) == 1
	})

	// Log lines inside an invocation name their function, invocation and tenant without the code adding
	// them (core.NewLogHandler): the subscription the timer created says which tenant it was for.
	var created map[string]any
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"presence subscription created"`) {
			_ = json.Unmarshal([]byte(line), &created)
		}
	}
	if created["function"] != "RenewSubscriptions" || created["invocation_id"] == "" || created["invocation_id"] == nil ||
		created["tenant_id"] != string(tenant) {
		t.Errorf("log line of the created subscription = %v", created)
	}

	// 7. A rich notification reaches the PBX, on the override's extension.
	ds, err := g.SetPresence(string(tenant), users[2].ID, "Busy", "InACall")
	if err != nil {
		t.Fatal(err)
	}
	e.send(t, ds)
	waitFor(t, "Busy on extension 3003", func() bool { return len(e.pushesTo("3003")) == 2 })
	if p := e.pushesTo("3003")[1]; p.UserStatus != "Busy" {
		t.Errorf("push = %+v", p)
	}

	// 8. Suspend: the Graph subscription is gone when the function answers, and a notification Graph
	// still had in flight pushes nothing.
	late, err := g.SetPresence(string(tenant), users[0].ID, "DoNotDisturb", "Presenting")
	if err != nil {
		t.Fatal(err)
	}
	code, body = call(t, "POST", tp+"/suspend", "fk", "")
	must("SuspendTenant", code, body, http.StatusOK, `"state":"suspended"`)
	if subs := g.Subscriptions(); len(subs) != 0 {
		t.Fatalf("Graph still holds %d subscriptions after suspend", len(subs))
	}
	before := len(rc.Pushes())
	e.send(t, late)
	e.idle(t)
	if n := len(rc.Pushes()); n != before {
		t.Errorf("a notification after suspend pushed %d updates", n-before)
	}

	// 9. Reactivate: a new subscription, and the state that changed meanwhile is resynced.
	code, body = call(t, "POST", tp+"/reactivate", "fk", "")
	must("ReactivateTenant", code, body, http.StatusOK, `"state":"active"`)
	subs := g.Subscriptions()
	if len(subs) != 1 {
		t.Fatalf("Graph holds %d subscriptions after reactivate, want 1", len(subs))
	}
	for id := range subs {
		if id == sub.ID {
			t.Error("reactivate kept the old subscription id")
		}
	}
	waitFor(t, "resync of the change made while suspended", func() bool {
		p := e.pushesTo("3001")
		return len(p) == 2 && p[1].DNDStatus == "DoNotAcceptAnyCalls"
	})

	// The operator's trail of the whole set-up.
	page, err := audit.OpenLog(s.store.DB()).List(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range page.Items {
		got[a.Action+"/"+a.Outcome]++
	}
	for _, w := range []string{"tenant.onboarding.start/success", "tenant.consent/success", "license.assign/success",
		"connector.set/success", "connector.test/failed", "connector.test/success", "user.extension.set/success",
		"tenant.suspend/success", "tenant.reactivate/success"} {
		if got[w] == 0 {
			t.Errorf("audit has no %s (has %v)", w, got)
		}
	}
	if st, err := s.store.Tenants.Get(ctx, tenant); err != nil || st.State != registry.TenantActive {
		t.Errorf("tenant = %+v, %v", st, err)
	}
}
