// Package app wires the handler: configuration in, adapters built for the environment (Azure or local),
// domain services assembled into the handlers.App the transport serves. Tests call New with their own
// settings and ports.
package app

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/ingest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/privacy"
)

// Build information, set with -ldflags "-X github.com/connecthub/connecthub/internal/app.Build=...".
var Build = "unknown"

// Wired is the assembled application.
type Wired struct {
	App     *handlers.App
	Config  config.Config
	Store   *registry.Registry
	Secrets secrets.Store
	Keys    *tenantkey.Keyring
	Sender  queue.Sender
	Certs   *graphcrypto.KeyRing
	Intake  *ingest.Intake
	Cred    azcore.TokenCredential // nil in local mode
	Log     *slog.Logger
	// Subjects is a person's export and erasure across every module (the privacy API of issue 14
	// serves it).
	Subjects *privacy.Subjects
	close    []func(context.Context) error

	// notifications is ProcessNotification: each capability's wiring registers the worker of its
	// notification kind (registry.SubscriptionKind) with it.
	notifications *queue.Router
	// roomCache is the room booking cache: its lifecycle events join presence's.
	roomCache *bookings.Cache
	// crmNotices are the CRM sync's contact subscriptions: their lifecycle events join the others.
	crmNotices *crm.Notifications
	crmState   *lateHook // crmNotices' tenant state hook, handed to the tenants service before they exist
	// appClients are the app-only Graph clients per tenant (built in wireTenants, shared by the
	// capabilities that read mailboxes app-only).
	appClients *graph.AppClients
}

