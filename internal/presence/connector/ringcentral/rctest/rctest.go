// Package rctest is a fake RingCentral platform for tests: the JWT-grant token endpoint, the extension
// list and the presence update. It answers as RingCentral does, each behaviour with its source in a
// comment: error bodies with errorCode and errors[], rate-limit groups with their headers, a 60-second
// penalty that every request during it restarts, 429 with or without Retry-After, tokens that expire.
// Failures can be injected on top.
package rctest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Extension is one user extension of the fake account.
type Extension struct {
	ID     int64
	Number string
	Email  string
	Status string // Enabled (default) or Disabled
	// BusinessPhone and MobilePhone are the contact's numbers, E.164 with '+' as RingCentral answers them
	// (API reference ContactInfo); empty ones are left out of the answer, as RingCentral does.
	BusinessPhone string
	MobilePhone   string
}

// Push is one presence update received.
type Push struct {
	ExtensionID string
	UserStatus  string
	DNDStatus   string
	At          time.Time
}

// Failure is an answer injected instead of the real one.
type Failure struct {
	Status     int
	RetryAfter string
	// Remaining, when set, is sent as X-Rate-Limit-Remaining (with Window as X-Rate-Limit-Window).
	Remaining string
	Window    string
}

// Rate-limit groups and their default limits per user per app per minute (RingCentral developer
// guide, basics/rate-limits: Light 50, Medium 40, Heavy 10, Auth 5; penalty 60 s).
const (
	Light  = "Light"
	Medium = "Medium"
	Heavy  = "Heavy"
	Auth   = "Auth"
)

// Window is RingCentral's rate-limit window and penalty (X-Rate-Limit-Window: 60).
const Window = 60 * time.Second

// Server is the fake platform.
type Server struct {
	srv          *httptest.Server
	ClientID     string
	ClientSecret string
	JWT          string
	// PageSize of the extension list (default 2, small to exercise paging).
	PageSize int
	// Limits are the requests per minute of each rate group (default RingCentral's: Light 50,
	// Medium 40, Heavy 10, Auth 5). An account may have them raised; so may a test.
	Limits map[string]int
	// OmitRetryAfter leaves Retry-After off the 429 of an exceeded limit: RingCentral may omit it, and a
	// client must then wait at least 30 s (rate-limits: "If the Retry-After header is not present,
	// wait at least 30 seconds").
	OmitRetryAfter bool

	mu        sync.Mutex
	clock     func() time.Time
	exts      []Extension
	tokens    map[string]time.Time // access token → expiry
	pushes    []Push
	failures  map[string][]Failure // "METHOD /path-prefix"
	calls     map[string]int
	presence  map[string]Push
	onPush    chan struct{}
	tokenLife int
	buckets   map[string]*bucket
	subs      map[string]*Subscription
	nextSub   int
	sequence  map[string]int64 // extension → last presence sequence sent

	// HandshakeTimeout is how long the creation handshake waits for the endpoint (3,000 ms, below).
	HandshakeTimeout time.Duration
	// BlacklistAfter is how many failed deliveries in a row blacklist a subscription. RingCentral says
	// only "if you don't return 200 or are down for a long time" (troubleshooting.md); the count is ours.
	BlacklistAfter int
	// Client posts handshakes and deliveries.
	Client *http.Client
}

type bucket struct {
	start   time.Time
	n       int
	penalty time.Time // throttled until then
}

// New starts a fake with a fresh client id, secret and JWT.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{ClientID: "rc-" + random(), ClientSecret: random(), JWT: jwtCredential(), PageSize: 2,
		Limits: map[string]int{Light: 50, Medium: 40, Heavy: 10, Auth: 5},
		tokens: map[string]time.Time{}, failures: map[string][]Failure{}, calls: map[string]int{}, presence: map[string]Push{},
		// The documented sample answer: "expires_in": 7199 (jwt-flow.md).
		onPush: make(chan struct{}, 1024), tokenLife: 7199, buckets: map[string]*bucket{},
		subs: map[string]*Subscription{}, sequence: map[string]int64{}, HandshakeTimeout: HandshakeLimit,
		BlacklistAfter: 3, Client: &http.Client{Timeout: 10 * time.Second}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restapi/v1.0/subscription", s.createSubscription)
	mux.HandleFunc("GET /restapi/v1.0/subscription/{id}", s.getSubscription)
	mux.HandleFunc("PUT /restapi/v1.0/subscription/{id}", s.renewSubscription)
	mux.HandleFunc("POST /restapi/v1.0/subscription/{id}/renew", s.renewSubscription)
	mux.HandleFunc("DELETE /restapi/v1.0/subscription/{id}", s.deleteSubscription)
	mux.HandleFunc("POST /restapi/oauth/token", s.token)
	mux.HandleFunc("GET /restapi/v1.0/account/~/extension", s.list)
	mux.HandleFunc("PUT /restapi/v1.0/account/~/extension/{id}/presence", s.setPresence)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve(mux)))
	t.Cleanup(s.srv.Close)
	return s
}

