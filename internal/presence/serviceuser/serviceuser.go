// Package serviceuser connects and keeps the delegated "service users" of a tenant: the accounts through
// which ConnectHub holds presence subscriptions (Graph offers presence subscriptions with delegated
// permissions only, one subscription of at most 650 users per account).
//
// A tenant admin connects an account with the OAuth 2.0 authorization-code flow (PKCE): Begin builds the
// authorize URL and a state that is sealed with the tenant's data key (so it carries the PKCE verifier
// without showing it, and cannot be forged or moved to another tenant) plus a nonce the browser keeps in
// a cookie; Complete checks both, redeems the code with MSAL for Go (confidential client, the app's
// certificate) and keeps the account.
//
// Tokens never touch Table Storage: MSAL's token cache of each account is serialised, sealed with the
// tenant key (so crypto-shredding the tenant also kills its tokens) and stored in Key Vault under
// secrets.ServiceUserTokenName. The serviceusers table holds only the account id, its sealed UPN and its
// state. Credential returns an azcore.TokenCredential for Graph calls: MSAL serves cached access tokens
// and refreshes them before they expire; when the identity platform refuses the refresh (revoked,
// expired, password reset) the account is marked "reconsent" and the admin must connect it again.
package serviceuser

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// ErrReconsent means the account's tokens can no longer be refreshed: an admin must connect it again.
var ErrReconsent = errors.New("service user needs re-consent")

// Users is the serviceusers table.
type Users interface {
	Get(ctx context.Context, tenant core.TenantID, id string) (ServiceUser, error)
	UpdateOrCreate(ctx context.Context, tenant core.TenantID, id string, fn func(*ServiceUser, bool) error) (ServiceUser, error)
	Update(ctx context.Context, tenant core.TenantID, id string, fn func(*ServiceUser) error) (ServiceUser, error)
}

// Config configures the Manager.
type Config struct {
	ClientID      string        // our multi-tenant application
	AuthorityHost string        // https://login.microsoftonline.com/ or a sovereign cloud / test authority
	RedirectURI   string        // the AuthCallback URL, as registered on the application
	GraphBaseURL  string        // scopes are asked for this resource (https://graph.microsoft.com)
	CertName      string        // secret holding the app's client certificate (secrets.AppClientCertName)
	HTTPClient    *http.Client  // reaches the authority; nil is the default
	StateTTL      time.Duration // how long a sign-in may take (default 15 min)
	Now           func() time.Time
	Log           *slog.Logger
	// Tenants, when set, lets only registered, active tenants connect service users.
	Tenants Tenants
}

// Tenants reads a tenant's registry row (registry.TenantRegistry).
type Tenants interface {
	Get(ctx context.Context, tenant core.TenantID) (registry.Tenant, error)
}

// Manager runs the sign-in flow and hands out credentials of connected accounts.
type Manager struct {
	cfg     Config
	secrets secrets.Store
	sealer  tables.Sealer
	users   Users

	credMu     sync.Mutex
	cred       confidential.Credential
	credLoaded time.Time

	clientsMu sync.Mutex
	clients   map[string]*account
}

// New builds a Manager. sealer is the tenant key ring (tenantkey.Keyring).
func New(cfg Config, sec secrets.Store, sealer tables.Sealer, users Users) (*Manager, error) {
	if cfg.ClientID == "" || cfg.AuthorityHost == "" || cfg.CertName == "" {
		return nil, errors.New("service users: client id, authority and certificate name are required")
	}
	if !strings.HasSuffix(cfg.AuthorityHost, "/") {
		cfg.AuthorityHost += "/"
	}
	if cfg.GraphBaseURL == "" {
		cfg.GraphBaseURL = "https://graph.microsoft.com"
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, secrets: sec, sealer: sealer, users: users, clients: map[string]*account{}}, nil
}

// resource is Graph's resource URI ("https://graph.microsoft.com"): scheme and host of the base URL, the
// same resource kiota asks for.
func (m *Manager) resource() string {
	u, err := url.Parse(m.cfg.GraphBaseURL)
	if err != nil || u.Host == "" {
		return strings.TrimRight(m.cfg.GraphBaseURL, "/")
	}
	return u.Scheme + "://" + u.Host
}

