package graphtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

// User is a directory user of the fake.
type User struct {
	ID                string   `json:"id"`
	DisplayName       string   `json:"displayName,omitempty"`
	UserPrincipalName string   `json:"userPrincipalName,omitempty"`
	Mail              string   `json:"mail,omitempty"`
	BusinessPhones    []string `json:"businessPhones"`
	MobilePhone       string   `json:"mobilePhone,omitempty"`
	Department        string   `json:"department,omitempty"`
	JobTitle          string   `json:"jobTitle,omitempty"`
	AccountEnabled    bool     `json:"accountEnabled"`
}

// Subscription is a subscription as the fake holds it, including what Graph never returns.
type Subscription struct {
	ID                       string
	Tenant                   string
	CreatorID                string // the delegated user, "" for app-only
	ApplicationID            string
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	ExpiresAt                time.Time
	IncludeResourceData      bool
	EncryptionCertificate    string
	EncryptionCertificateID  string
	LatestTLS                string
	UserIDs                  []string // presence filter ids
	Reauthorized             int
}

// Request is one call the fake received.
type Request struct {
	Method   string
	Path     string
	Query    url.Values
	Body     []byte
	Identity Identity
	Status   int
}

// Failure is an answer to inject instead of the real one.
type Failure struct {
	Status     int
	RetryAfter string // Retry-After header value, "" for none
	Code       string // Graph error code
}

// Graph is a fake Microsoft Graph v1.0 on plain HTTP at 127.0.0.1 (kiota sends tokens to localhost over
// HTTP; everything else must be HTTPS). Tokens must come from its Authority.
type Graph struct {
	srv  *httptest.Server
	auth *Authority
	// Tokens mints the validationTokens of a rich notification for tenant (idptest in tests).
	Tokens func(tenant string) string
	// Client posts handshakes and notifications (to the handler under test).
	Client *http.Client
	// IncludeSequence puts presence's sequenceNumber into notifications and reads (default true). The
	// documentation's decrypted sample predates the property.
	IncludeSequence bool
	// DeltaPageSize is the users per delta page (default 2, small to exercise paging).
	DeltaPageSize int
	// SubscriptionsPageSize is the subscriptions per page of GET /subscriptions (default 100). Graph
	// pages the list with @odata.nextLink (Learn, subscription-list "Response": "the response might
	// also include an @odata.nextLink").
	SubscriptionsPageSize int
	// PlacesPageSize is the rooms or room lists per Places page (default 100, Graph's).
	PlacesPageSize int
	// CalendarPageSize is the events per calendarView page (default 10, Graph's default for event lists).
	CalendarPageSize int
	// EventClock stamps events' lastModifiedDateTime (default time.Now), so tests can order edits
	// against another service's clock.
	EventClock func() time.Time

	// MailboxConcurrency is how many requests of one app to one mailbox Outlook serves at once (default
	// 4, GH includes/throttling-outlook.md: per app and mailbox); one more is refused with 429
	// ApplicationThrottled "Application is over its MailboxConcurrency limit." (the body quoted in
	// calcom/cal.diy#343 and magodo/terraform-provider-outlook#21; they quote no Retry-After, so the
	// SDK's retry handler backs off on its own).
	MailboxConcurrency int
	// MailboxLatency is how long Exchange takes over a mailbox request (default none), which makes
	// concurrent requests overlap in a test.
	MailboxLatency time.Duration

	mu        sync.Mutex
	inFlight  map[string]int // app/tenant/mailbox → requests being served
	maxFlight map[string]int // … and the most at once
	requests  []Request
	failures  map[string][]Failure // "METHOD /path-prefix"
	subs      map[string]*Subscription
	nextSub   int
	users     map[string]map[string]*User // tenant → id → user
	removed   map[string]map[string]string
	changes   map[string][]userChange // tenant → log
	version   map[string]int
	minDelta  map[string]int
	presence  map[string]map[string]presence
	sequence  int
	handshake time.Duration
	// Presence sessions set by apps (setPresence), and each user's own (the Teams client's) presence
	// that they aggregate with; see presence_sessions.go.
	own       map[string]map[string]presence
	sessions  map[string]map[string]map[string]appSession // tenant → user → sessionId
	writes    []PresenceWrite
	pending   []Delivery
	onWrite   chan struct{}
	places    map[string]map[string]PlaceRoom     // tenant → lower-case e-mail → room
	roomLists map[string]map[string]PlaceRoomList // tenant → lower-case e-mail → list
	calendars map[string]map[string]*calendar     // tenant → lower-case room e-mail → calendar
	// ContactsPageSize is the contacts per delta page (default 10, small to exercise paging; Graph
	// takes Prefer: odata.maxpagesize).
	ContactsPageSize int
	// ContactClock stamps contacts' lastModifiedDateTime (default time.Now), so tests can order edits
	// against another service's clock.
	ContactClock func() time.Time
	contacts     map[string]map[string]*contactFolder // tenant → lower-case mailbox/folder → folder
	sent         []SentMail
}

