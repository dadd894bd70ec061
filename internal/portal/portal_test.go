package portal

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// fakeAPI records the functions called and answers as told; fakeAccess admits the principal's own tenant.
type fakeAPI struct {
	calls   []string
	status  map[string]int
	answers map[string]any // a function's JSON answer, when the default will not do
}

func (f *fakeAPI) CallAs(_ context.Context, p Principal, function string, params map[string]string, _ url.Values, _ []byte) azfunc.HTTPResponse {
	f.calls = append(f.calls, function+":"+params["tenantId"])
	if params["tenantId"] != "" && params["tenantId"] != string(p.Tenant) {
		return azfunc.JSON(http.StatusForbidden, map[string]string{"error": "not allowed"})
	}
	if s := f.status[function]; s != 0 {
		return azfunc.JSON(s, map[string]string{"error": "refused by the function"})
	}
	if a, ok := f.answers[function]; ok {
		return azfunc.JSON(http.StatusOK, a)
	}
	return azfunc.JSON(http.StatusOK, map[string]any{"id": params["tenantId"], "state": "active", "purchasedLicenses": 3, "assignedLicenses": 1})
}

type fakeAccess struct{}

func (fakeAccess) Authenticate(string) (Principal, error) { return Principal{}, nil }
func (fakeAccess) Allowed(_ context.Context, p Principal, _ string, tenant core.TenantID) bool {
	return p.Tenant == tenant
}

type env struct {
	p      *Portal
	api    *fakeAPI
	data   *Data
	tenant core.TenantID
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := storetest.NewEnv(t, storetest.Options{})
	data := OpenData(e.Store.DB())
	storetest.Prepare(t, e.Store.DB())
	api := &fakeAPI{status: map[string]int{}}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p, err := New(Config{ClientID: "11111111-2222-3333-4444-555555555555", AuthorityHost: "http://127.0.0.1:1/devissuer",
		PublicBaseURL: "https://app.example.eu/", Secrets: secrets.NewMemory(), CertName: "app-client-cert", KeyName: "portal-key",
		Access: fakeAccess{}, Sessions: data, API: api, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{p: p, api: api, data: data, tenant: storetest.NewTenantID(t), now: now}
}

// session signs someone of the env's tenant in and returns the cookie header and the CSRF token.
func (e *env) session(t *testing.T, expires time.Duration) (string, string) {
	t.Helper()
	v, err := e.data.newSession(context.Background(), Principal{Tenant: e.tenant, ObjectID: "a0000000-0000-4000-8000-0000000000ad",
		AppRoles: []string{"ConnectHub.TenantAdmin"}}, e.now, e.now.Add(expires))
	if err != nil {
		t.Fatal(err)
	}
	return sessionCookie + "=" + v, csrfOf(t, v)
}

func csrfOf(t *testing.T, value string) string {
	t.Helper()
	_, enc, _ := strings.Cut(strings.TrimPrefix(value, sessionCookie+"="), ".")
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	return csrfToken(secret)
}

func (e *env) do(method, path, cookie string, headers map[string]string, form url.Values) azfunc.HTTPResponse {
	h := map[string][]string{"Cookie": {cookie}}
	for k, v := range headers {
		h[k] = []string{v}
	}
	var body []byte
	if form != nil {
		body = []byte(form.Encode())
		if _, ok := headers["Content-Type"]; !ok {
			h["Content-Type"] = []string{"application/x-www-form-urlencoded"}
		}
	}
	return e.p.Serve(context.Background(), &azfunc.HTTPRequest{Method: method, Params: map[string]string{"path": path}, Headers: h, Body: body, Query: url.Values{}})
}

// A state-changing request needs the session's CSRF token and, when the browser names one, our origin;
// a refused one never reaches a function.
func TestActionsNeedTheCSRFTokenAndOurOrigin(t *testing.T) {
	e := newEnv(t)
	cookie, csrf := e.session(t, time.Hour)
	page := "tenants/" + string(e.tenant) + "/licenses"
	assign := url.Values{"action": {"assign"}, "userId": {"b0000000-0000-4000-8000-0000000000a1"}}
	with := func(token string) url.Values {
		v := url.Values{"csrf": {token}}
		for k, vs := range assign {
			v[k] = vs
		}
		return v
	}
	_, otherCSRF := e.session(t, time.Hour)
	tests := []struct {
		name    string
		headers map[string]string
		form    url.Values
		cookie  string
		want    int
	}{
		{"no token", nil, assign, cookie, http.StatusForbidden},
		{"another session's token", nil, with(otherCSRF), cookie, http.StatusForbidden},
		{"another origin", map[string]string{"Origin": "https://evil.example"}, with(csrf), cookie, http.StatusForbidden},
		{"not a form", map[string]string{"Content-Type": "application/json"}, with(csrf), cookie, http.StatusUnsupportedMediaType},
		{"no session", nil, with(csrf), "", http.StatusUnauthorized},
		{"our origin and token", map[string]string{"Origin": "https://app.example.eu"}, with(csrf), cookie, http.StatusOK},
	}
	for _, tt := range tests {
		e.api.calls = nil
		res := e.do(http.MethodPost, page, tt.cookie, tt.headers, tt.form)
		if res.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.want, res.Body)
		}
		called := strings.Join(e.api.calls, ",")
		if tt.want != http.StatusOK && strings.Contains(called, "AssignLicense") {
			t.Errorf("%s: the function was called (%s)", tt.name, called)
		}
		if tt.want == http.StatusOK && !strings.Contains(called, "AssignLicense:"+string(e.tenant)) {
			t.Errorf("%s: AssignLicense not called (%s)", tt.name, called)
		}
	}
}

