package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

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
//   - a transient failure (apperr.Retryable: storage, Key Vault, throttling, a dependency down) is
//     retried with growing delays: the router schedules a copy (Retry) and completes the original, so
//     an outage of hours costs a few dozen deliveries, not the ten immediate ones after which Service
//     Bus dead-letters. If scheduling the copy fails (Service Bus itself), the invocation fails and
//     Service Bus redelivers: nothing is dropped. Once the failures have lasted Retry.GiveUpAfter the
//     message is parked with its last reason. Without a Retry the invocation fails, as before;
//   - a permanent failure (bad input, forged or undecryptable content, an unknown tenant) and a kind no
//     worker takes can never succeed: the message is parked at once with its reason (Parker, see
//     ParkingLot for why not the dead-letter queue) and completed. If parking fails, the invocation
//     fails and the message comes back: nothing is dropped.
//
// Every parked or rescheduled message is logged with its ids, kind and reason (never the body) and
// counted by kind.
type Router struct {
	queue  string
	parker Parker
	retry  *Retry
	log    *slog.Logger

	mu         sync.RWMutex
	workers    map[string]Worker
	unroutable map[string]int64
	parked     map[string]int64
	retried    map[string]int64
}

// Message properties of a copy the router scheduled after a transient failure.
const (
	PropRetry        = "retry"          // copies scheduled so far
	PropFirstFailure = "firstFailureAt" // when the first delivery failed (RFC 3339), kept across copies
)

// Retry is the router's policy for transient failures: the copy of the message is scheduled First after
// the first failure, doubling up to Max, until the failures have lasted GiveUpAfter.
type Retry struct {
	Sender      Sender
	First       time.Duration // default 5 s
	Max         time.Duration // default 15 min
	GiveUpAfter time.Duration // default 12 h: a day's message time-to-live restarts with each copy
	Now         func() time.Time
}

func (p *Retry) defaults() {
	if p.First <= 0 {
		p.First = 5 * time.Second
	}
	if p.Max <= 0 {
		p.Max = 15 * time.Minute
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = 12 * time.Hour
	}
	if p.Now == nil {
		p.Now = time.Now
	}
}

// NewRouter makes a router for queue with no kinds; each capability's wiring registers its own with
// Handle. Without a parker there is nowhere to keep what cannot succeed: that is a wiring error. retry
// may be nil: transient failures then fail the invocation and Service Bus redelivers at once.
func NewRouter(queue string, parker Parker, retry *Retry, log *slog.Logger) (*Router, error) {
	if queue == "" || parker == nil || (retry != nil && retry.Sender == nil) {
		return nil, errors.New("queue router: the queue name and a parker are required, and a sender for retries")
	}
	if retry != nil {
		p := *retry
		p.defaults()
		retry = &p
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{queue: queue, parker: parker, retry: retry, log: log, workers: map[string]Worker{},
		unroutable: map[string]int64{}, parked: map[string]int64{}, retried: map[string]int64{}}, nil
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
	switch {
	case err == nil:
		return nil
	case !apperr.Retryable(err):
		return r.park(ctx, d, kind, err)
	case r.retry == nil:
		return err
	}
	return r.reschedule(ctx, d, kind, err)
}

// reschedule schedules the copy of a message whose processing failed transiently, or parks it once the
// failures have lasted GiveUpAfter. The copy's id is derived from the original's and the retry count, so
// a redelivered original schedules the same copy again and duplicate detection drops the second.
func (r *Router) reschedule(ctx context.Context, d *Delivery, kind string, cause error) error {
	now := r.retry.Now()
	first, perr := time.Parse(time.RFC3339Nano, d.ApplicationProperties[PropFirstFailure])
	if perr != nil || first.After(now) {
		first = now
	}
	if now.Sub(first) >= r.retry.GiveUpAfter {
		return r.park(ctx, d, kind, apperr.New(apperr.GaveUp,
			fmt.Sprintf("transient failures for %s: %s", r.retry.GiveUpAfter, apperr.PublicMessage(cause)), cause))
	}
	n, _ := strconv.Atoi(d.ApplicationProperties[PropRetry])
	n = max(n, 0) + 1
	delay := Backoff(r.retry.First, r.retry.Max, n)
	props := make(map[string]string, len(d.ApplicationProperties)+2)
	maps.Copy(props, d.ApplicationProperties)
	props[PropRetry] = strconv.Itoa(n)
	props[PropFirstFailure] = first.UTC().Format(time.RFC3339Nano)
	at := now.Add(delay)
	base, _, _ := strings.Cut(d.MessageID, retrySep)
	again := Message{ID: base + retrySep + strconv.Itoa(n), SessionID: d.SessionID, ContentType: d.ContentType,
		Subject: d.Subject, Body: d.Body, ApplicationProperties: props, ScheduledEnqueueTime: &at}
	if err := r.retry.Sender.Send(ctx, r.queue, []Message{again}); err != nil {
		return fmt.Errorf("%w (and scheduling its retry failed: %v)", cause, err)
	}
	r.count(r.retried, kind)
	r.log.WarnContext(ctx, "queue message retried later", "code", apperr.CodeOf(cause).String(), "reason", apperr.PublicMessage(cause),
		"kind", kind, "message_id", d.MessageID, "retry", n, "delay_ms", delay.Milliseconds())
	return nil
}

// Backoff is the delay before retry n (from 1): first, doubling each time, at most limit.
func Backoff(first, limit time.Duration, n int) time.Duration {
	if n < 1 || n > 30 || first<<(n-1) >= limit {
		return limit
	}
	return first << (n - 1)
}

// retrySep separates a retry copy's number from the original message id (a Service Bus message id is at
// most 128 characters; ours are far shorter).
const retrySep = "~retry"

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

// Retried returns how many messages were scheduled again after a transient failure, by kind.
func (r *Router) Retried() map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.retried)
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
