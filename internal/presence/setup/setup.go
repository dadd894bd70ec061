// Package setup is the admin's side of presence sync: which PBX connector a tenant uses and its
// credential, which extension each licensed user maps to, and how Teams presence maps to PBX states.
// Every change is audited like the other operator actions (who, what, when, outcome; ids only).
//
// The credential is sealed with the tenant key into the secret store (connector.SaveCredential) and never
// answered back; the tenant row keeps the connector's kind and its non-secret settings (RingCentral
// client id, the webhook endpoint's scheme and host), when it was set and by whom. The presence worker
// reads the tenant row and users through a one-minute cache, so a change reaches pushes within a minute.
package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Options configure a Service.
type Options struct {
	Store   *registry.Registry
	Secrets secrets.Store
	Sealer  tables.Sealer
	// Connectors by kind (Tenant.PBXKind). Each tests its credential; those that list the PBX's
	// extensions (connector.Lister) feed the extension listing; those that cache (connector.Forgetter)
	// forget a tenant whose credential changed.
	Connectors map[string]connector.Tester
	// DefaultMapping is what every tenant's presence mapping starts from (presence.ParseMapping).
	DefaultMapping presence.Mapping
	// AllowHTTP accepts http:// webhook endpoints (local development only).
	AllowHTTP bool
	// Changed, if set, runs after a connector was set or deleted, so the sync follows at once
	// (presence.Manager.FollowPBX: the PBX → Teams subscription).
	Changed func(ctx context.Context, tenant core.TenantID) error
	Now     func() time.Time
	Log     *slog.Logger
}

// Service configures tenants' presence sync.
type Service struct {
	o        Options
	auditLog *audit.Log
}

// New returns the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Secrets == nil || o.Sealer == nil {
		return nil, errors.New("presence setup: store, secrets and sealer are required")
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{o: o, auditLog: audit.OpenLog(o.Store.DB())}, nil
}

// audit appends an entry; outcome follows err (audit.OutcomeOf). A failed append fails a successful
// request, so no change goes unaudited.
func (s *Service) audit(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error {
	return s.trail().Record(ctx, tenant, a, action, targetType, targetID, err)
}

func (s *Service) trail() audit.Trail {
	return audit.Trail{Table: s.auditLog, Now: s.o.Now, Log: s.o.Log}
}

var (
	errNoTenant    = apperr.New(apperr.NotFound, "no such tenant", nil)
	errNoUser      = apperr.New(apperr.NotFound, "no licensed user with this id in the tenant", nil)
	errPending     = apperr.New(apperr.Conflict, "the tenant has not given admin consent yet", nil)
	errInactive    = apperr.New(apperr.Conflict, "the tenant is cancelled; reactivate it first", nil)
	errDeleting    = apperr.New(apperr.Conflict, "the tenant's data is being deleted", nil)
	errStoreFailed = apperr.New(apperr.Unavailable, "storage is unavailable; retry", nil)
)

// tenant reads the registry row; absence is NotFound.
func (s *Service) tenant(ctx context.Context, tenant core.TenantID) (registry.Tenant, error) {
	t, err := s.o.Store.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return registry.Tenant{}, errNoTenant
	}
	if err != nil {
		return registry.Tenant{}, apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("read tenant: %w", err))
	}
	return t, nil
}

// writable says whether the tenant's set-up may change: active or suspended (an admin prepares a
// suspended tenant's return). A pending tenant has no data key yet; a cancelled one is on its way out,
// and nothing may be written into one being deleted.
func writable(t registry.Tenant) error {
	switch t.State {
	case registry.TenantActive, registry.TenantSuspended:
		return nil
	case registry.TenantPending:
		return errPending
	case registry.TenantDeleting:
		return errDeleting
	default:
		return errInactive
	}
}

// forget drops every connector's cache of the tenant: a kind change leaves the old one's behind.
func (s *Service) forget(tenant core.TenantID) {
	for _, c := range s.o.Connectors {
		if f, ok := c.(connector.Forgetter); ok {
			f.Forget(tenant)
		}
	}
}