// Close releases connections (Service Bus links).
func (w *Wired) Close(ctx context.Context) error {
	var errs []error
	for _, c := range w.close {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// New builds the application for cfg. Background work (validation-key refresh) lives as long as ctx.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Wired, error) {
	w := &Wired{Config: cfg, Log: log}
	if err := w.adapters(cfg); err != nil {
		return nil, err
	}
	if err := w.certificates(ctx, cfg); err != nil {
		return nil, err
	}
	// Every table holding personal fields has a module answering for it in a person's export and
	// erasure, or the handler stops here.
	subjects, err := privacy.NewSubjects(catalogue, personalData(w.Store, w.Secrets))
	if err != nil {
		return nil, err
	}
	w.Subjects = subjects

	validator, err := validationtoken.New(validationtoken.Config{Audience: cfg.AppID, OpenIDConfigURL: cfg.OpenIDConfigURL, Logger: log})
	if err != nil {
		return nil, err
	}
	// The first key load must not delay the readiness probe; until keys arrive, rich notifications get
	// 503 and Graph retries them.
	go func() {
		if err := validator.Start(ctx); err != nil {
			log.Warn("validation keys not loaded yet; retrying in the background", "error", err)
		}
	}()

	access, err := w.wireAccess(ctx, validator)
	if err != nil {
		return nil, fmt.Errorf("wire access: %w", err)
	}

	lookup := w.Store.NewSubscriptionLookup(registry.LookupOptions{})
	// A suspended tenant's items are dropped here at once on this instance and within the state TTL on
	// the others (registry.DefaultTenantStateTTL); the worker re-reads the state before any push.
	states := w.Store.NewTenantStateLookup(registry.TenantStateOptions{})
	w.Intake = ingest.New(lookup, states, validator, w.Sender, cfg.HandoffTimeout, log)

	// What can never succeed is parked with its reason instead of being redelivered ten times; what
	// failed for a passing reason (storage, Key Vault, Graph down) comes back later, for hours.
	if w.notifications, err = queue.NewRouter(queue.Notifications, queue.OpenParkingLot(w.Store.DB()),
		&queue.Retry{Sender: w.Sender}, log); err != nil {
		return nil, err
	}
	rights := privacy.NewRights(subjects, privacy.OpenData(w.Store.DB()), w.Store,
		audit.Trail{Table: audit.OpenLog(w.Store.DB()), Now: clock.Now, Log: log},
		cfg.Region+" (EU), geo-replicated to the deployment's paired EU region", clock.Now)
	// Breach incidents span tenants: an incident names only registered tenants, and the operator
	// partition's key seals the operator's record of it.
	incidents := privacy.NewIncidents(privacy.OpenData(w.Store.DB()),
		func(ctx context.Context, t core.TenantID) error { _, err := w.Store.Tenants.Get(ctx, t); return err },
		w.Keys, audit.Trail{Table: audit.OpenLog(w.Store.DB()), Now: clock.Now, Log: log}, log, clock.Now)
	w.App = &handlers.App{
		Version: cfg.Version, Build: Build, Region: cfg.Region, MaxBodyBytes: cfg.MaxBodyBytes,
		Intake: w.Intake, ProcessNotification: w.notifications, Access: access, Audit: audit.OpenLog(w.Store.DB()),
		Privacy:      rights,
		TenantExport: privacy.Exporter{Rights: rights, Export: privacy.NewTenantExport(w.Store.DB(), catalogue)},
		Incidents:    incidents, TrackIncidents: incidents,
		Checks: []handlers.Check{
			{Name: "tables", Probe: func(ctx context.Context) error {
				_, err := w.Store.Tenants.Get(ctx, healthProbeTenant)
				if errors.Is(err, tables.ErrNotFound) {
					return nil // reachable and authorised: the probe tenant never exists
				}
				return err
			}},
			{Name: "secrets", Probe: func(ctx context.Context) error {
				_, err := w.Secrets.Get(ctx, cfg.NotificationCerts[0])
				return err
			}},
		},
	}
	// Each capability wires its own services (internal/app/presence.go, tenants.go, connector.go); what
	// one needs of another is handed on here, explicitly.
	p, err := w.wirePresence()
	if err != nil {
		return nil, fmt.Errorf("wire presence: %w", err)
	}
	// Suspension and cancellation delete the tenant's subscriptions, reactivation re-creates them.
	if err := w.wireTenants(p.manager); err != nil {
		return nil, fmt.Errorf("wire tenants: %w", err)
	}
	if err := w.wireConnector(p.pushers, p.manager.FollowPBX); err != nil {
		return nil, fmt.Errorf("wire connector set-up: %w", err)
	}
	if err := w.wireCRM(); err != nil {
		return nil, fmt.Errorf("wire crm: %w", err)
	}
	if err := w.wirePortal(); err != nil {
		return nil, fmt.Errorf("wire portal: %w", err)
	}
	// The lifecycle queue is settled like the notifications queue: what can never succeed is parked,
	// what failed for a passing reason (Graph or storage down during a reauthorization) comes back later.
	lifecycle, err := queue.NewRouter(queue.Lifecycle, queue.OpenParkingLot(w.Store.DB()), &queue.Retry{Sender: w.Sender}, log)
	if err != nil {
		return nil, err
	}
	lw := ingest.NewLifecycleWorker(w.Store.Subscriptions, lifecycleByKind{p.manager, w.roomCache, w.crmNotices}, nil, log)
	for _, kind := range []registry.SubscriptionKind{registry.KindPresence, registry.KindBooking, registry.KindCRM} {
		if err := lifecycle.Handle(string(kind), lw); err != nil {
			return nil, err
		}
	}
	w.App.ProcessLifecycle = lifecycle

	intake, router := w.Intake, w.notifications
	// The privacy and breach clocks are read from their tables, not kept in memory: any instance answers
	// Health, and only one ran the timer. Stats has no context, so each read is bounded here; a failed
	// read leaves its counters out rather than showing zero.
	requestClock := func(ctx context.Context, tenant core.TenantID) *privacy.RequestClock {
		c, err := rights.Clock(ctx, tenant, w.Store)
		if err != nil {
			log.Warn("privacy request clock unreadable for health", "error", err)
			return nil
		}
		return &c
	}
	w.App.Stats = func(tenant core.TenantID) any {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if tenant != "" {
			// One tenant's view: its own intake counters, whether it needs attention and its privacy
			// requests, nothing about the service as a whole.
			att, ok := p.stats.Snapshot().Attention[string(tenant)]
			out := struct {
				Tenant    core.TenantID          `json:"tenant"`
				Intake    ingest.TenantStats     `json:"intake"`
				Attention *presence.TenantStatus `json:"attention,omitempty"`
				*privacy.RequestClock
				// Rooms is the Room Finder cache's freshness; left out when it cannot be read now.
				Rooms *bookings.Freshness `json:"rooms,omitempty"`
			}{Tenant: tenant, Intake: intake.Stats().Snapshot().Tenants[string(tenant)], RequestClock: requestClock(ctx, tenant)}
			if ok {
				out.Attention = &att
			}
			if f, err := w.roomCache.Freshness(ctx, tenant); err != nil {
				log.Warn("room cache freshness unreadable for health", "error", err)
			} else {
				out.Rooms = &f
			}
			return out
		}
		var clk *privacy.Clock
		if c, err := incidents.Clock(ctx); err != nil {
			log.Warn("incident clock unreadable for health", "error", err)
		} else {
			clk = &c
		}
		return struct {
			ingest.Snapshot
			Presence presence.Snapshot `json:"presence"`
			// Notifications parked for want of a worker for their kind, and parked after a permanent
			// failure, by kind (queue.Router).
			Unroutable map[string]int64 `json:"unroutable,omitempty"`
			Parked     map[string]int64 `json:"parked,omitempty"`
			// Notifications scheduled again after a transient failure, by kind.
			Retried map[string]int64 `json:"retried,omitempty"`
			// The same for lifecycle events (their own queue and router).
			LifecycleParked  map[string]int64 `json:"lifecycleParked,omitempty"`
			LifecycleRetried map[string]int64 `json:"lifecycleRetried,omitempty"`
			// Open incidents past 48 h (incidentsDueSoon) and 72 h (incidentsOverdue) from discovery
			// with recipients not yet notified.
			*privacy.Clock
			// Data subject requests not completed within their month, across tenants.
			*privacy.RequestClock
			// Room notifications that needed no read of the room's window: a later read covered them.
			RoomsCoalesced int64 `json:"roomsCoalesced"`
		}{intake.Stats().Snapshot(), p.stats.Snapshot(), router.Unroutable(), router.Parked(), router.Retried(),
			lifecycle.Parked(), lifecycle.Retried(), clk, requestClock(ctx, ""), w.roomCache.Coalesced()}
	}
	return w, nil
}

// healthProbeTenant is a well-formed tenant id no real tenant has.
const healthProbeTenant = core.ReservedTenant

func (w *Wired) adapters(cfg config.Config) error {
	var err error
	switch cfg.Environment {
	case config.Local:
		if w.Secrets, err = secrets.NewFile(cfg.LocalSecretsFile, cfg.LocalSecretsKey); err != nil {
			return fmt.Errorf("local secrets: %w", err)
		}
		w.Keys = tenantkey.New(w.Secrets, tenantkey.Options{})
		if w.Store, err = registry.NewFromConnectionString(cfg.TablesConnectionString, tables.Options{Sealer: w.Keys, TablePrefix: cfg.TablePrefix}); err != nil {
			return err
		}
		if cfg.DevhostQueueURL == "" {
			return errors.New("local mode needs devhost's queue endpoint (run the handler under devhost)")
		}
		if w.Sender, err = queue.NewDevhostSender(cfg.DevhostQueueURL, cfg.DevhostQueueToken); err != nil {
			return err
		}
	case config.Azure:
		if w.Cred, err = secrets.NewCredential(cfg.ManagedIdentityID); err != nil {
			return err
		}
		if w.Secrets, err = secrets.NewKeyVault(cfg.KeyVaultURL, w.Cred, nil); err != nil {
			return err
		}
		w.Keys = tenantkey.New(w.Secrets, tenantkey.Options{})
		if w.Store, err = registry.NewWithCredential(cfg.TablesAccountURL, w.Cred, tables.Options{Sealer: w.Keys}); err != nil {
			return err
		}
		sb, err := queue.NewServiceBusSender(cfg.ServiceBusNamespace, w.Cred)
		if err != nil {
			return err
		}
		w.Sender = sb
		w.close = append(w.close, sb.Close)
	default:
		return fmt.Errorf("unknown environment %q", cfg.Environment)
	}
	// Every module's tables exist before the first function runs: Azurite starts empty, and in Azure a
	// module's new table needs no template change. A store the identity cannot reach stops the start.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Store.DB().EnsureTables(ctx, catalogue.Names()); err != nil {
		return fmt.Errorf("ensure tables: %w", err)
	}
	return nil
}