type userChange struct {
	version int
	id      string
}

type presence struct{ availability, activity, sequence string }

// NewGraph starts a fake Graph whose tokens come from auth.
func NewGraph(t testing.TB, auth *Authority) *Graph {
	t.Helper()
	g := &Graph{auth: auth, Client: &http.Client{Timeout: 15 * time.Second}, IncludeSequence: true, DeltaPageSize: 2,
		failures: map[string][]Failure{}, subs: map[string]*Subscription{}, users: map[string]map[string]*User{},
		removed: map[string]map[string]string{}, changes: map[string][]userChange{}, version: map[string]int{},
		minDelta: map[string]int{}, presence: map[string]map[string]presence{}, handshake: 10 * time.Second}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	// kiota asks for "<base URL>/.default"; the fake stands in for graph.microsoft.com, so its tokens
	// carry Graph's audience as the real ones do.
	auth.StandForGraph(g.srv.URL)
	return g
}

// URL is the base URL to configure (GRAPH_BASE_URL), without /v1.0.
func (g *Graph) URL() string { return g.srv.URL }

// Requests returns the calls received so far.
func (g *Graph) Requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Request(nil), g.requests...)
}

// Count returns how many calls matched method and a path prefix (after /v1.0).
func (g *Graph) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range g.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// Fail makes the next calls of method on paths starting with pathPrefix (after /v1.0) fail, one per
// Failure, before answering normally again.
func (g *Graph) Fail(method, pathPrefix string, f ...Failure) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := method + " " + pathPrefix
	g.failures[k] = append(g.failures[k], f...)
}

// Subscriptions returns copies of the live subscriptions, by id.
func (g *Graph) Subscriptions() map[string]Subscription {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]Subscription{}
	for id, s := range g.subs {
		c := *s
		c.UserIDs = append([]string(nil), s.UserIDs...)
		out[id] = c
	}
	return out
}

// PutSubscription adds a subscription as if created earlier (no handshake) and returns its id.
func (g *Graph) PutSubscription(s Subscription) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextSub++
	if s.ID == "" {
		s.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", g.nextSub, time.Now().UnixNano()&0xffffffffffff)
	}
	if s.ExpiresAt.IsZero() {
		s.ExpiresAt = time.Now().Add(time.Hour)
	}
	g.subs[s.ID] = &s
	return s.ID
}

// PutUser creates or changes a user (recorded for users delta).
func (g *Graph) PutUser(tenant string, u User) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.users[tenant] == nil {
		g.users[tenant] = map[string]*User{}
	}
	c := u
	g.users[tenant][u.ID] = &c
	if g.removed[tenant] != nil {
		delete(g.removed[tenant], u.ID)
	}
	g.logChange(tenant, u.ID)
}

// RemoveUser deletes a user; reason is "changed" (soft delete) or "deleted".
func (g *Graph) RemoveUser(tenant, id, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.users[tenant], id)
	if g.removed[tenant] == nil {
		g.removed[tenant] = map[string]string{}
	}
	g.removed[tenant][id] = reason
	g.logChange(tenant, id)
}

// ExpireDeltaLinks makes every delta link issued so far for tenant invalid (410 Gone).
func (g *Graph) ExpireDeltaLinks(tenant string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.minDelta[tenant] = g.version[tenant] + 1
}

func (g *Graph) logChange(tenant, id string) {
	g.version[tenant]++
	g.changes[tenant] = append(g.changes[tenant], userChange{version: g.version[tenant], id: id})
}

// Presence returns a user's current presence in the fake.
func (g *Graph) Presence(tenant, userID string) (availability, activity string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.presence[tenant][userID]
	return p.availability, p.activity
}

// SetPresenceQuietly changes a presence without notifying anyone (a change during a lapse).
func (g *Graph) SetPresenceQuietly(tenant, userID, availability, activity string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.setPresence(tenant, userID, availability, activity)
}

func (g *Graph) setPresence(tenant, userID, availability, activity string) presence {
	if g.presence[tenant] == nil {
		g.presence[tenant] = map[string]presence{}
	}
	g.sequence++
	p := presence{availability: availability, activity: activity, sequence: fmt.Sprintf("%016X", g.sequence)}
	if len(g.sessions[tenant][userID]) > 0 {
		// The user's own change aggregates with the apps' sessions (presence_sessions.go).
		g.ownOf(tenant)[userID] = p
		p = g.aggregate(tenant, userID)
	}
	g.presence[tenant][userID] = p
	return p
}

// Delivery is one POST Graph would make to a notification URL.
type Delivery struct {
	URL  string
	Body []byte
}

