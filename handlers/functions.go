package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// NotificationIntake checks a Graph notification POST and hands its items to the queue. It returns nil
// once every valid item is durably queued (the webhook answers 202), an apperr Invalid when the body is
// not a notification collection (400), and anything else when the hand-off failed (503, Graph retries).
type NotificationIntake interface {
	Receive(ctx context.Context, lifecycle bool, body []byte) error
}

// Worker processes one queue message. An error fails the invocation: Service Bus redelivers and, after
// MaxDeliveryCount, dead-letters it.
type Worker interface {
	Process(ctx context.Context, d *queue.Delivery) error
}

// Job is a timer-triggered job. It is idempotent and resumable; it returns the joined per-item failures.
type Job interface {
	Run(ctx context.Context) error
}

// Check is one dependency probe for Health. It must not return or log secrets.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// App holds the services the functions call. A nil service makes its function answer with a clear
// failure instead of pretending success.
type App struct {
	Version, Build, Region string
	MaxBodyBytes           int64

	Intake        NotificationIntake
	Notifications Worker
	Lifecycle     Worker
	Renew         Job
	Retention     Job
	Licenses      Job
	Checks        []Check
	// Stats adds counters (per tenant, no personal data) to the Health answer.
	Stats func() any

	// Capabilities with their own functions (handlers/presence.go, handlers/tenants.go).
	Presence  PresenceServices
	Tenants   TenantServices
	Connector ConnectorServices // handlers/connector.go
}

// Routes is the route table: one entry per functions/<Name>/function.json.
func (a *App) Routes() []Route {
	routes := a.coreRoutes()
	routes = append(routes, a.presenceRoutes()...)
	routes = append(routes, a.connectorRoutes()...)
	return append(routes, a.tenantRoutes()...)
}

func (a *App) coreRoutes() []Route {
	return []Route{
		HTTPRoute("GraphWebhook", "req", "res", func(ctx context.Context, r *HTTPRequest) HTTPResponse {
			return a.graphPost(ctx, r, false)
		}),
		HTTPRoute("GraphLifecycle", "req", "res", func(ctx context.Context, r *HTTPRequest) HTTPResponse {
			return a.graphPost(ctx, r, true)
		}),
		HTTPRoute("Health", "req", "res", a.health),
		QueueRoute("ProcessNotification", "message", worker(&a.Notifications)),
		QueueRoute("ProcessLifecycle", "message", worker(&a.Lifecycle)),
		TimerRoute("RenewSubscriptions", "timer", job(&a.Renew)),
		TimerRoute("EnforceRetention", "timer", job(&a.Retention)),
		TimerRoute("ReconcileLicenses", "timer", job(&a.Licenses)),
	}
}

var errNotConfigured = apperr.New(apperr.Unavailable, "not configured", nil)

func worker(w *Worker) func(context.Context, *queue.Delivery) error {
	return func(ctx context.Context, d *queue.Delivery) error {
		if *w == nil {
			return errNotConfigured
		}
		return (*w).Process(ctx, d)
	}
}

func job(j *Job) func(context.Context, *TimerInfo) error {
	return func(ctx context.Context, t *TimerInfo) error {
		if *j == nil {
			return errNotConfigured
		}
		if t.IsPastDue {
			Logger(ctx).Info("timer past due")
		}
		return (*j).Run(ctx)
	}
}

// graphPost serves both Graph URLs. Order (house style): validation handshake first — it carries no
// body and must be echoed within 10 s with no side effect — then the body cap, then the intake.
func (a *App) graphPost(ctx context.Context, r *HTTPRequest, lifecycle bool) HTTPResponse {
	if r.Query.Has("validationToken") {
		// The host hands the query URL-decoded; echo it byte for byte as text/plain.
		return HTTPResponse{StatusCode: http.StatusOK, Body: r.Query.Get("validationToken"),
			Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
	}
	if r.Method != http.MethodPost {
		return plain(http.StatusMethodNotAllowed, "method not allowed")
	}
	if int64(len(r.Body)) > a.MaxBodyBytes {
		return plain(http.StatusRequestEntityTooLarge, "body too large")
	}
	if a.Intake == nil {
		return plain(http.StatusServiceUnavailable, "not ready")
	}
	if err := a.Intake.Receive(ctx, lifecycle, r.Body); err != nil {
		// Graph retries anything but 2xx for hours: only a malformed body gets a 4xx; every other
		// failure is ours and answers 503 so the items are delivered again.
		if status := httpStatus(apperr.CodeOf(err)); status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
			return plain(status, apperr.PublicMessage(err))
		}
		Logger(ctx).Error("notification hand-off failed", "error", err)
		return plain(http.StatusServiceUnavailable, "try again")
	}
	return HTTPResponse{StatusCode: http.StatusAccepted}
}

type healthBody struct {
	Status  string            `json:"status"`
	Version string            `json:"version"`
	Build   string            `json:"build"`
	Region  string            `json:"region"`
	Checks  map[string]string `json:"checks"`
	Stats   any               `json:"stats,omitempty"`
}

// health reports version, build, region and dependency probes; 503 when any probe fails, so that Traffic
// Manager fails the region over. Probe errors are logged, not returned: they can name internal hosts.
func (a *App) health(ctx context.Context, _ *HTTPRequest) HTTPResponse {
	body := healthBody{Status: "ok", Version: a.Version, Build: a.Build, Region: a.Region, Checks: map[string]string{}}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range a.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				body.Checks[c.Name] = "failed"
				body.Status = "degraded"
				Logger(ctx).Warn("health check failed", "check", c.Name, "error", err)
				return
			}
			body.Checks[c.Name] = "ok"
		}()
	}
	wg.Wait()
	if a.Stats != nil {
		body.Stats = a.Stats()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return plain(http.StatusInternalServerError, "internal error")
	}
	status := http.StatusOK
	if body.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	return HTTPResponse{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

func plain(status int, msg string) HTTPResponse {
	return HTTPResponse{StatusCode: status, Body: msg, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
}
