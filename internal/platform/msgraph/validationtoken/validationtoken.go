// Package validationtoken validates the validationTokens Microsoft Graph sends with rich change notifications:
// one JWT per app and tenant, proving the POST came from Graph for that tenant.
//
// Signing keys come from the Microsoft identity platform's OpenID configuration. They are cached and refreshed
// in the background; Validate never waits on the network, so a token signed by a key not yet known is rejected
// at once (with ErrUnknownKey, which also triggers a rate-limited refresh).
package validationtoken

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// GraphChangeTrackingAppID is the app id of "Microsoft Graph Change Tracking", the caller (appid/azp) of
	// every genuine validation token.
	GraphChangeTrackingAppID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
	// DefaultOpenIDConfigURL is the multi-tenant OpenID configuration of the Microsoft identity platform.
	DefaultOpenIDConfigURL = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"

	defaultRefreshInterval    = 12 * time.Hour
	defaultMinRefreshInterval = 5 * time.Minute
	defaultLeeway             = time.Minute
	maxRetryDelay             = 30 * time.Second
	fetchTimeout              = 30 * time.Second
	maxDocumentBytes          = 1 << 20
	// Graph's tokens are about 1.5 KB; anything far larger is not worth parsing.
	maxTokenBytes = 16 << 10
	minKeyBits    = 2048
)

var (
	// ErrInvalidToken means the token is not a valid Graph validation token for our app: bad signature,
	// algorithm, expiry, audience, issuer or caller. Items of its tenant must not be enqueued.
	ErrInvalidToken = errors.New("invalid validation token")
	// ErrUnknownKey means the token names a signing key not in the cache. A refresh has been requested; the
	// key may be new (Microsoft rotated), so a caller may answer 503 and let Graph retry.
	ErrUnknownKey = errors.New("validation token signed by an unknown key")
	// ErrKeysUnavailable means no signing keys have been loaded yet; nothing can be validated.
	ErrKeysUnavailable = errors.New("validation token signing keys not loaded")
)

// Config configures a Validator. Audience is required; zero values elsewhere take the defaults.
type Config struct {
	// Audience is our application (client) id: the aud of every token Graph mints for our subscriptions.
	Audience string
	// OpenIDConfigURL is where jwks_uri is read from; DefaultOpenIDConfigURL in production.
	OpenIDConfigURL string
	// HTTPClient fetches the configuration and keys; default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// RefreshInterval is the period of background refreshes; default 12 h.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches triggered by unknown key ids; default 5 min.
	// After a failed fetch the next attempt comes after this interval, at most 30 s.
	MinRefreshInterval time.Duration
	// Leeway tolerates clock skew on exp and nbf; default 1 min.
	Leeway time.Duration
	// Now is the clock for exp and nbf; default time.Now. Refresh scheduling uses real time.
	Now func() time.Time
	// Logger receives refresh outcomes (counts and URLs, never tokens); default slog.Default().
	Logger *slog.Logger
}

// Validator checks validation tokens against cached Microsoft identity platform keys. It is safe for
// concurrent use.
type Validator struct {
	cfg     Config
	parser  *jwt.Parser
	keys    atomic.Pointer[keySet]
	trigger chan struct{}
	started atomic.Bool

	fetchMu     sync.Mutex // serialises fetches and guards lastAttempt
	lastAttempt time.Time

	// onDeferredRefresh, if set (tests), is called when a triggered refresh waits for the rate limit.
	onDeferredRefresh func()

	verified verifiedTokens
}

// verifiedTokens remembers the validation tokens Validate accepted, by their SHA-256, so that a token
// Graph sends again costs a hash instead of JSON decoding and an RSA signature check. An entry answers
// only while the key set it was verified with is the current one (any refresh verifies again, so a
// retired key stops counting at once) and only before the token's exp (without the leeway: stricter
// than a fresh check). Everything else Validate checks is fixed by the token's bytes. Only accepted
// tokens are kept, so forged ones cannot fill it; at maxVerified it starts again.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	tenant string
	exp    time.Time
	set    *keySet
}

const maxVerified = 4096

func (c *verifiedTokens) get(sum [sha256.Size]byte, set *keySet, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sum]
	if !ok || e.set != set || !now.Before(e.exp) {
		return "", false
	}
	return e.tenant, true
}

func (c *verifiedTokens) put(sum [sha256.Size]byte, e verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerified {
		c.m = make(map[[sha256.Size]byte]verifiedToken)
	}
	c.m[sum] = e
}