// group is the rate group of a call (API reference: token Auth; list extensions and update presence
// Medium; read presence Light; subscriptions: create, update and delete Medium, read and renew Light).
func group(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/restapi/oauth/"):
		return Auth
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/presence"):
		return Light
	case strings.HasPrefix(r.URL.Path, "/restapi/v1.0/subscription/") &&
		(r.Method == http.MethodGet || strings.HasSuffix(r.URL.Path, "/renew")):
		return Light
	}
	return Medium
}

func (s *Server) serve(mux *http.ServeMux) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		g := group(r)
		s.mu.Lock()
		s.calls[r.Method+" "+r.URL.Path]++
		f, injected := s.takeFailure(r.Method, r.URL.Path)
		remaining, limited := s.admit(g)
		limit := s.Limits[g]
		s.mu.Unlock()
		// Every answer names its group and what is left of the window (rate-limits, "Rate limit headers").
		w.Header().Set("X-Rate-Limit-Group", g)
		w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
		w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-Rate-Limit-Window", strconv.Itoa(int(Window/time.Second)))
		if injected {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Remaining != "" {
				w.Header().Set("X-Rate-Limit-Remaining", f.Remaining)
				w.Header().Set("X-Rate-Limit-Window", f.Window)
			}
			if f.Status == http.StatusTooManyRequests {
				writeError(w, f.Status, "CMN-301", "Request rate exceeded")
				return
			}
			if f.Status != 0 {
				writeError(w, f.Status, "CMN-211", "Requested resource is temporarily unavailable")
				return
			}
		}
		if limited {
			if !s.OmitRetryAfter {
				w.Header().Set("Retry-After", strconv.Itoa(int(Window/time.Second)))
			}
			writeError(w, http.StatusTooManyRequests, "CMN-301", "Request rate exceeded")
			return
		}
		mux.ServeHTTP(w, r)
	}
}

// admit counts a request of group g. Over the limit, the group is throttled for the penalty, and
// "each request made during the penalty restarts it" (rate-limits, "Rate limit penalty").
func (s *Server) admit(g string) (remaining int, limited bool) {
	now := s.now()
	b := s.buckets[g]
	if b == nil {
		b = &bucket{start: now}
		s.buckets[g] = b
	}
	limit := s.Limits[g]
	if limit <= 0 {
		return 0, false
	}
	if now.Before(b.penalty) {
		b.penalty = now.Add(Window)
		return 0, true
	}
	if now.Sub(b.start) >= Window {
		b.start, b.n = now, 0
	}
	if b.n >= limit {
		b.penalty = now.Add(Window)
		return 0, true
	}
	b.n++
	return limit - b.n, false
}

// SetClock replaces the fake's clock (token expiry, rate windows); nil restores time.Now.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// URL is the base URL to configure.
func (s *Server) URL() string { return s.srv.URL }

// AddExtension adds a user extension.
func (s *Server) AddExtension(e Extension) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exts = append(s.exts, e)
}

// SetTokenLifetime sets expires_in of future tokens.
func (s *Server) SetTokenLifetime(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLife = seconds
}

// RevokeTokens invalidates every token issued so far (the next call gets 401).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// Fail injects failures for the next calls of method on paths starting with prefix. A Failure with
// Status 0 only adds its headers to the real answer.
func (s *Server) Fail(method, prefix string, f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := method + " " + prefix
	s.failures[k] = append(s.failures[k], f...)
}

func (s *Server) takeFailure(method, path string) (Failure, bool) {
	for k, fs := range s.failures {
		m, prefix, _ := strings.Cut(k, " ")
		if m == method && strings.HasPrefix(path, prefix) && len(fs) > 0 {
			s.failures[k] = fs[1:]
			return fs[0], true
		}
	}
	return Failure{}, false
}

// Calls counts requests by "METHOD /path".
func (s *Server) Calls(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[methodPath]
}

// CallsPrefix counts requests whose "METHOD /path" starts with prefix.
func (s *Server) CallsPrefix(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.calls {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// Pushes returns the presence updates received, in order.
func (s *Server) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// PushSignal receives a value after every accepted presence update.
func (s *Server) PushSignal() <-chan struct{} { return s.onPush }

// Presence returns the last presence set for an extension.
func (s *Server) Presence(ext string) (Push, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.presence[ext]
	return p, ok
}

// token is the JWT grant (jwt-flow.md): HTTP Basic with the app's client id and secret, the user's JWT
// as assertion. OAuth errors carry error and error_description beside RingCentral's errors[].
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.ClientID+":"+s.ClientSecret))
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(basic)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Invalid client: " + r.PostForm.Get("client_id"),
			"errors": []any{map[string]string{"errorCode": "OAU-123", "message": "Invalid client"}}})
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type", "error_description": "Unsupported grant type",
			"errors": []any{map[string]string{"errorCode": "OAU-250", "message": "Unsupported grant type"}}})
		return
	}
	if r.PostForm.Get("assertion") != s.JWT {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "Invalid token",
			"errors": []any{map[string]string{"errorCode": "OAU-213", "message": "Token not found"}}})
		return
	}
	tok := "rc-at-" + random()
	s.mu.Lock()
	life := s.tokenLife
	s.tokens[tok] = s.now().Add(time.Duration(life) * time.Second)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": life,
		"refresh_token": "rc-rt-" + random(), "refresh_token_expires_in": 604799, "scope": "ReadAccounts EditPresence",
		"owner_id": "1001", "endpoint_id": random()})
}

