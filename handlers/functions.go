package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/connecthub/connecthub/docs"
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// NotificationIntake checks a Graph notification POST and hands its items to the queue. It returns nil
// once every valid item is durably queued (the webhook answers 202), an apperr Invalid when the body is
// not a notification collection (400), and anything else when the hand-off failed (503, Graph retries).
// stops are azfunc.HTTPRequest.BodyStops (nil when the envelope reader did not find them).
type NotificationIntake interface {
	ReceiveScanned(ctx context.Context, lifecycle bool, body []byte, stops []int32) error
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

// App holds the services the functions call, each field named after the function that calls it (a
// service that serves a group of functions, such as TenantServices, names them in its doc). Routes
// refuses to build the route table while any of them is nil, so a handler that is not fully wired stops
// at start instead of answering 503 later.
type App struct {
	Version, Build, Region string
	MaxBodyBytes           int64

	// Intake serves GraphWebhook (lifecycle false) and GraphLifecycle (lifecycle true).
	Intake NotificationIntake
	// PBXWebhook serves PbxWebhook (RingCentral) and PbxSignedWebhook (the generic webhook connector):
	// PBX presence events for the PBX → Teams direction.
	PBXWebhook          PBXIntake
	ProcessNotification Worker // a router by message kind (queue.Router)
	ProcessLifecycle    Worker
	RenewSubscriptions  Job
	EnforceRetention    Job
	ReconcileLicenses   Job
	// Health probes Checks; to a caller whose token allows it, it adds Stats (counters, no personal
	// data): every tenant's for ConnectHub's staff (tenant ""), one tenant's for that tenant's admin.
	Checks []Check
	Stats  func(tenant core.TenantID) any

	// Capabilities with their own functions (handlers/presence.go, handlers/tenants.go, handlers/connector.go).
	Presence  PresenceServices
	Tenants   TenantServices
	Connector ConnectorServices
	// Rooms is the room cache for the Room Finder add-in (internal/bookings).
	Rooms RoomServices
	// CRM is the mailbox ↔ CRM sync's tenant connection (internal/crm).
	CRM CRMServices
	// CRMNow runs one user's CRM sync on request (SyncCRMUser).
	CRMNow CRMSyncNow
	// Audit is the tenant's audit trail, exported by ExportAudit.
	Audit AuditReader
	// Access decides who may call the admin functions: a bearer token names the caller, and the
	// caller's roles and grants say what they may do (internal/access).
	Access AccessServices
	// Privacy answers a person's data subject requests (internal/privacy).
	Privacy PrivacyRights
	// TenantExport pages through all of a tenant's data for its admin (ExportTenant).
	TenantExport TenantExporter
	// Incidents are the breach incidents (internal/privacy), and TrackIncidents their 72-hour clock.
	Incidents      IncidentServices
	TrackIncidents Job
	// Portal is the Service Manager (internal/portal): pages over these same functions (CallAs).
	Portal Portal

	// byName is the route table by function name, for CallAs.
	byName map[string]azfunc.Route
}

// AccessServices are who is calling and what they may do.
type AccessServices struct {
	Authenticate Authenticator
	Authorize    Authorizer
	Admin        AccessAdmin // grants, custom roles, operator access requests
}

// Authenticator names the caller from the Authorization header (access.Authenticator).
type Authenticator interface {
	Authenticate(authorization string) (access.Principal, error)
}

// Authorizer decides (access.Authorizer).
type Authorizer interface {
	Allow(ctx context.Context, p access.Principal, perm access.Permission, res access.Resource) error
}

// function is one route and the service its handler calls.
type function struct {
	route   azfunc.Route
	service any
}

// selfServed marks a function that needs no service (Health answers from App's own fields).
var selfServed = struct{}{}

// Routes is the route table: one entry per functions/<Name>/function.json. It fails, naming every
// function concerned, when a function's service is not set.
func (a *App) Routes() ([]azfunc.Route, error) {
	fns := a.coreFunctions()
	fns = append(fns, a.presenceFunctions()...)
	fns = append(fns, a.connectorFunctions()...)
	fns = append(fns, a.tenantFunctions()...)
	fns = append(fns, a.accessFunctions()...)
	fns = append(fns, a.auditFunctions()...)
	fns = append(fns, a.privacyFunctions()...)
	fns = append(fns, a.tenantExportFunctions()...)
	fns = append(fns, a.incidentFunctions()...)
	fns = append(fns, a.roomFunctions()...)
	fns = append(fns, a.crmFunctions()...)
	fns = append(fns, a.crmSyncFunctions()...)
	fns = append(fns, a.portalFunctions()...)
	routes := make([]azfunc.Route, 0, len(fns))
	a.byName = make(map[string]azfunc.Route, len(fns))
	var missing []string
	for _, f := range fns {
		// A nil interface field converts to a nil any, so this catches every service not wired.
		if f.service == nil {
			missing = append(missing, f.route.Name)
		}
		routes = append(routes, f.route)
		a.byName[f.route.Name] = f.route
	}
	if a.Access.Authenticate == nil || a.Access.Authorize == nil {
		missing = append(missing, "the admin functions' access decisions (Access)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("build route table: no service wired for %s", strings.Join(missing, ", "))
	}
	return routes, nil
}

func (a *App) coreFunctions() []function {
	return []function{
		{azfunc.HTTPRoute("GraphWebhook", "req", "res", a.graphWebhook), a.Intake},
		{azfunc.HTTPRoute("GraphLifecycle", "req", "res", a.graphLifecycle), a.Intake},
		{azfunc.HTTPRoute("PbxWebhook", "req", "res", a.pbxWebhook), a.PBXWebhook},
		{azfunc.HTTPRoute("PbxSignedWebhook", "req", "res", a.pbxSignedWebhook), a.PBXWebhook},
		{azfunc.HTTPRoute("Health", "req", "res", a.health), selfServed},
		{azfunc.HTTPRoute("OpenAPI", "req", "res", a.openAPI), selfServed},
		{azfunc.QueueRoute("ProcessNotification", "message", a.processNotification), a.ProcessNotification},
		{azfunc.QueueRoute("ProcessLifecycle", "message", a.processLifecycle), a.ProcessLifecycle},
		{azfunc.TimerRoute("RenewSubscriptions", "timer", a.renewSubscriptions), a.RenewSubscriptions},
		{azfunc.TimerRoute("EnforceRetention", "timer", a.enforceRetention), a.EnforceRetention},
		{azfunc.TimerRoute("ReconcileLicenses", "timer", a.reconcileLicenses), a.ReconcileLicenses},
	}
}

func (a *App) graphWebhook(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.graphPost(ctx, r, false)
}

func (a *App) graphLifecycle(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.graphPost(ctx, r, true)
}

func (a *App) processNotification(ctx context.Context, d *queue.Delivery) error {
	return a.ProcessNotification.Process(ctx, d)
}

func (a *App) processLifecycle(ctx context.Context, d *queue.Delivery) error {
	return a.ProcessLifecycle.Process(ctx, d)
}

func (a *App) renewSubscriptions(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.RenewSubscriptions)
}

func (a *App) enforceRetention(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.EnforceRetention)
}

