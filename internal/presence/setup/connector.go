package setup

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
)

// ConnectorInput is a connector configuration as an admin sends it. RingCentral takes ClientID,
// ClientSecret and JWT; webhook takes URL and Secret; fields of the other kind must stay empty.
type ConnectorInput struct {
	Kind         string
	ClientID     string
	ClientSecret string
	JWT          string
	URL          string
	Secret       string
	// Direction (teams-to-pbx, pbx-to-teams, both) and CallPresence (the Teams pair a PBX call sets:
	// Busy/InACall or DoNotDisturb/Presenting) are optional: empty keeps what is set (the defaults
	// teams-to-pbx and Busy/InACall at first), so replacing a credential does not change them.
	Direction    string
	CallPresence string
}

// ConnectorView is what an admin sees of a tenant's connector: never the credential.
type ConnectorView struct {
	Kind         string // "" when none is configured
	ClientID     string // ringcentral
	Endpoint     string // webhook: scheme and host of the URL only (a path may carry a token)
	ConfiguredAt time.Time
	ConfiguredBy string
	Direction    string // as in effect (presence.ParseSyncSettings)
	CallPresence string
}

// settings is the non-secret half of a configuration, kept in Tenant.PBXSettings; Direction and
// CallPresence are presence.SyncSettings, read from the same JSON by the sync.
type settings struct {
	ClientID     string `json:"clientId,omitempty"`
	Endpoint     string `json:"endpoint,omitempty"`
	Direction    string `json:"direction,omitempty"`
	CallPresence string `json:"callPresence,omitempty"`
}

// Limits of the credential fields: generous for real values, small enough that nothing else fits.
const (
	minWebhookSecret = 32 // as the webhook connector requires
	maxSecret        = 512
	maxJWT           = 8 << 10
	maxURL           = 2048
)

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

func invalid(msg string) error { return apperr.New(apperr.Invalid, msg, nil) }

// validate checks the input and returns the credential to seal and the settings to show.
func (s *Service) validate(in ConnectorInput) (any, settings, error) {
	switch in.Kind {
	case ringcentral.Kind:
		if in.URL != "" || in.Secret != "" {
			return nil, settings{}, invalid("url and secret belong to kind webhook; RingCentral takes clientId, clientSecret and jwt")
		}
		switch {
		case in.ClientID == "":
			return nil, settings{}, invalid("clientId is required: the client id of your RingCentral app")
		case !clientIDRE.MatchString(in.ClientID):
			return nil, settings{}, invalid("clientId must be the RingCentral app's client id (8 to 128 letters, digits, - or _)")
		case in.ClientSecret == "":
			return nil, settings{}, invalid("clientSecret is required: the client secret of your RingCentral app")
		case len(in.ClientSecret) > maxSecret || !printable(in.ClientSecret):
			return nil, settings{}, invalid("clientSecret must be at most 512 printable characters without spaces")
		case in.JWT == "":
			return nil, settings{}, invalid("jwt is required: the JWT credential created for the app in RingCentral's developer console")
		}
		if err := checkJWT(in.JWT, s.o.Now()); err != nil {
			return nil, settings{}, err
		}
		return ringcentral.Credential{Kind: ringcentral.Kind, ClientID: in.ClientID, ClientSecret: in.ClientSecret, JWT: in.JWT},
			settings{ClientID: in.ClientID}, nil
	case webhook.Kind:
		if in.ClientID != "" || in.ClientSecret != "" || in.JWT != "" {
			return nil, settings{}, invalid("clientId, clientSecret and jwt belong to kind ringcentral; webhook takes url and secret")
		}
		if in.URL == "" {
			return nil, settings{}, invalid("url is required: the HTTPS endpoint that receives presence events")
		}
		u, err := url.Parse(in.URL)
		switch {
		case err != nil || len(in.URL) > maxURL || u.Host == "" || u.Opaque != "":
			return nil, settings{}, invalid("url must be an absolute URL of at most 2048 characters")
		case u.Scheme != "https" && !(s.o.AllowHTTP && u.Scheme == "http"):
			return nil, settings{}, invalid("url must use https")
		case u.User != nil:
			return nil, settings{}, invalid("url must not carry a user name or password; the secret signs every event")
		case u.Fragment != "":
			return nil, settings{}, invalid("url must not have a fragment")
		case !s.o.AllowHTTP && internalHost(u.Hostname()):
			// The connection test would otherwise let an admin probe our own network by status code.
			return nil, settings{}, invalid("url must name a public host, not localhost or a private, loopback or link-local address")
		case len(in.Secret) < minWebhookSecret:
			return nil, settings{}, invalid("secret must be at least 32 characters (e.g. openssl rand -hex 32)")
		case len(in.Secret) > maxSecret || !printable(in.Secret):
			return nil, settings{}, invalid("secret must be at most 512 printable characters without spaces")
		}
		return webhook.Credential{Kind: webhook.Kind, URL: in.URL, Secret: in.Secret},
			settings{Endpoint: u.Scheme + "://" + u.Host}, nil
	case "":
		return nil, settings{}, invalid("kind is required: ringcentral or webhook")
	}
	return nil, settings{}, invalid("kind must be ringcentral or webhook")
}