// scopes are the resource scopes a service user's tokens are asked for: presence of everyone (read).
// Only these go to MSAL's token calls: MSAL adds openid, offline_access and profile to the request
// itself, and counts every scope it was given that the answer's scope does not list as declined — and
// Entra ID never lists offline_access and need not list openid or profile (MSAL Go issue #416). For the
// same reason a refresh asks for these explicit scopes, never "<resource>/.default": the answer lists
// the consented permissions, not ".default" (Learn, scopes-oidc "The .default scope").
func (m *Manager) scopes() []string {
	out := make([]string, len(ResourceScopes))
	for i, s := range ResourceScopes {
		out[i] = m.resource() + "/" + s
	}
	return out
}

// ResourceScopes and SignInScopes are the delegated permissions a service user's sign-in asks for
// (appreg lists them for the app registration, and a test holds the two lists together).
var (
	ResourceScopes = []string{"Presence.Read.All"}
	SignInScopes   = []string{"offline_access", "openid", "profile"}
)

// consentScopes are what the admin's browser asks the authorize endpoint for: the resource scopes plus
// offline access for the refresh token and the sign-in itself (to learn which account it is).
// confidential.Client.AuthCodeURL, unlike the token calls, adds none of them.
func (m *Manager) consentScopes() []string {
	return append(m.scopes(), SignInScopes...)
}

// ----- sign-in -----

// Sealing labels: the tenant key binds table and row key as associated data, so a sealed state or
// token cache cannot be moved to another tenant, user or purpose.
const (
	stateLabel = "serviceuser-oauthstate"
	tokenLabel = "serviceuser-tokencache"
	linkLabel  = "serviceuser-connectlink"
)

// LinkTTL is how long a connect link works.
const LinkTTL = 15 * time.Minute

type linkPayload struct {
	Expires int64 `json:"e"`
}

// Link makes the connect link a tenant admin opens in a browser (or hands to whoever knows the service
// account's password): AuthStart next to AuthCallback, with a token sealed with the tenant key that
// names the tenant and expires after LinkTTL. The admin's bearer token stays with the API call that
// made the link; a browser navigation cannot carry one.
//
// The link is not single-use: all it can do within its 15 minutes is start a sign-in, which succeeds
// only for an account of this tenant that signs in at Microsoft and consents — the same power as the
// tenant's own sign-in page — and every connected account is listed in the presence status.
func (m *Manager) Link(ctx context.Context, tenant core.TenantID) (link string, expires time.Time, err error) {
	if m.cfg.RedirectURI == "" {
		return "", time.Time{}, apperr.New(apperr.Unavailable, "sign-in is not configured", nil)
	}
	if err := m.activeTenant(ctx, tenant); err != nil {
		return "", time.Time{}, err
	}
	id := random(16)
	expires = m.cfg.Now().Add(LinkTTL).UTC().Truncate(time.Second)
	payload, _ := json.Marshal(linkPayload{Expires: expires.Unix()})
	sealed, err := m.sealer.Seal(ctx, tenant, linkLabel, id, payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("seal connect link: %w", err)
	}
	start, err := url.Parse(m.cfg.RedirectURI)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("redirect uri: %w", err)
	}
	start = start.ResolveReference(&url.URL{Path: "start"})
	start.RawQuery = url.Values{"link": {string(tenant) + "." + id + "." + base64.RawURLEncoding.EncodeToString(sealed)}}.Encode()
	return start.String(), expires, nil
}

// BeginLink is Begin for the browser that opened a connect link.
func (m *Manager) BeginLink(ctx context.Context, link string) (authURL, nonce string, err error) {
	invalid := apperr.New(apperr.Invalid, "invalid connect link; ask your admin for a new one", nil)
	parts := strings.SplitN(link, ".", 3)
	if len(parts) != 3 || len(link) > 512 {
		return "", "", invalid
	}
	tenant, err := core.ParseTenantID(parts[0])
	if err != nil || tables.ValidateKey("link id", parts[1]) != nil {
		return "", "", invalid
	}
	sealed, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", "", invalid
	}
	plain, err := m.sealer.Open(ctx, tenant, linkLabel, parts[1], sealed)
	var p linkPayload
	if err != nil || json.Unmarshal(plain, &p) != nil {
		return "", "", invalid
	}
	if m.cfg.Now().Unix() > p.Expires {
		return "", "", apperr.New(apperr.Invalid, "the connect link has expired; ask your admin for a new one", nil)
	}
	return m.Begin(core.WithTenant(ctx, tenant), tenant)
}