func (a *App) reconcileLicenses(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.ReconcileLicenses)
}

func runJob(ctx context.Context, t *azfunc.TimerInfo, j Job) error {
	if t.IsPastDue {
		azfunc.Logger(ctx).Info("timer past due")
	}
	return j.Run(ctx)
}

// graphPost serves both Graph URLs. Every answer says nosniff: the handshake echoes text an anonymous
// caller chose, and a browser led to the URL must never sniff it (or any other answer) as HTML.
func (a *App) graphPost(ctx context.Context, r *azfunc.HTTPRequest, lifecycle bool) azfunc.HTTPResponse {
	res := a.graphAnswer(ctx, r, lifecycle)
	if res.Headers == nil {
		res.Headers = map[string]string{}
	}
	res.Headers["X-Content-Type-Options"] = "nosniff"
	return res
}

// graphAnswer answers a Graph POST. Order (house style): validation handshake first — it carries no
// body and must be echoed within 10 s with no side effect — then the body cap, then the intake.
func (a *App) graphAnswer(ctx context.Context, r *azfunc.HTTPRequest, lifecycle bool) azfunc.HTTPResponse {
	if r.Query.Has("validationToken") {
		// The host hands the query URL-decoded; echo it byte for byte as text/plain.
		return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: r.Query.Get("validationToken"),
			Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
	}
	if r.Method != http.MethodPost {
		return azfunc.Plain(http.StatusMethodNotAllowed, "method not allowed")
	}
	if int64(len(r.Body)) > a.MaxBodyBytes {
		return azfunc.Plain(http.StatusRequestEntityTooLarge, "body too large")
	}
	if err := a.Intake.ReceiveScanned(ctx, lifecycle, r.Body, r.BodyStops); err != nil {
		// Graph retries anything but 2xx for hours: only a malformed body gets a 4xx; every other
		// failure is ours and answers 503 so the items are delivered again.
		if status := azfunc.HTTPStatus(apperr.CodeOf(err)); status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
			return azfunc.Plain(status, apperr.PublicMessage(err))
		}
		// Clipped: the cause can quote what the anonymous caller sent (one line per validation token).
		azfunc.Logger(ctx).Error("notification hand-off failed", "error", core.ClipErr(err))
		return azfunc.Plain(http.StatusServiceUnavailable, "try again")
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusAccepted}
}

