package rctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// RingCentral's webhook limits (docs/notifications/webhooks/creating-webhooks.md): the creation
// handshake must be answered within 3,000 ms, and the whole answer, headers and body, must be at most
// 1,024 bytes, or creation fails with SUB-525 "WebHook server response is invalid".
const (
	HandshakeLimit = 3 * time.Second
	MaxReplyBytes  = 1024
)

// DefaultExpiresIn is the lifetime of a subscription created without expiresIn: 7 days in the spec
// 1.0.46 (changelog 1_0_33.md); current SDKs allow WebHook up to 315,360,000 s.
const (
	DefaultExpiresIn = 604800
	MaxExpiresIn     = 315360000
)

// Subscription is a webhook subscription as the fake holds it, including what RingCentral never answers
// (the verification token).
type Subscription struct {
	ID                string
	EventFilters      []string
	Address           string
	VerificationToken string
	ExpiresAt         time.Time
	Status            string // Active or Blacklisted
	BlacklistReason   string
	BlacklistedAt     time.Time
	failures          int
}

// Call is one active call of a detailed presence event (activeCalls[], event-filters/presence.md).
type Call struct {
	ID              string `json:"id"`
	Direction       string `json:"direction"` // Inbound | Outbound
	TelephonyStatus string `json:"telephonyStatus"`
	From            string `json:"from,omitempty"`
	To              string `json:"to,omitempty"`
}

// PresenceEvent is what changed at the extension.
type PresenceEvent struct {
	TelephonyStatus string // NoCall | CallConnected | Ringing | OnHold | ParkedCall
	DNDStatus       string // TakeAllCalls | DoNotAcceptAnyCalls | DoNotAcceptDepartmentCalls
	UserStatus      string // Offline | Busy | Available
	ActiveCalls     []Call
}

// Envelope is one notification as RingCentral posts it: uuid, event, timestamp, subscriptionId, ownerId
// and body (event-filters, "Notification envelope").
type Envelope struct {
	Address string // the subscription's webhook address
	Token   string // the subscription's verification token, sent as Verification-Token
	Body    []byte // the JSON envelope
}

