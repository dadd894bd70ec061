// Package salesforce is ConnectHub's client of a tenant's Salesforce org: the OAuth 2.0 JWT bearer flow
// with the tenant's connected-app key, a token cache, REST calls that get a new token once on 401, and
// the connection test that names what failed.
//
// Facts it is built on (../shared/reference/next-capabilities.md §3.2 and §3.6):
//   - the JWT bearer flow signs an RS256 assertion (iss = consumer key, sub = username, aud = the login
//     or sandbox host, exp within 3 minutes) and posts it to the host's /services/oauth2/token; there is
//     no client secret, and no refresh token or expiry comes back, so a new assertion is signed whenever
//     a token is needed;
//   - the user must be pre-authorised (or have approved the app before), else "user hasn't approved this
//     consumer";
//   - an expired or revoked session is 401 INVALID_SESSION_ID: get a new token and retry once;
//   - Salesforce sends no Retry-After anywhere, so nothing here waits for one.
package salesforce

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/core"
)

// The hosts a tenant may connect through: production orgs sign in at login.salesforce.com, sandboxes at
// test.salesforce.com (help.salesforce.com remoteaccess_oauth_jwt_flow, claim aud). The token request
// goes to the same host the assertion names.
const (
	LoginHost   = "login.salesforce.com"
	SandboxHost = "test.salesforce.com"
)

// ValidHost reports whether h is one of the hosts above.
func ValidHost(h string) bool { return h == LoginHost || h == SandboxHost }

// APIVersion is the REST API version called: v66.0 is Spring '26, the newest generally available
// (next-capabilities.md §3.3; v67.0 is still a preview).
const APIVersion = "v66.0"

// grantType is the JWT bearer grant (RFC 7523 §2.1).
const grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// assertionLife is how far ahead the assertion's exp lies: Salesforce wants it "within 3 minutes"; two
// leave room for our clock running a little ahead of Salesforce's.
const assertionLife = 2 * time.Minute

// tokenTTL is how long a token is reused. Salesforce does not say when it expires (the org's session
// timeout, 15 minutes to 24 hours, renewed by use); a 401 gets a new one anyway, so this only bounds how
// long a revoked app keeps a cached token in memory.
const tokenTTL = 30 * time.Minute

// maxAnswer caps what is read of any Salesforce answer.
const maxAnswer = 1 << 20

// MinKeyBits is the smallest RSA key accepted; Salesforce's own certificates are 2048 bits.
const MinKeyBits = 2048

// Credential is what connects a tenant's org: the connected app's consumer key, the integration user,
// the host, and the private key whose certificate is uploaded to the app. The whole of it is sealed in
// the secret store; only the service that loaded it holds it in memory.
type Credential struct {
	ConsumerKey   string `json:"consumerKey"`
	Username      string `json:"username"`
	Host          string `json:"host"`
	PrivateKeyPEM string `json:"privateKey"`
}

// ParsePrivateKey reads an RSA private key in PEM, PKCS#8 ("PRIVATE KEY", what openssl genpkey writes)
// or PKCS#1 ("RSA PRIVATE KEY", what Salesforce's JWT walkthrough's openssl genrsa writes), of at least
// MinKeyBits. Its errors name no part of the key.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("not a single PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, errors.New("PEM block is not a private key (encrypted keys are not accepted)")
	}
	if err != nil {
		return nil, errors.New("the private key does not parse")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not RSA (the JWT bearer flow signs with RS256)")
	}
	if rk.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("the RSA key has %d bits; at least %d are needed", rk.N.BitLen(), MinKeyBits)
	}
	return rk, nil
}

// Options configure a Client.
type Options struct {
	// HTTPClient sends the requests; nil: one with a 30-second timeout.
	HTTPClient *http.Client
	// LoginURL is where the token request for a host goes; nil: "https://" + host. Tests and devhost point
	// it at a fake; the assertion's aud always names the host itself.
	LoginURL func(host string) string
	Now      func() time.Time
	// CallClient is the client id sent on every REST call as Sforce-Call-Options: client=<id>; Salesforce
	// reports it as the origin of the changes we make only in Change Data Capture's changeOrigin (§3.5).
	// The getUpdated/getDeleted windows the CRM → mailbox direction reads do not carry it, so that
	// direction tells its own writes by the ledger's digests; the id still marks our writes for an org's
	// admin (and for a later CDC subscriber). "" means DefaultCallClient.
	CallClient string
}