type keySet struct {
	byKID map[string]signingKey
}

// signingKey is one key of the set with the issuer it may sign for, when the set names one.
type signingKey struct {
	pub    *rsa.PublicKey
	issuer string // templated ("https://login.microsoftonline.com/{tenantid}/v2.0") or ""
}

// New returns a Validator with no keys; call Start to load them and keep them fresh.
func New(cfg Config) (*Validator, error) {
	if cfg.Audience == "" {
		return nil, errors.New("new validation token validator: empty audience")
	}
	if cfg.OpenIDConfigURL == "" {
		cfg.OpenIDConfigURL = DefaultOpenIDConfigURL
	}
	if u, err := url.Parse(cfg.OpenIDConfigURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("new validation token validator: bad OpenID configuration URL %q", cfg.OpenIDConfigURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = defaultRefreshInterval
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = defaultMinRefreshInterval
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Validator{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Now),
			jwt.WithExpirationRequired(),
			jwt.WithAudience(cfg.Audience),
		),
		trigger: make(chan struct{}, 1),
	}
	return v, nil
}

// Start loads the keys once and then keeps refreshing them in a goroutine until ctx is done. It returns the
// error of the initial load; the goroutine runs (and retries) either way, so a caller may log the error and
// serve, with Validate returning ErrKeysUnavailable until a load succeeds. Start may be called once.
func (v *Validator) Start(ctx context.Context) error {
	if !v.started.CompareAndSwap(false, true) {
		return errors.New("start validation token keys: already started")
	}
	err := v.Refresh(ctx)
	go v.run(ctx, err)
	if err != nil {
		return fmt.Errorf("start validation token keys: %w", err)
	}
	return nil
}

func (v *Validator) run(ctx context.Context, lastErr error) {
	timer := time.NewTimer(v.nextDelay(lastErr))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-v.trigger:
			if wait := time.Until(v.lastFetchAttempt().Add(v.cfg.MinRefreshInterval)); wait > 0 {
				if v.onDeferredRefresh != nil {
					v.onDeferredRefresh()
				}
				wt := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					wt.Stop()
					return
				case <-wt.C:
				}
			}
		}
		err := v.Refresh(ctx)
		if err != nil {
			v.cfg.Logger.WarnContext(ctx, "validation token keys refresh failed", "error", err)
		}
		timer.Reset(v.nextDelay(err))
	}
}

func (v *Validator) nextDelay(err error) time.Duration {
	if err == nil {
		return v.cfg.RefreshInterval
	}
	return min(v.cfg.MinRefreshInterval, maxRetryDelay)
}

func (v *Validator) lastFetchAttempt() time.Time {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.lastAttempt
}

// requestRefresh asks the background goroutine for a refresh without blocking; requests coalesce.
func (v *Validator) requestRefresh() {
	select {
	case v.trigger <- struct{}{}:
	default:
	}
}

// Refresh fetches the OpenID configuration and its key set now and replaces the cached keys. On failure the
// previous keys stay in use.
func (v *Validator) Refresh(ctx context.Context) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()

	var oidc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.cfg.OpenIDConfigURL, &oidc); err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	jwksURL, err := url.Parse(oidc.JWKSURI)
	if err != nil || jwksURL.Host == "" {
		return fmt.Errorf("refresh signing keys: bad jwks_uri %q", oidc.JWKSURI)
	}
	// Keys fetched over plain HTTP from an HTTPS configuration could be swapped in transit.
	if jwksURL.Scheme != "https" && strings.HasPrefix(v.cfg.OpenIDConfigURL, "https:") {
		return fmt.Errorf("refresh signing keys: jwks_uri %q is not https", oidc.JWKSURI)
	}
	var doc jwks
	if err := v.getJSON(ctx, jwksURL.String(), &doc); err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	set, skipped := doc.rsaKeys()
	if len(set.byKID) == 0 {
		return fmt.Errorf("refresh signing keys: no usable RSA signing key in %s (%d skipped)", jwksURL, skipped)
	}
	v.keys.Store(set)
	v.cfg.Logger.InfoContext(ctx, "validation token keys refreshed", "keys", len(set.byKID), "skipped", skipped)
	return nil
}

func (v *Validator) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return fmt.Errorf("get %s: document larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("get %s: decode: %w", u, err)
	}
	return nil
}