type statePayload struct {
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// Begin is the first half of connecting an account: the identity platform URL to redirect the admin's
// browser to, and the nonce to set as a cookie (Complete compares it with the state).
func (m *Manager) Begin(ctx context.Context, tenant core.TenantID) (authURL, nonce string, err error) {
	if m.cfg.RedirectURI == "" {
		return "", "", apperr.New(apperr.Unavailable, "sign-in is not configured", nil)
	}
	if err := m.activeTenant(ctx, tenant); err != nil {
		return "", "", err
	}
	nonce, verifier := random(16), random(32)
	payload, _ := json.Marshal(statePayload{Nonce: nonce, Verifier: verifier, Expires: m.cfg.Now().Add(m.cfg.StateTTL).Unix()})
	sealed, err := m.sealer.Seal(ctx, tenant, stateLabel, nonce, payload)
	if err != nil {
		return "", "", fmt.Errorf("seal sign-in state: %w", err)
	}
	state := string(tenant) + "." + nonce + "." + base64.RawURLEncoding.EncodeToString(sealed)

	client, err := m.client(ctx, tenant, nil)
	if err != nil {
		return "", "", err
	}
	raw, err := client.AuthCodeURL(ctx, m.cfg.ClientID, m.cfg.RedirectURI, m.consentScopes())
	if err != nil {
		return "", "", apperr.New(apperr.Unavailable, "identity platform unavailable", fmt.Errorf("auth code url: %w", err))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("auth code url: %w", err)
	}
	q := u.Query()
	q.Set("state", state)
	sum := sha256.Sum256([]byte(verifier))
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	q.Set("code_challenge_method", "S256")
	q.Set("prompt", "select_account") // the admin may be signed in as themselves, not the service account
	u.RawQuery = q.Encode()
	return u.String(), nonce, nil
}

// activeTenant refuses tenants that may not connect service users (unknown, or not active).
func (m *Manager) activeTenant(ctx context.Context, tenant core.TenantID) error {
	if m.cfg.Tenants == nil {
		return nil
	}
	t, err := m.cfg.Tenants.Get(ctx, tenant)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return apperr.New(apperr.NotFound, "unknown tenant", nil)
	case err != nil:
		return fmt.Errorf("read tenant: %w", err)
	case t.State != registry.TenantActive:
		return apperr.New(apperr.Forbidden, "the tenant is not active", nil)
	}
	return nil
}

// Callback is what the identity platform sends back to AuthCallback.
type Callback struct {
	State, Code      string
	Error, ErrorDesc string
	CookieNonce      string // the nonce cookie set by Begin
}

// TenantOfState reads the tenant from a state without trusting it (Complete verifies it).
func TenantOfState(state string) (core.TenantID, error) {
	t, _, ok := strings.Cut(state, ".")
	if !ok {
		return "", apperr.New(apperr.Invalid, "invalid sign-in state", nil)
	}
	tenant, err := core.ParseTenantID(t)
	if err != nil {
		return "", apperr.New(apperr.Invalid, "invalid sign-in state", err)
	}
	return tenant, nil
}