// SetPresence changes a user's presence and returns the rich notifications Graph would post, one per
// subscription that covers the user, without sending them (Send does).
func (g *Graph) SetPresence(tenant, userID, availability, activity string) ([]Delivery, error) {
	g.mu.Lock()
	p := g.setPresence(tenant, userID, availability, activity)
	var subs []Subscription
	for _, s := range g.subs {
		if s.Tenant == tenant && contains(s.UserIDs, userID) {
			subs = append(subs, *s)
		}
	}
	g.mu.Unlock()
	var out []Delivery
	for _, s := range subs {
		body, err := g.presenceNotification(s, userID, p)
		if err != nil {
			return nil, err
		}
		out = append(out, Delivery{URL: s.NotificationURL, Body: body})
	}
	return out, nil
}

func (g *Graph) presenceNotification(s Subscription, userID string, p presence) ([]byte, error) {
	resource := map[string]any{"@odata.type": "#microsoft.graph.presence", "@odata.id": "users/" + userID + "/presence",
		"id": userID, "availability": p.availability, "activity": p.activity}
	if g.IncludeSequence {
		resource["sequenceNumber"] = p.sequence
	}
	item := map[string]any{
		"subscriptionId": s.ID, "clientState": s.ClientState, "changeType": "updated", "tenantId": s.Tenant,
		"resource": "communications/presences/" + userID, "organizationId": s.Tenant,
		"subscriptionExpirationDateTime": s.ExpiresAt.Format("2006-01-02T15:04:05.0000000Z"),
		"resourceData":                   map[string]any{"@odata.id": "users/" + userID + "/presence", "@odata.type": "#microsoft.graph.presence", "id": userID},
	}
	body := map[string]any{"value": []any{item}}
	if s.IncludeResourceData {
		der, err := base64.StdEncoding.DecodeString(s.EncryptionCertificate)
		if err != nil {
			return nil, fmt.Errorf("subscription certificate: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("subscription certificate: %w", err)
		}
		plain, _ := json.Marshal(resource)
		ec, err := graphcrypto.EncryptLikeGraph(cert, s.EncryptionCertificateID, plain)
		if err != nil {
			return nil, err
		}
		item["encryptedContent"] = map[string]any{"data": ec.Data, "dataSignature": ec.DataSignature, "dataKey": ec.DataKey,
			"encryptionCertificateId": ec.EncryptionCertificateID, "encryptionCertificateThumbprint": ec.EncryptionCertificateThumbprint}
		if g.Tokens != nil {
			body["validationTokens"] = []string{g.Tokens(s.Tenant)}
		}
	}
	return json.Marshal(body)
}

// Send posts one delivery and returns the status the receiver answered.
func (g *Graph) Send(ctx context.Context, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Notify is SetPresence followed by Send of every delivery; it fails unless each was accepted (2xx).
func (g *Graph) Notify(ctx context.Context, tenant, userID, availability, activity string) error {
	ds, err := g.SetPresence(tenant, userID, availability, activity)
	if err != nil {
		return err
	}
	for _, d := range ds {
		code, err := g.Send(ctx, d)
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("notification answered %d", code)
		}
	}
	return nil
}

// SendLifecycle posts a lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed)
// for the subscription to its lifecycleNotificationUrl.
func (g *Graph) SendLifecycle(ctx context.Context, subID, event string) (int, error) {
	g.mu.Lock()
	s, ok := g.subs[subID]
	var c Subscription
	if ok {
		c = *s
	}
	g.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no subscription %s", subID)
	}
	return g.sendLifecycle(ctx, c, event)
}

// DropSubscription deletes a subscription on Graph's side without telling anyone (a lost lifecycle
// notification, an expiry).
func (g *Graph) DropSubscription(subID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.subs, subID)
}

// RemoveSubscription deletes a subscription on Graph's side and posts subscriptionRemoved.
func (g *Graph) RemoveSubscription(ctx context.Context, subID string) (int, error) {
	g.mu.Lock()
	s, ok := g.subs[subID]
	var c Subscription
	if ok {
		c = *s
		delete(g.subs, subID)
	}
	g.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no subscription %s", subID)
	}
	return g.sendLifecycle(ctx, c, "subscriptionRemoved")
}

func (g *Graph) sendLifecycle(ctx context.Context, s Subscription, event string) (int, error) {
	body, _ := json.Marshal(map[string]any{"value": []any{map[string]any{
		"subscriptionId": s.ID, "subscriptionExpirationDateTime": s.ExpiresAt.Format("2006-01-02T15:04:05.0000000Z"),
		"tenantId": s.Tenant, "clientState": s.ClientState, "lifecycleEvent": event,
	}}})
	return g.Send(ctx, Delivery{URL: s.LifecycleNotificationURL, Body: body})
}

// ----- HTTP side -----

type reply struct {
	status  int
	body    any
	headers map[string]string
}