type jwks struct {
	Keys []struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Kid string `json:"kid"`
		// Issuer, when present, limits the key to tokens of that (templated) issuer: Microsoft's key
		// sets carry it per key (Microsoft.IdentityModel's AadIssuerValidator checks it).
		Issuer string `json:"issuer"`
		N      string `json:"n"`
		E      string `json:"e"`
	} `json:"keys"`
}

// rsaKeys keeps the RSA signing keys of at least 2048 bits and counts the entries it skipped, so that one odd
// entry in Microsoft's set cannot make the whole refresh fail.
func (d jwks) rsaKeys() (*keySet, int) {
	set := &keySet{byKID: make(map[string]signingKey, len(d.Keys))}
	skipped := 0
	for _, k := range d.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			skipped++
			continue
		}
		n, errN := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
		e, errE := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			skipped++
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minKeyBits || pub.E < 3 || pub.E%2 == 0 {
			skipped++
			continue
		}
		set.byKID[k.Kid] = signingKey{pub: pub, issuer: k.Issuer}
	}
	return set, skipped
}

type claims struct {
	jwt.RegisteredClaims
	TenantID string `json:"tid"`
	AppID    string `json:"appid"` // caller in v1 tokens
	AZP      string `json:"azp"`   // caller in v2 tokens
}

// Validate checks one validation token and returns its tenant id (the tid claim, as written in the token).
// Errors wrap ErrInvalidToken, ErrUnknownKey or ErrKeysUnavailable.
func (v *Validator) Validate(token string) (string, error) {
	set := v.keys.Load()
	var sum [sha256.Size]byte
	if set != nil && len(token) <= maxTokenBytes {
		sum = sha256.Sum256([]byte(token))
		if tid, ok := v.verified.get(sum, set, v.cfg.Now()); ok {
			return tid, nil
		}
	}
	var c claims
	if err := v.verify(v.parser, token, &c); err != nil {
		return "", err
	}
	caller, callerClaim := c.AZP, "azp"
	if c.Issuer == "https://sts.windows.net/"+c.TenantID+"/" {
		caller, callerClaim = c.AppID, "appid"
	}
	if caller != GraphChangeTrackingAppID {
		return "", fmt.Errorf("validate token: %w: %s is not Microsoft Graph Change Tracking", ErrInvalidToken, callerClaim)
	}
	// set is the key set loaded before verify loaded its own: if a refresh came between, the entry
	// names the older set and is simply never used.
	if set != nil && c.ExpiresAt != nil {
		v.verified.put(sum, verifiedToken{tenant: c.TenantID, exp: c.ExpiresAt.Time, set: set})
	}
	return c.TenantID, nil
}

// tenantClaims are claims that name the token's tenant.
type tenantClaims interface {
	jwt.Claims
	tenant() string
}

func (c *claims) tenant() string { return c.TenantID }

// verify checks token with parser against the cached keys: signature (RS256 only, a key we know),
// exp/nbf with leeway, the parser's audience, and an issuer that is exactly the v1 or v2 issuer of the
// token's own tid, signed by a key that may sign for it. It fills c.
func (v *Validator) verify(parser *jwt.Parser, token string, c tenantClaims) error {
	if len(token) > maxTokenBytes {
		return fmt.Errorf("validate token: %w: %d bytes", ErrInvalidToken, len(token))
	}
	set := v.keys.Load()
	if set == nil {
		v.requestRefresh()
		return fmt.Errorf("validate token: %w", ErrKeysUnavailable)
	}
	var keyIssuer string
	_, err := parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already limits alg to RS256; checking the method type as well keeps an RSA public
		// key from ever reaching an HMAC verifier.
		if _, ok := t.Method.(*jwt.SigningMethodRSA); !ok {
			return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := set.byKID[kid]
		if !ok {
			v.requestRefresh()
			return nil, ErrUnknownKey
		}
		keyIssuer = key.issuer
		return key.pub, nil
	})
	if errors.Is(err, ErrUnknownKey) {
		return fmt.Errorf("validate token: %w", ErrUnknownKey)
	}
	if err != nil {
		return fmt.Errorf("validate token: %w: %w", ErrInvalidToken, err)
	}
	tenant := c.tenant()
	if tenant == "" {
		return fmt.Errorf("validate token: %w: no tid claim", ErrInvalidToken)
	}
	issuer, _ := c.GetIssuer()
	if issuer != "https://sts.windows.net/"+tenant+"/" && issuer != "https://login.microsoftonline.com/"+tenant+"/v2.0" {
		return fmt.Errorf("validate token: %w: issuer is not the v1 or v2 issuer of the token's tenant", ErrInvalidToken)
	}
	if !keyMaySign(keyIssuer, issuer, tenant) {
		return fmt.Errorf("validate token: %w: the signing key is not the issuer's", ErrInvalidToken)
	}
	return nil
}

