package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/ingest"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/store"
)

// wirePresence builds the presence-sync capability: Graph adapter, service users, subscriptions
// (RenewSubscriptions, lifecycle actions), the notification worker and the PBX connectors.
func (w *Wired) wirePresence(ctx context.Context) error {
	cfg := w.Config.Presence
	defaults, err := presence.ParseMapping(presence.DefaultMapping(), cfg.DefaultMapping)
	if err != nil {
		return fmt.Errorf("%s: %w", config.KeyPresenceDefaultMap, err)
	}
	stats := presence.NewStats()
	pushers := connector.Registry{
		ringcentral.Kind: ringcentral.New(ringcentral.Options{BaseURL: cfg.RingCentralBaseURL}, w.Secrets, w.Keys),
		webhook.Kind:     webhook.New(webhook.Options{AllowHTTP: w.Config.Environment == config.Local}, w.Secrets, w.Keys),
	}
	w.pbx = pushers
	applier := presence.NewApplier(w.Store, pushers, defaults, stats, nil, w.Log)

	su, err := serviceuser.New(serviceuser.Config{ClientID: w.Config.AppID, AuthorityHost: cfg.AuthorityHost,
		RedirectURI: cfg.OAuthRedirectURI, GraphBaseURL: w.Config.GraphBaseURL, CertName: cfg.AppClientCertName, Log: w.Log},
		w.Secrets, w.Keys, w.Store.ServiceUsers)
	if err != nil {
		return err
	}
	var notificationURL, lifecycleURL string
	if cfg.PublicBaseURL != "" {
		notificationURL, lifecycleURL = cfg.PublicBaseURL+"/api/graph/notifications", cfg.PublicBaseURL+"/api/graph/lifecycle"
	}
	clients := &delegatedClients{su: su, opts: graph.Options{BaseURL: w.Config.GraphBaseURL}}
	manager := presence.NewManager(w.Store, clients,
		applier, w.Certs, presence.ManagerOptions{NotificationURL: notificationURL, LifecycleURL: lifecycleURL,
			Lifetime: cfg.SubscriptionLifetime, RenewMargin: cfg.RenewMargin, Log: w.Log})

	worker := presence.NewWorker(applier, w.Certs, w.Sender, presence.WorkerOptions{
		Graph: clients, MaxAttempts: cfg.PBXMaxAttempts, RetryDelay: cfg.PBXRetryDelay, Log: w.Log})
	if err := w.notifications.Handle(string(store.KindPresence), worker); err != nil {
		return fmt.Errorf("route presence notifications: %w", err)
	}
	w.App.RenewSubscriptions = manager
	w.lifecycleAction = manager
	w.stateHook = manager // suspension and cancellation delete the subscriptions, reactivation re-creates them
	w.App.Presence = handlers.PresenceServices{SignIn: &signIn{m: su, st: w.Store}, Status: &presenceStatus{m: manager, st: w.Store}}

	intake, router := w.Intake, w.notifications
	w.App.Stats = func() any {
		return struct {
			ingest.Snapshot
			Presence presence.Snapshot `json:"presence"`
			// Notifications dropped for want of a worker for their kind, by kind (queue.Router).
			Unroutable map[string]int64 `json:"unroutable,omitempty"`
		}{intake.Stats().Snapshot(), stats.Snapshot(), router.Unroutable()}
	}
	return nil
}

// delegatedClients keeps one Graph client per service user; each holds the user's credential, whose
// MSAL cache serves tokens until they need a refresh.
type delegatedClients struct {
	su   *serviceuser.Manager
	opts graph.Options

	mu sync.Mutex
	m  map[string]*graph.Client
}

func (c *delegatedClients) For(_ context.Context, tenant core.TenantID, serviceUserID string) (presence.Graph, error) {
	k := string(tenant) + "/" + serviceUserID
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.m[k]; ok {
		return g, nil
	}
	cred, err := c.su.Credential(tenant, serviceUserID)
	if err != nil {
		return nil, err
	}
	g, err := graph.New(cred, c.opts)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*graph.Client{}
	}
	c.m[k] = g
	return g, nil
}

// signIn lets only registered, active tenants connect service users.
type signIn struct {
	m  *serviceuser.Manager
	st *store.Store
}

func (s *signIn) Begin(ctx context.Context, tenant core.TenantID) (string, string, error) {
	t, err := s.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", apperr.New(apperr.NotFound, "unknown tenant", nil)
	}
	if err != nil {
		return "", "", err
	}
	if t.State != store.TenantActive {
		return "", "", apperr.New(apperr.Forbidden, "the tenant is not active", nil)
	}
	return s.m.Begin(ctx, tenant)
}

func (s *signIn) Complete(ctx context.Context, cb serviceuser.Callback) (store.ServiceUser, error) {
	return s.m.Complete(ctx, cb)
}

// presenceStatus answers for tenants that exist only: an unknown id is 404, not a row of zeros.
type presenceStatus struct {
	m  *presence.Manager
	st *store.Store
}

func (p *presenceStatus) Status(ctx context.Context, tenant core.TenantID) (presence.TenantStatus, error) {
	if _, err := p.st.Tenants.Get(ctx, tenant); errors.Is(err, store.ErrNotFound) {
		return presence.TenantStatus{}, apperr.New(apperr.NotFound, "no such tenant", err)
	} else if err != nil {
		return presence.TenantStatus{}, err
	}
	return p.m.Status(ctx, tenant)
}