func (g *Graph) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	who, authed := g.auth.IdentifyRequest(r)
	rec := Request{Method: r.Method, Path: path, Query: r.URL.Query(), Body: body, Identity: who}
	var rep reply
	switch {
	case !strings.HasPrefix(r.URL.Path, "/v1.0/"):
		rep = graphError(http.StatusNotFound, "BadRequest", "Invalid version")
	case !authed:
		// Graph answers a missing, foreign or expired token with 401 and a WWW-Authenticate challenge
		// (Learn, resolve-auth-errors "401 Unauthorized").
		msg := "Access token validation failure. Invalid audience or expired token."
		if r.Header.Get("Authorization") == "" {
			msg = "Access token is empty."
		}
		rep = graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		rep.headers = map[string]string{"WWW-Authenticate": `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`}
	case who.Audience != GraphResource:
		// Graph accepts only tokens issued for it (aud https://graph.microsoft.com); a token for another
		// resource, even from the same tenant and app, is refused.
		rep = graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	default:
		mailbox, done := g.enterMailbox(who, path)
		defer done()
		if mailbox == overConcurrency {
			rep = graphError(http.StatusTooManyRequests, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
			break
		}
		if mailbox != "" && g.MailboxLatency > 0 {
			time.Sleep(g.MailboxLatency)
		}
		if f, ok := g.takeFailure(r.Method, path); ok {
			rep = graphError(f.Status, cmpOr(f.Code, failureCode(f.Status)), failureMessage(f.Status))
			if f.RetryAfter != "" {
				rep.headers = map[string]string{"Retry-After": f.RetryAfter}
			}
		} else {
			rep = g.route(r, path, body, who)
		}
	}
	rec.Status = rep.status
	g.mu.Lock()
	g.requests = append(g.requests, rec)
	g.mu.Unlock()
	for k, v := range rep.headers {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// failureCode and failureMessage are what Graph says with a throttled or failing answer (Learn,
// errors "Code property" and throttling "Best practices to handle throttling": 429 and 503 carry
// Retry-After, in seconds).
func failureCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable"
	case http.StatusGatewayTimeout:
		return "UnknownError"
	}
	return "generalException"
}

func failureMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Too many requests from Identifier:" + randomString("app") + " under category:throttle.ms.graph."
	case http.StatusServiceUnavailable:
		return "The service is temporarily unavailable for maintenance or is overloaded. You may repeat the request after a delay, which may be specified in a Retry-After header."
	}
	return "An unspecified error has occurred."
}

// mailboxResources are the Outlook resources under /users/{id} that count against a mailbox's limits
// (GH includes/throttling-outlook.md: event, calendar, contact, message and their folders).
var mailboxResources = map[string]bool{"events": true, "calendar": true, "calendars": true, "calendarview": true,
	"contacts": true, "contactfolders": true, "messages": true, "mailfolders": true, "sendmail": true}

const overConcurrency = "\x00over"

// enterMailbox counts a request against its app and mailbox; mailbox is "" for other resources and
// overConcurrency when the mailbox already serves MailboxConcurrency requests of the app. done ends it.
func (g *Graph) enterMailbox(who Identity, path string) (mailbox string, done func()) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "users") || !mailboxResources[strings.ToLower(parts[2])] {
		return "", func() {}
	}
	key := who.ClientID + "/" + who.Tenant + "/" + strings.ToLower(parts[1])
	limit := g.MailboxConcurrency
	if limit <= 0 {
		limit = 4
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight == nil {
		g.inFlight, g.maxFlight = map[string]int{}, map[string]int{}
	}
	if g.inFlight[key] >= limit {
		return overConcurrency, func() {}
	}
	g.inFlight[key]++
	g.maxFlight[key] = max(g.maxFlight[key], g.inFlight[key])
	return key, func() {
		g.mu.Lock()
		g.inFlight[key]--
		g.mu.Unlock()
	}
}

// MaxMailboxConcurrency is the most requests the app had in flight at once to the tenant's mailbox (its
// address or id, as the requests named it).
func (g *Graph) MaxMailboxConcurrency(clientID, tenant, mailbox string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxFlight[clientID+"/"+tenant+"/"+strings.ToLower(mailbox)]
}

func (g *Graph) takeFailure(method, path string) (Failure, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, fs := range g.failures {
		m, prefix, _ := strings.Cut(k, " ")
		if m == method && strings.HasPrefix(path, prefix) && len(fs) > 0 {
			g.failures[k] = fs[1:]
			return fs[0], true
		}
	}
	return Failure{}, false
}