// Complete redeems the authorization code and keeps the account as a service user of the state's
// tenant. The signed-in account must belong to that tenant.
func (m *Manager) Complete(ctx context.Context, cb Callback) (ServiceUser, error) {
	tenant, err := TenantOfState(cb.State)
	if err != nil {
		return ServiceUser{}, err
	}
	// Not yet verified, but only log lines read it before the state is opened with the tenant's key.
	ctx = core.WithTenant(ctx, tenant)
	parts := strings.SplitN(cb.State, ".", 3)
	if len(parts) != 3 {
		return ServiceUser{}, apperr.New(apperr.Invalid, "invalid sign-in state", nil)
	}
	nonce := parts[1]
	sealed, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || tables.ValidateKey("nonce", nonce) != nil {
		return ServiceUser{}, apperr.New(apperr.Invalid, "invalid sign-in state", err)
	}
	plain, err := m.sealer.Open(ctx, tenant, stateLabel, nonce, sealed)
	if err != nil {
		return ServiceUser{}, apperr.New(apperr.Invalid, "invalid sign-in state", err)
	}
	var st statePayload
	if err := json.Unmarshal(plain, &st); err != nil || st.Nonce != nonce {
		return ServiceUser{}, apperr.New(apperr.Invalid, "invalid sign-in state", err)
	}
	if subtle.ConstantTimeCompare([]byte(cb.CookieNonce), []byte(nonce)) != 1 {
		return ServiceUser{}, apperr.New(apperr.Forbidden, "sign-in was started in another browser", nil)
	}
	if m.cfg.Now().Unix() > st.Expires {
		return ServiceUser{}, apperr.New(apperr.Invalid, "sign-in took too long; start again", nil)
	}
	if cb.Error != "" {
		// The identity platform's description may name the account: log only the code.
		m.cfg.Log.InfoContext(ctx, "service user sign-in refused", "error_code", cb.Error)
		return ServiceUser{}, apperr.New(apperr.Forbidden, "sign-in was not completed: "+safeCode(cb.Error), nil)
	}
	if cb.Code == "" {
		return ServiceUser{}, apperr.New(apperr.Invalid, "no authorization code", nil)
	}

	capture := &memoryCache{}
	client, err := m.client(ctx, tenant, capture)
	if err != nil {
		return ServiceUser{}, err
	}
	res, err := client.AcquireTokenByAuthCode(ctx, cb.Code, m.cfg.RedirectURI, m.scopes(), confidential.WithChallenge(st.Verifier))
	if err != nil {
		if refused(err) {
			return ServiceUser{}, apperr.New(apperr.Forbidden, "the identity platform refused the sign-in", err)
		}
		return ServiceUser{}, apperr.New(apperr.Unavailable, "identity platform unavailable", err)
	}
	oid, tid := res.IDToken.Oid, res.IDToken.TenantID
	if oid == "" {
		oid = res.Account.LocalAccountID
	}
	if !strings.EqualFold(tid, string(tenant)) {
		return ServiceUser{}, apperr.New(apperr.Forbidden, "the account belongs to another organisation", nil)
	}
	name, err := secrets.ServiceUserTokenName(tenant, oid)
	if err != nil {
		return ServiceUser{}, apperr.New(apperr.Invalid, "the identity platform returned no account id", err)
	}
	oid = strings.ToLower(oid)
	if !hasRefreshToken(capture.data) {
		// Without a refresh token the account would work for an hour and then need re-consent: refuse
		// now, while the admin is still at the browser (offline_access not granted, or a policy that
		// withholds refresh tokens).
		m.cfg.Log.WarnContext(ctx, "service user sign-in without refresh token")
		return ServiceUser{}, apperr.New(apperr.Forbidden,
			"the identity platform issued no refresh token: the account must grant offline access (offline_access); sign in again", nil)
	}
	if err := m.saveCache(ctx, tenant, oid, name, capture.data); err != nil {
		return ServiceUser{}, err
	}
	m.forget(tenant, oid) // a connected-again account starts from the new cache
	now := m.cfg.Now().UTC()
	upn := res.IDToken.PreferredUsername
	if upn == "" {
		upn = res.Account.PreferredUsername
	}
	su, err := m.users.UpdateOrCreate(ctx, tenant, oid, func(s *ServiceUser, _ bool) error {
		s.UserPrincipalName, s.State, s.LastError = upn, Active, ""
		s.ConnectedAt, s.LastRefreshAt, s.UpdatedAt = now, now, now
		return nil
	})
	if err != nil {
		return ServiceUser{}, fmt.Errorf("record service user: %w", err)
	}
	m.cfg.Log.InfoContext(ctx, "service user connected", "service_user_id", oid)
	return su, nil
}

func safeCode(s string) string {
	if len(s) > 40 || strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) >= 0 {
		return "error"
	}
	return s
}

// refused reports whether the identity platform answered with a 4xx (invalid_grant and friends) rather
// than being unreachable.
func refused(err error) bool {
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		return ce.Resp.StatusCode >= 400 && ce.Resp.StatusCode < 500
	}
	return false
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ----- MSAL plumbing -----

// appCredential loads the app's client certificate, at most once an hour (rotation).
func (m *Manager) appCredential(ctx context.Context) (confidential.Credential, error) {
	m.credMu.Lock()
	defer m.credMu.Unlock()
	if !m.credLoaded.IsZero() && m.cfg.Now().Sub(m.credLoaded) < time.Hour {
		return m.cred, nil
	}
	v, err := m.secrets.Get(ctx, m.cfg.CertName)
	if err != nil {
		return confidential.Credential{}, apperr.New(apperr.Unavailable, "app certificate unavailable", fmt.Errorf("read app certificate: %w", err))
	}
	cert, key, err := graphcrypto.ParseCertificate([]byte(v), "")
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("app certificate: %w", err)
	}
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{cert}, key)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("app certificate: %w", err)
	}
	m.cred, m.credLoaded = cred, m.cfg.Now()
	return cred, nil
}

