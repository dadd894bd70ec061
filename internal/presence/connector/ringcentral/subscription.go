package ringcentral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Webhook subscriptions (RingCentral developer guide, notifications/webhooks/creating-webhooks.md):
// POST /restapi/v1.0/subscription with deliveryMode WebHook (Medium), GET and POST .../renew (Light),
// PUT to change the filters (Medium), DELETE (Medium). Creation makes RingCentral call the address with
// a Validation-Token header first; a wrong, slow (over 3 s) or large (over 1,024 bytes) answer fails it
// with SUB-525. A subscription whose deliveries kept failing is "Blacklisted", for good: it must be
// deleted and created again (troubleshooting.md). The calls share the tenant's token and its rate-limit
// state with the pushes, so a penalty stops them too.

// SubscriptionInfo is what RingCentral answers about a webhook subscription.
type SubscriptionInfo struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"` // Active, Suspended, Blacklisted
	ExpirationTime time.Time `json:"expirationTime"`
	EventFilters   []string  `json:"eventFilters"`
}

// Blacklisted reports whether RingCentral gave up on the subscription (permanent).
func (s SubscriptionInfo) Blacklisted() bool { return s.Status == "Blacklisted" }

// ErrSubscriptionGone means RingCentral no longer knows the subscription (404).
var ErrSubscriptionGone = errors.New("ringcentral subscription not found")

// PresenceFilter is the event filter of an extension's presence with the detailed telephony state (the
// call state we map to Teams; "detailed notifications only" when both are given).
func PresenceFilter(extensionID string) string {
	return "/restapi/v1.0/account/~/extension/" + url.PathEscape(extensionID) + "/presence?detailedTelephonyState=true"
}

// CreateSubscription creates a webhook subscription to the filters, delivered to address with the
// verification token in each delivery's header.
func (c *Connector) CreateSubscription(ctx context.Context, tenant core.TenantID, filters []string, address, verificationToken string, expiresIn time.Duration) (SubscriptionInfo, error) {
	body, _ := json.Marshal(map[string]any{
		"eventFilters": filters,
		"deliveryMode": map[string]any{"transportType": "WebHook", "address": address, "verificationToken": verificationToken},
		"expiresIn":    int(expiresIn / time.Second),
	})
	return c.subscriptionCall(ctx, tenant, "create subscription", http.MethodPost, "/restapi/v1.0/subscription", body)
}

// GetSubscription reads a subscription's status (Light).
func (c *Connector) GetSubscription(ctx context.Context, tenant core.TenantID, id string) (SubscriptionInfo, error) {
	return c.subscriptionCall(ctx, tenant, "read subscription", http.MethodGet, "/restapi/v1.0/subscription/"+url.PathEscape(id), nil)
}

// UpdateSubscription renews the subscription with (possibly changed) filters (PUT, Medium).
func (c *Connector) UpdateSubscription(ctx context.Context, tenant core.TenantID, id string, filters []string, expiresIn time.Duration) (SubscriptionInfo, error) {
	body, _ := json.Marshal(map[string]any{"eventFilters": filters, "expiresIn": int(expiresIn / time.Second)})
	return c.subscriptionCall(ctx, tenant, "renew subscription", http.MethodPut, "/restapi/v1.0/subscription/"+url.PathEscape(id), body)
}

// DeleteSubscription deletes the subscription; one already gone is not an error.
func (c *Connector) DeleteSubscription(ctx context.Context, tenant core.TenantID, id string) error {
	_, err := c.subscriptionCall(ctx, tenant, "delete subscription", http.MethodDelete, "/restapi/v1.0/subscription/"+url.PathEscape(id), nil)
	if errors.Is(err, ErrSubscriptionGone) {
		return nil
	}
	return err
}

// HandshakeError is a creation RingCentral refused because our endpoint's handshake answer was wrong,
// slow or too large (SUB-525).
type HandshakeError struct{ Code string }

func (e *HandshakeError) Error() string {
	return "ringcentral refused the webhook handshake (" + e.Code + ")"
}

func (c *Connector) subscriptionCall(ctx context.Context, tenant core.TenantID, op, method, path string, body []byte) (SubscriptionInfo, error) {
	ts := c.state(tenant)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if wait := ts.blocked.Sub(c.o.Now()); wait > 0 {
		// A request during the penalty restarts it (rate-limits.md): none is sent until it ends.
		return SubscriptionInfo{}, &connector.Error{Op: op, Status: http.StatusTooManyRequests, RetryAfter: wait}
	}
	b, err := c.call(ctx, tenant, ts, op, method, c.o.BaseURL+path, body)
	var ce *connector.Error
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusNotFound:
		return SubscriptionInfo{}, fmt.Errorf("%s: %w", op, ErrSubscriptionGone)
	case errors.As(err, &ce) && ce.Status == http.StatusBadRequest && method == http.MethodPost:
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		if code := eb.code(); code == "SUB-525" {
			return SubscriptionInfo{}, &HandshakeError{Code: code}
		}
		return SubscriptionInfo{}, err
	case err != nil:
		return SubscriptionInfo{}, err
	case method == http.MethodDelete:
		return SubscriptionInfo{}, nil
	}
	var info SubscriptionInfo
	if err := json.Unmarshal(b, &info); err != nil || info.ID == "" {
		return SubscriptionInfo{}, fmt.Errorf("pbx %s: unexpected answer", op)
	}
	return info, nil
}

// PresenceFields are the userStatus and dndStatus a push of s sets: what RingCentral reports back in
// the presence event our own push causes (the echo the PBX → Teams direction drops).
func PresenceFields(s connector.State) (userStatus, dndStatus string) {
	b := presenceBody(s)
	return b["userStatus"], b["dndStatus"]
}