func (g *Graph) route(r *http.Request, path string, body []byte, who Identity) reply {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if rep, ok := g.routePlaces(r, who, parts); ok {
		return rep
	}
	if rep, ok := g.routeCalendars(r, who, parts); ok {
		return rep
	}
	if rep, ok := g.routeEvents(r, body, who, parts); ok {
		return rep
	}
	if rep, ok := g.routeContacts(r, body, who, parts); ok {
		return rep
	}
	switch {
	case r.Method == http.MethodGet && (path == "/users/delta" || path == "/users/delta()"):
		return g.usersDelta(r, who)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "users":
		return g.getUser(r, who, parts[1])
	case r.Method == http.MethodGet && len(parts) == 1 && strings.HasPrefix(parts[0], "servicePrincipals(appId="):
		return g.getServicePrincipal(r, who, parts[0])
	case r.Method == http.MethodPost && path == "/subscriptions":
		return g.createSubscription(r.Context(), body, who)
	case r.Method == http.MethodGet && path == "/subscriptions":
		return g.listSubscriptions(r, who)
	case len(parts) == 2 && parts[0] == "subscriptions":
		return g.subscriptionItem(r.Method, parts[1], body, who)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "subscriptions" && parts[2] == "reauthorize":
		return g.reauthorize(parts[1], who)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "users" && parts[2] == "sendMail":
		return g.sendMail(who, parts[1], body)
	case r.Method == http.MethodPost && path == "/communications/getPresencesByUserId":
		return g.getPresences(body, who)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "users" && parts[2] == "presence" && parts[3] == "setPresence":
		return g.setPresenceSession(who, parts[1], body)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "users" && parts[2] == "presence" && parts[3] == "clearPresence":
		return g.clearPresenceSession(who, parts[1], body)
	}
	return graphError(http.StatusBadRequest, "BadRequest", "Resource not found for the segment.")
}

func graphError(status int, code, msg string) reply {
	return reply{status: status, body: map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "request-id": randomString("req"),
			"client-request-id": randomString("creq")}}}}
}

func (g *Graph) context(fragment string) string {
	return "https://graph.microsoft.com/v1.0/$metadata#" + fragment
}

func userJSON(u *User, sel []string) map[string]any {
	raw, _ := json.Marshal(u)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if len(sel) == 0 {
		return m
	}
	out := map[string]any{"id": u.ID}
	for _, s := range sel {
		if v, ok := m[s]; ok {
			out[s] = v
		} else {
			out[s] = nil
		}
	}
	return out
}

func selectOf(r *http.Request) []string {
	s := r.URL.Query().Get("$select")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (g *Graph) getUser(r *http.Request, who Identity, id string) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.users[who.Tenant][id]
	if !ok {
		return graphError(http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
	}
	m := userJSON(u, selectOf(r))
	m["@odata.context"] = g.context("users/$entity")
	return reply{status: http.StatusOK, body: m}
}

// servicePrincipalReaders are the permissions that let a caller read any service principal
// (https://learn.microsoft.com/graph/api/serviceprincipal-get, "Permissions": Application.Read.All least
// privileged, then Application.ReadWrite.All, Directory.Read.All; Application.ReadWrite.OwnedBy lists
// them all too).
var servicePrincipalReaders = []string{"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy",
	"Directory.Read.All", "Directory.ReadWrite.All"}

// getServicePrincipal serves GET /servicePrincipals(appId='{appId}') (serviceprincipal-get above, "HTTP
// request"). "A service principal can retrieve its own application and service principal details
// without being granted any application permissions" (ibid.): an app-only caller asking for its own
// appId needs no role; anyone else needs one of servicePrincipalReaders, or gets 403
// Authorization_RequestDenied. A missing one is 404 Request_ResourceNotFound, the directory's usual
// answer ({"error":{"code":"Request_ResourceNotFound","message":"Resource '…' does not exist or one of
// its queried reference-property objects are not present.", …}}, as quoted in
// https://github.com/EirikHaughom/ADME/issues/5).
func (g *Graph) getServicePrincipal(r *http.Request, who Identity, segment string) reply {
	appID, ok := odataKey(strings.TrimPrefix(segment, "servicePrincipals(appId="))
	if !ok {
		return graphError(http.StatusBadRequest, "BadRequest", "Bad Request - Error in query syntax.")
	}
	own := who.AppOnly() && strings.EqualFold(appID, who.ClientID)
	if !own && !slices.ContainsFunc(append(append([]string(nil), who.Roles...), who.Scopes...), func(p string) bool {
		return slices.ContainsFunc(servicePrincipalReaders, func(q string) bool { return strings.EqualFold(p, q) })
	}) {
		return graphError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	id, ok := g.auth.ServicePrincipal(who.Tenant, appID)
	if !ok {
		return graphError(http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", appID))
	}
	all := map[string]any{"id": id, "appId": strings.ToLower(appID), "accountEnabled": true, "servicePrincipalType": "Application",
		"appDisplayName": "ConnectHub", "displayName": "ConnectHub", "signInAudience": "AzureADMultipleOrgs"}
	m := all
	if sel := selectOf(r); len(sel) > 0 {
		m = map[string]any{"id": id}
		for _, k := range sel {
			m[k] = all[k]
		}
	}
	m["@odata.context"] = g.context("servicePrincipals/$entity")
	return reply{status: http.StatusOK, body: m}
}

// odataKey reads "'value')", the rest of an alternate key segment: an OData string literal, in which a
// quote inside is written twice (OData ABNF Construction Rules v4.01, SQUOTE-in-string: "two
// consecutive single quotes represent one within a string literal",
// https://docs.oasis-open.org/odata/odata/v4.01/csprd06/abnf/odata-abnf-construction-rules.txt). A lone quote inside ends the
// literal early, which Graph refuses as a syntax error.
func odataKey(rest string) (string, bool) {
	lit, ok := strings.CutSuffix(rest, ")")
	if !ok || len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
		return "", false
	}
	return strings.ReplaceAll(inner, "''", "'"), true
}

// usersDelta serves a full enumeration (no token), a resumption ($deltatoken=<version>: the users changed
// since) and the pages of either ($skiptoken=<mode>.<since>.<upto>.<offset>.<select>).
func (g *Graph) usersDelta(r *http.Request, who Identity) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := r.URL.Query()
	tenant := who.Tenant
	sel := selectOf(r)
	mode, since, upto, off := "e", 0, g.version[tenant], 0
	switch {
	case q.Get("$deltatoken") != "":
		v, err := strconv.Atoi(q.Get("$deltatoken"))
		if err != nil || v < g.minDelta[tenant] {
			return graphError(http.StatusGone, "syncStateNotFound", "The sync state is no longer valid; resync.")
		}
		mode, since = "c", v
	case q.Get("$skiptoken") != "":
		tok := strings.SplitN(q.Get("$skiptoken"), ".", 5)
		if len(tok) != 5 {
			return graphError(http.StatusBadRequest, "BadRequest", "bad skiptoken")
		}
		mode = tok[0]
		since, _ = strconv.Atoi(tok[1])
		upto, _ = strconv.Atoi(tok[2])
		off, _ = strconv.Atoi(tok[3])
		sel = nil
		if tok[4] != "" {
			sel = strings.Split(tok[4], ",")
		}
	}
	var ids []string
	if mode == "e" {
		for id := range g.users[tenant] {
			ids = append(ids, id)
		}
	} else {
		seen := map[string]bool{}
		for _, c := range g.changes[tenant] {
			if c.version > since && c.version <= upto && !seen[c.id] {
				seen[c.id] = true
				ids = append(ids, c.id)
			}
		}
	}
	sort.Strings(ids)
	size := g.DeltaPageSize
	if size <= 0 {
		size = 2
	}
	off = min(off, len(ids))
	end := min(off+size, len(ids))
	value := []any{}
	for _, id := range ids[off:end] {
		if u, ok := g.users[tenant][id]; ok {
			value = append(value, userJSON(u, sel))
			continue
		}
		value = append(value, map[string]any{"id": id, "@removed": map[string]any{"reason": cmpOr(g.removed[tenant][id], "deleted")}})
	}
	body := map[string]any{"@odata.context": g.context("users(" + strings.Join(sel, ",") + ")"), "value": value}
	if end < len(ids) {
		body["@odata.nextLink"] = fmt.Sprintf("%s/v1.0/users/delta?$skiptoken=%s.%d.%d.%d.%s", g.srv.URL, mode, since, upto, end, strings.Join(sel, ","))
	} else {
		body["@odata.deltaLink"] = fmt.Sprintf("%s/v1.0/users/delta?$deltatoken=%d", g.srv.URL, upto)
	}
	return reply{status: http.StatusOK, body: body}
}

var presenceFilterRE = regexp.MustCompile(`^/?communications/presences\?\$filter=id in \((.*)\)$`)

// PresenceResource is the subscription resource for user ids, as Graph documents it.
func PresenceResource(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "'" + id + "'"
	}
	return "/communications/presences?$filter=id in (" + strings.Join(q, ",") + ")"
}