func (m *Manager) client(ctx context.Context, tenant core.TenantID, accessor cache.ExportReplace) (confidential.Client, error) {
	cred, err := m.appCredential(ctx)
	if err != nil {
		return confidential.Client{}, err
	}
	opts := []confidential.Option{confidential.WithInstanceDiscovery(isDefaultAuthority(m.cfg.AuthorityHost))}
	if accessor != nil {
		opts = append(opts, confidential.WithCache(accessor))
	}
	if m.cfg.HTTPClient != nil {
		opts = append(opts, confidential.WithHTTPClient(m.cfg.HTTPClient))
	}
	c, err := confidential.New(m.cfg.AuthorityHost+string(tenant), m.cfg.ClientID, cred, opts...)
	if err != nil {
		return confidential.Client{}, fmt.Errorf("msal client: %w", err)
	}
	return c, nil
}

// isDefaultAuthority: MSAL's instance discovery asks login.microsoftonline.com about the authority,
// which only knows Microsoft's own hosts.
func isDefaultAuthority(host string) bool {
	u, err := url.Parse(host)
	return err == nil && strings.EqualFold(u.Hostname(), "login.microsoftonline.com")
}

func (m *Manager) saveCache(ctx context.Context, tenant core.TenantID, oid, name string, data []byte) error {
	if len(data) == 0 {
		return errors.New("save token cache: MSAL exported nothing")
	}
	sealed, err := m.sealer.Seal(ctx, tenant, tokenLabel, oid, data)
	if err != nil {
		return fmt.Errorf("seal token cache: %w", err)
	}
	if err := m.secrets.Set(ctx, name, base64.StdEncoding.EncodeToString(sealed)); err != nil {
		return apperr.New(apperr.Unavailable, "secret store unavailable", fmt.Errorf("store token cache: %w", err))
	}
	return nil
}

func (m *Manager) loadCache(ctx context.Context, tenant core.TenantID, oid, name string) ([]byte, error) {
	v, err := m.secrets.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("decode token cache: %w", err)
	}
	plain, err := m.sealer.Open(ctx, tenant, tokenLabel, oid, sealed)
	if err != nil {
		return nil, fmt.Errorf("open token cache: %w", err)
	}
	return plain, nil
}

// hasRefreshToken reports whether an exported MSAL cache holds a refresh token (the cache's JSON
// schema, shared by all MSAL libraries: {"RefreshToken": {"<key>": {"secret": …}}}).
func hasRefreshToken(cacheJSON []byte) bool {
	var c struct {
		RefreshToken map[string]struct {
			Secret string `json:"secret"`
		} `json:"RefreshToken"`
	}
	if json.Unmarshal(cacheJSON, &c) != nil {
		return false
	}
	for _, rt := range c.RefreshToken {
		if rt.Secret != "" {
			return true
		}
	}
	return false
}

// memoryCache captures what MSAL exports during the code redemption (the account is unknown until then).
type memoryCache struct {
	mu   sync.Mutex
	data []byte
}

func (c *memoryCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data) == 0 {
		return nil
	}
	return u.Unmarshal(c.data)
}

func (c *memoryCache) Export(_ context.Context, mc cache.Marshaler, _ cache.ExportHints) error {
	b, err := mc.Marshal()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = b
	return nil
}

// ----- credentials of connected accounts -----

// account is one service user's MSAL client with its Key Vault-backed cache.
type account struct {
	m      *Manager
	tenant core.TenantID
	oid    string
	name   string

	mu       sync.Mutex
	client   *confidential.Client
	loaded   time.Time
	lastHash [32]byte
	missing  bool // Key Vault has no token cache for the account
}

// cacheReload bounds how stale an instance's in-memory copy of a token cache may be before it reads
// Key Vault again (another instance may have refreshed).
const cacheReload = 5 * time.Minute

func (a *account) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	if !a.loaded.IsZero() && a.m.cfg.Now().Sub(a.loaded) < cacheReload {
		return nil // MSAL keeps its in-memory cache
	}
	data, err := a.m.loadCache(ctx, a.tenant, a.oid, a.name)
	a.missing = errors.Is(err, secrets.ErrNotFound)
	if err != nil {
		return err
	}
	a.loaded, a.lastHash = a.m.cfg.Now(), sha256.Sum256(data)
	return u.Unmarshal(data)
}

func (a *account) Export(ctx context.Context, mc cache.Marshaler, _ cache.ExportHints) error {
	data, err := mc.Marshal()
	if err != nil {
		return err
	}
	h := sha256.Sum256(data)
	if h == a.lastHash {
		return nil
	}
	if err := a.m.saveCache(ctx, a.tenant, a.oid, a.name, data); err != nil {
		return err
	}
	a.lastHash = h
	return nil
}

