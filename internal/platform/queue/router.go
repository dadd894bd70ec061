package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/connecthub/connecthub/internal/core"
)

// Worker processes one delivery of a queue-triggered function. An error fails the invocation: Service
// Bus redelivers the message and, after the queue's MaxDeliveryCount, dead-letters it.
type Worker interface {
	Process(ctx context.Context, d *Delivery) error
}

// Counter names of Unroutable besides the kinds themselves: messages without a kind, and kinds beyond
// maxCountedKinds.
const (
	NoKind    = "(none)"
	OtherKind = "(other)"
)

// maxCountedKinds bounds the unroutable counters: the kind comes from the message, and a flood of
// invented kinds must not grow the map without end.
const maxCountedKinds = 16

// maxLoggedKind bounds how much of an unknown kind is logged and counted.
const maxLoggedKind = 64

// Router is the one worker of a queue that carries several kinds of message (ProcessNotification): it
// hands each delivery to the worker registered for its PropKind application property, which the intake
// sets on every message.
//
// A message whose kind has no worker can never succeed, so redelivering it ten times only delays the
// dead-letter. The router cannot dead-letter it either: a custom handler settles a message only through
// its answer (success completes it, failure abandons it), and Service Bus accepts messages into a
// dead-letter queue only through the dead-letter operation of a receiver, not from a sender. So
// "dead-lettered at once" means here: the router logs the reason with the message id, kind, tenant and
// delivery count (never the body), counts it by kind (Unroutable, shown in Health), and completes the
// message. The body is not kept: it may hold personal data (encrypted presence), and a copy in a second
// queue would be one more store for the data inventory and retention to answer for.
type Router struct {
	log *slog.Logger

	mu         sync.RWMutex
	workers    map[string]Worker
	unroutable map[string]int64
}

// NewRouter makes a router with no kinds; each capability's wiring registers its own with Handle.
func NewRouter(log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{log: log, workers: map[string]Worker{}, unroutable: map[string]int64{}}
}

// Handle registers the worker of kind. A kind has one worker: registering it twice is a wiring error.
func (r *Router) Handle(kind string, w Worker) error {
	if kind == "" || w == nil {
		return errors.New("register queue worker: kind and worker are required")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.workers[kind]; ok {
		return fmt.Errorf("register queue worker: kind %q has a worker already", kind)
	}
	r.workers[kind] = w
	return nil
}

// Process hands d to its kind's worker and returns what that worker returns. A kind without a worker
// completes the message at once (see Router).
func (r *Router) Process(ctx context.Context, d *Delivery) error {
	kind := d.ApplicationProperties[PropKind]
	// The intake wrote a canonical tenant id; the worker checks it again before it trusts it. Here it
	// only stamps the invocation's log lines.
	if t, err := core.ParseTenantID(d.ApplicationProperties[PropTenant]); err == nil {
		ctx = core.WithTenant(ctx, t)
	}
	r.mu.RLock()
	w, ok := r.workers[kind]
	r.mu.RUnlock()
	if ok {
		return w.Process(ctx, d)
	}
	reason := "no worker for the message's kind"
	if kind == "" {
		reason = "message without a kind"
	}
	if len(kind) > maxLoggedKind {
		kind = kind[:maxLoggedKind]
	}
	r.count(kind)
	r.log.WarnContext(ctx, "queue message dropped", "reason", reason, "kind", kind, "message_id", d.MessageID,
		"delivery_count", d.DeliveryCount)
	return nil
}

func (r *Router) count(kind string) {
	if kind == "" {
		kind = NoKind
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.unroutable[kind]; !seen && len(r.unroutable) >= maxCountedKinds {
		kind = OtherKind
	}
	r.unroutable[kind]++
}

// Unroutable returns how many messages were dropped for want of a worker, by kind.
func (r *Router) Unroutable() map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]int64, len(r.unroutable))
	for k, v := range r.unroutable {
		out[k] = v
	}
	return out
}