var filterRE = regexp.MustCompile(`^/restapi/v1\.0/account/(~|\d+)/extension/(~|\d+)/presence(\?.*)?$`)

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var in struct {
		EventFilters []string `json:"eventFilters"`
		DeliveryMode struct {
			TransportType     string `json:"transportType"`
			Address           string `json:"address"`
			VerificationToken string `json:"verificationToken"`
		} `json:"deliveryMode"`
		ExpiresIn int `json:"expiresIn"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [body] value is invalid")
		return
	}
	if in.DeliveryMode.TransportType != "WebHook" || in.DeliveryMode.Address == "" {
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [deliveryMode] value is invalid")
		return
	}
	if len(in.EventFilters) == 0 {
		writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [eventFilters] value is invalid")
		return
	}
	for _, f := range in.EventFilters {
		if !filterRE.MatchString(f) {
			writeError(w, http.StatusBadRequest, "SUB-520", "Event filters are not specified or invalid")
			return
		}
	}
	if in.ExpiresIn <= 0 {
		in.ExpiresIn = DefaultExpiresIn
	}
	in.ExpiresIn = min(in.ExpiresIn, MaxExpiresIn)
	// The handshake runs before the subscription exists: the test request carries Validation-Token, and
	// the answer must be 200 echoing it, within 3,000 ms, in at most 1,024 bytes (creating-webhooks.md).
	if err := s.handshake(r.Context(), in.DeliveryMode.Address); err != nil {
		writeError(w, http.StatusBadRequest, "SUB-525", "WebHook server response is invalid")
		return
	}
	s.mu.Lock()
	s.nextSub++
	sub := &Subscription{ID: fmt.Sprintf("sub-%d-%s", s.nextSub, random()[:8]), EventFilters: in.EventFilters,
		Address: in.DeliveryMode.Address, VerificationToken: in.DeliveryMode.VerificationToken,
		ExpiresAt: s.now().Add(time.Duration(in.ExpiresIn) * time.Second), Status: "Active"}
	s.subs[sub.ID] = sub
	out := s.wire(sub)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handshake posts the validation request and checks the answer as RingCentral does.
func (s *Server) handshake(ctx context.Context, address string) error {
	token := random() + random()
	var read atomic.Int64
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: &read}, nil
	}}
	defer tr.CloseIdleConnections()
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = HandshakeLimit
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, address, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Validation-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("handshake answered %d", resp.StatusCode)
	case resp.Header.Get("Validation-Token") != token:
		return errors.New("handshake did not echo Validation-Token")
	case read.Load() > MaxReplyBytes:
		return fmt.Errorf("handshake answer is %d bytes", read.Load())
	}
	return nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// wire is a subscription as RingCentral answers it (API reference, SubscriptionInfo); blacklisted ones
// carry blacklistedData (code-samples/webhooks/blacklist.json). The verification token is not echoed.
func (s *Server) wire(sub *Subscription) map[string]any {
	out := map[string]any{
		"uri": s.srv.URL + "/restapi/v1.0/subscription/" + sub.ID, "id": sub.ID, "creationTime": s.now().UTC().Format(time.RFC3339),
		"status": sub.Status, "eventFilters": sub.EventFilters, "expirationTime": sub.ExpiresAt.UTC().Format(time.RFC3339),
		"expiresIn":    max(int(sub.ExpiresAt.Sub(s.now())/time.Second), 0),
		"deliveryMode": map[string]any{"transportType": "WebHook", "address": sub.Address, "encryption": false},
	}
	if sub.Status == "Blacklisted" {
		out["blacklistedData"] = map[string]any{"reason": sub.BlacklistReason, "blacklistedAt": sub.BlacklistedAt.UTC().Format(time.RFC3339)}
	}
	return out
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "SUB-502", "Subscription not found")
		return
	}
	writeJSON(w, http.StatusOK, s.wire(sub))
}

// renewSubscription serves both PUT /subscription/{id} (may change the filters) and POST
// /subscription/{id}/renew. A blacklisted subscription stays blacklisted: "that is permanent; delete
// and recreate" (troubleshooting.md). [inference] The renewal answers 200 with status Blacklisted rather
// than an error, so a client must read the status.
func (s *Server) renewSubscription(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var in struct {
		EventFilters []string `json:"eventFilters"`
		ExpiresIn    int      `json:"expiresIn"`
	}
	if r.Method == http.MethodPut {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				writeError(w, http.StatusBadRequest, "CMN-101", "Parameter [body] value is invalid")
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "SUB-502", "Subscription not found")
		return
	}
	if sub.Status == "Active" {
		if len(in.EventFilters) > 0 {
			sub.EventFilters = in.EventFilters
		}
		life := in.ExpiresIn
		if life <= 0 {
			life = DefaultExpiresIn
		}
		sub.ExpiresAt = s.now().Add(time.Duration(min(life, MaxExpiresIn)) * time.Second)
	}
	writeJSON(w, http.StatusOK, s.wire(sub))
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[r.PathValue("id")]; !ok {
		writeError(w, http.StatusNotFound, "SUB-502", "Subscription not found")
		return
	}
	delete(s.subs, r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// Subscriptions returns copies of the subscriptions the fake holds.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, *sub)
	}
	return out
}

// Blacklist marks a subscription blacklisted, as RingCentral does to an endpoint that failed for long.
func (s *Server) Blacklist(id, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, ok := s.subs[id]; ok {
		sub.Status, sub.BlacklistReason, sub.BlacklistedAt = "Blacklisted", reason, s.now()
	}
}

// Event builds the notifications of one presence change of an extension, one per active subscription
// whose filters cover it, each with the extension's next sequence number. Nothing is sent (Send does),
// so a test can deliver them late, twice or out of order.
func (s *Server) Event(ext string, ev PresenceEvent) []Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sequence[ext]++
	seq := s.sequence[ext]
	var out []Envelope
	for _, sub := range s.subs {
		filter, ok := covers(sub, ext)
		if !ok || sub.Status != "Active" || !s.now().Before(sub.ExpiresAt) {
			continue
		}
		detailed := strings.Contains(filter, "detailedTelephonyState=true")
		b := map[string]any{"extensionId": ext, "sequence": seq, "presenceStatus": presenceStatus(ev),
			"userStatus": ev.UserStatus, "dndStatus": ev.DNDStatus, "meetingStatus": "Disconnected",
			"allowSeeMyPresence": true, "ringOnMonitoredCall": false, "pickUpCallsOnHold": false,
			"totalActiveCalls": len(ev.ActiveCalls)}
		// telephonyStatus "is sent only when it changed"; the fake always sends it (the change is the point
		// of the event); activeCalls only with detailedTelephonyState.
		if ev.TelephonyStatus != "" {
			b["telephonyStatus"] = ev.TelephonyStatus
		}
		if detailed {
			b["activeCalls"] = ev.ActiveCalls
		}
		env := map[string]any{"uuid": random(), "event": strings.Replace(strings.Replace(filter, "account/~", "account/1001", 1), "extension/~", "extension/"+ext, 1),
			"timestamp": s.now().UTC().Format("2006-01-02T15:04:05.000Z"), "subscriptionId": sub.ID, "ownerId": "1001", "body": b}
		raw, _ := json.Marshal(env)
		out = append(out, Envelope{Address: sub.Address, Token: sub.VerificationToken, Body: raw})
	}
	return out
}

func presenceStatus(ev PresenceEvent) string {
	switch {
	case ev.TelephonyStatus != "" && ev.TelephonyStatus != "NoCall":
		return "Busy"
	case ev.UserStatus != "":
		return ev.UserStatus
	}
	return "Available"
}

// covers finds the subscription's filter of the extension's presence. When both the simple and the
// detailed filter are given, "you get detailed notifications only" (event-filters/presence.md).
func covers(sub *Subscription, ext string) (string, bool) {
	found := ""
	for _, f := range sub.EventFilters {
		m := filterRE.FindStringSubmatch(f)
		if m == nil || (m[2] != ext && m[2] != "~") {
			continue
		}
		if found == "" || strings.Contains(f, "detailedTelephonyState=true") {
			found = f
		}
	}
	return found, found != ""
}

// Send posts one notification with its Verification-Token header (team-messaging docs; the older
// receiving.md example names it validation-token: RingCentral's header name differs between pages) and
// returns the status. A failed delivery counts towards blacklisting the subscription.
func (s *Server) Send(ctx context.Context, e Envelope) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Address, bytes.NewReader(e.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.Token != "" {
		req.Header.Set("Verification-Token", e.Token)
	}
	resp, err := s.Client.Do(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var env struct {
		SubscriptionID string `json:"subscriptionId"`
	}
	_ = json.Unmarshal(e.Body, &env)
	s.mu.Lock()
	if sub, ok := s.subs[env.SubscriptionID]; ok {
		if status == http.StatusOK {
			sub.failures = 0
		} else if sub.failures++; s.BlacklistAfter > 0 && sub.failures >= s.BlacklistAfter {
			sub.Status, sub.BlacklistReason, sub.BlacklistedAt = "Blacklisted", "Webhook responses are failing: "+strconv.Itoa(status), s.now()
		}
	}
	s.mu.Unlock()
	return status, err
}

// Deliver is Event followed by Send of each notification; it fails unless every one was answered 200.
func (s *Server) Deliver(ctx context.Context, ext string, ev PresenceEvent) error {
	for _, e := range s.Event(ext, ev) {
		status, err := s.Send(ctx, e)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("delivery answered %d", status)
		}
	}
	return nil
}
