package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Presence sessions, as Graph keeps them for apps that set a user's presence (Learn / GH api-reference
// v1.0 presence-setpresence.md, presence-clearpresence.md, ms.date 04/05/2024):
//
//   - POST /users/{id}/presence/setPresence {sessionId, availability, activity, expirationDuration}.
//     Application permission Presence.ReadWrite.All; with it the sessionId is the application (client) id.
//   - Only the pairs Available/Available, Busy/InACall, Busy/InAConferenceCall, Away/Away and
//     DoNotDisturb/Presenting may be set; InAMeeting, OutOfOffice and Focusing cannot.
//   - expirationDuration runs from PT5M to PT4H and defaults to 5 minutes; an expired session is gone.
//   - An Available session fades to Available/AvailableInactive after 5 minutes and to Away/Away after
//     another 5 ("Timeout, expiration, and keep alive").
//   - Sessions aggregate: DoNotDisturb > Busy > Available > Away (the user-preferred presence, not
//     modelled here, would beat them all).
//   - POST .../clearPresence {sessionId} answers 404 when the session does not exist; clearing the last
//     session leaves the user Offline/Offline.
//
// A change of the aggregate is what presence subscriptions report: TakeDeliveries hands out the
// notifications it would cause, which is how our own writes come back to us (the echo).

// PresenceWrite is one setPresence or clearPresence the fake accepted.
type PresenceWrite struct {
	Tenant       string
	UserID       string
	Op           string // "set" or "clear"
	SessionID    string
	Availability string
	Activity     string
	Expiration   time.Duration
	At           time.Time
}

type appSession struct {
	availability, activity string
	setAt, expiresAt       time.Time
}

var settablePairs = map[string]bool{
	"Available/Available": true, "Busy/InACall": true, "Busy/InAConferenceCall": true, "Away/Away": true,
	"DoNotDisturb/Presenting": true,
}

const (
	minSessionExpiry = 5 * time.Minute
	maxSessionExpiry = 4 * time.Hour
	availableFade    = 5 * time.Minute
)

// WriteSignal receives a value after every accepted setPresence or clearPresence, and after a contact
// change queued notifications for TakeDeliveries.
func (g *Graph) WriteSignal() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.onWrite == nil {
		g.onWrite = make(chan struct{}, 1024)
	}
	return g.onWrite
}

func (g *Graph) signalWrite() {
	if g.onWrite == nil {
		g.onWrite = make(chan struct{}, 1024)
	}
	select {
	case g.onWrite <- struct{}{}:
	default:
	}
}

// PresenceWrites returns the accepted setPresence and clearPresence calls, in order.
func (g *Graph) PresenceWrites() []PresenceWrite {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]PresenceWrite(nil), g.writes...)
}

// TakeDeliveries returns, and forgets, the presence notifications that app sessions' changes of the
// aggregated presence caused (send them with Send).
func (g *Graph) TakeDeliveries() []Delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.pending
	g.pending = nil
	return out
}

// Sessions returns the live app sessions of a user: sessionId → "availability/activity".
func (g *Graph) Sessions(tenant, userID string) map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]string{}
	now := time.Now()
	for id, s := range g.sessions[tenant][userID] {
		if now.Before(s.expiresAt) {
			out[id] = s.availability + "/" + s.activity
		}
	}
	return out
}

func (g *Graph) ownOf(tenant string) map[string]presence {
	if g.own == nil {
		g.own = map[string]map[string]presence{}
	}
	if g.own[tenant] == nil {
		g.own[tenant] = map[string]presence{}
	}
	return g.own[tenant]
}

func canWritePresence(who Identity) bool {
	if who.AppOnly() {
		return slices.Contains(who.Roles, "Presence.ReadWrite.All")
	}
	return slices.Contains(who.Scopes, "Presence.ReadWrite") || slices.Contains(who.Scopes, "Presence.ReadWrite.All")
}