// syncSettings validates the direction and the call pair; empty keeps the tenant's current choice.
// PBX → Teams works with both kinds: RingCentral through its webhook subscriptions, the webhook
// connector through signed events its PBX posts to /api/pbx/{tenant}/webhook.
func syncSettings(in ConnectorInput, t registry.Tenant) (direction, call string, err error) {
	cur := presence.ParseSyncSettings(t.PBXSettings)
	direction, call = cmp.Or(in.Direction, cur.Direction), cmp.Or(in.CallPresence, cur.CallPresence)
	switch {
	case !presence.ValidDirection(direction):
		return "", "", invalid("direction must be teams-to-pbx, pbx-to-teams or both")
	case !presence.ValidCallPresence(call):
		return "", "", invalid("callPresence must be Busy/InACall or DoNotDisturb/Presenting (the pairs Teams lets an app set for a call)")
	}
	return direction, call, nil
}

// internalHost reports whether host is localhost or an IP literal that is not publicly routable. Names
// are not resolved here: DNS can change after the check, so the network's egress rules stay the real
// guard; this refuses the obvious.
func internalHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".internal") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast()
}

func printable(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// checkJWT checks the shape of a RingCentral JWT credential (three base64url parts, a JSON header with
// an algorithm) and, when it says so, that it has not expired: a pasted fragment or an old credential is
// refused here with a clear message rather than later by RingCentral. The signature is RingCentral's to
// check.
func checkJWT(jwt string, now time.Time) error {
	bad := invalid("jwt must be a JWT: three base64url parts separated by dots, as RingCentral's developer console shows it")
	if len(jwt) > maxJWT {
		return bad
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return bad
	}
	var raw [2][]byte
	for i := range raw {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil {
			return bad
		}
		raw[i] = b
	}
	if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "=")); err != nil {
		return bad
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(raw[0], &header) != nil || header.Alg == "" || json.Unmarshal(raw[1], &claims) != nil {
		return bad
	}
	if claims.Exp != nil {
		exp, err := claims.Exp.Int64()
		if err != nil {
			return bad
		}
		if time.Unix(exp, 0).Before(now) {
			return invalid("jwt expired on " + time.Unix(exp, 0).UTC().Format(time.DateOnly) + "; create a new JWT credential in RingCentral's developer console")
		}
	}
	return nil
}

// SetConnector validates and stores the tenant's connector: the credential sealed into the secret
// store, the kind and non-secret settings on the tenant row. It does not call the PBX (TestConnector
// does), so a PBX that is down cannot block the set-up.
func (s *Service) SetConnector(ctx context.Context, a core.Actor, tenant core.TenantID, in ConnectorInput) (ConnectorView, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return ConnectorView{}, err
	}
	if err := writable(t); err != nil {
		if errors.Is(err, errDeleting) {
			return ConnectorView{}, err
		}
		return ConnectorView{}, s.audit(ctx, tenant, a, "connector.set", "connector", in.Kind, err)
	}
	cred, set, err := s.validate(in)
	if err == nil {
		set.Direction, set.CallPresence, err = syncSettings(in, t)
	}
	if err != nil {
		kind := in.Kind
		if kind != ringcentral.Kind && kind != webhook.Kind {
			kind = "invalid" // never write what a client made up into the audit trail
		}
		return ConnectorView{}, s.audit(ctx, tenant, a, "connector.set", "connector", kind, err)
	}
	if err := connector.SaveCredential(ctx, s.o.Secrets, s.o.Sealer, tenant, cred); err != nil {
		return ConnectorView{}, s.audit(ctx, tenant, a, "connector.set", "connector", in.Kind,
			apperr.New(apperr.Unavailable, "the secret store is unavailable; retry", err))
	}
	settingsJSON, _ := json.Marshal(set)
	now := s.o.Now()
	t, err = s.o.Store.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if err := writable(*t); err != nil {
			return err
		}
		t.PBXKind, t.PBXSettings, t.PBXConfiguredAt, t.PBXConfiguredBy = in.Kind, string(settingsJSON), now, a.ID
		t.UpdatedAt = now
		return nil
	})
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			err = apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("update tenant: %w", err))
		}
		if errors.Is(err, errDeleting) {
			return ConnectorView{}, err
		}
		return ConnectorView{}, s.audit(ctx, tenant, a, "connector.set", "connector", in.Kind, err)
	}
	s.forget(tenant)
	if err := s.audit(ctx, tenant, a, "connector.set", "connector", in.Kind, nil); err != nil {
		return ConnectorView{}, err
	}
	s.changed(ctx, tenant)
	return view(t), nil
}

