package graph

import (
	"context"
	"errors"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/subscriptions"
)

// NewSubscription is a subscription to create. ClientState is the secret Graph echoes on every
// notification; it is sent once and never returned by Graph.
type NewSubscription struct {
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	ExpiresAt                time.Time
	// Rich notifications: the resource, encrypted with this certificate (base64 DER) and named by this id.
	IncludeResourceData     bool
	EncryptionCertificate   string
	EncryptionCertificateID string
}

// Subscription is a subscription as Graph reports it.
type Subscription struct {
	ID                       string
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ExpiresAt                time.Time
	ApplicationID            string
	CreatorID                string
}

// CreateSubscription creates a subscription. Graph validates the notification URLs (validation
// handshake) before it answers, so this takes up to ~10 s per URL.
func (c *Client) CreateSubscription(ctx context.Context, s NewSubscription) (Subscription, error) {
	if s.Resource == "" || s.ChangeType == "" || s.NotificationURL == "" || s.ExpiresAt.IsZero() {
		return Subscription{}, errors.New("create subscription: resource, change type, notification URL and expiry are required")
	}
	body := models.NewSubscription()
	body.SetResource(&s.Resource)
	body.SetChangeType(&s.ChangeType)
	body.SetNotificationUrl(&s.NotificationURL)
	if s.LifecycleNotificationURL != "" {
		body.SetLifecycleNotificationUrl(&s.LifecycleNotificationURL)
	}
	if s.ClientState != "" {
		body.SetClientState(&s.ClientState)
	}
	exp := s.ExpiresAt.UTC()
	body.SetExpirationDateTime(&exp)
	if s.IncludeResourceData {
		t := true
		body.SetIncludeResourceData(&t)
		body.SetEncryptionCertificate(&s.EncryptionCertificate)
		body.SetEncryptionCertificateId(&s.EncryptionCertificateID)
	}
	tls := "v1_2"
	body.SetLatestSupportedTlsVersion(&tls)
	got, err := subscriptions.NewSubscriptionsRequestBuilderInternal(c.params(), c.adapter).Post(ctx, body, nil)
	if err != nil {
		return Subscription{}, wrap("create subscription", err)
	}
	if got == nil || got.GetId() == nil {
		return Subscription{}, &Error{Op: "create subscription", Status: 201, Code: "noId"}
	}
	return toSubscription(got), nil
}

// RenewSubscription moves the expiry (PATCH expirationDateTime) and returns the expiry Graph granted.
func (c *Client) RenewSubscription(ctx context.Context, id string, expires time.Time) (time.Time, error) {
	if id == "" {
		return time.Time{}, errors.New("renew subscription: empty id")
	}
	body := models.NewSubscription()
	exp := expires.UTC()
	body.SetExpirationDateTime(&exp)
	got, err := c.subscription(id).Patch(ctx, body, nil)
	if err != nil {
		return time.Time{}, wrap("renew subscription", err)
	}
	if got != nil && got.GetExpirationDateTime() != nil {
		return got.GetExpirationDateTime().UTC(), nil
	}
	return exp, nil
}

// ReauthorizeSubscription answers a reauthorizationRequired lifecycle event.
func (c *Client) ReauthorizeSubscription(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("reauthorize subscription: empty id")
	}
	return wrap("reauthorize subscription", c.subscription(id).Reauthorize().Post(ctx, nil))
}

// DeleteSubscription deletes a subscription. One that no longer exists counts as deleted, so tenant
// deletion and rebalancing can call this blindly.
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("delete subscription: empty id")
	}
	err := wrap("delete subscription", c.subscription(id).Delete(ctx, nil))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ListSubscriptions lists the subscriptions of this app visible to the credential (all pages). With a
// delegated token Graph lists those created by that user.
func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	root := subscriptions.NewSubscriptionsRequestBuilderInternal(c.params(), c.adapter)
	b := root
	var out []Subscription
	for {
		page, err := b.Get(ctx, nil)
		if err != nil {
			return nil, wrap("list subscriptions", err)
		}
		if page == nil {
			return out, nil
		}
		for _, s := range page.GetValue() {
			out = append(out, toSubscription(s))
		}
		next := str(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
		b = root.WithUrl(next)
	}
}

func (c *Client) subscription(id string) *subscriptions.SubscriptionItemRequestBuilder {
	return subscriptions.NewSubscriptionsRequestBuilderInternal(c.params(), c.adapter).BySubscriptionId(id)
}

func toSubscription(s models.Subscriptionable) Subscription {
	out := Subscription{
		ID:                       str(s.GetId()),
		Resource:                 str(s.GetResource()),
		ChangeType:               str(s.GetChangeType()),
		NotificationURL:          str(s.GetNotificationUrl()),
		LifecycleNotificationURL: str(s.GetLifecycleNotificationUrl()),
		ApplicationID:            str(s.GetApplicationId()),
		CreatorID:                str(s.GetCreatorId()),
	}
	if e := s.GetExpirationDateTime(); e != nil {
		out.ExpiresAt = e.UTC()
	}
	return out
}
