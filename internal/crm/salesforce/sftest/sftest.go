// Package sftest is a fake Salesforce org for tests: the OAuth 2.0 JWT bearer token endpoint of the
// login (or sandbox) host and the part of the REST API a connection test reads (GET /limits). It answers
// as Salesforce does, each behaviour with its source in a comment:
//
//   - the token endpoint checks the assertion like Salesforce: iss must be a connected app's consumer key,
//     the RS256 signature must verify against the certificate uploaded to that app, aud must be the
//     login host the request went to, exp must lie within 3 minutes, and sub must be a user who approved
//     the app or whose profile is pre-authorised; otherwise it answers 400 with Salesforce's
//     {"error","error_description"} body;
//   - a success carries access_token, instance_url, id, token_type and scope but no refresh token and no
//     expiry: the client must ask again with a fresh assertion;
//   - REST errors are an array of {message, errorCode}; an expired or unknown token is 401
//     INVALID_SESSION_ID; every answer carries Sforce-Limit-Info and never Retry-After.
package sftest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The hosts a JWT's aud names (help.salesforce.com remoteaccess_oauth_jwt_flow: "aud: the authorization
// server's URL: https://login.salesforce.com, https://test.salesforce.com or the Experience Cloud site").
const (
	LoginAudience   = "https://login.salesforce.com"
	SandboxAudience = "https://test.salesforce.com"
)

// GrantType is the JWT bearer grant (RFC 7523 §2.1; the Salesforce JWT flow page's request example).
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// MaxValidity is how far ahead exp may lie: "The validity must be the expiration time of the assertion
// within 3 minutes" (remoteaccess_oauth_jwt_flow, claim exp).
const MaxValidity = 3 * time.Minute

// ClockSkew is how far the asserting server's clock may run ahead of Salesforce's: "Salesforce allows 3
// min of clock skew" (next-capabilities.md §3.2, from the JWT flow's secondary sources).
const ClockSkew = 3 * time.Minute

// APIVersion is the REST version the fake serves under /services/data/ (v66.0 is Spring '26;
// next-capabilities.md §3.3). Other versions answer as an unknown version does: 404 NOT_FOUND.
const APIVersion = "v66.0"

// App is a connected app (or External Client App) of the org: its consumer key and the certificate its
// admin uploaded ("Use digital signatures").
type App struct {
	ConsumerKey string
	Certificate *x509.Certificate
	// PrivateKeyPEM is the key the certificate was made from (PKCS#8 PEM): what a tenant admin gives us.
	PrivateKeyPEM string
}

// User is an org user the JWT's sub names.
type User struct {
	Username string
	// Approved says the user may use the app without consent: the app's policy "Admin approved users are
	// pre-authorized" with the user's profile or permission set, or an earlier interactive approval that
	// included a refresh token (salesforce.stackexchange q/184363). Without it the token endpoint refuses.
	Approved bool
	// Email is the user's e-mail address (User.Email), what a mailbox is matched by; Inactive users
	// (IsActive false) still answer queries.
	Email    string
	Inactive bool
}

// Server is the fake org.
type Server struct {
	srv *httptest.Server
	// App is the org's connected app; tests may replace its certificate to simulate a wrong upload.
	App App
	// Audience is the aud the token endpoint accepts: LoginAudience for production, SandboxAudience for a
	// sandbox.
	Audience string
	// DailyMax is the org's daily API allocation (Enterprise: 100,000 + 1,000 per licence; §3.6).
	DailyMax int

	mu      sync.Mutex
	now     func() time.Time
	users   map[string]User
	tokens  map[string]string // access token → username
	used    int
	calls   map[string]int
	orgID   string
	userIDs map[string]string
	// records: object → id → fields (records.go); deleted records stay with IsDeleted, as in the
	// Recycle Bin.
	records map[string]map[string]*record
	cursors map[string][]map[string]any
	// QueryBatch is the records per query answer (2,000 by default, Salesforce's default batch size;
	// REST API developer guide "Execute a SOQL Query"); tests lower it to exercise nextRecordsUrl.
	QueryBatch int
	writes     []Write
	// IDLimit is the most ids a replication window answers (600,000, Salesforce's); tests lower it.
	IDLimit int
	// earliestDeleted is the oldest deletion getDeleted still reports (PurgeDeleted moves it).
	earliestDeleted time.Time
}

