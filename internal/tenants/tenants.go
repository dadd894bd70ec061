// Package tenants is the tenant lifecycle and licensing capability: onboarding by admin consent,
// operator actions (suspend, cancel, reactivate within the grace period, change purchased licenses),
// license assignment with profiles read from the tenant's directory, and the daily ReconcileLicenses job.
// Every operator action leaves an audit entry (who, what, when, outcome; ids only, no personal data).
//
// Lifecycle: pending (consent link sent) → active ⇄ suspended → cancelled → deleting (claimed by the
// retention job, internal/retention). A suspended or cancelled tenant can be reactivated until its
// deletion is due; after that, or once the retention job has claimed it, it cannot.
package tenants

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
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Product is the licensed product: presence sync for one user. Licenses, billing rows and usage are kept
// per product so a second product needs no migration.
const Product = "presence"

// MaxPurchasedLicenses bounds what an operator can set, against typos of a few zeros too many.
const MaxPurchasedLicenses = 1_000_000

// DeletionPolicy says when a tenant on its way out is due for deletion (retention.Policy, wired in
// internal/app): reactivation is possible only before that.
type DeletionPolicy interface {
	DeletionDue(t registry.Tenant) (due time.Time, reason string, ended time.Time, ok bool)
}

// Options configure a Service.
type Options struct {
	Store *registry.Registry
	Keys  KeyCreator
	// Directory reads profiles from the tenant's directory (Microsoft Graph). Without one, assignment
	// answers "unavailable".
	Directory Directory
	Now       func() time.Time
	Log       *slog.Logger
	Policy    DeletionPolicy

	// Onboarding.
	AppID        string          // our multi-tenant application (client) id
	RedirectURI  string          // AdminConsentCallback URL; "" disables onboarding
	ConsentTTL   time.Duration   // how long a consent link is valid
	LoginBaseURL string          // default https://login.microsoftonline.com
	Regions      map[string]bool // allowed home regions (the EU regions)
	// Consent asks Microsoft whether the app was really granted a tenant (tenantgraph.Consent): the
	// consent callback activates nothing without its yes. Nil refuses every callback as unconfirmable.
	Consent ConsentProver
	// ConsentWait is how long a callback keeps asking while Microsoft says no, for a consent given
	// seconds ago to replicate (config's CONNECTHUB_ADMIN_CONSENT_WAIT; zero asks once).
	ConsentWait time.Duration
	// BookingWindowDays is given to new tenants.
	BookingWindowDays int

	// Processing is told of every suspension, cancellation and reactivation, after it is stored and
	// audited, so processing stops or starts again at once (presence sync deletes or re-creates its
	// Graph subscriptions). Nil: nothing to tell.
	Processing StateHook
	// ProcessingTimeout bounds how long an operator action waits for Processing (default 20 s).
	ProcessingTimeout time.Duration

	// UserData are erased with a user's license. Activity counts active users for the usage snapshot;
	// without it the snapshot reports none active.
	UserData []UserData
	Activity Activity
}

// UserData is a capability that holds rows about a licensed user (presence sync): unassignment and
// the retention job's sweep erase the user from each. Declared here, wired in internal/app.
type UserData interface {
	Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error)
}

// Activity counts the licensed users with synchronised activity since a time (presence sync), for the
// daily usage snapshot.
type Activity interface {
	ActiveUsers(ctx context.Context, tenant core.TenantID, licensed map[string]bool, since time.Time) (int, error)
}

// StateHook is a capability that processes a tenant's data and follows its state. Declared here so
// the tenant capability imports none of them; internal/app wires them in. An error does not fail the
// operator's action: the capability's own job must finish what the hook could not (presence sync's
// RenewSubscriptions deletes every subscription of an inactive tenant it finds).
type StateHook interface {
	OnStateChange(ctx context.Context, tenant core.TenantID, state registry.TenantState) error
}

// KeyCreator makes a tenant's data key at onboarding (internal/platform/tenantkey).
type KeyCreator interface {
	EnsureTenantKey(ctx context.Context, tenant core.TenantID) error
}

// Service runs onboarding, operator actions and license assignment.
type Service struct {
	st       *registry.Registry
	data     *Data
	leases   *jobs.Leases
	auditLog *audit.Log
	keys     KeyCreator
	dir      Directory
	now      func() time.Time
	log      *slog.Logger
	o        Options
}

// New returns the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Keys == nil {
		return nil, errors.New("tenants: store and key ring are required")
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.LoginBaseURL == "" {
		o.LoginBaseURL = "https://login.microsoftonline.com"
	}
	if o.ConsentTTL <= 0 {
		o.ConsentTTL = 72 * time.Hour
	}
	if o.ProcessingTimeout <= 0 {
		o.ProcessingTimeout = 20 * time.Second
	}
	return &Service{st: o.Store, data: OpenData(o.Store.DB()), leases: jobs.OpenLeases(o.Store.DB()), auditLog: audit.OpenLog(o.Store.DB()), keys: o.Keys, dir: o.Directory, now: o.Now, log: o.Log, o: o}, nil
}

// View is what an operator sees of a tenant: lifecycle and license counts, no personal data.
type View struct {
	ID                core.TenantID
	State             registry.TenantState
	HomeRegion        string
	PurchasedLicenses int
	AssignedLicenses  int
	// OverAssigned is how many more licenses are assigned than purchased (after a reduction): reported,
	// never silently taken away.
	OverAssigned  int
	ConsentedAt   time.Time
	SuspendedAt   time.Time
	CancelledAt   time.Time
	DeletionDueAt time.Time // when a suspended or cancelled tenant's data will be deleted
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (s *Service) view(ctx context.Context, t registry.Tenant) (View, error) {
	assigned, err := s.assignedUsers(ctx, t.ID)
	if err != nil {
		return View{}, err
	}
	v := View{ID: t.ID, State: t.State, HomeRegion: t.HomeRegion, PurchasedLicenses: t.PurchasedLicenses,
		AssignedLicenses: len(assigned), ConsentedAt: t.ConsentedAt, SuspendedAt: t.SuspendedAt,
		CancelledAt: t.CancelledAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	v.OverAssigned = max(0, v.AssignedLicenses-v.PurchasedLicenses)
	if due, _, _, ok := s.o.Policy.DeletionDue(t); ok && t.State != registry.TenantPending {
		v.DeletionDueAt = due
	}
	return v, nil
}

// audit appends an entry for an action on an existing tenant (audit.Trail.Record: the outcome follows
// err, and a failed append fails a request that otherwise succeeded).
func (s *Service) audit(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error {
	if errors.Is(err, errDeleting) {
		// Nothing may be written into a tenant whose data is being deleted: it would outlive the deletion.
		return err
	}
	return audit.Trail{Table: s.auditLog, Now: s.now, Log: s.log}.Record(ctx, tenant, a, action, targetType, targetID, err)
}

// Errors the operator sees.
var (
	errNoTenant = apperr.New(apperr.NotFound, "no such tenant", nil)
	errDeleting = apperr.New(apperr.Conflict, "the tenant's data is being deleted", nil)
)

// getTenant reads the registry row, mapping absence to NotFound.
func (s *Service) getTenant(ctx context.Context, tenant core.TenantID) (registry.Tenant, error) {
	t, err := s.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return registry.Tenant{}, errNoTenant
	}
	if err != nil {
		return registry.Tenant{}, fmt.Errorf("read tenant: %w", err)
	}
	return t, nil
}
