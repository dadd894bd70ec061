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
		t.ConsentedAt = time.Time{} // a new link, unused (an earlier one may have been used by a run that died)
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
// tenant and state; on failure error, error_description and state. Anyone holding the link can forge
// the success form, so none of it is believed: only the state (ours) and Microsoft's own answer count.
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

// ConsentProver asks Microsoft whether our app was granted a tenant (tenantgraph.Consent): an app-only
// token for the tenant and the app's service principal there. nil: yes. ErrNotConsented (errors.Is):
// Microsoft says no. ErrMicrosoftUnavailable: it could not be asked just now. Anything else: a failure
// of ours.
type ConsentProver interface {
	ProveConsent(ctx context.Context, tenant core.TenantID) error
}

// What a ConsentProver answers besides yes.
var (
	ErrNotConsented         = errors.New("microsoft does not confirm the consent")
	ErrMicrosoftUnavailable = errors.New("microsoft could not be asked about the consent")
)

// errBadConsent covers every forged, replayed, expired or mismatched callback alike, so the page tells an
// attacker nothing about which check failed.
var errBadConsent = apperr.New(apperr.Invalid, "this consent link is invalid, was used already or has expired", nil)

// ErrConsentUnconfirmed answers a callback that claims consent Microsoft does not confirm: forged, or
// early (a new service principal can take a while to replicate). Nothing changes and the link stays
// usable, so the admin can come back once Microsoft agrees.
var ErrConsentUnconfirmed = apperr.New(apperr.Forbidden, "Microsoft has not confirmed the consent", nil)

// errMicrosoftDown: the proof could not be had; the admin retries the same link.
var errMicrosoftDown = apperr.New(apperr.Unavailable, "Microsoft could not be reached to confirm the consent; use the same link again in a few minutes", nil)

// consentAskTimeout bounds one question to Microsoft (its own retries included); a timeout is an
// outage, not a "no".
const consentAskTimeout = 20 * time.Second

// consentActor: the callback carries no identity; the admin is known only as the tenant's admin.
func consentActor(invocation string) core.Actor {
	return core.Actor{ID: "tenant-admin", Kind: "user", InvocationID: invocation}
}

// consentState classifies the state a callback brings back against the tenant row.
type consentState int

const (
	stateForged consentState = iota // not this tenant's current state, or expired: nothing is written
	stateValid                      // the current state, unused, in time
	stateUsed                       // the current state, already used to onboard: a replay
)

func stateOf(t *registry.Tenant, hash []byte, now time.Time) consentState {
	if len(t.ConsentStateHash) != sha256.Size || subtle.ConstantTimeCompare(t.ConsentStateHash, hash) != 1 {
		return stateForged
	}
	if !t.ConsentedAt.IsZero() {
		return stateUsed
	}
	if t.State == registry.TenantPending && now.Before(t.ConsentExpiresAt) {
		return stateValid
	}
	return stateForged
}

