package sandbox

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

const (
	appID  = "11111111-2222-3333-4444-555555555555"
	tenant = "c0000000-0000-4000-8000-000000000001"
	userID = "b0000000-0000-4000-8000-000000000001"
)

func TestTBRunsCleanupsLastFirstAndExitsOnFatal(t *testing.T) {
	var out bytes.Buffer
	code := -1
	tb := &TB{Out: &out, Exit: func(c int) { code = c }}
	var order []int
	tb.Cleanup(func() { order = append(order, 1) })
	tb.Cleanup(func() { order = append(order, 2) })
	dir := tb.TempDir()
	tb.Errorf("bad %s", "request")
	if !tb.Failed() || code != -1 {
		t.Fatalf("Errorf: failed=%v exit=%d", tb.Failed(), code)
	}
	tb.Fatal("no key")
	if code != 1 || !strings.Contains(out.String(), "sandbox: bad request") || !strings.Contains(out.String(), "no key") {
		t.Fatalf("Fatal: exit=%d log=%q", code, out.String())
	}
	tb.Close()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir %s still there: %v", dir, err)
	}
}

type env struct {
	sb  *Sandbox
	api string
}

func start(t *testing.T) *env {
	sb := Start(t, appID)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return &env{sb: sb, api: srv.URL}
}

