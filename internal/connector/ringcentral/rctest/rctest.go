// Package rctest is a fake RingCentral platform for tests: the JWT-grant token endpoint, the extension
// list and the presence update, answering with the payloads RingCentral documents, plus failure
// injection (429 with Retry-After, rate-limit headers, 5xx).
package rctest

import (
	"crypto/rand"
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

// Server is the fake platform.
type Server struct {
	srv          *httptest.Server
	ClientID     string
	ClientSecret string
	JWT          string
	// PageSize of the extension list (default 2, small to exercise paging).
	PageSize int

	mu        sync.Mutex
	exts      []Extension
	tokens    map[string]bool
	pushes    []Push
	failures  map[string][]Failure // "METHOD /path-prefix"
	calls     map[string]int
	presence  map[string]Push
	onPush    chan struct{}
	tokenLife int
}

// New starts a fake with a fresh client id, secret and JWT.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{ClientID: "rc-" + random(), ClientSecret: random(), JWT: jwtCredential(), PageSize: 2,
		tokens: map[string]bool{}, failures: map[string][]Failure{}, calls: map[string]int{}, presence: map[string]Push{},
		onPush: make(chan struct{}, 1024), tokenLife: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restapi/oauth/token", s.token)
	mux.HandleFunc("GET /restapi/v1.0/account/~/extension", s.list)
	mux.HandleFunc("PUT /restapi/v1.0/account/~/extension/{id}/presence", s.setPresence)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.Method+" "+r.URL.Path]++
		f, injected := s.takeFailure(r.Method, r.URL.Path)
		s.mu.Unlock()
		if injected {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Remaining != "" {
				w.Header().Set("X-Rate-Limit-Remaining", f.Remaining)
				w.Header().Set("X-Rate-Limit-Window", f.Window)
			}
			if f.Status != 0 {
				writeJSON(w, f.Status, map[string]any{"errorCode": "CMN-301", "message": "Request rate exceeded",
					"errors": []any{map[string]string{"errorCode": "CMN-301", "message": "Request rate exceeded"}}})
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
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
	s.tokens = map[string]bool{}
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

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.ClientID+":"+s.ClientSecret))
	if r.Header.Get("Authorization") != basic {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "errors": []any{map[string]string{"errorCode": "OAU-123", "message": "Invalid client"}}})
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") != s.JWT {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "errors": []any{map[string]string{"errorCode": "OAU-213", "message": "Token not found"}}})
		return
	}
	tok := "rc-at-" + random()
	s.mu.Lock()
	s.tokens[tok] = true
	life := s.tokenLife
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": life,
		"refresh_token": "rc-rt-" + random(), "refresh_token_expires_in": 604800, "scope": "ReadAccounts EditPresence", "owner_id": "1001"})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	ok := s.tokens[tok]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errorCode": "TokenInvalid", "message": "Invalid token",
			"errors": []any{map[string]string{"errorCode": "OAU-149", "message": "Invalid token"}}})
	}
	return ok
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
	var users []Extension
	for _, e := range s.exts {
		users = append(users, e)
	}
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
	if err := json.Unmarshal(body, &in); err != nil || in.UserStatus == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorCode": "InvalidParameter", "message": "userStatus is required"})
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
		writeJSON(w, http.StatusNotFound, map[string]any{"errorCode": "CMN-102", "message": "Resource for parameter [extensionId] is not found"})
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