// ParsePresenceResource returns the user ids of a presence subscription resource.
func ParsePresenceResource(resource string) ([]string, bool) {
	m := presenceFilterRE.FindStringSubmatch(resource)
	if m == nil {
		return nil, false
	}
	var ids []string
	for _, p := range strings.Split(m[1], ",") {
		p = strings.TrimSpace(p)
		if len(p) < 3 || p[0] != '\'' || p[len(p)-1] != '\'' {
			return nil, false
		}
		ids = append(ids, p[1:len(p)-1])
	}
	return ids, true
}

type subscriptionWire struct {
	ID                        string  `json:"id,omitempty"`
	Resource                  string  `json:"resource"`
	ApplicationID             string  `json:"applicationId,omitempty"`
	ChangeType                string  `json:"changeType"`
	ClientState               *string `json:"clientState"`
	NotificationURL           string  `json:"notificationUrl"`
	LifecycleNotificationURL  *string `json:"lifecycleNotificationUrl"`
	ExpirationDateTime        string  `json:"expirationDateTime"`
	CreatorID                 string  `json:"creatorId,omitempty"`
	IncludeResourceData       *bool   `json:"includeResourceData"`
	LatestSupportedTLSVersion *string `json:"latestSupportedTlsVersion"`
	EncryptionCertificate     *string `json:"encryptionCertificate"`
	EncryptionCertificateID   *string `json:"encryptionCertificateId"`
	NotificationQueryOptions  *string `json:"notificationQueryOptions"`
	NotificationURLAppID      *string `json:"notificationUrlAppId"`
}

