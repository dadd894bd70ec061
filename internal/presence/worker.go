package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Message properties the worker adds to a rescheduled copy.
const (
	PropAttempt    = "attempt"    // PBX pushes or confirming reads tried so far for this notification
	PropObservedAt = "observedAt" // when the webhook first accepted it (RFC 3339), kept across copies
	PropLastError  = "lastError"  // code of the last failure (push or confirming read), on the exhausted copy
)

// Decrypter opens rich notification content (graphcrypto.KeyRing).
type Decrypter interface {
	Decrypt(ec graphcrypto.EncryptedContent) ([]byte, error)
}

// WorkerOptions tune the retry of PBX pushes.
type WorkerOptions struct {
	// Graph gives the service users' clients that confirm a notification the ordering rule cannot
	// place (see order in apply.go) by reading the user's presence. Without it such notifications are
	// retried and finally dead-lettered, never pushed unconfirmed.
	Graph       Clients
	MaxAttempts int           // pushes or confirming reads before the message is parked (default 48: about 10.6 h)
	RetryDelay  time.Duration // first backoff, doubling per attempt (default 10 s)
	MaxDelay    time.Duration // cap of the backoff (default 15 min)
	Now         func() time.Time
	Log         *slog.Logger
}

// Worker is ProcessNotification for presence: decrypt, map, store, push.
//
// A notification that may be a late or repeated one (Unconfirmed: no sequence number proves it newer,
// or it waited past freshFor) is confirmed by reading the user's presence from Graph through the service
// user whose subscription delivered it; what Graph answers is applied instead. A failed read is retried
// like a failed push; nothing is pushed unconfirmed.
//
// A PBX push that fails in a way that may pass (throttling, 5xx, no answer) is retried with backoff: the
// worker schedules a copy of the message (Service Bus scheduled enqueue, same session, attempt+1) and
// completes the original; with the defaults a PBX outage is retried for about ten hours. After
// MaxAttempts the worker gives up with apperr.GaveUp and the queue router parks the message with the
// reason (attempts and the last failure's code). A permanent failure (user
// not mapped, PBX not configured, 4xx) is recorded in syncerrors for the tenant's error report and the
// message completes: retrying cannot help until an admin acts.
type Worker struct {
	applier *Applier
	keys    Decrypter
	sender  queue.Sender
	o       WorkerOptions
}

// NewWorker builds the worker; sender reschedules retries onto the notifications queue.
func NewWorker(applier *Applier, keys Decrypter, sender queue.Sender, o WorkerOptions) *Worker {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 48
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 10 * time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Worker{applier: applier, keys: keys, sender: sender, o: o}
}

// presenceResource is the decrypted content of a presence notification.
type presenceResource struct {
	ID             string `json:"id"`
	Availability   string `json:"availability"`
	Activity       string `json:"activity"`
	SequenceNumber string `json:"sequenceNumber"`
}