// New starts a fake production org with one connected app (a fresh 2048-bit key and self-signed
// certificate, as `openssl req -x509` makes for the JWT flow) and no users.
func New(t testing.TB) *Server {
	t.Helper()
	app, err := NewApp()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{App: app, Audience: LoginAudience, DailyMax: 15000, now: time.Now,
		users: map[string]User{}, tokens: map[string]string{}, calls: map[string]int{},
		orgID: "00D" + randomID(12), userIDs: map[string]string{}, records: map[string]map[string]*record{},
		cursors: map[string][]map[string]any{}, QueryBatch: 2000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// NewApp makes a connected app with a fresh key pair and self-signed certificate.
func NewApp() (App, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return App{}, err
	}
	cert, err := SelfSigned(key)
	if err != nil {
		return App{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return App{}, err
	}
	// Consumer keys are 85 characters starting with 3MVG (as the connected app's "Manage Consumer
	// Details" shows them); the length is not checked by anyone, the prefix makes logs recognisable.
	return App{ConsumerKey: "3MVG9" + randomID(80), Certificate: cert,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}, nil
}

// SelfSigned makes a self-signed certificate for key, as an admin uploads to a connected app.
func SelfSigned(key *rsa.PrivateKey) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "connecthub-crm"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// URL is the fake's base URL: both the login host and the org's instance.
func (s *Server) URL() string { return s.srv.URL }

// SetClock replaces the clock the fake checks exp against.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddUser adds (or replaces) an org user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Username] = u
	if s.userIDs[u.Username] == "" {
		s.userIDs[u.Username] = newID("005")
	}
}

// UserID is the org's id of the user with this username ("" if there is none).
func (s *Server) UserID(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userIDs[username]
}

// ExpireSessions ends every session, as an org's session timeout or an admin's revocation does; the next
// REST call answers 401 INVALID_SESSION_ID.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Calls counts the requests served, by "METHOD /path" (the version and query left out of the path).
func (s *Server) Calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

// SetUsage sets the API requests used in the rolling 24 hours.
func (s *Server) SetUsage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = n
}

