// Package ringcentral sets users' presence in RingCentral.
//
//   - Authentication: the JWT grant (POST /restapi/oauth/token, grant_type
//     urn:ietf:params:oauth:grant-type:jwt-bearer, HTTP Basic with the app's client id and secret) with
//     the tenant's credential from Key Vault; the access token is kept in memory until shortly before it
//     expires, and dropped on a 401.
//   - Mapping: the user's explicit PBX id (set by an admin) wins; otherwise the user's mail, then the
//     user's phone (E.164), is matched against the account's extension list (GET
//     /restapi/v1.0/account/~/extension, type User, all pages: contact.email, contact.businessPhone,
//     contact.mobilePhone), cached per tenant. connector.Directory decides the match.
//   - Test: a fresh token with the tenant's credential, then one page of the extension list, each
//     failure named by what failed (connector.TestFailure).
//   - Presence: PUT /restapi/v1.0/account/~/extension/{id}/presence with userStatus and dndStatus.
//   - Limits: 429 and Retry-After are honoured by the pipeline (short waits) or returned to the caller
//     (long ones); when X-Rate-Limit-Remaining reaches 0 the tenant's calls wait for the window
//     (X-Rate-Limit-Window) instead of drawing another 429. A 429 without Retry-After means the
//     60-second penalty, which every request during it restarts: it is never retried inline, and the
//     tenant's calls wait it out.
package ringcentral

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Kind is the Tenant.PBXKind of this connector.
const Kind = "ringcentral"

// Credential is the tenant's RingCentral app credential (sealed JSON in Key Vault).
type Credential struct {
	Kind         string `json:"kind"` // "ringcentral"
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	JWT          string `json:"jwt"`
}

// Options configure the connector.
type Options struct {
	BaseURL    string // https://platform.ringcentral.com, or a test server
	HTTP       connector.HTTPOptions
	MappingTTL time.Duration // how long an extension list is trusted (default 15 min)
	Now        func() time.Time
}

// Connector is the RingCentral connector; safe for concurrent use by many tenants.
type Connector struct {
	o       Options
	p       runtime.Pipeline
	secrets secrets.Store
	sealer  tables.Sealer

	mu      sync.Mutex
	tenants map[core.TenantID]*tenantState
}

type tenantState struct {
	mu         sync.Mutex
	token      string
	tokenUntil time.Time
	dir        *connector.Directory
	listedAt   time.Time
	blocked    time.Time // rate-limit window exhausted until then
}

var (
	_ connector.Pusher    = (*Connector)(nil)
	_ connector.Tester    = (*Connector)(nil)
	_ connector.Lister    = (*Connector)(nil)
	_ connector.Forgetter = (*Connector)(nil)
)

// New builds the connector.
func New(o Options, sec secrets.Store, sealer tables.Sealer) *Connector {
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.MappingTTL <= 0 {
		o.MappingTTL = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := o.HTTP
	h.Client = &http.Client{Transport: penaltyTransport{next: baseTransport(o.HTTP.Client)}}
	return &Connector{o: o, p: connector.NewPipeline(h), secrets: sec, sealer: sealer, tenants: map[core.TenantID]*tenantState{}}
}

// penaltySeconds is how long RingCentral throttles after a limit is exceeded ("the penalty is 60
// seconds"); without Retry-After a client must wait at least 30 s (developer guide, rate-limits).
const penaltySeconds = "60"

// penaltyTransport gives a 429 without Retry-After the penalty as its Retry-After, below the pipeline's
// retry policy: the policy then returns it to the caller instead of retrying within the penalty (which
// would restart it).
type penaltyTransport struct{ next http.RoundTripper }

func (t penaltyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		resp.Header.Set("Retry-After", penaltySeconds)
	}
	return resp, err
}

func baseTransport(c *http.Client) http.RoundTripper {
	switch {
	case c != nil && c.Transport != nil:
		return c.Transport
	case c != nil:
		return http.DefaultTransport
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.MinVersion = 0x0303 // TLS 1.2
	return tr
}

func (c *Connector) state(t core.TenantID) *tenantState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.tenants[t]
	if !ok {
		s = &tenantState{}
		c.tenants[t] = s
	}
	return s
}

// Forget drops what is cached of a tenant (credential changed, tenant deleted).
func (c *Connector) Forget(t core.TenantID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tenants, t)
}