// certificates loads the notification encryption certificates, current first. In local mode a missing
// current certificate is generated once (self-signed, RSA-2048) so `make run` works on a fresh machine;
// in Azure it must exist in Key Vault, or the handler refuses to start. The app's client certificate is
// read when first needed; in local mode it too is generated if missing, and its thumbprint logged so the
// operator can upload it to the app registration (`connecthub certs show` prints it again).
func (w *Wired) certificates(ctx context.Context, cfg config.Config) error {
	ring, err := graphcrypto.LoadFromSecrets(ctx, w.Secrets, cfg.NotificationCerts...)
	switch {
	case err == nil:
		w.Certs = ring
	case cfg.Environment != config.Local || !errors.Is(err, secrets.ErrNotFound):
		return fmt.Errorf("load notification certificates: %w", err)
	default:
		cert, created, err := ensureLocalCertificate(ctx, w.Secrets, cfg.NotificationCerts[0], "connecthub-local-notifications")
		if err != nil {
			return fmt.Errorf("create local notification certificate: %w", err)
		}
		if created {
			w.Log.Info("generated a local notification certificate", "name", cfg.NotificationCerts[0],
				"thumbprint", graphcrypto.Thumbprint(cert))
		}
		if w.Certs, err = graphcrypto.LoadFromSecrets(ctx, w.Secrets, cfg.NotificationCerts[0]); err != nil {
			return fmt.Errorf("load notification certificates: %w", err)
		}
	}
	if cfg.Environment != config.Local || cfg.Presence.AppClientCertName == "" {
		return nil
	}
	name := cfg.Presence.AppClientCertName
	switch _, err := w.Secrets.Get(ctx, name); {
	case err == nil:
		return nil
	case !errors.Is(err, secrets.ErrNotFound):
		return fmt.Errorf("read app client certificate: %w", err)
	}
	cert, created, err := ensureLocalCertificate(ctx, w.Secrets, name, "connecthub-local-app")
	if err != nil {
		return fmt.Errorf("create local app client certificate: %w", err)
	}
	if !created {
		return nil // the operator stored one since we looked
	}
	w.Log.Info("generated a local app client certificate; upload it to the app registration",
		"name", name, "thumbprint", graphcrypto.Thumbprint(cert), "not_after", cert.NotAfter.UTC().Format(time.RFC3339),
		"show_with", "bin/connecthub certs show --name "+name)
	return nil
}

