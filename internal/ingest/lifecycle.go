package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// SubscriptionUpdater changes one subscription record under optimistic concurrency
// (registry.Table[Subscription].Update).
type SubscriptionUpdater interface {
	Update(ctx context.Context, tenant core.TenantID, id string, fn func(*registry.Subscription) error) (registry.Subscription, error)
}

// LifecycleAction is what the subscription manager does about an event (reauthorize, recreate, resync).
// Nil until that capability is wired: the event is then only recorded.
type LifecycleAction interface {
	Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error
}

// LifecycleWorker is ProcessLifecycle: it records each lifecycle event on its subscription record (last
// event and time) and then lets the subscription manager act. Any failure fails the invocation, so the
// message is redelivered and, at worst, dead-lettered — never lost.
type LifecycleWorker struct {
	subs   SubscriptionUpdater
	action LifecycleAction
	now    func() time.Time
	log    *slog.Logger
}

// NewLifecycleWorker builds the worker; action may be nil.
func NewLifecycleWorker(subs SubscriptionUpdater, action LifecycleAction, now func() time.Time, log *slog.Logger) *LifecycleWorker {
	if now == nil {
		now = time.Now
	}
	return &LifecycleWorker{subs: subs, action: action, now: now, log: log}
}

// Process handles one queued lifecycle notification.
func (w *LifecycleWorker) Process(ctx context.Context, d *queue.Delivery) error {
	var n notification.Notification
	if err := json.Unmarshal(d.Body, &n); err != nil {
		return apperr.New(apperr.Invalid, "lifecycle message is not a notification", err)
	}
	tenant, err := core.ParseTenantID(d.ApplicationProperties[queue.PropTenant])
	if err != nil {
		return apperr.New(apperr.Invalid, "lifecycle message without a tenant", err)
	}
	ctx = core.WithTenant(ctx, tenant)
	if n.LifecycleEvent == "" || n.SubscriptionID == "" {
		return apperr.New(apperr.Invalid, "lifecycle message without event or subscription", nil)
	}
	at := w.now().UTC()
	sub, err := w.subs.Update(ctx, tenant, n.SubscriptionID, func(s *registry.Subscription) error {
		s.LastLifecycleEvent = n.LifecycleEvent
		s.LastLifecycleAt = at
		s.UpdatedAt = at
		return nil
	})
	if errors.Is(err, tables.ErrNotFound) {
		// We deleted the subscription ourselves (tenant offboarded, rebalanced): nothing left to act on.
		w.log.InfoContext(ctx, "lifecycle event for a deleted subscription", "subscription_id", core.Clip(n.SubscriptionID, maxLoggedID),
			"event", core.Clip(n.LifecycleEvent, maxLoggedID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("record lifecycle event: %w", err)
	}
	w.log.InfoContext(ctx, "lifecycle event recorded", "subscription_id", core.Clip(n.SubscriptionID, maxLoggedID),
		"event", core.Clip(n.LifecycleEvent, maxLoggedID))
	if w.action == nil {
		return nil
	}
	if err := w.action.Handle(ctx, tenant, sub, n.LifecycleEvent); err != nil {
		return fmt.Errorf("act on %s: %w", n.LifecycleEvent, err)
	}
	return nil
}