// presenceBody maps our state to RingCentral's two fields: userStatus (Offline, Busy, Available) and
// dndStatus. RingCentral has no "away": an away user shows busy and still takes calls.
func presenceBody(s connector.State) map[string]string {
	switch s {
	case connector.Available:
		return map[string]string{"userStatus": "Available", "dndStatus": "TakeAllCalls"}
	case connector.Busy, connector.Away:
		return map[string]string{"userStatus": "Busy", "dndStatus": "TakeAllCalls"}
	case connector.DND:
		return map[string]string{"userStatus": "Busy", "dndStatus": "DoNotAcceptAnyCalls"}
	default:
		return map[string]string{"userStatus": "Offline", "dndStatus": "TakeAllCalls"}
	}
}

// Push sets the user's presence.
func (c *Connector) Push(ctx context.Context, tenant core.TenantID, u connector.User, s connector.State) error {
	ts := c.state(tenant)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if wait := ts.blocked.Sub(c.o.Now()); wait > 0 {
		return &connector.Error{Op: "presence", Status: http.StatusTooManyRequests, RetryAfter: wait}
	}
	ext, err := c.extension(ctx, tenant, ts, u)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(presenceBody(s))
	_, err = c.call(ctx, tenant, ts, "presence", http.MethodPut,
		c.o.BaseURL+"/restapi/v1.0/account/~/extension/"+url.PathEscape(ext)+"/presence", body)
	return err
}

// extension finds the user's extension id: the explicit mapping, else by mail or phone in the extension
// list (listed again once when the user is not found, at most once a minute, for users added since).
func (c *Connector) extension(ctx context.Context, tenant core.TenantID, ts *tenantState, u connector.User) (string, error) {
	if u.PBXUserID != "" {
		return u.PBXUserID, nil
	}
	if strings.TrimSpace(u.Email) == "" && connector.NormalizePhone(u.Phone) == "" {
		return "", connector.ErrUnmapped
	}
	now := c.o.Now()
	stale := ts.dir == nil || now.Sub(ts.listedAt) > c.o.MappingTTL
	if m := ts.dir.Match(u); m.ExtensionID != "" && !stale {
		return m.ExtensionID, nil
	}
	if !stale && now.Sub(ts.listedAt) < time.Minute {
		return "", connector.ErrUnmapped
	}
	if err := c.listExtensions(ctx, tenant, ts); err != nil {
		return "", err
	}
	if m := ts.dir.Match(u); m.ExtensionID != "" {
		return m.ExtensionID, nil
	}
	return "", connector.ErrUnmapped
}

// Directory returns the tenant's extension list, listed again when older than MappingTTL.
func (c *Connector) Directory(ctx context.Context, tenant core.TenantID) (*connector.Directory, error) {
	ts := c.state(tenant)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.dir != nil && c.o.Now().Sub(ts.listedAt) <= c.o.MappingTTL {
		return ts.dir, nil
	}
	if wait := ts.blocked.Sub(c.o.Now()); wait > 0 {
		return nil, &connector.Error{Op: "list extensions", Status: http.StatusTooManyRequests, RetryAfter: wait}
	}
	if err := c.listExtensions(ctx, tenant, ts); err != nil {
		return nil, err
	}
	return ts.dir, nil
}

type extensionPage struct {
	Records []struct {
		ID              json.Number `json:"id"`
		Status          string      `json:"status"`
		Type            string      `json:"type"`
		ExtensionNumber string      `json:"extensionNumber"`
		// ContactInfo: businessPhone and mobilePhone are E.164 with '+' (RingCentral API reference,
		// ContactInfo; ringcentral-java definitions.ContactInfo).
		Contact struct {
			Email         string `json:"email"`
			BusinessPhone string `json:"businessPhone"`
			MobilePhone   string `json:"mobilePhone"`
		} `json:"contact"`
	} `json:"records"`
	Paging struct {
		Page       int `json:"page"`
		TotalPages int `json:"totalPages"`
	} `json:"paging"`
}

func (c *Connector) listExtensions(ctx context.Context, tenant core.TenantID, ts *tenantState) error {
	var exts []connector.Extension
	for page := 1; ; page++ {
		b, err := c.call(ctx, tenant, ts, "list extensions", http.MethodGet,
			c.o.BaseURL+"/restapi/v1.0/account/~/extension?type=User&perPage=1000&page="+strconv.Itoa(page), nil)
		if err != nil {
			return err
		}
		var p extensionPage
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("pbx list extensions: %w", err)
		}
		for _, r := range p.Records {
			if r.ID != "" && (r.Status == "" || strings.EqualFold(r.Status, "Enabled")) {
				exts = append(exts, connector.Extension{ID: r.ID.String(), Number: r.ExtensionNumber, Email: r.Contact.Email,
					Phones: []string{r.Contact.BusinessPhone, r.Contact.MobilePhone}})
			}
		}
		if p.Paging.TotalPages <= page || len(p.Records) == 0 {
			break
		}
	}
	ts.dir, ts.listedAt = connector.NewDirectory(exts), c.o.Now()
	return nil
}

