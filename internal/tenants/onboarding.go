package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// OnboardingRequest is what an operator knows when a customer signs up.
type OnboardingRequest struct {
	PurchasedLicenses int
	HomeRegion        string
}

// Onboarding is the link to send to the customer's admin.
type Onboarding struct {
	ConsentURL string
	ExpiresAt  time.Time
}

// errConsentDisabled: no redirect URI configured.
var errConsentDisabled = apperr.New(apperr.Unavailable, "onboarding is not configured", nil)

// StartOnboarding registers tenant as pending and returns the admin-consent link. The link carries a
// random state whose hash is stored on the tenant row: only a callback bringing that state back, before
// it expires, activates the tenant. Starting again while pending replaces the link (and the request's
// licenses and region); a tenant past pending cannot be onboarded again.
func (s *Service) StartOnboarding(ctx context.Context, a core.Actor, tenant core.TenantID, req OnboardingRequest) (Onboarding, error) {
	if s.o.RedirectURI == "" || s.o.AppID == "" {
		return Onboarding{}, errConsentDisabled
	}
	if tenant == registry.OperatorPartition {
		return Onboarding{}, apperr.New(apperr.Invalid, "tenant id must be a GUID", nil)
	}
	if req.PurchasedLicenses < 0 || req.PurchasedLicenses > MaxPurchasedLicenses {
		return Onboarding{}, apperr.New(apperr.Invalid, fmt.Sprintf("purchased licenses must be 0..%d", MaxPurchasedLicenses), nil)
	}
	region := strings.ToLower(strings.TrimSpace(req.HomeRegion))
	if !s.o.Regions[region] {
		return Onboarding{}, apperr.New(apperr.Invalid, "home region must be one of the EU regions", nil)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return Onboarding{}, fmt.Errorf("make consent state: %w", err)
	}
	// The tenant id travels in the state too: Microsoft's error redirect does not name the tenant.
	state := string(tenant) + "." + base64.RawURLEncoding.EncodeToString(secret)
	hash := sha256.Sum256([]byte(state))
	now := s.now()
	expires := now.Add(s.o.ConsentTTL)

	_, err := s.st.Tenants.UpdateOrCreate(ctx, tenant, func(t *registry.Tenant, exists bool) error {
		if exists && t.State == registry.TenantDeleting {
			return errDeleting
		}
		if exists && t.State != registry.TenantPending {
			return apperr.New(apperr.Conflict, "the tenant is onboarded already", nil)
		}
		if !exists {
			t.CreatedAt = now
			t.BookingWindowDays = s.o.BookingWindowDays
		}
		t.State = registry.TenantPending
		t.PurchasedLicenses = req.PurchasedLicenses
		t.HomeRegion = region
		t.ConsentStateHash = hash[:]
		t.ConsentExpiresAt = expires
		t.UpdatedAt = now
		return nil
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		// errDeleting is never audited (see audit).
		return Onboarding{}, s.audit(ctx, tenant, a, "tenant.onboarding.start", "tenant", string(tenant), err)
	}
	if err != nil {
		return Onboarding{}, fmt.Errorf("register pending tenant: %w", err)
	}
	if err := s.audit(ctx, tenant, a, "tenant.onboarding.start", "tenant", string(tenant), nil); err != nil {
		return Onboarding{}, err
	}
	q := url.Values{}
	q.Set("client_id", s.o.AppID)
	q.Set("scope", "https://graph.microsoft.com/.default")
	q.Set("redirect_uri", s.o.RedirectURI)
	q.Set("state", state)
	link := strings.TrimSuffix(s.o.LoginBaseURL, "/") + "/" + string(tenant) + "/v2.0/adminconsent?" + q.Encode()
	return Onboarding{ConsentURL: link, ExpiresAt: expires}, nil
}

// ConsentCallback is Microsoft's redirect after the admin-consent prompt: on success admin_consent=True,
// tenant and state; on failure error, error_description and state.
type ConsentCallback struct {
	AdminConsent string
	Tenant       string
	State        string
	Error        string
	InvocationID string
}

// ConsentResult tells the admin what happened (the page shows a fixed text per outcome).
type ConsentResult struct {
	Tenant  core.TenantID
	Granted bool
}

// errBadConsent covers every forged, replayed, expired or mismatched callback alike, so the page tells an
// attacker nothing about which check failed.
var errBadConsent = apperr.New(apperr.Invalid, "this consent link is invalid, was used already or has expired", nil)

// consentActor: the callback carries no identity; the admin is known only as the tenant's admin.
func consentActor(invocation string) core.Actor {
	return core.Actor{ID: "tenant-admin", Kind: "user", InvocationID: invocation}
}

// CompleteConsent handles the admin-consent redirect. A valid state is consumed exactly once (a racing
// duplicate callback loses the ETag race), then the tenant's data key is created and the tenant becomes
// active. A refusal by the admin is audited and leaves the link usable until it expires.
func (s *Service) CompleteConsent(ctx context.Context, cb ConsentCallback) (ConsentResult, error) {
	idPart, _, ok := strings.Cut(cb.State, ".")
	if !ok || len(cb.State) > 200 {
		return ConsentResult{}, errBadConsent
	}
	tenant, err := core.ParseCustomerTenant(idPart)
	if err != nil {
		return ConsentResult{}, errBadConsent
	}
	ctx = core.WithTenant(ctx, tenant) // not yet verified; only log lines read it until the state is checked
	hash := sha256.Sum256([]byte(cb.State))
	now := s.now()
	actor := consentActor(cb.InvocationID)

	check := func(t *registry.Tenant) error {
		if t.State != registry.TenantPending || len(t.ConsentStateHash) != sha256.Size ||
			subtle.ConstantTimeCompare(t.ConsentStateHash, hash[:]) != 1 || !now.Before(t.ConsentExpiresAt) {
			return errBadConsent
		}
		return nil
	}
	t, err := s.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return ConsentResult{}, errBadConsent // never write for a tenant we do not know
	}
	if err != nil {
		return ConsentResult{}, fmt.Errorf("read tenant: %w", err)
	}
	if err := check(&t); err != nil {
		return ConsentResult{}, err
	}
	// The state is now known to be genuine: from here on, outcomes go to the tenant's audit trail.
	if cb.Error != "" || !strings.EqualFold(cb.AdminConsent, "true") {
		return ConsentResult{Tenant: tenant}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), errConsentRefused)
	}
	if cb.Tenant != "" {
		if got, err := core.ParseTenantID(cb.Tenant); err != nil || got != tenant {
			// Consent was given in another directory than the one the link was made for.
			return ConsentResult{}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), errBadConsent)
		}
	}
	// Consume the state: of two racing callbacks only one passes the ETag check.
	if _, err := s.st.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if err := check(t); err != nil {
			return err
		}
		t.ConsentStateHash = nil
		t.UpdatedAt = now
		return nil
	}); err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return ConsentResult{}, err
		}
		return ConsentResult{}, fmt.Errorf("consume consent state: %w", err)
	}
	// Only the winner gets here, so the key is created once and nothing was sealed before it exists.
	if err := s.keys.EnsureTenantKey(ctx, tenant); err != nil {
		return ConsentResult{}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), fmt.Errorf("create tenant key: %w", err))
	}
	if _, err := s.st.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if t.State != registry.TenantPending {
			return apperr.New(apperr.Conflict, "the tenant changed during onboarding", nil)
		}
		t.State = registry.TenantActive
		t.ConsentedAt = now
		t.ConsentExpiresAt = time.Time{}
		t.UpdatedAt = now
		return nil
	}); err != nil {
		return ConsentResult{}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), fmt.Errorf("activate tenant: %w", err))
	}
	s.log.InfoContext(ctx, "tenant onboarded")
	return ConsentResult{Tenant: tenant, Granted: true}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), nil)
}

// errConsentRefused is the outcome of an admin declining: audited as denied, shown as not granted.
var errConsentRefused = apperr.New(apperr.Forbidden, "consent was not granted", nil)
