package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
	"github.com/connecthub/connecthub/internal/presence/pbx"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

// presenceParts are what other wiring steps take from the presence capability, handed on explicitly.
type presenceParts struct {
	manager *presence.Manager  // ProcessLifecycle's action; the tenants' state hook
	pushers connector.Registry // shared with the set-up functions, so a credential change reaches the pushes' caches
	stats   *presence.Stats    // Health
}

// wirePresence builds the presence-sync capability: Graph adapter, service users, subscriptions
// (RenewSubscriptions, lifecycle actions), the notification worker and the PBX connectors.
func (w *Wired) wirePresence() (presenceParts, error) {
	cfg := w.Config.Presence
	defaults, err := presence.ParseMapping(presence.DefaultMapping(), cfg.DefaultMapping)
	if err != nil {
		return presenceParts{}, fmt.Errorf("%s: %w", config.KeyPresenceDefaultMap, err)
	}
	stats := presence.NewStats()
	// One RingCentral connector serves pushes, the PBX → Teams subscriptions and the set-up functions:
	// they share each tenant's token and rate-limit state, so a penalty stops all of them.
	rc := ringcentral.New(ringcentral.Options{BaseURL: cfg.RingCentralBaseURL}, w.Secrets, w.Keys)
	pushers := connector.Registry{
		ringcentral.Kind: rc,
		webhook.Kind:     webhook.New(webhook.Options{AllowHTTP: w.Config.Environment == config.Local}, w.Secrets, w.Keys),
	}
	applier := presence.NewApplier(w.Store, pushers, defaults, stats, nil, w.Log)

	su, err := serviceuser.New(serviceuser.Config{ClientID: w.Config.AppID, AuthorityHost: cfg.AuthorityHost,
		RedirectURI: cfg.OAuthRedirectURI, GraphBaseURL: w.Config.GraphBaseURL, CertName: cfg.AppClientCertName, Log: w.Log,
		Tenants: w.Store.Tenants},
		w.Secrets, w.Keys, serviceuser.OpenTable(w.Store.DB()))
	if err != nil {
		return presenceParts{}, err
	}
	var notificationURL, lifecycleURL string
	if cfg.PublicBaseURL != "" {
		notificationURL, lifecycleURL = cfg.PublicBaseURL+"/api/graph/notifications", cfg.PublicBaseURL+"/api/graph/lifecycle"
	}
	clients := &delegatedClients{su: su, opts: graph.Options{BaseURL: w.Config.GraphBaseURL}}

	worker := presence.NewWorker(applier, w.Certs, w.Sender, presence.WorkerOptions{
		Graph: clients, MaxAttempts: cfg.PBXMaxAttempts, RetryDelay: cfg.PBXRetryDelay, Log: w.Log})
	if err := w.notifications.Handle(string(registry.KindPresence), worker); err != nil {
		return presenceParts{}, fmt.Errorf("route presence notifications: %w", err)
	}

	// PBX → Teams: RingCentral posts presence events to PbxWebhook, the worker writes Teams presence in
	// our app-only session, and the subscriber keeps each tenant's webhook subscription at RingCentral
	// (run by the manager, under its lease, on RenewSubscriptions and the tenants' state changes).
	teams := appTeams{graph.NewAppClients(graph.AppAuth{ClientID: w.Config.AppID, Secrets: w.Secrets, CertName: cfg.AppClientCertName,
		Auth: graph.AuthOptions{AuthorityHost: cfg.AuthorityHost}}, graph.Options{BaseURL: w.Config.GraphBaseURL})}
	pbxWorker, err := pbx.NewWorker(w.Store, teams, stats, pbx.WorkerOptions{AppID: w.Config.AppID, Log: w.Log})
	if err != nil {
		return presenceParts{}, err
	}
	// A person erased during a PBX call leaves no session of ours showing them busy in Teams.
	w.Subjects.Withdraw(pbxWorker, w.Log)
	if err := w.notifications.Handle(pbx.Kind, pbxWorker); err != nil {
		return presenceParts{}, fmt.Errorf("route pbx events: %w", err)
	}
	subscriber := pbx.NewSubscriber(w.Store, rc, stats, pbxWorker.RefreshSessions,
		pbx.SubscriberOptions{PublicBaseURL: cfg.PublicBaseURL, Log: w.Log})
	w.App.PBXWebhook = pbx.NewIntake(w.Store.DB(), w.Store.NewTenantStateLookup(registry.TenantStateOptions{}), w.Secrets, w.Keys,
		w.Sender, stats, w.Config.HandoffTimeout, w.Log)
	manager := presence.NewManager(w.Store, clients,
		applier, w.Certs, presence.ManagerOptions{NotificationURL: notificationURL, LifecycleURL: lifecycleURL,
			Lifetime: cfg.SubscriptionLifetime, RenewMargin: cfg.RenewMargin, PBX: subscriber, Log: w.Log})
	w.App.RenewSubscriptions = manager
	w.App.Presence = handlers.PresenceServices{SignIn: su, Status: manager}
	return presenceParts{manager: manager, pushers: pushers, stats: stats}, nil
}

// appTeams hands the PBX → Teams worker the tenant's app-only Graph client (Presence.ReadWrite.All).
type appTeams struct{ clients *graph.AppClients }

func (a appTeams) For(ctx context.Context, tenant core.TenantID) (pbx.Teams, error) {
	return a.clients.For(ctx, string(tenant))
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