// call sends one authenticated request, taking a token first if needed and once more after a 401.
func (c *Connector) call(ctx context.Context, tenant core.TenantID, ts *tenantState, op, method, u string, body []byte) ([]byte, error) {
	for attempt := 0; attempt < 2; attempt++ { // the second attempt only after a 401: a fresh token
		tok, err := c.token(ctx, tenant, ts)
		if err != nil {
			return nil, err
		}
		h := http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"application/json"}}
		if body != nil {
			h.Set("Content-Type", "application/json")
		}
		hdr, b, err := connector.Do(ctx, c.p, op, method, u, h, body)
		c.noteLimits(ts, hdr)
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests && ce.RetryAfter > 0 {
			// Throttled: the tenant's next calls wait instead of restarting the penalty.
			ts.blocked = c.o.Now().Add(ce.RetryAfter)
		}
		if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized && attempt == 0 {
			ts.token = ""
			continue
		}
		return b, err
	}
	return nil, &connector.Error{Op: op, Status: http.StatusUnauthorized}
}

// noteLimits reads RingCentral's rate-limit headers: with none left in the window, the tenant's next
// calls wait for it.
func (c *Connector) noteLimits(ts *tenantState, h http.Header) {
	if h == nil || h.Get("X-Rate-Limit-Remaining") != "0" {
		return
	}
	window, err := strconv.Atoi(h.Get("X-Rate-Limit-Window"))
	if err != nil || window <= 0 {
		window = 60
	}
	ts.blocked = c.o.Now().Add(time.Duration(window) * time.Second)
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

func (c *Connector) token(ctx context.Context, tenant core.TenantID, ts *tenantState) (string, error) {
	if ts.token != "" && c.o.Now().Before(ts.tokenUntil) {
		return ts.token, nil
	}
	cred, err := c.credential(ctx, tenant)
	if err != nil {
		return "", err
	}
	t, err := c.requestToken(ctx, cred)
	if f := (*connector.TestFailure)(nil); errors.As(err, &f) && refused(f.Code) {
		// A refused credential is a configuration problem of the tenant, not a passing failure.
		return "", fmt.Errorf("ringcentral token refused (%s): %w", f.Code, connector.ErrNotConfigured)
	}
	if err != nil {
		return "", err
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	// Renew a minute early so a token never expires between check and use.
	ts.token, ts.tokenUntil = t.AccessToken, c.o.Now().Add(life-min(time.Minute, life/2))
	return ts.token, nil
}

func (c *Connector) credential(ctx context.Context, tenant core.TenantID) (Credential, error) {
	var cred Credential
	if err := connector.LoadCredential(ctx, c.secrets, c.sealer, tenant, &cred); err != nil {
		return Credential{}, err
	}
	if cred.Kind != Kind || cred.ClientID == "" || cred.JWT == "" {
		return Credential{}, fmt.Errorf("ringcentral credential incomplete: %w", connector.ErrNotConfigured)
	}
	return cred, nil
}

// Codes of a failed connection test.
const (
	codeClientRefused = "ringcentral_client_refused"
	codeJWTRefused    = "ringcentral_jwt_refused"
	codeAuthFailed    = "ringcentral_auth_failed"
	codeUnreachable   = "ringcentral_unreachable"
	codeThrottled     = "ringcentral_throttled"
	codePermission    = "ringcentral_permission_denied"
)

// errorBody is RingCentral's error answer: OAuth errors carry error/error_description, API errors
// errorCode/message, both an errors[] list with errorCode (docs/basics/errors.md).
type errorBody struct {
	Error     string `json:"error"`
	ErrorCode string `json:"errorCode"`
	Errors    []struct {
		ErrorCode string `json:"errorCode"`
	} `json:"errors"`
}

// rcCodeRE is the shape of RingCentral's error codes (OAU-213, CMN-408, …): only such a code of what the
// PBX said is repeated to an admin, never its free-text message.
var rcCodeRE = regexp.MustCompile(`^[A-Z]{2,5}-[0-9]{1,5}$`)

func (b errorBody) code() string {
	c := b.ErrorCode
	if len(b.Errors) > 0 && b.Errors[0].ErrorCode != "" {
		c = b.Errors[0].ErrorCode
	}
	if !rcCodeRE.MatchString(c) {
		return ""
	}
	return c
}

// refused reports whether a failed token request means the stored credential is wrong.
func refused(code string) bool {
	return code == codeClientRefused || code == codeJWTRefused || code == codeAuthFailed
}

func withCode(msg, code string) string {
	if code == "" {
		return msg
	}
	return msg + " (" + code + ")"
}

// requestToken runs the JWT grant. A refusal or no answer is a *connector.TestFailure naming what
// failed; the OAuth error says which half of the credential was refused: invalid_client is the app's
// client id or secret, invalid_grant the JWT (RFC 6749 §5.2, RingCentral jwt-flow.md).
func (c *Connector) requestToken(ctx context.Context, cred Credential) (tokenAnswer, error) {
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {cred.JWT}}
	h := http.Header{
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(cred.ClientID+":"+cred.ClientSecret))},
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Accept":        {"application/json"},
	}
	_, b, err := connector.Do(ctx, c.p, "token", http.MethodPost, c.o.BaseURL+"/restapi/oauth/token", h, []byte(form.Encode()))
	var ce *connector.Error
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests:
		// Keep the *connector.Error (Retry-After) for the push path's retry decision.
		return tokenAnswer{}, fmt.Errorf("%w: %w", &connector.TestFailure{Code: codeThrottled, Message: "RingCentral limits token requests to 5 a minute; try again in a minute"}, err)
	case errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500:
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		switch eb.Error {
		case "invalid_client":
			return tokenAnswer{}, &connector.TestFailure{Code: codeClientRefused, Message: withCode("the client id or client secret was refused", eb.code())}
		case "invalid_grant":
			return tokenAnswer{}, &connector.TestFailure{Code: codeJWTRefused, Message: withCode("the JWT was refused (expired, revoked or issued for another app)", eb.code())}
		case "unauthorized_client":
			return tokenAnswer{}, &connector.TestFailure{Code: codeAuthFailed, Message: withCode("the app may not use the JWT grant: enable JWT auth for it in the RingCentral developer console", eb.code())}
		}
		return tokenAnswer{}, &connector.TestFailure{Code: codeAuthFailed, Message: withCode("the token request was refused with status "+strconv.Itoa(ce.Status), eb.code())}
	case err != nil:
		return tokenAnswer{}, fmt.Errorf("%w: %w", &connector.TestFailure{Code: codeUnreachable, Message: "RingCentral's token endpoint failed or did not answer"}, err)
	}
	var t tokenAnswer
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return tokenAnswer{}, &connector.TestFailure{Code: codeUnreachable, Message: "RingCentral's token answer was unreadable"}
	}
	return t, nil
}