// DefaultCallClient is the client id our writes carry.
const DefaultCallClient = "ConnectHub"

// Client talks to tenants' orgs. It is safe for concurrent use.
type Client struct {
	o      Options
	mu     sync.Mutex
	tokens map[core.TenantID]cachedToken
}

type cachedToken struct {
	fingerprint [32]byte // of the credential it was issued for: a replaced credential never reuses it
	token       Token
	until       time.Time
}

// Token is a session: the access token and the org's instance every REST call goes to.
type Token struct {
	AccessToken string
	InstanceURL string
}

// New returns a client.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.LoginURL == nil {
		o.LoginURL = func(host string) string { return "https://" + host }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CallClient == "" {
		o.CallClient = DefaultCallClient
	}
	return &Client{o: o, tokens: map[core.TenantID]cachedToken{}}
}

// TokenError is the token endpoint's refusal: OAuth's error code and Salesforce's description (fixed
// texts such as "user hasn't approved this consumer"; they carry nothing of the request).
type TokenError struct {
	Status      int
	Code        string
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("salesforce token: status %d, %s: %s", e.Status, e.Code, e.Description)
}

// APIError is a refused REST call: the status and Salesforce's errorCode. The message is not kept: it
// can quote record values.
type APIError struct {
	Op        string
	Status    int
	ErrorCode string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("salesforce %s: status %d %s", e.Op, e.Status, e.ErrorCode)
}

func fingerprint(c Credential) [32]byte {
	b, _ := json.Marshal(c)
	return sha256.Sum256(b)
}

// Forget drops the tenant's cached token (its credential changed or was deleted).
func (c *Client) Forget(tenant core.TenantID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, tenant)
}

// Token returns the tenant's cached token, or signs in for a new one.
func (c *Client) Token(ctx context.Context, tenant core.TenantID, cred Credential) (Token, error) {
	fp := fingerprint(cred)
	c.mu.Lock()
	ct, ok := c.tokens[tenant]
	c.mu.Unlock()
	if ok && ct.fingerprint == fp && c.o.Now().Before(ct.until) {
		return ct.token, nil
	}
	t, err := c.requestToken(ctx, cred)
	if err != nil {
		return Token{}, err
	}
	c.mu.Lock()
	c.tokens[tenant] = cachedToken{fingerprint: fp, token: t, until: c.o.Now().Add(tokenTTL)}
	c.mu.Unlock()
	return t, nil
}