func view(t registry.Tenant) ConnectorView {
	if t.PBXKind == "" {
		return ConnectorView{}
	}
	var set settings
	_ = json.Unmarshal([]byte(t.PBXSettings), &set)
	sync := presence.ParseSyncSettings(t.PBXSettings)
	return ConnectorView{Kind: t.PBXKind, ClientID: set.ClientID, Endpoint: set.Endpoint,
		ConfiguredAt: t.PBXConfiguredAt, ConfiguredBy: t.PBXConfiguredBy, Direction: sync.Direction, CallPresence: sync.CallPresence}
}

// GetConnector shows the tenant's connector (Kind "" when none is configured).
func (s *Service) GetConnector(ctx context.Context, tenant core.TenantID) (ConnectorView, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return ConnectorView{}, err
	}
	return view(t), nil
}

// DeleteConnector stops pushes (the kind is cleared first) and deletes the credential. Deleting what is
// not configured succeeds: the admin wants it gone and it is.
func (s *Service) DeleteConnector(ctx context.Context, a core.Actor, tenant core.TenantID) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if t.State == registry.TenantDeleting {
		return errDeleting // the retention job deletes the credential with everything else
	}
	kind := t.PBXKind
	_, err = s.o.Store.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if t.State == registry.TenantDeleting {
			return errDeleting
		}
		t.PBXKind, t.PBXSettings, t.PBXConfiguredAt, t.PBXConfiguredBy = "", "", time.Time{}, ""
		t.UpdatedAt = s.o.Now()
		return nil
	})
	if errors.Is(err, errDeleting) {
		return err
	}
	if err != nil {
		return s.audit(ctx, tenant, a, "connector.delete", "connector", kind,
			apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("update tenant: %w", err)))
	}
	if err := s.o.Secrets.Delete(ctx, secrets.PBXCredentialName(tenant)); err != nil {
		return s.audit(ctx, tenant, a, "connector.delete", "connector", kind,
			apperr.New(apperr.Unavailable, "the connector is off but its credential could not be deleted; retry", err))
	}
	s.forget(tenant)
	if err := s.audit(ctx, tenant, a, "connector.delete", "connector", kind, nil); err != nil {
		return err
	}
	s.changed(ctx, tenant)
	return nil
}

// changed lets the sync follow a new connector or direction at once (the PBX → Teams subscription is
// made or deleted); a failure only logs, since the next RenewSubscriptions run does the same.
func (s *Service) changed(ctx context.Context, tenant core.TenantID) {
	if s.o.Changed == nil {
		return
	}
	if err := s.o.Changed(ctx, tenant); err != nil {
		s.o.Log.WarnContext(ctx, "presence sync did not follow the connector change yet", "error", err)
	}
}

// TestResult is the outcome of a connection test: OK, or a stable code and a sentence that say what
// failed (connector.TestFailure).
type TestResult struct {
	Kind     string
	OK       bool
	Code     string
	Message  string
	TestedAt time.Time
}

// TestConnector checks the stored credential against the PBX the way pushes use it. A failed check is
// an answer (OK false), not an error; the audit trail records it as failed.
func (s *Service) TestConnector(ctx context.Context, a core.Actor, tenant core.TenantID) (TestResult, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return TestResult{}, err
	}
	if t.State == registry.TenantDeleting {
		return TestResult{}, errDeleting
	}
	if t.PBXKind == "" {
		return TestResult{}, apperr.New(apperr.Conflict, "no connector is configured; PUT one first", nil)
	}
	c, ok := s.o.Connectors[t.PBXKind]
	if !ok {
		return TestResult{}, apperr.New(apperr.Unavailable, "this connector kind is not available in this deployment", nil)
	}
	res := TestResult{Kind: t.PBXKind, TestedAt: s.o.Now(), OK: true}
	err = c.Test(ctx, tenant)
	var f *connector.TestFailure
	switch {
	case err == nil:
	case errors.As(err, &f):
		res.OK, res.Code, res.Message = false, f.Code, f.Message
	case errors.Is(err, connector.ErrNotConfigured):
		res.OK, res.Code, res.Message = false, "connector_credential_missing", "the stored credential is missing or unreadable; PUT the connector again"
	default:
		return TestResult{}, apperr.New(apperr.Unavailable, "the test could not run; retry", err)
	}
	outcome := audit.Success
	if !res.OK {
		outcome = audit.Failed
		s.o.Log.InfoContext(ctx, "connector test failed", "kind", t.PBXKind, "code", res.Code)
	}
	if err := s.trail().Write(ctx, tenant, a, "connector.test", "connector", t.PBXKind, outcome); err != nil {
		return TestResult{}, err
	}
	return res, nil
}