// Process handles one queued presence notification.
func (w *Worker) Process(ctx context.Context, d *queue.Delivery) error {
	tenant, err := core.ParseTenantID(d.ApplicationProperties[queue.PropTenant])
	if err != nil {
		return apperr.New(apperr.Invalid, "presence message without a tenant", err)
	}
	ctx = core.WithTenant(ctx, tenant)
	if k := d.ApplicationProperties[queue.PropKind]; k != string(registry.KindPresence) {
		return apperr.New(apperr.Invalid, fmt.Sprintf("message of kind %q on the presence worker", k), nil)
	}
	attempt, _ := strconv.Atoi(d.ApplicationProperties[PropAttempt])
	if attempt >= w.o.MaxAttempts {
		// A copy an earlier version left to be dead-lettered: parked now, the PBX is not called again.
		return apperr.New(apperr.GaveUp, fmt.Sprintf("presence sync gave up after %d attempts (%s)", attempt,
			d.ApplicationProperties[PropLastError]), nil)
	}
	obs, subID, err := w.observe(d)
	if err != nil {
		return err
	}
	out, err := w.applier.Apply(ctx, tenant, obs)
	if err == nil && out == Unconfirmed {
		out, err = w.confirm(ctx, tenant, subID, obs)
	}
	if err == nil {
		w.o.Log.DebugContext(ctx, "presence applied", "user_id", obs.UserID, "outcome", string(out))
		return nil
	}
	var code string
	var retryAfter time.Duration
	var pe *PushError
	var ce *confirmError
	switch {
	case errors.As(err, &ce):
		// Graph could not say what is current: try again later rather than push what may be stale.
		code = ce.code
		w.o.Log.WarnContext(ctx, "presence confirmation failed", "user_id", obs.UserID, "code", code)
	case errors.As(err, &pe):
		code, retryAfter = connector.Code(err), connector.RetryAfter(err)
		if !connector.Retryable(err) {
			w.o.Log.WarnContext(ctx, "presence push failed permanently", "user_id", obs.UserID, "code", code)
			return nil
		}
	default:
		return err // storage trouble: let Service Bus redeliver
	}
	attempt++
	if attempt >= w.o.MaxAttempts {
		w.applier.stats.gaveUp.Add(1)
		w.o.Log.ErrorContext(ctx, "presence push gave up", "user_id", obs.UserID, "attempts", attempt, "code", code)
		return apperr.New(apperr.GaveUp, fmt.Sprintf("presence sync gave up after %d attempts (%s)", attempt, code), nil)
	}
	delay := max(queue.Backoff(w.o.RetryDelay, w.o.MaxDelay, attempt), retryAfter)
	if err := w.reschedule(ctx, d, obs, attempt, delay, code); err != nil {
		return fmt.Errorf("reschedule presence push: %w", err)
	}
	w.applier.stats.retried.Add(1)
	w.o.Log.InfoContext(ctx, "presence push rescheduled", "user_id", obs.UserID, "attempt", attempt,
		"delay_ms", delay.Milliseconds(), "code", code)
	return nil
}

// confirmError is a confirming read that failed; code names the cause on the exhausted copy.
type confirmError struct {
	code string
	err  error
}

func (e *confirmError) Error() string { return "confirm presence: " + e.code + ": " + e.err.Error() }
func (e *confirmError) Unwrap() error { return e.err }

// confirm reads the user's presence from Graph and applies that instead of the notification: Graph's
// current state is right whether the notification was new, late or repeated. The read goes through the
// service user of the subscription that delivered the notification (any service user of the tenant may
// read every user's presence with Presence.Read.All, so another one stands in if that subscription was
// re-created since).
func (w *Worker) confirm(ctx context.Context, tenant core.TenantID, subID string, obs Observation) (Outcome, error) {
	su, err := w.serviceUser(ctx, tenant, subID)
	if err != nil {
		return Failed, err
	}
	if w.o.Graph == nil {
		return Failed, &confirmError{code: "graph_not_configured", err: errors.New("no graph clients")}
	}
	g, err := w.o.Graph.For(ctx, tenant, su)
	if err != nil {
		return Failed, &confirmError{code: "service_user_unavailable", err: err}
	}
	ps, err := g.PresencesByUserID(ctx, []string{obs.UserID})
	if err != nil {
		code := "graph_unavailable"
		var ge *graph.Error
		if errors.As(err, &ge) && ge.Status == http.StatusTooManyRequests {
			code = "graph_throttled"
		} else if errors.As(err, &ge) && !graph.Retryable(err) {
			code = fmt.Sprintf("graph_status_%d", ge.Status)
		}
		return Failed, &confirmError{code: code, err: err}
	}
	at := w.o.Now().UTC()
	w.applier.stats.confirmed.Add(1)
	for _, p := range ps {
		if strings.EqualFold(p.UserID, obs.UserID) {
			return w.applier.Apply(ctx, tenant, Observation{UserID: obs.UserID, Availability: p.Availability,
				Activity: p.Activity, Sequence: p.Sequence, At: at})
		}
	}
	// Graph leaves unknown ids out of its answer: the user is gone, there is nothing current to push.
	w.o.Log.InfoContext(ctx, "presence not confirmed: user unknown to graph", "user_id", obs.UserID)
	w.applier.stats.count(Stale)
	return Stale, nil
}