func (g *Graph) setPresenceSession(who Identity, userID string, body []byte) reply {
	if !canWritePresence(who) {
		return graphError(http.StatusForbidden, "Forbidden", "Insufficient privileges to complete the operation.")
	}
	var in struct {
		SessionID          string `json:"sessionId"`
		Availability       string `json:"availability"`
		Activity           string `json:"activity"`
		ExpirationDuration string `json:"expirationDuration"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
	}
	// [inference] With an application permission the session is the app's own: another id is refused.
	if in.SessionID == "" || (who.AppOnly() && in.SessionID != who.ClientID) {
		return graphError(http.StatusBadRequest, "BadRequest", "The sessionId must be the application id.")
	}
	if !settablePairs[in.Availability+"/"+in.Activity] {
		return graphError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The availability %q and activity %q combination is not supported.", in.Availability, in.Activity))
	}
	exp := minSessionExpiry
	if in.ExpirationDuration != "" {
		d, ok := parseISODuration(in.ExpirationDuration)
		if !ok || d < minSessionExpiry || d > maxSessionExpiry {
			return graphError(http.StatusBadRequest, "BadRequest", "The expirationDuration must be between PT5M and PT4H.")
		}
		exp = d
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions == nil {
		g.sessions = map[string]map[string]map[string]appSession{}
	}
	if g.sessions[who.Tenant] == nil {
		g.sessions[who.Tenant] = map[string]map[string]appSession{}
	}
	if len(g.sessions[who.Tenant][userID]) == 0 {
		g.sessions[who.Tenant][userID] = map[string]appSession{}
		if p, ok := g.presence[who.Tenant][userID]; ok {
			g.ownOf(who.Tenant)[userID] = p
		}
	}
	g.sessions[who.Tenant][userID][in.SessionID] = appSession{availability: in.Availability, activity: in.Activity, setAt: now, expiresAt: now.Add(exp)}
	g.writes = append(g.writes, PresenceWrite{Tenant: who.Tenant, UserID: userID, Op: "set", SessionID: in.SessionID,
		Availability: in.Availability, Activity: in.Activity, Expiration: exp, At: now})
	g.republish(who.Tenant, userID)
	g.signalWrite()
	return reply{status: http.StatusOK}
}

func (g *Graph) clearPresenceSession(who Identity, userID string, body []byte) reply {
	if !canWritePresence(who) {
		return graphError(http.StatusForbidden, "Forbidden", "Insufficient privileges to complete the operation.")
	}
	var in struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.SessionID == "" {
		return graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sessions[who.Tenant][userID][in.SessionID]
	if !ok || !time.Now().Before(s.expiresAt) {
		return graphError(http.StatusNotFound, "NotFound", "The presence session was not found.")
	}
	delete(g.sessions[who.Tenant][userID], in.SessionID)
	g.writes = append(g.writes, PresenceWrite{Tenant: who.Tenant, UserID: userID, Op: "clear", SessionID: in.SessionID, At: time.Now()})
	g.republish(who.Tenant, userID)
	g.signalWrite()
	return reply{status: http.StatusOK}
}

// republish recomputes the user's aggregated presence and, when it changed, queues the notifications
// every covering subscription would get. Called with g.mu held.
func (g *Graph) republish(tenant, userID string) {
	p := g.aggregate(tenant, userID)
	prev, had := g.presence[tenant][userID]
	if had && prev.availability == p.availability && prev.activity == p.activity {
		return
	}
	g.sequence++
	p.sequence = fmt.Sprintf("%016X", g.sequence)
	if g.presence[tenant] == nil {
		g.presence[tenant] = map[string]presence{}
	}
	g.presence[tenant][userID] = p
	for _, s := range g.subs {
		if s.Tenant == tenant && contains(s.UserIDs, userID) {
			if body, err := g.presenceNotification(*s, userID, p); err == nil {
				g.pending = append(g.pending, Delivery{URL: s.NotificationURL, Body: body})
			}
		}
	}
}

// aggregate is the user's presence from the own presence and the live app sessions: the highest ranked
// wins; no session and no own presence is Offline. Called with g.mu held.
func (g *Graph) aggregate(tenant, userID string) presence {
	now := time.Now()
	var best presence
	rank := -1
	consider := func(p presence) {
		if r := presenceRank(p.availability); r > rank {
			best, rank = p, r
		}
	}
	if p, ok := g.ownOf(tenant)[userID]; ok {
		consider(p)
	}
	for _, s := range g.sessions[tenant][userID] {
		if !now.Before(s.expiresAt) {
			continue
		}
		p := presence{availability: s.availability, activity: s.activity}
		if s.availability == "Available" {
			switch idle := now.Sub(s.setAt); {
			case idle >= 2*availableFade:
				p = presence{availability: "Away", activity: "Away"}
			case idle >= availableFade:
				p = presence{availability: "AvailableIdle", activity: "AvailableInactive"}
			}
		}
		consider(p)
	}
	if rank < 0 {
		return presence{availability: "Offline", activity: "Offline"}
	}
	return best
}

func presenceRank(availability string) int {
	switch availability {
	case "DoNotDisturb":
		return 4
	case "Busy", "BusyIdle":
		return 3
	case "Available", "AvailableIdle":
		return 2
	case "Away", "BeRightBack":
		return 1
	}
	return 0
}

var isoDuration = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)

func parseISODuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	return d, true
}
