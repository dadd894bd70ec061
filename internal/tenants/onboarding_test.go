package tenants

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

var operator = core.Actor{ID: "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c", Kind: "user"}

// start onboards a fresh tenant id and returns it with the state from the consent link.
func (f *fixture) startOnboarding(t *testing.T) (core.TenantID, string, Onboarding) {
	t.Helper()
	id := storetest.NewTenantID(t)
	ob, err := f.svc.StartOnboarding(ctx, operator, id, OnboardingRequest{PurchasedLicenses: 25, HomeRegion: "WestEurope"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ob.ConsentURL)
	if err != nil {
		t.Fatal(err)
	}
	return id, u.Query().Get("state"), ob
}

func TestOnboardingLinkAndPendingTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id, state, ob := f.startOnboarding(t)

	u, _ := url.Parse(ob.ConsentURL)
	q := u.Query()
	checks := []struct{ name, got, want string }{
		{"host", u.Host, "login.microsoftonline.com"},
		{"path", u.Path, "/" + string(id) + "/v2.0/adminconsent"},
		{"client_id", q.Get("client_id"), f.svc.o.AppID},
		{"redirect_uri", q.Get("redirect_uri"), f.svc.o.RedirectURI},
		{"scope", q.Get("scope"), "https://graph.microsoft.com/.default"},
		{"state prefix", strings.SplitN(state, ".", 2)[0], string(id)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(state) < 36+1+43 {
		t.Errorf("state %d chars: want the tenant id and 256 random bits", len(state))
	}
	if !ob.ExpiresAt.Equal(start.Add(72 * time.Hour)) {
		t.Errorf("ExpiresAt = %v", ob.ExpiresAt)
	}
	tn, err := f.st.Tenants.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tn.State != registry.TenantPending || tn.PurchasedLicenses != 25 || tn.HomeRegion != "westeurope" ||
		tn.BookingWindowDays != 21 || len(tn.ConsentStateHash) != 32 || strings.Contains(fmt.Sprint(tn), state) {
		t.Errorf("pending tenant = %+v", tn)
	}
	// No data key before consent: nothing can be sealed for a tenant that has not consented.
	if _, err := f.env.Keys.Seal(ctx, id, "users", "x", []byte("x")); !errors.Is(err, tenantkey.ErrNoKey) {
		t.Errorf("Seal before consent: err = %v, want ErrNoKey", err)
	}

	// Starting again while pending issues a new link; the old state no longer opens it.
	f.clock.Advance(time.Second)
	_, state2, _ := func() (core.TenantID, string, Onboarding) {
		ob, err := f.svc.StartOnboarding(ctx, operator, id, OnboardingRequest{PurchasedLicenses: 30, HomeRegion: "northeurope"})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(ob.ConsentURL)
		return id, u.Query().Get("state"), ob
	}()
	if state2 == state {
		t.Fatal("restart reused the state")
	}
	_, err = f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: state})
	wantCode(t, err, apperr.Invalid)

	for _, tc := range []struct {
		name string
		req  OnboardingRequest
	}{
		{"non-EU region", OnboardingRequest{PurchasedLicenses: 1, HomeRegion: "eastus"}},
		{"negative licenses", OnboardingRequest{PurchasedLicenses: -1, HomeRegion: "westeurope"}},
	} {
		_, err := f.svc.StartOnboarding(ctx, operator, storetest.NewTenantID(t), tc.req)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", tc.name, err)
		}
	}
	if _, err := f.svc.StartOnboarding(ctx, operator, registry.OperatorPartition, OnboardingRequest{HomeRegion: "westeurope"}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("onboarding the operator partition: err = %v, want Invalid", err)
	}
}