// requestToken signs an assertion and exchanges it for a token.
func (c *Client) requestToken(ctx context.Context, cred Credential) (Token, error) {
	if !ValidHost(cred.Host) {
		return Token{}, fmt.Errorf("salesforce token: host %q is not a Salesforce login host", cred.Host)
	}
	key, err := ParsePrivateKey(cred.PrivateKeyPEM)
	if err != nil {
		return Token{}, fmt.Errorf("salesforce token: %w", err)
	}
	now := c.o.Now()
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: cred.ConsumerKey, Subject: cred.Username, Audience: jwt.ClaimStrings{"https://" + cred.Host},
		ExpiresAt: jwt.NewNumericDate(now.Add(assertionLife)),
	}).SignedString(key)
	if err != nil {
		return Token{}, fmt.Errorf("salesforce token: sign: %w", err)
	}
	form := url.Values{"grant_type": {grantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.LoginURL(cred.Host)+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("salesforce token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("salesforce token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Token{}, fmt.Errorf("salesforce token: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(b, &e)
		return Token{}, &TokenError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var ok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || ok.AccessToken == "" {
		return Token{}, errors.New("salesforce token: the answer has no access token")
	}
	// Every REST call goes to instance_url: refuse anything but an absolute http(s) URL so a bad answer
	// cannot send the token elsewhere by a relative path or another scheme.
	u, err := url.Parse(ok.InstanceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Token{}, errors.New("salesforce token: the answer has no usable instance_url")
	}
	return Token{AccessToken: ok.AccessToken, InstanceURL: strings.TrimRight(ok.InstanceURL, "/")}, nil
}

// CallClient is the client id this client's calls carry.
func (c *Client) CallClient() string { return c.o.CallClient }

// Do calls the REST API under /services/data/<APIVersion> (path starts with "/") with the tenant's
// token. A 401 gets a new token and one retry (INVALID_SESSION_ID: the session timed out or was
// revoked). A status outside 2xx is an *APIError; the answer's headers come back either way so callers
// can read Sforce-Limit-Info.
func (c *Client) Do(ctx context.Context, tenant core.TenantID, cred Credential, op, method, path string, body any) (http.Header, []byte, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, nil, fmt.Errorf("salesforce %s: %w", op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		t, err := c.Token(ctx, tenant, cred)
		if err != nil {
			return nil, nil, err
		}
		h, b, err := c.send(ctx, t, op, method, path, raw)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			c.Forget(tenant)
			continue
		}
		return h, b, err
	}
}

func (c *Client) send(ctx context.Context, t Token, op, method, path string, body []byte) (http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.InstanceURL+"/services/data/"+APIVersion+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("salesforce %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+t.AccessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sforce-Call-Options", "client="+c.o.CallClient)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("salesforce %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.Header, nil, fmt.Errorf("salesforce %s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		// REST errors are an array of {message, errorCode, fields} (errorcodes); keep the first code.
		var errs []struct {
			ErrorCode string `json:"errorCode"`
		}
		_ = json.Unmarshal(b, &errs)
		e := &APIError{Op: op, Status: resp.StatusCode}
		if len(errs) > 0 {
			e.ErrorCode = errs[0].ErrorCode
		}
		return resp.Header, b, e
	}
	return resp.Header, b, nil
}

// Usage is the org's daily API allocation: used and allowed in the rolling 24 hours.
type Usage struct {
	Used, Max int
}

// ParseLimitInfo reads Sforce-Limit-Info ("api-usage=18/5000"); ok is false when the header is absent or
// malformed.
func ParseLimitInfo(h http.Header) (Usage, bool) {
	for _, part := range strings.Split(h.Get("Sforce-Limit-Info"), ",") {
		v, found := strings.CutPrefix(strings.TrimSpace(part), "api-usage=")
		if !found {
			continue
		}
		used, max, found := strings.Cut(v, "/")
		u, err1 := strconv.Atoi(used)
		m, err2 := strconv.Atoi(max)
		if found && err1 == nil && err2 == nil && u >= 0 && m > 0 {
			return Usage{Used: u, Max: m}, true
		}
	}
	return Usage{}, false
}

// TestFailure is why a connection does not work, as a tenant admin can act on it: Code is stable, Message
// says what to change in Salesforce. Neither holds a secret or the username.
type TestFailure struct {
	Code    string
	Message string
}

func (f *TestFailure) Error() string { return f.Code + ": " + f.Message }

// The codes of a failed connection test.
const (
	CodeNotPreauthorized  = "salesforce_not_preauthorized"
	CodeBadSignature      = "salesforce_bad_signature"
	CodeWrongAudience     = "salesforce_wrong_audience"
	CodeUnknownConsumer   = "salesforce_unknown_consumer_key"
	CodeTokenRefused      = "salesforce_token_refused"
	CodeAPIDisabled       = "salesforce_api_not_allowed"
	CodeLimitExceeded     = "salesforce_daily_limit_exceeded"
	CodeSessionRefused    = "salesforce_session_refused"
	CodeUnreachable       = "salesforce_unreachable"
	CodeStatusPrefix      = "salesforce_status_"
	CodeInvalidCredential = "salesforce_credential_invalid"
)

// Test signs in with a fresh assertion (never the cached token: the test is of the credential as it is
// now) and reads the org's limits, as the sync will. It returns the daily API usage when it works, a
// *TestFailure when Salesforce refused or could not be reached.
func (c *Client) Test(ctx context.Context, tenant core.TenantID, cred Credential) (Usage, error) {
	c.Forget(tenant)
	if _, err := ParsePrivateKey(cred.PrivateKeyPEM); err != nil || !ValidHost(cred.Host) {
		return Usage{}, &TestFailure{Code: CodeInvalidCredential, Message: "the stored credential is unusable; PUT the connection again"}
	}
	t, err := c.Token(ctx, tenant, cred)
	if err != nil {
		return Usage{}, tokenFailure(err)
	}
	h, b, err := c.send(ctx, t, "limits", http.MethodGet, "/limits", nil)
	var ae *APIError
	switch {
	case err == nil:
	case errors.As(err, &ae) && ae.ErrorCode == "REQUEST_LIMIT_EXCEEDED":
		return Usage{}, &TestFailure{Code: CodeLimitExceeded, Message: "the org's daily API allocation is used up (Salesforce sends no time to retry); the connection works again as the rolling 24 hours free requests"}
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return Usage{}, &TestFailure{Code: CodeSessionRefused, Message: "Salesforce issued a token but refused it at once; check the connected app's IP relaxation and session policies"}
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return Usage{}, &TestFailure{Code: CodeAPIDisabled, Message: withCode("the integration user may not use the REST API: give its profile or a permission set \"API Enabled\" and \"View Setup and Configuration\"", ae.ErrorCode)}
	case errors.As(err, &ae):
		return Usage{}, &TestFailure{Code: CodeStatusPrefix + strconv.Itoa(ae.Status), Message: withCode("Salesforce refused the limits call with status "+strconv.Itoa(ae.Status), ae.ErrorCode)}
	default:
		return Usage{}, &TestFailure{Code: CodeUnreachable, Message: "the org's instance did not answer"}
	}
	if u, ok := ParseLimitInfo(h); ok {
		return u, nil
	}
	var lim struct {
		DailyAPIRequests struct{ Max, Remaining int } `json:"DailyApiRequests"`
	}
	_ = json.Unmarshal(b, &lim)
	return Usage{Used: lim.DailyAPIRequests.Max - lim.DailyAPIRequests.Remaining, Max: lim.DailyAPIRequests.Max}, nil
}

// tokenFailure names what the token endpoint refused, by Salesforce's error and description.
func tokenFailure(err error) error {
	var te *TokenError
	if !errors.As(err, &te) {
		return &TestFailure{Code: CodeUnreachable, Message: "the Salesforce login host did not answer"}
	}
	switch {
	case te.Code == "invalid_client_id":
		return &TestFailure{Code: CodeUnknownConsumer, Message: "the org has no connected app with this consumer key: copy it from the app's Manage Consumer Details (a new app can take up to 10 minutes to become active), and check that login or sandbox host names the right org"}
	case te.Code == "invalid_grant" && te.Description == "user hasn't approved this consumer":
		return &TestFailure{Code: CodeNotPreauthorized, Message: "the integration user is not pre-authorised for the connected app (or the username is wrong): set the app's Permitted Users to \"Admin approved users are pre-authorized\" and add the user's profile or a permission set to the app"}
	case te.Code == "invalid_grant" && te.Description == "audience is invalid":
		return &TestFailure{Code: CodeWrongAudience, Message: "the login host does not match the org: use test.salesforce.com for a sandbox, login.salesforce.com for production"}
	case te.Code == "invalid_grant":
		return &TestFailure{Code: CodeBadSignature, Message: "Salesforce could not verify the signed assertion: the certificate uploaded to the connected app (\"Use digital signatures\") must be made from the private key stored here (or this server's clock is minutes off)"}
	}
	return &TestFailure{Code: CodeTokenRefused, Message: withCode("Salesforce refused the token request", te.Code)}
}

// withCode appends Salesforce's error code when it is a plain identifier (never free text).
func withCode(msg, code string) string {
	if code == "" || len(code) > 64 || strings.IndexFunc(code, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}) >= 0 {
		return msg
	}
	return msg + " (" + code + ")"
}