// serviceUser picks the service user to read through: the owner of the notification's subscription,
// else the owner of any of the tenant's presence subscriptions.
func (w *Worker) serviceUser(ctx context.Context, tenant core.TenantID, subID string) (string, error) {
	if subID != "" {
		s, err := w.applier.st.Subscriptions.Get(ctx, tenant, subID)
		switch {
		case err == nil && s.ServiceUserID != "":
			return s.ServiceUserID, nil
		case err != nil && !errors.Is(err, tables.ErrNotFound) && !errors.Is(err, tables.ErrInvalidKey):
			return "", fmt.Errorf("read subscription: %w", err)
		}
	}
	for s, err := range w.applier.st.Subscriptions.All(ctx, tenant, &tables.ListOptions{Select: []string{"Kind", "ServiceUserID"}}) {
		if err != nil {
			return "", fmt.Errorf("list subscriptions: %w", err)
		}
		if s.Kind == registry.KindPresence && s.ServiceUserID != "" {
			return s.ServiceUserID, nil
		}
	}
	return "", &confirmError{code: "no_service_user", err: errors.New("no presence subscription to read through")}
}

// observe decrypts the notification and cross-checks it against its envelope. It returns the
// subscription id too: its service user confirms the notification if need be.
func (w *Worker) observe(d *queue.Delivery) (Observation, string, error) {
	var n notification.Notification
	if err := json.Unmarshal(d.Body, &n); err != nil {
		return Observation{}, "", apperr.New(apperr.Invalid, "presence message is not a notification", err)
	}
	if !n.IsRich() {
		return Observation{}, "", apperr.New(apperr.Invalid, "presence notification without resource data", nil)
	}
	plain, err := w.keys.Decrypt(n.EncryptedContent)
	if err != nil {
		return Observation{}, "", apperr.New(apperr.Invalid, "presence content does not decrypt", err)
	}
	var p presenceResource
	if err := json.Unmarshal(plain, &p); err != nil || p.ID == "" {
		return Observation{}, "", apperr.New(apperr.Invalid, "presence content is not a presence", err)
	}
	// The encrypted resource must be the one the envelope names: content moved between notifications
	// would otherwise set someone else's presence.
	if n.ResourceData.ID != "" && !strings.EqualFold(n.ResourceData.ID, p.ID) {
		return Observation{}, "", apperr.New(apperr.Invalid, "presence content names another user", nil)
	}
	// The first acceptance by the webhook: a rescheduled copy keeps it, so its age counts from there.
	at := d.EnqueuedTime
	if v := d.ApplicationProperties[PropObservedAt]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			at = t
		}
	}
	if at.IsZero() {
		at = w.o.Now()
	}
	return Observation{UserID: strings.ToLower(p.ID), Availability: p.Availability, Activity: p.Activity,
		Sequence: p.SequenceNumber, At: at.UTC(), FromNotification: true}, n.SubscriptionID, nil
}

// reschedule queues a copy for later: same body and session (order per user is kept), a new message id
// (duplicate detection would drop the same one), and the attempt count.
func (w *Worker) reschedule(ctx context.Context, d *queue.Delivery, obs Observation, attempt int, delay time.Duration, code string) error {
	props := make(map[string]string, len(d.ApplicationProperties)+2)
	for k, v := range d.ApplicationProperties {
		props[k] = v
	}
	props[PropAttempt] = strconv.Itoa(attempt)
	props[PropObservedAt] = obs.At.Format(time.RFC3339Nano)
	props[PropLastError] = code
	at := w.o.Now().Add(delay)
	base, _, _ := strings.Cut(d.MessageID, "/")
	return w.sender.Send(ctx, queue.Notifications, []queue.Message{{
		ID: base + "/r" + strconv.Itoa(attempt), SessionID: d.SessionID, ContentType: d.ContentType,
		Body: d.Body, ApplicationProperties: props, ScheduledEnqueueTime: &at,
	}})
}