// Credential is the token credential of a connected service user, for graph.New.
func (m *Manager) Credential(tenant core.TenantID, userID string) (azcore.TokenCredential, error) {
	name, err := secrets.ServiceUserTokenName(tenant, userID)
	if err != nil {
		return nil, err
	}
	key := string(tenant) + "/" + strings.ToLower(userID)
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	a, ok := m.clients[key]
	if !ok {
		a = &account{m: m, tenant: tenant, oid: strings.ToLower(userID), name: name}
		m.clients[key] = a
	}
	return a, nil
}

func (m *Manager) forget(tenant core.TenantID, oid string) {
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	delete(m.clients, string(tenant)+"/"+oid)
}

// GetToken implements azcore.TokenCredential: a cached access token, refreshed by MSAL shortly before it
// expires. A refused refresh marks the account for re-consent and returns ErrReconsent.
func (a *account) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	ctx = core.WithTenant(ctx, a.tenant)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil {
		c, err := a.m.client(ctx, a.tenant, a)
		if err != nil {
			return azcore.AccessToken{}, err
		}
		a.client = &c
	}
	acct, err := a.client.Account(ctx, a.oid+"."+string(a.tenant))
	if err != nil {
		return azcore.AccessToken{}, a.fail(ctx, err)
	}
	if acct.HomeAccountID == "" {
		return azcore.AccessToken{}, a.fail(ctx, ErrReconsent)
	}
	scopes, err := a.m.tokenScopes(opts.Scopes)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	res, err := a.client.AcquireTokenSilent(ctx, scopes, confidential.WithSilentAccount(acct))
	if err != nil {
		return azcore.AccessToken{}, a.fail(ctx, err)
	}
	if res.Metadata.TokenSource == confidential.TokenSourceIdentityProvider {
		a.refreshed(ctx)
	}
	return azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn}, nil
}

// tokenScopes maps what a Graph client asks for (kiota: "<resource>/.default") to the explicit scopes
// the account consented to at sign-in. A refresh for ".default" would be answered with the consented
// permissions and MSAL would report ".default" declined (see scopes). The credential serves Graph
// only: another resource is a programming error, not a reason to re-consent.
func (m *Manager) tokenScopes(requested []string) ([]string, error) {
	prefix := strings.ToLower(m.resource() + "/")
	for _, s := range requested {
		if !strings.HasPrefix(strings.ToLower(s), prefix) {
			return nil, fmt.Errorf("service user token: scope %q is not for %s", s, m.resource())
		}
	}
	return m.scopes(), nil
}

// fail classifies a token failure: refused by the identity platform (or no cached account) means the
// admin must connect the account again; anything else is transient.
func (a *account) fail(ctx context.Context, err error) error {
	if !refused(err) && !errors.Is(err, ErrReconsent) && !a.missing && !noAccount(err) {
		return apperr.New(apperr.Unavailable, "identity platform unavailable", err)
	}
	now := a.m.cfg.Now().UTC()
	_, uerr := a.m.users.Update(ctx, a.tenant, a.oid, func(s *ServiceUser) error {
		s.State, s.LastError, s.UpdatedAt = Reconsent, "refresh_refused", now
		return nil
	})
	if uerr != nil && !errors.Is(uerr, tables.ErrNotFound) {
		a.m.cfg.Log.WarnContext(ctx, "mark service user for re-consent failed", "service_user_id", a.oid, "error", uerr)
	}
	a.m.cfg.Log.WarnContext(ctx, "service user needs re-consent", "service_user_id", a.oid)
	a.loaded = time.Time{} // read Key Vault again next time: the admin may reconnect meanwhile
	return fmt.Errorf("token for service user %s: %w", a.oid, ErrReconsent)
}

func noAccount(err error) bool {
	return strings.Contains(err.Error(), "no token found") || strings.Contains(err.Error(), "not found in cache")
}

// refreshed records a successful refresh (only when the identity platform was asked, not per call).
func (a *account) refreshed(ctx context.Context) {
	now := a.m.cfg.Now().UTC()
	_, err := a.m.users.Update(ctx, a.tenant, a.oid, func(s *ServiceUser) error {
		s.State, s.LastError, s.LastRefreshAt, s.UpdatedAt = Active, "", now, now
		return nil
	})
	if err != nil {
		a.m.cfg.Log.WarnContext(ctx, "record token refresh failed", "service_user_id", a.oid, "error", err)
	}
}
