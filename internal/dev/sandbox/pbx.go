package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// PBX → Teams: what happens on a desk phone (a call starts or ends, DND is switched), which RingCentral
// posts to its webhook subscriptions, and what the app then wrote into Teams.

var (
	telephonyStatuses = map[string]bool{"NoCall": true, "CallConnected": true, "Ringing": true, "OnHold": true, "ParkedCall": true}
	dndStatuses       = map[string]bool{"TakeAllCalls": true, "DoNotAcceptAnyCalls": true, "DoNotAcceptDepartmentCalls": true, "TakeDepartmentCallsOnly": true}
	userStatuses      = map[string]bool{"Offline": true, "Busy": true, "Available": true}
)

// postExtensionPresence is a change at the extension: RingCentral builds one notification per active
// subscription covering it (with the extension's next sequence number) and posts each with the
// subscription's verification token, as rctest.Server.Deliver does.
func (s *Sandbox) postExtensionPresence(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TelephonyStatus string `json:"telephonyStatus"`
		DNDStatus       string `json:"dndStatus"`
		UserStatus      string `json:"userStatus"`
		Direction       string `json:"direction"`
		From            string `json:"from"`
		To              string `json:"to"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	ext := r.PathValue("id")
	if n, err := strconv.ParseInt(ext, 10, 64); err != nil || n <= 0 {
		writeError(w, http.StatusBadRequest, "the extension is named by its id (a positive number)")
		return
	}
	if in.DNDStatus == "" {
		in.DNDStatus = "TakeAllCalls"
	}
	if in.UserStatus == "" {
		in.UserStatus = "Available"
	}
	if in.Direction == "" {
		in.Direction = "Inbound"
	}
	switch {
	case !telephonyStatuses[in.TelephonyStatus]:
		writeError(w, http.StatusBadRequest, "telephonyStatus is one of NoCall, CallConnected, Ringing, OnHold, ParkedCall")
		return
	case !dndStatuses[in.DNDStatus]:
		writeError(w, http.StatusBadRequest, "dndStatus is one of TakeAllCalls, DoNotAcceptAnyCalls, DoNotAcceptDepartmentCalls, TakeDepartmentCallsOnly")
		return
	case !userStatuses[in.UserStatus]:
		writeError(w, http.StatusBadRequest, "userStatus is one of Available, Busy, Offline")
		return
	case in.Direction != "Inbound" && in.Direction != "Outbound":
		writeError(w, http.StatusBadRequest, "direction is Inbound or Outbound")
		return
	}
	ev := rctest.PresenceEvent{TelephonyStatus: in.TelephonyStatus, DNDStatus: in.DNDStatus, UserStatus: in.UserStatus,
		ActiveCalls: []rctest.Call{}}
	if in.TelephonyStatus != "NoCall" {
		ev.ActiveCalls = []rctest.Call{{ID: "call-" + ext, Direction: in.Direction, TelephonyStatus: in.TelephonyStatus, From: in.From, To: in.To}}
	}
	type delivery struct {
		URL    string `json:"url"`
		Status int    `json:"status,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	// One delivery per active subscription covering the extension; none when nothing subscribes to it.
	out := []delivery{}
	for _, env := range s.RC.Event(ext, ev) {
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		code, err := s.RC.Send(ctx, env)
		cancel()
		d := delivery{URL: env.Address, Status: code}
		if err != nil {
			d.Error = err.Error()
		}
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

// getRCSubscriptions lists RingCentral's webhook subscriptions, without their verification tokens
// (RingCentral never answers them either).
func (s *Sandbox) getRCSubscriptions(w http.ResponseWriter, _ *http.Request) {
	type sub struct {
		ID              string    `json:"id"`
		Status          string    `json:"status"`
		Address         string    `json:"address"`
		EventFilters    []string  `json:"eventFilters"`
		ExpiresAt       time.Time `json:"expirationTime"`
		BlacklistReason string    `json:"blacklistReason,omitempty"`
	}
	out := []sub{}
	for _, x := range s.RC.Subscriptions() {
		out = append(out, sub{x.ID, x.Status, x.Address, x.EventFilters, x.ExpiresAt.UTC().Truncate(time.Second), x.BlacklistReason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// getPresenceWrites lists the setPresence and clearPresence calls Graph accepted, in order, optionally
// of one tenant (?tenant=) and user (?user=).
func (s *Sandbox) getPresenceWrites(w http.ResponseWriter, r *http.Request) {
	type write struct {
		Tenant       string    `json:"tenant"`
		UserID       string    `json:"userId"`
		Op           string    `json:"op"`
		SessionID    string    `json:"sessionId"`
		Availability string    `json:"availability,omitempty"`
		Activity     string    `json:"activity,omitempty"`
		Expiration   string    `json:"expirationDuration,omitempty"`
		At           time.Time `json:"at"`
	}
	tenant, user := r.URL.Query().Get("tenant"), r.URL.Query().Get("user")
	out := []write{}
	for _, x := range s.Graph.PresenceWrites() {
		if (tenant != "" && x.Tenant != tenant) || (user != "" && x.UserID != user) {
			continue
		}
		wr := write{Tenant: x.Tenant, UserID: x.UserID, Op: x.Op, SessionID: x.SessionID, Availability: x.Availability,
			Activity: x.Activity, At: x.At.UTC().Truncate(time.Millisecond)}
		if x.Op == "set" {
			wr.Expiration = isoDuration(x.Expiration)
		}
		out = append(out, wr)
	}
	writeJSON(w, http.StatusOK, out)
}

// getPresence is a user's presence in Teams as Graph aggregates it, with the apps' live sessions.
func (s *Sandbox) getPresence(w http.ResponseWriter, r *http.Request) {
	tenant, user := r.PathValue("tenant"), r.PathValue("id")
	a, act := s.Graph.Presence(tenant, user)
	writeJSON(w, http.StatusOK, map[string]any{"availability": a, "activity": act, "sessions": s.Graph.Sessions(tenant, user)})
}

// isoDuration writes d as Graph's expirationDuration does (PT1H, PT5M, PT1H30M).
func isoDuration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	out := "PT"
	if h := d / time.Hour; h > 0 {
		out += fmt.Sprintf("%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		out += fmt.Sprintf("%dM", m)
		d -= m * time.Minute
	}
	if sec := d / time.Second; sec > 0 {
		out += fmt.Sprintf("%dS", sec)
	}
	return out
}

// echoes posts, as Graph does by itself, the notifications it queued for TakeDeliveries, until ctx ends:
// the presence ones that apps' sessions cause (our own setPresence coming back through the Teams → PBX
// subscription) and those of contact changes (a change made through the control API, or the app's own
// writes through Graph's API, which Graph notifies like any other). The fake signals WriteSignal on both,
// so one pump woken by it needs no polling.
func echoes(ctx context.Context, g *graphtest.Graph, send func(context.Context, graphtest.Delivery) (int, error)) {
	signal := g.WriteSignal()
	for {
		select {
		case <-ctx.Done():
			return
		case <-signal:
			for _, d := range g.TakeDeliveries() {
				_, _ = send(ctx, d)
			}
		}
	}
}