// Every answer carries the security headers; another tenant's page is the function's 403, not a blank
// page; an ended session shows the sign-in page and reaches no function.
func TestPagesAnswerWithTheFunctionsStatus(t *testing.T) {
	e := newEnv(t)
	cookie, _ := e.session(t, time.Hour)
	res := e.do(http.MethodGet, "tenants/"+string(e.tenant), cookie, nil, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `id="tenant-state">active`) {
		t.Fatalf("overview = %d %s", res.StatusCode, res.Body)
	}
	h := res.Headers
	if csp := h["Content-Security-Policy"]; !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if h["Strict-Transport-Security"] == "" || h["X-Frame-Options"] != "DENY" || h["Cache-Control"] != "no-store" {
		t.Errorf("headers = %v", h)
	}
	other := storetest.NewTenantID(t)
	if res := e.do(http.MethodGet, "tenants/"+string(other)+"/audit", cookie, nil, nil); res.StatusCode != http.StatusForbidden ||
		!strings.Contains(res.Body, "may not see this tenant") {
		t.Errorf("another tenant's page = %d %s", res.StatusCode, res.Body)
	}
	e.api.calls = nil
	expired, _ := e.session(t, -time.Minute)
	if res := e.do(http.MethodGet, "tenants/"+string(e.tenant), expired, nil, nil); res.StatusCode != http.StatusOK ||
		!strings.Contains(res.Body, `id="signin"`) || len(e.api.calls) != 0 {
		t.Errorf("ended session = %d, calls %v", res.StatusCode, e.api.calls)
	}
}

// Sessions live in the tenant's partition under the secret's digest: a wrong secret, a cookie moved to
// another tenant or an ended session opens nothing; sign-out deletes the row; the sweep takes ended
// sessions only; erasure takes the person's only.
func TestSessionsInTableStorage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	live, _ := e.session(t, time.Hour)
	ended, _ := e.session(t, -time.Second)
	value := strings.TrimPrefix(live, sessionCookie+"=")
	_, secret, _ := strings.Cut(value, ".")
	for name, c := range map[string]string{
		"wrong secret":   string(e.tenant) + "." + strings.Repeat("A", len(secret)),
		"another tenant": string(storetest.NewTenantID(t)) + "." + secret,
		"ended":          strings.TrimPrefix(ended, sessionCookie+"="),
		"garbage":        "x",
	} {
		if _, _, _, err := e.data.open(ctx, c, e.now); err != errNoSession {
			t.Errorf("%s: %v, want no session", name, err)
		}
	}
	if _, s, _, err := e.data.open(ctx, value, e.now); err != nil || s.ObjectID == "" || s.ID == secret {
		t.Fatalf("open = %+v %v (the row key must be the digest, not the secret)", s, err)
	}
	n, err := e.data.Sweep(ctx, registry.Tenant{ID: e.tenant}, e.now)
	if err != nil || n[TableSessions] != 1 {
		t.Errorf("sweep = %v %v, want the ended session only", n, err)
	}
	if _, _, _, err := e.data.open(ctx, value, e.now); err != nil {
		t.Errorf("the sweep took a live session: %v", err)
	}
	if err := e.data.end(ctx, value); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.data.open(ctx, value, e.now); err != errNoSession {
		t.Errorf("after sign-out: %v", err)
	}
}