// ensureLocalCertificate stores a new self-signed RSA-2048 certificate under name, in the PEM form
// graphcrypto.ParseCertificate reads, and returns it (never its key, which stays in the store). A store
// that can create (the local file) keeps a certificate stored under name since the caller looked: an
// operator's import in that moment wins, and that certificate is returned with created false.
func ensureLocalCertificate(ctx context.Context, s secrets.Store, name, commonName string) (cert *x509.Certificate, created bool, err error) {
	cert, key, err := graphcrypto.NewSelfSigned(graphcrypto.SelfSigned{Subject: pkix.Name{CommonName: commonName}})
	if err != nil {
		return nil, false, err
	}
	text, err := graphcrypto.EncodePEM(key, cert)
	if err != nil {
		return nil, false, err
	}
	c, ok := s.(secrets.Creator)
	if !ok {
		if err := s.Set(ctx, name, text); err != nil {
			return nil, false, fmt.Errorf("store certificate: %w", err)
		}
		return cert, true, nil
	}
	if created, err = c.Create(ctx, name, text); err != nil {
		return nil, false, fmt.Errorf("store certificate: %w", err)
	}
	if created {
		return cert, true, nil
	}
	stored, err := s.Get(ctx, name)
	if err != nil {
		return nil, false, fmt.Errorf("read certificate stored meanwhile: %w", err)
	}
	if cert, _, err = graphcrypto.ParseCertificate([]byte(stored), ""); err != nil {
		return nil, false, fmt.Errorf("certificate stored meanwhile under %s: %w", name, err)
	}
	return cert, false, nil
}
