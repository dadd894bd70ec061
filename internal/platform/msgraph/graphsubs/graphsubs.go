// Package graphsubs keeps a capability's app-only Graph subscriptions on Outlook resources (a room's
// events, a user's contacts): made with a fresh clientState whose hash the webhook checks, recorded in
// the registry under the capability's kind, renewed, removed; and it reads back which subscription a
// queued notification names. The capability decides which resources it wants; this package only does
// what every Outlook subscription needs done the same way.
package graphsubs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Graph is what a keeper needs of a tenant's app-only Graph client (graph.Client).
type Graph interface {
	CreateSubscription(ctx context.Context, s graph.NewSubscription) (graph.Subscription, error)
	RenewSubscription(ctx context.Context, id string, expires time.Time) (time.Time, error)
	ReauthorizeSubscription(ctx context.Context, id string) error
	DeleteSubscription(ctx context.Context, id string) error
}

var _ Graph = (*graph.Client)(nil)

// MaxLifetime stays under Graph's 10,080 minutes for Outlook resources (events, contacts, messages)
// without resource data (change-notifications-subscription-lifetime.md, ms.date 11/07/2024).
const MaxLifetime = 10000 * time.Minute

// ChangeTypes are the changes an Outlook subscription asks for: all of them, so nothing is missed.
const ChangeTypes = "created,updated,deleted"

// Keeper keeps one kind's subscriptions.
type Keeper struct {
	Subs *tables.Table[registry.Subscription, *registry.Subscription]
	Kind registry.SubscriptionKind
	// NotificationURL and LifecycleURL are the webhooks Graph posts to.
	NotificationURL, LifecycleURL string
	// Lifetime of a subscription (0 or above MaxLifetime: MaxLifetime).
	Lifetime time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

func (k *Keeper) lifetime() time.Duration {
	if k.Lifetime <= 0 || k.Lifetime > MaxLifetime {
		return MaxLifetime
	}
	return k.Lifetime
}

// Create subscribes to resource's changes without resource data (the worker reads what it needs) and
// records the subscription. A subscription Graph made but we could not record is deleted at Graph: its
// notifications would be refused, and it would be leaked.
func (k *Keeper) Create(ctx context.Context, tenant core.TenantID, g Graph, resource string) (registry.Subscription, error) {
	state, hash, err := registry.NewClientState()
	if err != nil {
		return registry.Subscription{}, err
	}
	now := k.Now().UTC()
	req := graph.NewSubscription{Resource: resource, ChangeType: ChangeTypes, NotificationURL: k.NotificationURL,
		LifecycleNotificationURL: k.LifecycleURL, ClientState: state, ExpiresAt: now.Add(k.lifetime())}
	sub, err := g.CreateSubscription(ctx, req)
	if err != nil {
		return registry.Subscription{}, fmt.Errorf("create %s subscription: %w", k.Kind, err)
	}
	rec := registry.Subscription{ID: sub.ID, Kind: k.Kind, Resource: resource, ChangeType: ChangeTypes,
		ExpiresAt: sub.ExpiresAt, ClientStateHash: hash, CreatedAt: now, UpdatedAt: now}
	if _, err := k.Subs.Insert(ctx, tenant, rec); err != nil {
		_ = g.DeleteSubscription(ctx, sub.ID)
		return registry.Subscription{}, fmt.Errorf("record %s subscription: %w", k.Kind, err)
	}
	k.Log.InfoContext(ctx, "subscription created", "kind", string(k.Kind), "subscription_id", sub.ID)
	return rec, nil
}

// Remove deletes the subscription at Graph (one Graph no longer has counts as deleted) and its record.
func (k *Keeper) Remove(ctx context.Context, tenant core.TenantID, g Graph, id string) error {
	if err := g.DeleteSubscription(ctx, id); err != nil && !errors.Is(err, graph.ErrNotFound) {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	if err := k.Subs.Delete(ctx, tenant, id); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return fmt.Errorf("delete subscription record %s: %w", id, err)
	}
	return nil
}

// Renew extends s by the lifetime. gone says Graph no longer has it (expired, or removed without a word
// reaching us): its record is removed, and the caller makes a new one and reads what changed meanwhile.
func (k *Keeper) Renew(ctx context.Context, tenant core.TenantID, g Graph, s registry.Subscription) (gone bool, err error) {
	now := k.Now().UTC()
	var exp time.Time
	if s.ExpiresAt.After(now) {
		exp, err = g.RenewSubscription(ctx, s.ID, now.Add(k.lifetime()))
	} else {
		err = graph.ErrNotFound // expired at Graph: nothing to renew
	}
	if errors.Is(err, graph.ErrNotFound) {
		return true, k.Remove(ctx, tenant, g, s.ID)
	}
	if err != nil {
		return false, fmt.Errorf("renew subscription %s: %w", s.ID, err)
	}
	if _, err := k.Subs.Update(ctx, tenant, s.ID, func(r *registry.Subscription) error {
		r.ExpiresAt, r.UpdatedAt = exp, now
		return nil
	}); err != nil {
		return false, fmt.Errorf("record renewal of %s: %w", s.ID, err)
	}
	return false, nil
}

// All lists the tenant's subscriptions of the keeper's kind.
func (k *Keeper) All(ctx context.Context, tenant core.TenantID) ([]registry.Subscription, error) {
	var out []registry.Subscription
	for s, err := range k.Subs.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("read subscriptions: %w", err)
		}
		if s.Kind == k.Kind {
			out = append(out, s)
		}
	}
	return out, nil
}

