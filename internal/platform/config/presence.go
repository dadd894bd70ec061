package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Presence-sync keys.
const (
	KeyAuthorityHost         = "CONNECTHUB_AUTHORITY_HOST"
	KeyAppClientCertName     = "CONNECTHUB_APP_CLIENT_CERT_NAME"
	KeyPublicBaseURL         = "CONNECTHUB_PUBLIC_BASE_URL"
	KeyOAuthRedirectURI      = "CONNECTHUB_OAUTH_REDIRECT_URI"
	KeyRingCentralBaseURL    = "CONNECTHUB_RINGCENTRAL_BASE_URL"
	KeyPresenceLifetime      = "CONNECTHUB_PRESENCE_SUBSCRIPTION_LIFETIME"
	KeyPresenceRenewMargin   = "CONNECTHUB_PRESENCE_RENEW_MARGIN"
	KeyPresenceDefaultMap    = "CONNECTHUB_PRESENCE_DEFAULT_MAPPING"
	KeyPBXMaxAttempts        = "CONNECTHUB_PBX_MAX_ATTEMPTS"
	KeyPBXRetryDelay         = "CONNECTHUB_PBX_RETRY_DELAY"
	DefaultAppClientCertName = "app-client-cert" // also secrets.AppClientCertName
)

// Presence is the presence-sync capability's configuration.
type Presence struct {
	// AuthorityHost is the Microsoft identity platform (sovereign clouds, tests): https, trailing slash.
	AuthorityHost string
	// AppClientCertName is the Key Vault secret holding the multi-tenant app's client certificate.
	AppClientCertName string
	// PublicBaseURL is where Graph and browsers reach the app (Traffic Manager name in Azure):
	// notificationUrl = PublicBaseURL + "/api/graph/notifications", lifecycle likewise. Empty (azure
	// mode without the setting) turns presence sync off.
	PublicBaseURL string
	// OAuthRedirectURI is the AuthCallback URL registered on the app for service-user sign-in.
	OAuthRedirectURI string
	// RingCentralBaseURL is the RingCentral platform API.
	RingCentralBaseURL string
	// SubscriptionLifetime is asked for each presence subscription (Graph allows at most 60 min).
	SubscriptionLifetime time.Duration
	// RenewMargin: RenewSubscriptions renews subscriptions expiring within it. With the 10-minute timer it
	// must leave room for one missed run.
	RenewMargin time.Duration
	// DefaultMapping overrides the built-in presence → PBX mapping for every tenant ("" = built-in);
	// syntax in presence.ParseMapping.
	DefaultMapping string
	// PBXMaxAttempts is how often a PBX push is tried before the message is parked (48: about 10.6 h).
	PBXMaxAttempts int
	// PBXRetryDelay is the first backoff between PBX attempts (doubling, capped at 15 min).
	PBXRetryDelay time.Duration
}

// Bounds of the presence settings.
const (
	DefaultPresenceLifetime    = 55 * time.Minute
	MaxPresenceLifetime        = 60 * time.Minute // Graph's limit for presence
	minPresenceLifetime        = 15 * time.Minute
	DefaultPresenceRenewMargin = 25 * time.Minute
	minPresenceRenewMargin     = 5 * time.Minute
	DefaultPBXMaxAttempts      = 48
	DefaultPBXRetryDelay       = 10 * time.Second
)

// presenceKeys are the keys Presence reads (listed in Keys).
var presenceKeys = []Key{
	{KeyAuthorityHost, false, "Microsoft identity platform host for service-user sign-in and app tokens (https)"},
	{KeyAppClientCertName, false, "secret name of the multi-tenant app's client certificate (app-only Graph calls)"},
	{KeyPublicBaseURL, false, "public base URL of the app: Graph's notification and lifecycle URLs and the OAuth redirect derive from it"},
	{KeyOAuthRedirectURI, false, "service-user sign-in redirect (AuthCallback); default <public base>/api/auth/callback"},
	{KeyRingCentralBaseURL, false, "RingCentral platform API base URL"},
	{KeyPresenceLifetime, false, "lifetime asked for presence subscriptions (at most 60m)"},
	{KeyPresenceRenewMargin, false, "renew presence subscriptions expiring within this margin"},
	{KeyPresenceDefaultMap, false, "default Teams presence to PBX state mapping overrides (Availability[/Activity]=State;...)"},
	{KeyPBXMaxAttempts, false, "PBX push attempts before the notification is parked (default 48: about 10.6 h of retries)"},
	{KeyPBXRetryDelay, false, "first backoff between PBX push attempts (doubles each attempt)"},
}

