package tenants_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/tenants"
	"github.com/connecthub/connecthub/internal/tenants/tenantgraph"
)

const appID = "11111111-2222-3333-4444-555555555555"

var (
	bg       = context.Background()
	operator = core.Actor{ID: "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c", Kind: "user"}
)

// syncBuffer collects the service's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// consentEnv is onboarding against Azurite and the fake identity platform and Graph, through the real
// app-only clients and the tenantgraph adapter, as internal/app wires them.
type consentEnv struct {
	env   *storetest.Env
	clock *clock.Fake
	auth  *graphtest.Authority
	graph *graphtest.Graph
	svc   *tenants.Service
	logs  *syncBuffer
}

func newConsentEnv(t *testing.T, wait time.Duration) *consentEnv {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	env := storetest.NewEnv(t, storetest.Options{Now: clk.Now})
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := env.Secrets.Set(bg, secrets.AppClientCertName, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))+
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	auth := graphtest.NewAuthority(t)
	auth.AppCertificate = cert
	g := graphtest.NewGraph(t, auth)
	// Token requests are not retried, so that a staged outage shows at once.
	clients := graph.NewAppClients(graph.AppAuth{ClientID: appID, Secrets: env.Secrets, CertName: secrets.AppClientCertName,
		Auth: graph.AuthOptions{AuthorityHost: auth.Host(), HTTPClient: auth.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}},
		graph.Options{BaseURL: g.URL()})
	logs := &syncBuffer{}
	svc, err := tenants.New(tenants.Options{Store: env.Store, Keys: env.Keys, Now: clk.Now, Log: slog.New(slog.NewTextHandler(logs, nil)),
		AppID: appID, RedirectURI: "https://connecthub.example.eu/api/onboarding/consent", LoginBaseURL: auth.Host(),
		ConsentTTL: 72 * time.Hour, Regions: map[string]bool{"westeurope": true}, BookingWindowDays: 21,
		Consent: tenantgraph.Consent{Prover: clients}, ConsentWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	return &consentEnv{env: env, clock: clk, auth: auth, graph: g, svc: svc, logs: logs}
}

// start onboards a fresh tenant and returns it with the consent link.
func (e *consentEnv) start(t *testing.T) (core.TenantID, string) {
	t.Helper()
	id := storetest.NewTenantID(t)
	ob, err := e.svc.StartOnboarding(bg, operator, id, tenants.OnboardingRequest{PurchasedLicenses: 5, HomeRegion: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	return id, ob.ConsentURL
}

// consentAtMicrosoft is the admin following the link: the identity platform records the consent and
// sends the browser back with the redirect's query, which is returned as the callback.
func (e *consentEnv) consentAtMicrosoft(t *testing.T, link string) tenants.ConsentCallback {
	t.Helper()
	browser := e.auth.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), "https://connecthub.example.eu/api/onboarding/consent?") {
		t.Fatalf("admin consent answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := back.Query()
	return tenants.ConsentCallback{AdminConsent: q.Get("admin_consent"), Tenant: q.Get("tenant"), State: q.Get("state"), Error: q.Get("error")}
}

// forged is the success redirect written by whoever holds the link, without Microsoft.
func forged(t *testing.T, link string) tenants.ConsentCallback {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	state := u.Query().Get("state")
	tenant, _, _ := strings.Cut(state, ".")
	return tenants.ConsentCallback{AdminConsent: "True", Tenant: tenant, State: state}
}

// unchanged fails unless the tenant is still pending, unconsented, with the link usable and no key.
func (e *consentEnv) unchanged(t *testing.T, id core.TenantID) {
	t.Helper()
	tn, err := e.env.Store.Tenants.Get(bg, id)
	if err != nil || tn.State != registry.TenantPending || !tn.ConsentedAt.IsZero() || len(tn.ConsentStateHash) == 0 {
		t.Errorf("tenant = %+v, %v; want pending, unconsented, its link unused", tn, err)
	}
	if _, err := e.env.Keys.Seal(bg, id, "users", "x", []byte("x")); !errors.Is(err, tenantkey.ErrNoKey) {
		t.Errorf("data key: Seal err = %v, want ErrNoKey", err)
	}
}

// active fails unless the tenant was activated with a data key.
func (e *consentEnv) active(t *testing.T, id core.TenantID) registry.Tenant {
	t.Helper()
	tn, err := e.env.Store.Tenants.Get(bg, id)
	if err != nil || tn.State != registry.TenantActive || tn.ConsentedAt.IsZero() || !tn.ConsentExpiresAt.IsZero() {
		t.Errorf("tenant = %+v, %v; want active", tn, err)
	}
	if err := e.env.Keys.CreateTenantKey(bg, id); !errors.Is(err, tenantkey.ErrKeyExists) {
		t.Errorf("data key: CreateTenantKey err = %v, want ErrKeyExists", err)
	}
	return tn
}

// trail is "action/outcome/actor" of the tenant's audit entries, oldest first.
func (e *consentEnv) trail(t *testing.T, id core.TenantID) []string {
	t.Helper()
	page, err := audit.OpenLog(e.env.DB).List(bg, id, &tables.ListOptions{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range page.Items {
		out = append(out, en.Action+"/"+en.Outcome+"/"+en.ActorID)
	}
	slices.Reverse(out)
	return out
}

func trailOf(entries ...string) string {
	return fmt.Sprint(append([]string{"tenant.onboarding.start/success/" + operator.ID}, entries...))
}

const (
	consentOK     = "tenant.consent/success/tenant-admin"
	consentDenied = "tenant.consent/denied/tenant-admin"
	consentFailed = "tenant.consent/failed/tenant-admin"
)

func wantCode(t *testing.T, err error, want apperr.Code) {
	t.Helper()
	if err == nil || apperr.CodeOf(err) != want {
		t.Fatalf("err = %v (code %v), want code %v", err, apperr.CodeOf(err), want)
	}
}

// The admin consents at Microsoft: the callback proves it with Microsoft (an app-only token for the
// tenant, the service principal read with it), activates the tenant and creates its key. Replaying the
// same redirect changes nothing and is audited as a refused consent.
func TestConsentProvenWithMicrosoft(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	cb := e.consentAtMicrosoft(t, link)
	e.clock.Advance(time.Minute)
	res, err := e.svc.CompleteConsent(bg, cb)
	if err != nil || !res.Granted || res.Tenant != id {
		t.Fatalf("CompleteConsent = %+v, %v", res, err)
	}
	tn := e.active(t, id)
	if !tn.ConsentedAt.Equal(e.clock.Now()) {
		t.Errorf("ConsentedAt = %v, want %v", tn.ConsentedAt, e.clock.Now())
	}
	if e.auth.Grants("client_credentials") != 1 || e.graph.Count(http.MethodGet, "/servicePrincipals(appId='"+appID+"')") != 1 {
		t.Errorf("Microsoft asked: %d token requests, %d service principal reads; want 1 and 1",
			e.auth.Grants("client_credentials"), e.graph.Count(http.MethodGet, "/servicePrincipals"))
	}

	e.clock.Advance(time.Minute)
	_, err = e.svc.CompleteConsent(bg, cb)
	wantCode(t, err, apperr.Invalid)
	if after := e.active(t, id); !after.ConsentedAt.Equal(tn.ConsentedAt) || !after.UpdatedAt.Equal(tn.UpdatedAt) {
		t.Errorf("a replay changed the tenant: %+v", after)
	}
	if got, want := fmt.Sprint(e.trail(t, id)), trailOf(consentOK, consentDenied); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
	if e.auth.Grants("client_credentials") != 1 {
		t.Error("a replay asked Microsoft again")
	}
	state := cb.State
	if logs := e.logs.String(); strings.Contains(logs, state) || strings.Contains(logs, state[37:]) || !strings.Contains(logs, "admin consent refused") {
		t.Errorf("log leaks the state or lacks the refusal:\n%s", logs)
	}
}

// Whoever holds the link can write admin_consent=True: without Microsoft's confirmation nothing
// changes, the attempt is audited, and the real admin can still use the link.
func TestForgedConsentChangesNothing(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	_, err := e.svc.CompleteConsent(bg, forged(t, link))
	if !errors.Is(err, tenants.ErrConsentUnconfirmed) || apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("forged callback: err = %v, want ErrConsentUnconfirmed", err)
	}
	e.unchanged(t, id)
	if got, want := fmt.Sprint(e.trail(t, id)), trailOf(consentDenied); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}

	if res, err := e.svc.CompleteConsent(bg, e.consentAtMicrosoft(t, link)); err != nil || !res.Granted {
		t.Fatalf("the admin's real consent after the forgery = %+v, %v", res, err)
	}
	e.active(t, id)
}

// The redirect must name the tenant the link was made for, whatever Microsoft says about it.
func TestConsentRedirectMustNameTheTenant(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	for _, tc := range []struct{ name, tenant string }{
		{"missing", ""},
		{"another tenant", string(storetest.NewTenantID(t))},
		{"not a GUID", "contoso.onmicrosoft.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, link := e.start(t)
			cb := e.consentAtMicrosoft(t, link) // Microsoft has the consent: only the redirect is wrong
			good := cb
			cb.Tenant = tc.tenant
			before := e.auth.Grants("client_credentials")
			_, err := e.svc.CompleteConsent(bg, cb)
			wantCode(t, err, apperr.Invalid)
			e.unchanged(t, id)
			if got, want := fmt.Sprint(e.trail(t, id)), trailOf(consentDenied); got != want {
				t.Errorf("audit = %s, want %s", got, want)
			}
			if e.auth.Grants("client_credentials") != before {
				t.Error("Microsoft was asked about a redirect that names no or another tenant")
			}
			if res, err := e.svc.CompleteConsent(bg, good); err != nil || !res.Granted {
				t.Errorf("the right redirect afterwards = %+v, %v", res, err)
			}
		})
	}
}

// An outage at Microsoft is not a refusal: onboarding stays pending, the admin is told to come back,
// and the same link works once Microsoft answers.
func TestConsentDuringMicrosoftOutage(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	outage := graphtest.Failure{Status: http.StatusServiceUnavailable, RetryAfter: "0"}
	for _, tc := range []struct {
		name  string
		stage func()
	}{
		{"identity platform 503", func() { e.auth.FailTokens(graphtest.TokenFailure{Status: http.StatusServiceUnavailable}) }},
		{"Graph throttling", func() {
			throttled := graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "0"}
			e.graph.Fail(http.MethodGet, "/servicePrincipals", throttled, throttled, throttled, throttled)
		}},
		{"Graph 503", func() { e.graph.Fail(http.MethodGet, "/servicePrincipals", outage, outage, outage, outage) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, link := e.start(t)
			cb := e.consentAtMicrosoft(t, link)
			tc.stage()
			_, err := e.svc.CompleteConsent(bg, cb)
			wantCode(t, err, apperr.Unavailable)
			if errors.Is(err, tenants.ErrConsentUnconfirmed) {
				t.Error("an outage was taken for a refusal")
			}
			e.unchanged(t, id)
			if res, err := e.svc.CompleteConsent(bg, cb); err != nil || !res.Granted {
				t.Fatalf("the same link after the outage = %+v, %v", res, err)
			}
			e.active(t, id)
			if got, want := fmt.Sprint(e.trail(t, id)), trailOf(consentFailed, consentOK); got != want {
				t.Errorf("audit = %s, want %s", got, want)
			}
		})
	}
}

// Right after consent the token endpoint may still say AADSTS700016 while the new service principal
// replicates. Asked once, that looks like a forgery; the callback keeps asking for a while, and an
// admin who came too early can use the same link again.
func TestConsentJustGivenIsWaitedFor(t *testing.T) {
	t.Parallel()
	impatient := newConsentEnv(t, 0)
	impatient.auth.SetConsentLag(time.Hour)
	id, link := impatient.start(t)
	cb := impatient.consentAtMicrosoft(t, link)
	if _, err := impatient.svc.CompleteConsent(bg, cb); !errors.Is(err, tenants.ErrConsentUnconfirmed) {
		t.Fatalf("before the principal replicated: err = %v, want ErrConsentUnconfirmed", err)
	}
	impatient.unchanged(t, id)
	impatient.auth.SetConsentLag(0)
	if res, err := impatient.svc.CompleteConsent(bg, cb); err != nil || !res.Granted {
		t.Fatalf("the same link once replicated = %+v, %v", res, err)
	}

	patient := newConsentEnv(t, 10*time.Second)
	patient.auth.SetConsentLag(500 * time.Millisecond)
	id, link = patient.start(t)
	if res, err := patient.svc.CompleteConsent(bg, patient.consentAtMicrosoft(t, link)); err != nil || !res.Granted {
		t.Fatalf("waiting out the replication = %+v, %v", res, err)
	}
	patient.active(t, id)
	if n := patient.auth.Grants("client_credentials"); n < 2 {
		t.Errorf("%d token requests, want a refusal and then the token", n)
	}
}

// An admin who declines is told so, without asking Microsoft, and the link stays usable.
func TestConsentDeclined(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	cb := forged(t, link)
	_, err := e.svc.CompleteConsent(bg, tenants.ConsentCallback{Error: "access_denied", State: cb.State})
	wantCode(t, err, apperr.Forbidden)
	if errors.Is(err, tenants.ErrConsentUnconfirmed) || e.auth.Grants("client_credentials") != 0 {
		t.Errorf("a refusal: err = %v, %d token requests; want the admin's refusal, Microsoft not asked", err, e.auth.Grants("client_credentials"))
	}
	e.unchanged(t, id)
	if res, err := e.svc.CompleteConsent(bg, e.consentAtMicrosoft(t, link)); err != nil || !res.Granted {
		t.Fatalf("consent after a refusal = %+v, %v", res, err)
	}
	if got, want := fmt.Sprint(e.trail(t, id)), trailOf(consentDenied, consentOK); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
}

// States that are not the tenant's current one write nothing, not even an audit entry: anyone could
// otherwise fill a tenant's trail by guessing its id. An expired link is refused the same way.
func TestConsentStatesThatAreNotOurs(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	cb := e.consentAtMicrosoft(t, link)
	state := cb.State
	flipped := state[:len(state)-1] + "A"
	if state[len(state)-1] == 'A' {
		flipped = state[:len(state)-1] + "B"
	}
	unknown := storetest.NewTenantID(t)
	for _, s := range []string{"", "no-dot", state + "x", flipped, string(id) + ".", string(id) + ".AAAA",
		string(unknown) + state[36:], "not-a-guid." + state[37:], strings.Repeat("a", 500)} {
		c := cb
		c.State = s
		_, err := e.svc.CompleteConsent(bg, c)
		if apperr.CodeOf(err) != apperr.Invalid || apperr.PublicMessage(err) != "this consent link is invalid, was used already or has expired" {
			t.Errorf("state %.40q: err = %v, want the one invalid-link answer", s, err)
		}
	}
	e.unchanged(t, id)
	if got, want := fmt.Sprint(e.trail(t, id)), trailOf(); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
	if _, err := e.env.Store.Tenants.Get(bg, unknown); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("a forged state created tenant %s: %v", unknown, err)
	}
	if e.auth.Grants("client_credentials") != 0 {
		t.Error("Microsoft was asked about a state that is not ours")
	}

	e.clock.Advance(72 * time.Hour)
	_, err := e.svc.CompleteConsent(bg, cb)
	wantCode(t, err, apperr.Invalid)
	e.unchanged(t, id)
}