// AccessClaims are what an access token for our own API says about its caller.
type AccessClaims struct {
	TenantID string   // tid: the caller's tenant, as written in the token
	ObjectID string   // oid: the user, or the calling app's service principal
	AppID    string   // the client the token was issued to (appid in v1, azp in v2)
	IDType   string   // idtyp: "app" for app-only tokens, "user" (optional claim; may be absent)
	Scopes   string   // scp: the delegated scopes; absent from app-only tokens
	Roles    []string // app roles assigned to the user or app
	WIDs     []string // directory role template ids of the user
	Version  string   // ver: "1.0" or "2.0"
}

type accessClaims struct {
	jwt.RegisteredClaims
	TenantID string   `json:"tid"`
	OID      string   `json:"oid"`
	AppID    string   `json:"appid"`
	AZP      string   `json:"azp"`
	IDType   string   `json:"idtyp"`
	Scopes   string   `json:"scp"`
	Roles    []string `json:"roles"`
	WIDs     []string `json:"wids"`
	Version  string   `json:"ver"`
}

func (c *accessClaims) tenant() string { return c.TenantID }

// VerifyAccessToken checks an access token that the Microsoft identity platform issued for our API:
// everything Validate checks of the key, times and issuer, an audience among audiences (the app's
// client id, or its application id URI "api://<client id>"), and an oid. It does not decide what the
// caller may do.
func (v *Validator) VerifyAccessToken(token string, audiences ...string) (AccessClaims, error) {
	if len(audiences) == 0 {
		return AccessClaims{}, errors.New("verify access token: no audience")
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(audiences...),
	)
	var c accessClaims
	if err := v.verify(parser, token, &c); err != nil {
		return AccessClaims{}, err
	}
	if c.OID == "" {
		return AccessClaims{}, fmt.Errorf("validate token: %w: no oid claim", ErrInvalidToken)
	}
	app := c.AZP
	if c.Version == "1.0" || (app == "" && c.AppID != "") {
		app = c.AppID
	}
	return AccessClaims{TenantID: c.TenantID, ObjectID: c.OID, AppID: app, IDType: c.IDType, Scopes: c.Scopes,
		Roles: c.Roles, WIDs: c.WIDs, Version: c.Version}, nil
}

// keyMaySign reports whether a key whose set names keyIssuer may sign a token of issuer in tenant:
// substitute the token's tid into the template, then compare exactly. The v1 and v2 issuers of one
// tenant are one authority signing with the same keys (the v2.0 key set serves both token versions).
func keyMaySign(keyIssuer, issuer, tenant string) bool {
	if keyIssuer == "" {
		return true
	}
	want := strings.ReplaceAll(keyIssuer, "{tenantid}", tenant)
	if issuer == want {
		return true
	}
	return want == "https://login.microsoftonline.com/"+tenant+"/v2.0" && issuer == "https://sts.windows.net/"+tenant+"/"
}

// Ready fails with ErrKeysUnavailable, as Validate would, while the signing keys have not been fetched
// (and asks for them); it verifies nothing and costs nothing, so a caller can answer "retry later" before
// it decides whether a POST's tokens need verifying at all.
func (v *Validator) Ready() error {
	if v.keys.Load() == nil {
		v.requestRefresh()
		return fmt.Errorf("validate token: %w", ErrKeysUnavailable)
	}
	return nil
}

// ValidateAll validates every token of one POST and returns the tenants with at least one valid token. A POST
// may also carry tokens of other apps sharing the notification URL; those fail on audience and are reported
// in errs (joined, with their index) without affecting the tenants that validated. validTenants is never nil.
func (v *Validator) ValidateAll(tokens []string) (validTenants map[string]bool, errs error) {
	validTenants = make(map[string]bool, len(tokens))
	seen := make(map[string]bool, len(tokens))
	var all []error
	for i, token := range tokens {
		if seen[token] {
			continue
		}
		seen[token] = true
		tid, err := v.Validate(token)
		if err != nil {
			all = append(all, fmt.Errorf("validation token %d: %w", i, err))
			continue
		}
		validTenants[tid] = true
	}
	return validTenants, errors.Join(all...)
}