var dataPath = regexp.MustCompile(`^/services/data/(v[0-9]+\.[0-9])(/.*)?$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	key := r.Method + " " + r.URL.Path
	if m := dataPath.FindStringSubmatch(r.URL.Path); m != nil {
		key = r.Method + " " + m[2]
	}
	s.calls[key]++
	s.mu.Unlock()
	if r.URL.Path == "/services/oauth2/token" {
		s.token(w, r)
		return
	}
	m := dataPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		restError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if !s.session(r) {
		// "Session expired or invalid" with INVALID_SESSION_ID, status 401 (REST API developer guide,
		// errorcodes: "401 — The session ID or OAuth token used has expired or is invalid").
		restError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	s.mu.Lock()
	if s.used >= s.DailyMax {
		s.mu.Unlock()
		// The daily allocation exhausted is a 403 REQUEST_LIMIT_EXCEEDED, with no Retry-After (§3.6).
		restError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	}
	s.used++
	// Every REST answer reports the org's usage (REST API developer guide, "Limit Info header":
	// Sforce-Limit-Info: api-usage=18/5000).
	w.Header().Set("Sforce-Limit-Info", "api-usage="+strconv.Itoa(s.used)+"/"+strconv.Itoa(s.DailyMax))
	used, max := s.used, s.DailyMax
	s.mu.Unlock()
	if m[1] != APIVersion {
		restError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	switch {
	case s.routeRecords(w, r, m[2]):
	case s.replication(w, r, m[2]):
	case m[2] == "/limits" && r.Method == http.MethodGet:
		// GET /limits: each limit as {"Max","Remaining"} (resources_limits); the daily allocation is
		// DailyApiRequests.
		writeJSON(w, http.StatusOK, map[string]any{
			"DailyApiRequests":    map[string]int{"Max": max, "Remaining": max - used},
			"DailyBulkApiBatches": map[string]int{"Max": 15000, "Remaining": 15000},
		})
	default:
		restError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
}

// session reports whether the request carries a live access token.
func (s *Server) session(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok = s.tokens[tok]
	return ok
}

// tokenError is the token endpoint's error answer: 400 with {"error","error_description"} (OAuth 2.0
// RFC 6749 §5.2, as Salesforce sends it; bodies below as reported by Salesforce users).
func tokenError(w http.ResponseWriter, code, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		tokenError(w, "invalid_request", "must use HTTP POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "invalid request")
		return
	}
	if r.PostForm.Get("grant_type") != GrantType {
		// The answer to any grant type the endpoint does not know (salesforce.stackexchange, common
		// report: {"error":"unsupported_grant_type","error_description":"grant type not supported"}).
		tokenError(w, "unsupported_grant_type", "grant type not supported")
		return
	}
	s.mu.Lock()
	app, audience, now := s.App, s.Audience, s.now()
	s.mu.Unlock()
	var claims jwt.RegisteredClaims
	parsed, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), &claims, func(t *jwt.Token) (any, error) {
		// The app is found by iss first; only its certificate can verify the signature.
		if claims.Issuer == "" || claims.Issuer != app.ConsumerKey {
			return nil, errUnknownClient
		}
		return app.Certificate.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired())
	switch {
	case errors.Is(err, errUnknownClient):
		// An iss that is no consumer key of the org (salesforce.stackexchange, "invalid_client_id client
		// identifier invalid", the JWT flow's answer to a wrong or not yet active consumer key).
		tokenError(w, "invalid_client_id", "client identifier invalid")
		return
	case err != nil && !errors.Is(err, jwt.ErrTokenExpired) || err == nil && !parsed.Valid:
		// A signature the uploaded certificate does not verify, or a malformed assertion:
		// "invalid_grant" (next-capabilities.md §3.2: "invalid_grant (bad signature or expired JWT)").
		tokenError(w, "invalid_grant", "invalid assertion")
		return
	}
	aud := claims.Audience
	switch {
	case len(aud) != 1 || aud[0] != audience:
		// The audience is checked before the user (salesforce.stackexchange q/184363: changing aud turns
		// "user hasn't approved this consumer" into {"error":"invalid_grant","error_description":"audience
		// is invalid"}).
		tokenError(w, "invalid_grant", "audience is invalid")
		return
	case errors.Is(err, jwt.ErrTokenExpired) || claims.ExpiresAt.After(now.Add(MaxValidity+ClockSkew)):
		// exp "within 3 minutes" (remoteaccess_oauth_jwt_flow) of a clock up to 3 minutes ahead; an
		// expired assertion is invalid_grant like a bad signature (§3.2).
		tokenError(w, "invalid_grant", "invalid assertion")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[claims.Subject]
	if !ok || !u.Approved {
		// Not pre-authorised and never approved (help.salesforce.com remoteaccess_oauth_jwt_flow: "prior
		// approval of the app is required"; the answer as users report it, stackexchange q/184363). An
		// unknown username gets the same answer here: we have no source that it differs, and the client
		// must not learn which usernames exist.
		tokenError(w, "invalid_grant", "user hasn't approved this consumer")
		return
	}
	tok := s.orgID + "!" + randomID(40)
	s.tokens[tok] = u.Username
	// The documented success body: no refresh_token, no expires_in (remoteaccess_oauth_jwt_flow, response
	// example; §3.2 "No client secret, and no refresh token comes back").
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok,
		"scope":        "api",
		"instance_url": s.srv.URL,
		"id":           audience + "/id/" + s.orgID + "/" + s.userIDs[u.Username],
		"token_type":   "Bearer",
	})
}

var errUnknownClient = errors.New("unknown consumer key")

// restError answers Salesforce's REST error body: an array of {message, errorCode} (errorcodes, "Status
// Codes and Error Responses"); never a Retry-After (§3.6).
func restError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []map[string]any{{"message": msg, "errorCode": code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomID(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("sftest: random: %v", err))
	}
	return hex.EncodeToString(b)[:n]
}