// Test checks the tenant's credential: a fresh token (never the cached one: the point is to try what is
// stored now), then one page of the extension list, which needs the ReadAccounts permission the
// directory matching uses.
func (c *Connector) Test(ctx context.Context, tenant core.TenantID) error {
	cred, err := c.credential(ctx, tenant)
	if err != nil {
		return err
	}
	t, err := c.requestToken(ctx, cred)
	if err != nil {
		var f *connector.TestFailure
		if errors.As(err, &f) {
			return f
		}
		return err
	}
	h := http.Header{"Authorization": {"Bearer " + t.AccessToken}, "Accept": {"application/json"}}
	_, b, err := connector.Do(ctx, c.p, "list extensions", http.MethodGet, c.o.BaseURL+"/restapi/v1.0/account/~/extension?perPage=1", h, nil)
	var ce *connector.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests:
		return &connector.TestFailure{Code: codeThrottled, Message: "RingCentral throttled the extension list; try again in a minute"}
	case errors.As(err, &ce) && (ce.Status == http.StatusForbidden || ce.Status == http.StatusUnauthorized):
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		return &connector.TestFailure{Code: codePermission, Message: withCode("the token may not read the extension list: give the app the ReadAccounts permission", eb.code())}
	case errors.As(err, &ce) && ce.Status > 0:
		return &connector.TestFailure{Code: "ringcentral_status_" + strconv.Itoa(ce.Status), Message: "RingCentral refused the extension list with status " + strconv.Itoa(ce.Status)}
	}
	return &connector.TestFailure{Code: codeUnreachable, Message: "RingCentral's extension list failed or did not answer"}
}