func TestConsentCallback(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	t.Run("granted activates with a data key, once", func(t *testing.T) {
		id, state, _ := f.startOnboarding(t)
		f.clock.Advance(time.Second)
		res, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: strings.ToUpper(string(id)), State: state})
		if err != nil || !res.Granted || res.Tenant != id {
			t.Fatalf("CompleteConsent = %+v, %v", res, err)
		}
		tn, _ := f.st.Tenants.Get(ctx, id)
		if tn.State != registry.TenantActive || !tn.ConsentedAt.Equal(f.clock.Now()) || tn.ConsentStateHash != nil || !tn.ConsentExpiresAt.IsZero() {
			t.Errorf("tenant after consent = %+v", tn)
		}
		if err := f.env.Keys.CreateTenantKey(ctx, id); !errors.Is(err, tenantkey.ErrKeyExists) {
			t.Errorf("data key after consent: CreateTenantKey err = %v, want ErrKeyExists", err)
		}
		_, err = f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: state})
		wantCode(t, err, apperr.Invalid) // replay
		got := fmt.Sprint(f.auditTrail(t, id))
		if want := "[tenant.onboarding.start/success/" + operator.ID + " tenant.consent/success/tenant-admin]"; got != want {
			t.Errorf("audit = %s, want %s", got, want)
		}
	})

	t.Run("refused by the admin is audited, the link stays usable", func(t *testing.T) {
		id, state, _ := f.startOnboarding(t)
		f.clock.Advance(time.Second)
		_, err := f.svc.CompleteConsent(ctx, ConsentCallback{Error: "access_denied", State: state})
		wantCode(t, err, apperr.Forbidden)
		if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != registry.TenantPending {
			t.Errorf("state after refusal = %s, want pending", tn.State)
		}
		f.clock.Advance(time.Second)
		if res, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: state}); err != nil || !res.Granted {
			t.Errorf("consent after a refusal = %+v, %v", res, err)
		}
		got := fmt.Sprint(f.auditTrail(t, id))
		want := "[tenant.onboarding.start/success/" + operator.ID + " tenant.consent/denied/tenant-admin tenant.consent/success/tenant-admin]"
		if got != want {
			t.Errorf("audit = %s, want %s", got, want)
		}
	})

	t.Run("consent from another directory is refused", func(t *testing.T) {
		id, state, _ := f.startOnboarding(t)
		_, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(storetest.NewTenantID(t)), State: state})
		wantCode(t, err, apperr.Invalid)
		if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != registry.TenantPending {
			t.Errorf("state = %s, want pending", tn.State)
		}
	})

	t.Run("expired link", func(t *testing.T) {
		f := newFixture(t, nil)
		id, state, _ := f.startOnboarding(t)
		f.clock.Advance(72 * time.Hour)
		_, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: state})
		wantCode(t, err, apperr.Invalid)
	})

	t.Run("forged states write nothing", func(t *testing.T) {
		id, state, _ := f.startOnboarding(t)
		before := len(f.auditTrail(t, id))
		unknown := storetest.NewTenantID(t)
		flipped := state[:len(state)-1] + "A"
		if state[len(state)-1] == 'A' {
			flipped = state[:len(state)-1] + "B"
		}
		for _, forged := range []string{
			"", "no-dot", state + "x", flipped, string(id) + ".", string(id) + ".AAAA",
			string(unknown) + state[36:], "not-a-guid." + state[37:], strings.Repeat("a", 500),
		} {
			_, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: forged})
			if apperr.CodeOf(err) != apperr.Invalid || apperr.PublicMessage(err) != apperr.PublicMessage(errBadConsent) {
				t.Errorf("state %.40q: err = %v, want the one invalid-link answer", forged, err)
			}
		}
		if after := len(f.auditTrail(t, id)); after != before {
			t.Errorf("forged callbacks added %d audit entries", after-before)
		}
		if _, err := f.st.Tenants.Get(ctx, unknown); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("a forged state created tenant %s: %v", unknown, err)
		}
		if page, _ := audit.OpenLog(f.st.DB()).List(ctx, unknown, nil); len(page.Items) != 0 {
			t.Errorf("a forged state wrote %d audit rows for an unknown tenant", len(page.Items))
		}
	})

	t.Run("racing duplicate callbacks activate once", func(t *testing.T) {
		id, state, _ := f.startOnboarding(t)
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := f.svc.CompleteConsent(ctx, ConsentCallback{AdminConsent: "True", Tenant: string(id), State: state})
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
	})

	t.Run("an onboarded tenant cannot be onboarded again", func(t *testing.T) {
		id := f.activeTenant(t, 3)
		_, err := f.svc.StartOnboarding(ctx, operator, id, OnboardingRequest{PurchasedLicenses: 1, HomeRegion: "westeurope"})
		wantCode(t, err, apperr.Conflict)
		if got := fmt.Sprint(f.auditTrail(t, id)); got != "[tenant.onboarding.start/denied/"+operator.ID+"]" {
			t.Errorf("audit = %s", got)
		}
		if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != registry.TenantActive || tn.PurchasedLicenses != 3 {
			t.Errorf("tenant changed: %+v", tn)
		}
	})
}