// The sign-in state travels sealed in a cookie scoped to the callback; a callback whose state differs
// from the cookie's, or without the cookie, is refused before any code is redeemed.
func TestSignInStateIsSealedAndBoundToTheBrowser(t *testing.T) {
	e := newEnv(t)
	res := e.do(http.MethodGet, "signin", "", nil, nil)
	loc, setCookie := res.Headers["Location"], res.Headers["Set-Cookie"]
	if res.StatusCode != http.StatusFound || !strings.Contains(loc, "/organizations/oauth2/v2.0/authorize?") ||
		!strings.Contains(loc, "code_challenge_method=S256") || !strings.Contains(setCookie, "Path=/api/portal/callback") ||
		!strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "Secure") {
		t.Fatalf("signin = %d %q %q", res.StatusCode, loc, setCookie)
	}
	u, _ := url.Parse(loc)
	state := u.Query().Get("state")
	if strings.Contains(setCookie, state) || strings.Contains(setCookie, u.Query().Get("nonce")) {
		t.Error("the cookie shows the state or nonce in clear")
	}
	jar := strings.SplitN(setCookie, ";", 2)[0]
	callback := func(cookie, st string) azfunc.HTTPResponse {
		return e.p.Serve(context.Background(), &azfunc.HTTPRequest{Method: http.MethodGet, Params: map[string]string{"path": "callback"},
			Headers: map[string][]string{"Cookie": {cookie}}, Query: url.Values{"state": {st}, "code": {"c"}}})
	}
	for name, r := range map[string]azfunc.HTTPResponse{
		"another state":     callback(jar, state+"x"),
		"no cookie":         callback("", state),
		"tampered cookie":   callback(jar[:len(jar)-2]+"AA", state),
		"another browser's": callback(strings.SplitN(e.do(http.MethodGet, "signin", "", nil, nil).Headers["Set-Cookie"], ";", 2)[0], state),
	} {
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.Body)
		}
	}
}

// The CRM page shows each failing record by the name the mailbox gives it, with what to do, as the
// sync health function reports it; HTML in a record's name stays text.
func TestCRMPageShowsFailingRecordsWithWhatToDo(t *testing.T) {
	e := newEnv(t)
	cookie, _ := e.session(t, time.Hour)
	e.api.answers = map[string]any{
		"GetCRMConnection": map[string]any{"configured": true, "provider": "salesforce", "consumerKey": "3MVG9key", "username": "sync@contoso.example", "host": "login.salesforce.com"},
		"GetCRMSyncHealth": map[string]any{"connected": true, "failingUsers": 1, "failingRecords": 1, "users": []any{map[string]any{
			"userId": "b0000000-0000-4000-8000-0000000000a1", "contacts": "to-crm", "synced": 3, "failed": 1,
			"action": "some records were refused by Salesforce; fix them in Outlook as listed",
			"failing": []any{map[string]any{"type": "contact", "displayName": "<b>Prince</b>", "code": "REQUIRED_FIELD_MISSING",
				"fields": []any{"LastName"}, "attempts": 2, "action": "give the contact a last name in Outlook"}}}}},
		"ListCRMUserMappings": map[string]any{"users": []any{map[string]any{"userId": "b0000000-0000-4000-8000-0000000000a1",
			"mapped": true, "salesforceUserId": "005000000000001AAA", "matchedBy": "email", "contacts": "to-crm", "events": "off"}}},
	}
	res := e.do(http.MethodGet, "tenants/"+string(e.tenant)+"/crm", cookie, nil, nil)
	for _, want := range []string{"1 mailbox(es) need attention", "&lt;b&gt;Prince&lt;/b&gt;", "REQUIRED_FIELD_MISSING (LastName)",
		"give the contact a last name in Outlook", "005000000000001AAA", "sync@contoso.example"} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("CRM page lacks %q", want)
		}
	}
	if res.StatusCode != http.StatusOK || strings.Contains(res.Body, "<b>Prince</b>") {
		t.Errorf("CRM page = %d (a record's name must stay text)", res.StatusCode)
	}
}