type healthBody struct {
	Status  string            `json:"status"`
	Version string            `json:"version"`
	Build   string            `json:"build"`
	Region  string            `json:"region"`
	Checks  map[string]string `json:"checks"`
	Stats   any               `json:"stats,omitempty"`
}

// health reports version, build, region and dependency probes to anyone (Traffic Manager probes it
// anonymously); 503 when any probe fails, so that Traffic Manager fails the region over. Probe errors
// are logged, not returned: they can name internal hosts. Counters need a token: they name tenants and
// show their traffic.
func (a *App) health(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	body := healthBody{Status: "ok", Version: a.Version, Build: a.Build, Region: a.Region, Checks: map[string]string{}}
	if r.Header("Authorization") != "" || r.Query.Get("tenant") != "" {
		stats, err := a.healthStats(ctx, r)
		if err != nil {
			return errorJSON(ctx, err)
		}
		body.Stats = stats
	}
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
				azfunc.Logger(ctx).Warn("health check failed", "check", c.Name, "error", err)
				return
			}
			body.Checks[c.Name] = "ok"
		}()
	}
	wg.Wait()
	b, err := json.Marshal(body)
	if err != nil {
		return azfunc.Plain(http.StatusInternalServerError, "internal error")
	}
	status := http.StatusOK
	if body.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	return azfunc.HTTPResponse{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

// healthStats are the counters the caller may see: ?tenant=T for T's admin (tenant.read), all of them for
// ConnectHub's staff (tenants.list).
func (a *App) healthStats(ctx context.Context, r *azfunc.HTTPRequest) (any, error) {
	if a.Stats == nil {
		return nil, nil
	}
	if t := r.Query.Get("tenant"); t != "" {
		tenant, err := core.ParseCustomerTenant(t)
		if err != nil {
			return nil, err
		}
		if _, err := a.authorize(ctx, r, guard{perm: access.TenantRead}, tenant); err != nil {
			return nil, err
		}
		return a.Stats(tenant), nil
	}
	if _, err := a.authorize(ctx, r, guard{perm: access.TenantsList, service: true}, ""); err != nil {
		return nil, err
	}
	return a.Stats(""), nil
}

// openAPI serves the OpenAPI document of every HTTP function, from the deployment itself: no CDN, no
// third-party origin. It holds no tenant data, so it needs no key.
func (a *App) openAPI(context.Context, *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: string(docs.OpenAPI),
		Headers: map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=300"}}
}