// CompleteConsent handles the admin-consent redirect. The state must be the tenant's current one, the
// redirect's tenant must be that tenant, and Microsoft must confirm the consent (an app-only token for
// the tenant and our service principal there); only then is the state consumed, exactly once (a racing
// duplicate callback loses the ETag race), the tenant's data key created and the tenant activated.
//
// Once the state is known to be genuine every outcome goes to the tenant's audit trail: a refusal by the
// admin, a redirect Microsoft does not confirm, a wrong or missing tenant and a replay are "denied", an
// outage "failed". None of them changes the tenant; a refusal, an unconfirmed and a failed callback
// leave the link usable until it expires. A state that is not genuine writes nothing at all.
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
	outcome := func(err error) (ConsentResult, error) {
		return ConsentResult{Tenant: tenant}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), err)
	}
	// Reasons are constants: nothing from the request reaches the log (the state is a secret).
	refuse := func(reason string, err error) (ConsentResult, error) {
		s.log.WarnContext(ctx, "admin consent refused", "reason", reason)
		return outcome(err)
	}

	t, err := s.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return ConsentResult{}, errBadConsent // never write for a tenant we do not know
	}
	if err != nil {
		return ConsentResult{}, fmt.Errorf("read tenant: %w", err)
	}
	switch stateOf(&t, hash[:], now) {
	case stateForged:
		return ConsentResult{}, errBadConsent
	case stateUsed:
		if t.State == registry.TenantDeleting {
			return ConsentResult{}, errBadConsent // nothing may be written into a tenant being deleted
		}
		return refuse("state used already", errBadConsent)
	}
	// The state is genuine: from here on, outcomes go to the tenant's audit trail.
	if cb.Error != "" || !strings.EqualFold(cb.AdminConsent, "true") {
		return refuse("declined by the admin", errConsentRefused)
	}
	if cb.Tenant == "" {
		return refuse("no tenant in the redirect", errBadConsent)
	}
	if got, err := core.ParseTenantID(cb.Tenant); err != nil || got != tenant {
		// Consent was given (or claimed) in another directory than the one the link was made for.
		return refuse("another tenant in the redirect", errBadConsent)
	}
	if err := s.proveConsent(ctx, tenant); err != nil {
		switch {
		case errors.Is(err, ErrNotConsented):
			return refuse("not confirmed by microsoft", ErrConsentUnconfirmed)
		case errors.Is(err, ErrMicrosoftUnavailable), errors.Is(err, context.DeadlineExceeded):
			s.log.WarnContext(ctx, "admin consent unconfirmed: microsoft unavailable", "error", err)
			return outcome(apperr.New(apperr.Unavailable, errMicrosoftDown.Public, err))
		default:
			return outcome(fmt.Errorf("prove consent: %w", err))
		}
	}
	// Consume the state: of two racing callbacks only one passes the ETag check. ConsentedAt marks it
	// used; the hash stays, so that a replay is recognised as one.
	if _, err := s.st.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if stateOf(t, hash[:], now) != stateValid {
			return errBadConsent
		}
		t.ConsentedAt = now
		t.UpdatedAt = now
		return nil
	}); err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return refuse("state used already", err)
		}
		return ConsentResult{}, fmt.Errorf("consume consent state: %w", err)
	}
	// Only the winner gets here, so the key is created once and nothing was sealed before it exists.
	if err := s.keys.EnsureTenantKey(ctx, tenant); err != nil {
		return outcome(fmt.Errorf("create tenant key: %w", err))
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
		return outcome(fmt.Errorf("activate tenant: %w", err))
	}
	s.log.InfoContext(ctx, "tenant onboarded")
	return ConsentResult{Tenant: tenant, Granted: true}, s.audit(ctx, tenant, actor, "tenant.consent", "tenant", string(tenant), nil)
}

// proveConsent asks Microsoft, and asks again for a while when it says no: right after consent the new
// service principal can take seconds to replicate, and the token endpoint answers AADSTS700016 until it
// has (https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/issues/3706,
// https://github.com/mspnp/multitenant-saas-guidance/issues/127).
// A forged callback gets the same answer throughout and merely waits.
func (s *Service) proveConsent(ctx context.Context, tenant core.TenantID) error {
	if s.o.Consent == nil {
		return errors.New("no consent prover configured")
	}
	deadline := time.Now().Add(s.o.ConsentWait)
	for delay := time.Second; ; delay *= 2 {
		ask, cancel := context.WithTimeout(ctx, consentAskTimeout)
		err := s.o.Consent.ProveConsent(ask, tenant)
		cancel()
		left := time.Until(deadline)
		if !errors.Is(err, ErrNotConsented) || left <= 0 {
			return err
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// errConsentRefused is the outcome of an admin declining: audited as denied, shown as not granted.
var errConsentRefused = apperr.New(apperr.Forbidden, "consent was not granted", nil)