// Of racing duplicates of one real redirect (a double click) exactly one activates; the others are
// replays.
func TestRacingConsentCallbacksActivateOnce(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	cb := e.consentAtMicrosoft(t, link)
	var wg sync.WaitGroup
	results := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			_, err := e.svc.CompleteConsent(bg, cb)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		if err == nil {
			ok++
		} else if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("losing callback err = %v, want Invalid", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d callbacks succeeded, want exactly 1", ok)
	}
	e.active(t, id)
}

// A run that died after using the state leaves the tenant pending with the link used; the operator's
// new link onboards it.
func TestNewLinkAfterARunThatDied(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t, 0)
	id, link := e.start(t)
	cb := e.consentAtMicrosoft(t, link)
	if _, err := e.env.Store.Tenants.Update(bg, id, func(tn *registry.Tenant) error { tn.ConsentedAt = e.clock.Now(); return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CompleteConsent(bg, cb)
	wantCode(t, err, apperr.Invalid)
	_, link = func() (core.TenantID, string) {
		ob, err := e.svc.StartOnboarding(bg, operator, id, tenants.OnboardingRequest{PurchasedLicenses: 5, HomeRegion: "westeurope"})
		if err != nil {
			t.Fatal(err)
		}
		return id, ob.ConsentURL
	}()
	if res, err := e.svc.CompleteConsent(bg, e.consentAtMicrosoft(t, link)); err != nil || !res.Granted {
		t.Fatalf("the new link = %+v, %v", res, err)
	}
	e.active(t, id)
}