func loadPresence(get func(string) string, c *Config) []error {
	var errs []error
	p := Presence{
		AuthorityHost:      get(KeyAuthorityHost),
		AppClientCertName:  get(KeyAppClientCertName),
		PublicBaseURL:      strings.TrimRight(get(KeyPublicBaseURL), "/"),
		OAuthRedirectURI:   get(KeyOAuthRedirectURI),
		RingCentralBaseURL: strings.TrimRight(get(KeyRingCentralBaseURL), "/"),
		DefaultMapping:     get(KeyPresenceDefaultMap),
	}
	if p.AuthorityHost == "" {
		p.AuthorityHost = "https://login.microsoftonline.com/"
	}
	if !strings.HasSuffix(p.AuthorityHost, "/") {
		p.AuthorityHost += "/"
	}
	if u, err := url.Parse(p.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s: want an https URL (MSAL refuses anything else)", KeyAuthorityHost))
	}
	if p.AppClientCertName == "" {
		p.AppClientCertName = DefaultAppClientCertName
	}
	if p.RingCentralBaseURL == "" {
		p.RingCentralBaseURL = "https://platform.ringcentral.com"
	}
	if err := checkURL(KeyRingCentralBaseURL, p.RingCentralBaseURL); err != nil {
		errs = append(errs, err)
	}
	if p.PublicBaseURL == "" && c.Environment == Local {
		p.PublicBaseURL = "http://localhost:7071"
	}
	// Without a public URL the handler still starts (webhooks, other capabilities), but presence sync is
	// off: RenewSubscriptions fails visibly and ConnectServiceUser answers 503 until it is set.
	if p.PublicBaseURL != "" {
		if err := checkURL(KeyPublicBaseURL, p.PublicBaseURL); err != nil {
			errs = append(errs, err)
		} else if c.Environment == Azure && !strings.HasPrefix(p.PublicBaseURL, "https://") {
			errs = append(errs, fmt.Errorf("%s must be https in azure mode: Graph only posts to HTTPS", KeyPublicBaseURL))
		}
	}
	if p.OAuthRedirectURI == "" && p.PublicBaseURL != "" {
		p.OAuthRedirectURI = p.PublicBaseURL + "/api/auth/callback"
	}
	if p.OAuthRedirectURI != "" {
		if err := checkURL(KeyOAuthRedirectURI, p.OAuthRedirectURI); err != nil {
			errs = append(errs, err)
		}
	}

	var err error
	if p.SubscriptionLifetime, err = durationOr(get(KeyPresenceLifetime), DefaultPresenceLifetime); err != nil ||
		p.SubscriptionLifetime < minPresenceLifetime || p.SubscriptionLifetime > MaxPresenceLifetime {
		errs = append(errs, fmt.Errorf("%s: want a duration in [%s, %s], got %q", KeyPresenceLifetime, minPresenceLifetime, MaxPresenceLifetime, get(KeyPresenceLifetime)))
	}
	if p.RenewMargin, err = durationOr(get(KeyPresenceRenewMargin), DefaultPresenceRenewMargin); err != nil ||
		p.RenewMargin < minPresenceRenewMargin || p.RenewMargin >= p.SubscriptionLifetime {
		errs = append(errs, fmt.Errorf("%s: want a duration from %s to below the subscription lifetime, got %q", KeyPresenceRenewMargin, minPresenceRenewMargin, get(KeyPresenceRenewMargin)))
	}
	p.PBXMaxAttempts = DefaultPBXMaxAttempts
	if v := get(KeyPBXMaxAttempts); v != "" {
		if p.PBXMaxAttempts, err = strconv.Atoi(v); err != nil || p.PBXMaxAttempts < 1 || p.PBXMaxAttempts > 100 {
			errs = append(errs, fmt.Errorf("%s: want 1 to 100, got %q", KeyPBXMaxAttempts, v))
		}
	}
	if p.PBXRetryDelay, err = durationOr(get(KeyPBXRetryDelay), DefaultPBXRetryDelay); err != nil ||
		p.PBXRetryDelay < 100*time.Millisecond || p.PBXRetryDelay > 5*time.Minute {
		errs = append(errs, fmt.Errorf("%s: want a duration in [100ms, 5m], got %q", KeyPBXRetryDelay, get(KeyPBXRetryDelay)))
	}
	c.Presence = p
	return errs
}
