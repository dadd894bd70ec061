package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
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

// Parker keeps a message that can never succeed, with the reason (ParkingLot).
type Parker interface {
	Park(ctx context.Context, queue string, d *Delivery, cause error) error
}

// Router is the one worker of a queue that carries several kinds of message (ProcessNotification): it
// hands each delivery to the worker registered for its PropKind application property, which the intake
// sets on every message, and it is the one place where a failure decides the message's fate:
//
//   - success completes the message;
//   - a transient failure (apperr.Retryable: storage, throttling, a dependency down) fails the
//     invocation, so Service Bus redelivers it, and after MaxDeliveryCount dead-letters it;
//   - a permanent failure (bad input, forged or undecryptable content, an unknown tenant) and a kind no
//     worker takes can never succeed: the message is parked at once with its reason (Parker, see
//     ParkingLot for why not the dead-letter queue) and completed. If parking fails, the invocation
//     fails and the message comes back: nothing is dropped.
//
// Every parked message is logged with its ids, kind and reason (never the body) and counted by kind.
type Router struct {
	queue  string
	parker Parker
	log    *slog.Logger

	mu         sync.RWMutex
	workers    map[string]Worker
	unroutable map[string]int64
	parked     map[string]int64
}

// NewRouter makes a router for queue with no kinds; each capability's wiring registers its own with
// Handle. Without a parker there is nowhere to keep what cannot succeed: that is a wiring error.
func NewRouter(queue string, parker Parker, log *slog.Logger) (*Router, error) {
	if queue == "" || parker == nil {
		return nil, errors.New("queue router: the queue name and a parker are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{queue: queue, parker: parker, log: log, workers: map[string]Worker{},
		unroutable: map[string]int64{}, parked: map[string]int64{}}, nil
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

// Process hands d to its kind's worker and settles the outcome (see Router).
func (r *Router) Process(ctx context.Context, d *Delivery) error {
	kind := d.ApplicationProperties[PropKind]
	// The intake wrote a canonical tenant id; the worker checks it again before it trusts it. Here it
	// only stamps the invocation's log lines.
	if t, err := core.ParseTenantID(d.ApplicationProperties[PropTenant]); err == nil {
		ctx = core.WithTenant(ctx, t)
	}
	if len(kind) > maxLoggedKind {
		kind = kind[:maxLoggedKind]
	}
	r.mu.RLock()
	w, ok := r.workers[kind]
	r.mu.RUnlock()
	if !ok {
		reason := "no worker for the message's kind"
		if kind == "" {
			reason = "message without a kind"
		}
		r.count(r.unroutable, kind)
		return r.park(ctx, d, kind, apperr.New(apperr.Invalid, reason, nil))
	}
	err := w.Process(ctx, d)
	if err == nil || apperr.Retryable(err) {
		return err
	}
	return r.park(ctx, d, kind, err)
}

func (r *Router) park(ctx context.Context, d *Delivery, kind string, cause error) error {
	if err := r.parker.Park(ctx, r.queue, d, cause); err != nil {
		// Keep the message: the next delivery parks it, or Service Bus dead-letters it in the end.
		return fmt.Errorf("%s (and parking it failed: %w)", apperr.PublicMessage(cause), err)
	}
	r.count(r.parked, kind)
	r.log.WarnContext(ctx, "queue message parked", "code", apperr.CodeOf(cause).String(), "reason", apperr.PublicMessage(cause),
		"kind", kind, "message_id", d.MessageID, "delivery_count", d.DeliveryCount)
	return nil
}

func (r *Router) count(m map[string]int64, kind string) {
	if kind == "" {
		kind = NoKind
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := m[kind]; !seen && len(m) >= maxCountedKinds {
		kind = OtherKind
	}
	m[kind]++
}

// Parked returns how many messages were parked, by kind.
func (r *Router) Parked() map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.parked)
}

// Unroutable returns how many messages were parked for want of a worker, by kind.
func (r *Router) Unroutable() map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]int64, len(r.unroutable))
	for k, v := range r.unroutable {
		out[k] = v
	}
	return out
}