func do(t *testing.T, client *http.Client, method, u, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// clientCredentials asks for an app-only token with a client assertion signed by key, as MSAL signs it.
func (e *env) clientCredentials(t *testing.T, key *rsa.PrivateKey) int {
	t.Helper()
	tokenURL := e.sb.Auth.Host() + tenant + "/oauth2/v2.0/token"
	a, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": appID, "sub": appID, "aud": tokenURL,
		"exp": time.Now().Add(5 * time.Minute).Unix(), "jti": "x"}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "scope": {graphtest.GraphResource + "/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	code, _ := do(t, e.sb.Auth.Client(), "POST", tokenURL, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	return code
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func TestAppCertificateUploadDecidesWhichClientAssertionIsAccepted(t *testing.T) {
	e := start(t)
	certA, keyA, _ := graphcrypto.GenerateTestCertificate(2048)
	certB, keyB, _ := graphcrypto.GenerateTestCertificate(2048)
	// As connecthub certs show --pem prints it: a label line before the PEM.
	code, body := do(t, nil, "PUT", e.api+"/sandbox/app-certificate", "app-client-cert\n"+certPEM(certA))
	if code != http.StatusOK || !strings.Contains(body, `"thumbprint"`) {
		t.Fatalf("upload A = %d %s", code, body)
	}
	// App-only tokens exist only in a tenant whose admin consented, as the walkthrough's step 2 does.
	if c := e.clientCredentials(t, keyA); c != http.StatusBadRequest {
		t.Errorf("app-only token before the tenant consented = %d, want 400", c)
	}
	noFollow := &http.Client{Transport: e.sb.Auth.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, _ := do(t, noFollow, "GET", e.sb.Auth.Host()+tenant+"/v2.0/adminconsent?"+url.Values{"client_id": {appID},
		"redirect_uri": {"http://127.0.0.1:7071/api/onboarding/consent"}, "state": {"s"}}.Encode(), ""); code != http.StatusFound {
		t.Fatalf("admin consent = %d", code)
	}
	if c := e.clientCredentials(t, keyA); c != http.StatusOK {
		t.Errorf("assertion signed with A's key after uploading A = %d, want 200", c)
	}
	if c := e.clientCredentials(t, keyB); c != http.StatusUnauthorized {
		t.Errorf("assertion signed with B's key after uploading A = %d, want 401", c)
	}
	do(t, nil, "PUT", e.api+"/sandbox/app-certificate", certPEM(certB))
	if c := e.clientCredentials(t, keyB); c != http.StatusOK {
		t.Errorf("assertion signed with B's key after uploading B = %d, want 200", c)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(keyB)
	withKey := certPEM(certB) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if code, body := do(t, nil, "PUT", e.api+"/sandbox/app-certificate", withKey); code != http.StatusBadRequest {
		t.Errorf("upload with a private key = %d %s, want 400", code, body)
	}
	if code, _ := do(t, nil, "PUT", e.api+"/sandbox/app-certificate", "not a pem"); code != http.StatusBadRequest {
		t.Errorf("upload without a certificate = %d, want 400", code)
	}
}

func TestDirectoryUserAndSignIn(t *testing.T) {
	e := start(t)
	code, body := do(t, nil, "PUT", e.api+"/sandbox/tenants/"+tenant+"/users/"+userID,
		`{"displayName":"Ada","mail":"ada@contoso.example","accountEnabled":true}`)
	if code != http.StatusOK {
		t.Fatalf("put user = %d %s", code, body)
	}
	tok := e.sb.Auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: appID})
	code, body = do(t, nil, "GET", e.sb.Graph.URL()+"/v1.0/users/"+userID, "", "Authorization", "Bearer "+tok)
	if code != http.StatusOK || !strings.Contains(body, `"mail":"ada@contoso.example"`) {
		t.Fatalf("Graph GET user = %d %s", code, body)
	}

	noFollow := &http.Client{Transport: e.sb.Auth.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := e.sb.Auth.Host() + tenant + "/oauth2/v2.0/authorize?" + url.Values{"client_id": {appID}, "response_type": {"code"},
		"redirect_uri": {"http://127.0.0.1:7071/api/auth/callback"}, "scope": {"https://graph.microsoft.com/Presence.Read.All offline_access"},
		"state": {"s1"}}.Encode()
	location := func() url.Values {
		resp, err := noFollow.Get(authorize)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query()
	}
	if q := location(); q.Get("error") != "access_denied" {
		t.Fatalf("authorize before anyone signs in: %v, want access_denied", q)
	}
	code, body = do(t, nil, "PUT", e.api+"/sandbox/tenants/"+tenant+"/signin", `{"userId":"`+userID+`","upn":"svc@contoso.example"}`)
	if code != http.StatusOK {
		t.Fatalf("signin = %d %s", code, body)
	}
	if q := location(); q.Get("code") == "" || q.Get("state") != "s1" {
		t.Fatalf("authorize after signin: %v, want a code and the state", q)
	}
	if code, _ := do(t, nil, "PUT", e.api+"/sandbox/tenants/"+tenant+"/signin", `{"userId":""}`); code != http.StatusBadRequest {
		t.Errorf("signin without user = %d, want 400", code)
	}
}

func TestRingCentralCredentialsExtensionsAndPushes(t *testing.T) {
	e := start(t)
	code, body := do(t, nil, "POST", e.api+"/sandbox/ringcentral/extensions", `{"id":3001,"number":"301","email":"ada@contoso.example"}`)
	if code != http.StatusCreated {
		t.Fatalf("add extension = %d %s", code, body)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/ringcentral/credentials", "")
	var cred struct{ ClientID, ClientSecret, JWT, Server string }
	if err := json.Unmarshal([]byte(body), &cred); err != nil || cred.Server != e.sb.RC.URL() {
		t.Fatalf("credentials %s: %v", body, err)
	}
	// The credentials work at the PBX as the developer console's would.
	req, _ := http.NewRequest("POST", cred.Server+"/restapi/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {cred.JWT}}.Encode()))
	req.SetBasicAuth(cred.ClientID, cred.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("RingCentral token with the shown credentials = %d", resp.StatusCode)
	}
	code, body = do(t, nil, "GET", cred.Server+"/restapi/v1.0/account/~/extension", "", "Authorization", "Bearer "+tok.AccessToken)
	if code != http.StatusOK || !strings.Contains(body, `"extensionNumber":"301"`) {
		t.Fatalf("extension list = %d %s", code, body)
	}
	if _, body = do(t, nil, "GET", e.api+"/sandbox/ringcentral/pushes", ""); strings.TrimSpace(body) != "[]" {
		t.Fatalf("pushes before any = %s", body)
	}
	code, _ = do(t, nil, "PUT", cred.Server+"/restapi/v1.0/account/~/extension/3001/presence", `{"userStatus":"Busy","dndStatus":"TakeAllCalls"}`,
		"Authorization", "Bearer "+tok.AccessToken, "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Fatalf("push = %d", code)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/ringcentral/pushes", "")
	if !strings.Contains(body, `"extensionId": "3001"`) || !strings.Contains(body, `"userStatus": "Busy"`) {
		t.Errorf("pushes = %s", body)
	}
	if code, _ := do(t, nil, "POST", e.api+"/sandbox/ringcentral/extensions", `{"number":"302"}`); code != http.StatusBadRequest {
		t.Errorf("extension without id = %d, want 400", code)
	}
}

func TestPresenceChangeIsDeliveredToTheSubscribedWebhook(t *testing.T) {
	e := start(t)
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hook.Close()
	presenceURL := e.api + "/sandbox/tenants/" + tenant + "/users/" + userID + "/presence"
	code, body := do(t, nil, "POST", presenceURL, `{"availability":"Busy","activity":"InACall"}`)
	if code != http.StatusOK || !strings.Contains(body, `"deliveries": []`) {
		t.Fatalf("presence without a subscription = %d %s", code, body)
	}
	id := e.sb.Graph.PutSubscription(graphtest.Subscription{Tenant: tenant, Resource: graphtest.PresenceResource([]string{userID}),
		ChangeType: "updated", NotificationURL: hook.URL, ClientState: "cs", UserIDs: []string{userID}})
	code, body = do(t, nil, "POST", presenceURL, `{"availability":"Away","activity":"Away"}`)
	if code != http.StatusOK || !strings.Contains(body, `"status": 202`) {
		t.Fatalf("presence = %d %s", code, body)
	}
	mu.Lock()
	if len(got) != 1 || !strings.Contains(got[0], `"subscriptionId":"`+id+`"`) || !strings.Contains(got[0], `"clientState":"cs"`) {
		t.Errorf("webhook received %q", got)
	}
	mu.Unlock()
	if a, _ := e.sb.Graph.Presence(tenant, userID); a != "Away" {
		t.Errorf("Graph presence = %q, want Away", a)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/graph/subscriptions", "")
	if !strings.Contains(body, `"id": "`+id+`"`) || !strings.Contains(body, `"notificationUrl": "`+hook.URL+`"`) {
		t.Errorf("subscriptions = %s", body)
	}
	if code, _ := do(t, nil, "POST", presenceURL, `{"availability":"Away"}`); code != http.StatusBadRequest {
		t.Errorf("presence without activity = %d, want 400", code)
	}
}

func TestSettingsPointTheHandlerAtTheFakes(t *testing.T) {
	sb := Start(t, appID)
	base := map[string]string{"CONNECTHUB_APP_ID": appID, "GRAPH_BASE_URL": "https://graph.microsoft.com"}
	got := sb.Settings(base, "/tmp/ca.pem", "http://127.0.0.1:7071")
	want := map[string]string{"CONNECTHUB_APP_ID": appID, "GRAPH_BASE_URL": sb.Graph.URL(), "CONNECTHUB_AUTHORITY_HOST": sb.Auth.Host(),
		"SSL_CERT_FILE": "/tmp/ca.pem", "CONNECTHUB_OPENID_CONFIGURATION_URL": sb.IDP.ConfigURL(),
		"CONNECTHUB_RINGCENTRAL_BASE_URL": sb.RC.URL(), "CONNECTHUB_PUBLIC_BASE_URL": "http://127.0.0.1:7071",
		"CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI": "http://127.0.0.1:7071/api/onboarding/consent",
		"CONNECTHUB_OAUTH_REDIRECT_URI":         "http://127.0.0.1:7071/api/auth/callback"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if base["GRAPH_BASE_URL"] != "https://graph.microsoft.com" {
		t.Error("Settings changed its input")
	}
}
