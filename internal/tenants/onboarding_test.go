package tenants

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
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

func TestOnboardedTenantCannotBeOnboardedAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := f.activeTenant(t, 3)
	_, err := f.svc.StartOnboarding(ctx, operator, id, OnboardingRequest{PurchasedLicenses: 1, HomeRegion: "westeurope"})
	wantCode(t, err, apperr.Conflict)
	if got := fmt.Sprint(f.auditTrail(t, id)); got != "[tenant.onboarding.start/denied/"+operator.ID+"]" {
		t.Errorf("audit = %s", got)
	}
	if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != registry.TenantActive || tn.PurchasedLicenses != 3 {
		t.Errorf("tenant changed: %+v", tn)
	}
}