func (g *Graph) wire(s *Subscription) map[string]any {
	lc := &s.LifecycleNotificationURL
	if s.LifecycleNotificationURL == "" {
		lc = nil
	}
	ird := s.IncludeResourceData
	w := subscriptionWire{ID: s.ID, Resource: s.Resource, ApplicationID: s.ApplicationID, ChangeType: s.ChangeType,
		NotificationURL: s.NotificationURL, LifecycleNotificationURL: lc, CreatorID: s.CreatorID,
		ExpirationDateTime: s.ExpiresAt.UTC().Format("2006-01-02T15:04:05.0000000Z"), IncludeResourceData: &ird,
		LatestSupportedTLSVersion: &s.LatestTLS}
	if s.EncryptionCertificateID != "" {
		w.EncryptionCertificateID = &s.EncryptionCertificateID
	}
	raw, _ := json.Marshal(w)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["@odata.context"] = g.context("subscriptions/$entity")
	return m
}

// MaxPresenceLifetime is Graph's limit for presence subscriptions.
const MaxPresenceLifetime = 60 * time.Minute

func (g *Graph) createSubscription(ctx context.Context, body []byte, who Identity) reply {
	var in subscriptionWire
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
	}
	exp, err := time.Parse(time.RFC3339Nano, in.ExpirationDateTime)
	if err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "expirationDateTime is required")
	}
	s := &Subscription{Tenant: who.Tenant, CreatorID: who.UserID, ApplicationID: who.ClientID, Resource: in.Resource,
		ChangeType: in.ChangeType, NotificationURL: in.NotificationURL, ExpiresAt: exp.UTC()}
	if in.ClientState != nil {
		s.ClientState = *in.ClientState
	}
	if in.LifecycleNotificationURL != nil {
		s.LifecycleNotificationURL = *in.LifecycleNotificationURL
	}
	if in.LatestSupportedTLSVersion != nil {
		s.LatestTLS = *in.LatestSupportedTLSVersion
	}
	if in.IncludeResourceData != nil && *in.IncludeResourceData {
		s.IncludeResourceData = true
		if in.EncryptionCertificate == nil || in.EncryptionCertificateID == nil || *in.EncryptionCertificateID == "" {
			return graphError(http.StatusBadRequest, "ExtensionError", "encryptionCertificate and encryptionCertificateId are required with includeResourceData")
		}
		der, err := base64.StdEncoding.DecodeString(*in.EncryptionCertificate)
		if _, perr := x509.ParseCertificate(der); err != nil || perr != nil {
			return graphError(http.StatusBadRequest, "ExtensionError", "encryptionCertificate is not a base64 X.509 certificate")
		}
		s.EncryptionCertificate, s.EncryptionCertificateID = *in.EncryptionCertificate, *in.EncryptionCertificateID
	}
	if ids, ok := ParsePresenceResource(s.Resource); ok {
		switch {
		case who.AppOnly():
			return graphError(http.StatusForbidden, "ExtensionError", "Operation: Create; Exception: [Presence subscriptions need delegated permissions]")
		case len(ids) > 650:
			return graphError(http.StatusBadRequest, "ExtensionError", "Too many ids in the filter; the limit is 650")
		case exp.After(time.Now().Add(MaxPresenceLifetime + time.Minute)):
			return graphError(http.StatusBadRequest, "ExtensionError", "Subscription expiration can only be 60 minutes in the future.")
		case s.ChangeType != "updated":
			return graphError(http.StatusBadRequest, "ExtensionError", "changeType must be updated for presence")
		}
		s.UserIDs = ids
	} else if rep := checkEventSubscription(s, exp); rep != nil {
		return *rep
	} else if strings.Contains(s.Resource, "presences") {
		return graphError(http.StatusBadRequest, "ExtensionError", "Invalid presence filter")
	}
	g.mu.Lock()
	for _, o := range g.subs {
		if o.Tenant != s.Tenant || o.ApplicationID != s.ApplicationID {
			continue
		}
		if o.Resource == s.Resource && o.ChangeType == s.ChangeType && o.CreatorID == s.CreatorID {
			g.mu.Unlock()
			return graphError(http.StatusConflict, "ExtensionError", "A subscription for this resource and change type exists")
		}
		if s.UserIDs != nil && o.UserIDs != nil && o.CreatorID == s.CreatorID {
			g.mu.Unlock()
			return graphError(http.StatusForbidden, "ExtensionError", "The limit of one presence subscription per application and user has been reached")
		}
	}
	g.mu.Unlock()

	// Graph checks both URLs answer the handshake before it creates anything.
	for _, u := range []string{s.NotificationURL, s.LifecycleNotificationURL} {
		if u == "" {
			continue
		}
		if err := g.validate(ctx, u); err != nil {
			return graphError(http.StatusBadRequest, "ValidationError", "Subscription validation request failed. "+err.Error())
		}
	}
	g.mu.Lock()
	g.nextSub++
	s.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", g.nextSub, time.Now().UnixNano()&0xffffffffffff)
	g.subs[s.ID] = s
	out := g.wire(s)
	g.mu.Unlock()
	return reply{status: http.StatusCreated, body: out}
}