// authorized checks the bearer token: unknown → 401 TokenInvalid (OAU-149), expired → 401
// TokenExpired (OAU-213) (basics/errors.md).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	until, ok := s.tokens[tok]
	now := s.now()
	s.mu.Unlock()
	switch {
	case !ok:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errorCode": "TokenInvalid", "message": "Invalid token",
			"errors": []any{map[string]string{"errorCode": "OAU-149", "message": "Invalid token"}}})
		return false
	case !now.Before(until):
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errorCode": "TokenExpired", "message": "Access token expired",
			"errors": []any{map[string]string{"errorCode": "OAU-213", "message": "Token expired"}}})
		return false
	}
	return true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	s.mu.Lock()
	size := s.PageSize
	if size <= 0 {
		size = 2
	}
	users := append([]Extension(nil), s.exts...)
	s.mu.Unlock()
	total := (len(users) + size - 1) / size
	start := min((page-1)*size, len(users))
	end := min(start+size, len(users))
	records := []any{}
	for _, e := range users[start:end] {
		status := e.Status
		if status == "" {
			status = "Enabled"
		}
		records = append(records, map[string]any{
			"uri": fmt.Sprintf("%s/restapi/v1.0/account/1001/extension/%d", s.srv.URL, e.ID), "id": e.ID,
			"extensionNumber": e.Number, "name": "User " + e.Number, "type": "User", "status": status,
			"contact": contact(e),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"uri":     s.srv.URL + "/restapi/v1.0/account/1001/extension?page=" + strconv.Itoa(page),
		"records": records,
		"paging": map[string]any{"page": page, "totalPages": total, "perPage": size, "totalElements": len(users),
			"pageStart": start, "pageEnd": max(end-1, 0)},
		"navigation": map[string]any{},
	})
}

func (s *Server) setPresence(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var in struct {
		UserStatus string `json:"userStatus"`
		DNDStatus  string `json:"dndStatus"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [body] value is invalid")
		return
	}
	// presence API: userStatus Offline|Busy|Available; dndStatus TakeAllCalls|DoNotAcceptDepartmentCalls|
	// DoNotAcceptAnyCalls (TakeDepartmentCallsOnly is not supported through the API).
	switch in.UserStatus {
	case "Offline", "Busy", "Available":
	default:
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [userStatus] value is invalid")
		return
	}
	switch in.DNDStatus {
	case "", "TakeAllCalls", "DoNotAcceptDepartmentCalls", "DoNotAcceptAnyCalls":
	default:
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [dndStatus] value is invalid")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	known := false
	for _, e := range s.exts {
		if strconv.FormatInt(e.ID, 10) == id {
			known = true
		}
	}
	if !known {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "CMN-102", "Resource for parameter [extensionId] is not found")
		return
	}
	p := Push{ExtensionID: id, UserStatus: in.UserStatus, DNDStatus: in.DNDStatus, At: time.Now()}
	s.pushes = append(s.pushes, p)
	s.presence[id] = p
	s.mu.Unlock()
	select {
	case s.onPush <- struct{}{}:
	default:
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"uri":            s.srv.URL + "/restapi/v1.0/account/1001/extension/" + id + "/presence",
		"extension":      map[string]any{"id": id},
		"presenceStatus": in.UserStatus, "telephonyStatus": "NoCall", "userStatus": in.UserStatus, "dndStatus": in.DNDStatus,
		"allowSeeMyPresence": true, "ringOnMonitoredCall": false, "pickUpCallsOnHold": false,
	})
}

func contact(e Extension) map[string]any {
	c := map[string]any{"firstName": "User", "lastName": e.Number, "email": e.Email, "emailAsLoginName": true}
	if e.BusinessPhone != "" {
		c["businessPhone"] = e.BusinessPhone
	}
	if e.MobilePhone != "" {
		c["mobilePhone"] = e.MobilePhone
	}
	return c
}

// jwtCredential looks like the JWT a user creates in RingCentral's developer console: three base64url
// parts, an RS256 header and the platform's token endpoint as audience (jwt-flow.md). The fake compares
// it as an opaque string, as the platform's answer to a wrong one is all the connector sees.
func jwtCredential() string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"kid":"` + random() + `","alg":"RS256","typ":"JWT"}`))
	claims := enc([]byte(`{"aud":"https://platform.ringcentral.com/restapi/oauth/token","sub":"1001","iss":"https://platform.ringcentral.com","exp":3900000000,"iat":1700000000,"jti":"` + random() + `"}`))
	return header + "." + claims + "." + enc([]byte(random()+random()))
}

// writeError answers RingCentral's error body: {"errorCode","message","errors":[{"errorCode","message"}]}
// (basics/errors.md).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errorCode": code, "message": msg,
		"errors": []any{map[string]string{"errorCode": code, "message": msg}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func random() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