// Received reads a queued notification of the keeper's kind: the tenant it came for (also put into
// ctx) and the subscription it names. held is false when that subscription is no longer ours (deleted
// since): the notification is dropped. A message that is no notification, or names a subscription of
// another kind, is Invalid (parked: it can never succeed).
func (k *Keeper) Received(ctx context.Context, d *queue.Delivery) (context.Context, core.TenantID, registry.Subscription, bool, error) {
	var n notification.Notification
	if err := json.Unmarshal(d.Body, &n); err != nil {
		return ctx, "", registry.Subscription{}, false, apperr.New(apperr.Invalid, string(k.Kind)+" message is not a notification", err)
	}
	tenant, err := core.ParseTenantID(d.ApplicationProperties[queue.PropTenant])
	if err != nil {
		return ctx, "", registry.Subscription{}, false, apperr.New(apperr.Invalid, string(k.Kind)+" message without a tenant", err)
	}
	ctx = core.WithTenant(ctx, tenant)
	sub, err := k.Subs.Get(ctx, tenant, n.SubscriptionID)
	if errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey) {
		k.Log.InfoContext(ctx, "notification for a subscription no longer held", "kind", string(k.Kind),
			"subscription_id", core.Clip(n.SubscriptionID, 64))
		return ctx, tenant, registry.Subscription{}, false, nil
	}
	if err != nil {
		return ctx, tenant, registry.Subscription{}, false, fmt.Errorf("read subscription: %w", err)
	}
	if sub.Kind != k.Kind {
		return ctx, tenant, registry.Subscription{}, false, apperr.New(apperr.Invalid, string(k.Kind)+" notification for a subscription of kind "+string(sub.Kind), nil)
	}
	return ctx, tenant, sub, true, nil
}

// Lifecycle events Graph posts to a subscription's lifecycle URL (change-notifications-lifecycle-events.md,
// ms.date 12/20/2024).
const (
	EventReauthorizationRequired = "reauthorizationRequired"
	EventSubscriptionRemoved     = "subscriptionRemoved"
	EventMissed                  = "missed"
)

// Lifecycle acts on a lifecycle event of s: it reauthorizes s; a subscription Graph removed (or no
// longer has when asked to reauthorize) is removed here too and recreate is called, which makes a new
// one if the resource is still wanted and says whether it did. reread says the resource must be read
// again now, its changes since having never been notified: after a recreation, and after missed
// notifications.
func (k *Keeper) Lifecycle(ctx context.Context, tenant core.TenantID, g Graph, s registry.Subscription, event string,
	recreate func() (bool, error)) (reread bool, err error) {
	switch event {
	case EventReauthorizationRequired:
		err := g.ReauthorizeSubscription(ctx, s.ID)
		if !errors.Is(err, graph.ErrNotFound) {
			return false, err
		}
		fallthrough // gone at Graph: recreate
	case EventSubscriptionRemoved:
		if err := k.Remove(ctx, tenant, g, s.ID); err != nil {
			return false, err
		}
		return recreate()
	case EventMissed:
		return true, nil
	}
	return false, nil
}