// validate performs the handshake exactly as Graph does: POST url?validationToken=..., expect 200 with
// the token as text/plain within 10 s.
func (g *Graph) validate(ctx context.Context, target string) error {
	token := "Validation: Testing client application reachability for subscription Request-Id: " + randomString("r")
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("notification URL is not an absolute URL")
	}
	// Graph encodes the token like .NET's HttpUtility.UrlEncode: '+' for spaces and lower-case hex
	// ("%3a"), which a receiver must decode, not echo (graph-notifications.md, "Validation handshake").
	enc := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(url.QueryEscape(token), strings.ToLower)
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += "validationToken=" + enc
	ctx, cancel := context.WithTimeout(ctx, g.handshake)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := g.Client.Do(req)
	if err != nil {
		return fmt.Errorf("validation request: %v", err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(got) != token || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return fmt.Errorf("response %d %q did not echo the token", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return nil
}

func (g *Graph) visible(s *Subscription, who Identity) bool {
	return s.Tenant == who.Tenant && s.ApplicationID == who.ClientID && (who.AppOnly() || s.CreatorID == who.UserID)
}

// listSubscriptions pages with $skiptoken=<offset> (an opaque token to the caller, as Graph's are).
func (g *Graph) listSubscriptions(r *http.Request, who Identity) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for id, s := range g.subs {
		if g.visible(s, who) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	size := g.SubscriptionsPageSize
	if size <= 0 {
		size = 100
	}
	off := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return graphError(http.StatusBadRequest, "BadRequest", "Invalid $skiptoken.")
		}
		off = min(n, len(ids))
	}
	end := min(off+size, len(ids))
	value := []any{}
	for _, id := range ids[off:end] {
		w := g.wire(g.subs[id])
		delete(w, "@odata.context")
		value = append(value, w)
	}
	body := map[string]any{"@odata.context": g.context("subscriptions"), "value": value}
	if end < len(ids) {
		body["@odata.nextLink"] = fmt.Sprintf("%s/v1.0/subscriptions?$skiptoken=%d", g.srv.URL, end)
	}
	return reply{status: http.StatusOK, body: body}
}

func (g *Graph) subscriptionItem(method, id string, body []byte, who Identity) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.subs[id]
	if !ok || !g.visible(s, who) {
		return graphError(http.StatusNotFound, "ResourceNotFound", "The object was not found.")
	}
	switch method {
	case http.MethodGet:
		return reply{status: http.StatusOK, body: g.wire(s)}
	case http.MethodDelete:
		delete(g.subs, id)
		return reply{status: http.StatusNoContent}
	case http.MethodPatch:
		var in struct {
			ExpirationDateTime string `json:"expirationDateTime"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
		}
		exp, err := time.Parse(time.RFC3339Nano, in.ExpirationDateTime)
		if err != nil {
			return graphError(http.StatusBadRequest, "BadRequest", "expirationDateTime is required")
		}
		if s.UserIDs != nil && exp.After(time.Now().Add(MaxPresenceLifetime+time.Minute)) {
			return graphError(http.StatusBadRequest, "ExtensionError", "Subscription expiration can only be 60 minutes in the future.")
		}
		if roomEventsResource.MatchString(s.Resource) && exp.After(time.Now().Add(MaxOutlookLifetime+time.Minute)) {
			return graphError(http.StatusBadRequest, "ExtensionError", "Subscription expiration can only be 10080 minutes in the future.")
		}
		s.ExpiresAt = exp.UTC()
		return reply{status: http.StatusOK, body: g.wire(s)}
	}
	return graphError(http.StatusMethodNotAllowed, "BadRequest", "method not allowed")
}

func (g *Graph) reauthorize(id string, who Identity) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.subs[id]
	if !ok || !g.visible(s, who) {
		return graphError(http.StatusNotFound, "ResourceNotFound", "The object was not found.")
	}
	s.Reauthorized++
	return reply{status: http.StatusNoContent}
}

func (g *Graph) getPresences(body []byte, who Identity) reply {
	var in struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
	}
	if len(in.IDs) > 650 {
		return graphError(http.StatusBadRequest, "BadRequest", "The number of ids exceeds 650")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	value := []any{}
	for _, id := range in.IDs {
		p, ok := g.presence[who.Tenant][id]
		if !ok {
			p = presence{availability: "PresenceUnknown", activity: "PresenceUnknown"}
		}
		m := map[string]any{"id": id, "availability": p.availability, "activity": p.activity,
			"statusMessage": nil, "outOfOfficeSettings": map[string]any{"message": nil, "isOutOfOffice": false}}
		if g.IncludeSequence && p.sequence != "" {
			m["sequenceNumber"] = p.sequence
		}
		value = append(value, m)
	}
	return reply{status: http.StatusOK, body: map[string]any{"@odata.context": g.context("Collection(microsoft.graph.presence)"), "value": value}}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
