// Package presence is presence sync, Teams → PBX: Graph presence subscriptions held through the
// tenant's service users, their renewal and lifecycle, and the worker that maps each presence change to
// the PBX's state and pushes it through the tenant's connector.
//
// Choices where the issue is silent:
//   - Packing is stable (Pack): a user stays in the subscription that covers them; only subscriptions
//     whose member set changes are re-created (delete, then create: Graph allows one presence
//     subscription per app and service user), and their members are resynced right after.
//   - Every new or re-created subscription is followed by a resync (getPresencesByUserId) so the PBX is
//     right from the start and nothing is lost in the gap.
//   - Ordering (order in apply.go): Graph's presence sequenceNumber decides when both sides have one.
//     Arrival time proves nothing (Graph redelivers up to 4 hours late, Service Bus dedupes only for
//     10 minutes), so a notification not provably newer, or older than freshFor, that would change the
//     PBX is confirmed by a presence read from Graph and the read is what is pushed.
//   - A tenant's runs are serialised by a job lease ("presence-subscriptions"), so the timer and the
//     lifecycle worker, or two instances, never reconcile the same tenant at once.
//   - Only active tenants hold subscriptions. Suspension and cancellation delete them at once, through
//     the service user that made each (OnStateChange, the tenants capability's hook); what Graph does
//     not delete then is deleted by the next RenewSubscriptions, which brings every tenant in line with
//     its state. Reactivation reconciles, which re-creates them and resyncs.
//   - Tenants that need an admin (service users to add or to reconnect) appear under Health's
//     presence.attention; Status computes the same for the admin API.
package presence

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

// Graph is what the manager needs from a service user's delegated Graph client (graph.Client).
type Graph interface {
	CreateSubscription(ctx context.Context, s graph.NewSubscription) (graph.Subscription, error)
	RenewSubscription(ctx context.Context, id string, expires time.Time) (time.Time, error)
	ReauthorizeSubscription(ctx context.Context, id string) error
	DeleteSubscription(ctx context.Context, id string) error
	ListSubscriptions(ctx context.Context) ([]graph.Subscription, error)
	PresencesByUserID(ctx context.Context, ids []string) ([]graph.Presence, error)
}

var _ Graph = (*graph.Client)(nil)

// Clients hands out a service user's Graph client.
type Clients interface {
	For(ctx context.Context, tenant core.TenantID, serviceUserID string) (Graph, error)
}

// ManagerOptions configure the subscription manager.
type ManagerOptions struct {
	NotificationURL string        // <public base>/api/graph/notifications
	LifecycleURL    string        // <public base>/api/graph/lifecycle
	Lifetime        time.Duration // asked per subscription (Graph allows 60 min for presence)
	RenewMargin     time.Duration // renew what expires within this
	Owner           string        // names this instance in lease owners (default: the host name)
	LeaseWait       time.Duration // how long a lifecycle event waits for a tenant's running reconcile (default 30 s)
	LiveStatusMax   int           // Status counts licensed users afresh up to this many (default 2,000)
	// PBX keeps the PBX → Teams direction's subscription at the PBX in step with the tenant, under the
	// same lease and on the same occasions (RenewSubscriptions, suspension, cancellation, reactivation).
	PBX PBXFollower
	Now func() time.Time
	Log *slog.Logger
}

// PBXFollower is the PBX → Teams direction's subscription keeper (package presence/pbx.Subscriber).
type PBXFollower interface {
	// Follow makes the tenant's PBX subscription match its state, settings and licensed users.
	Follow(ctx context.Context, tenant core.TenantID) error
	// Holds reports whether anything is left to delete for the tenant.
	Holds(ctx context.Context, tenant core.TenantID) (bool, error)
}

// Manager keeps every active tenant's presence subscriptions right: RenewSubscriptions (Run) and the
// lifecycle actions (Handle).
type Manager struct {
	st           *registry.Registry
	serviceUsers *tables.Table[serviceuser.ServiceUser, *serviceuser.ServiceUser]
	status       *tables.Table[StatusSnapshot, *StatusSnapshot]
	clients      Clients
	applier      *Applier
	certs        *graphcrypto.KeyRing
	runner       *jobs.Runner
	o            ManagerOptions
}

// leaseName is the job lease that serialises a tenant's reconciles.
const leaseName = "presence-subscriptions"

// leaseTTL: a reconcile that dies holds its tenant up this long at most.
const leaseTTL = 5 * time.Minute

// NewManager builds the manager.
func NewManager(st *registry.Registry, clients Clients, applier *Applier, certs *graphcrypto.KeyRing, o ManagerOptions) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LeaseWait <= 0 {
		o.LeaseWait = 30 * time.Second
	}
	if o.LiveStatusMax <= 0 {
		o.LiveStatusMax = liveStatusMax
	}
	runner := jobs.New(jobs.OpenLeases(st.DB()), jobs.Options{Instance: o.Owner, Log: o.Log})
	return &Manager{st: st, serviceUsers: serviceuser.OpenTable(st.DB()), status: tables.New[StatusSnapshot](st.DB(), TableStatus), clients: clients, applier: applier, certs: certs, runner: runner, o: o}
}

// Run is RenewSubscriptions: reconcile every active tenant, and delete what a suspended or cancelled
// tenant still holds (the retry of a deletion Graph refused at the time of the state change). A tenant
// another instance is on is skipped (it is being done); failures are collected per tenant, never stop
// the others.
func (m *Manager) Run(ctx context.Context) error {
	if m.o.NotificationURL == "" {
		return errors.New("presence sync is off: no public base URL configured")
	}
	// Most inactive tenants hold nothing: a cheap count spares them the lease's writes. Pending tenants
	// hold nothing; a deleting one is the retention job's.
	due := func(t registry.Tenant) (core.TenantID, bool) {
		switch t.State {
		case registry.TenantActive:
			return t.ID, true
		case registry.TenantSuspended, registry.TenantCancelled:
			n, err := m.countSubscriptions(ctx, t.ID)
			if err == nil && n == 0 && m.o.PBX != nil {
				held, herr := m.o.PBX.Holds(ctx, t.ID)
				return t.ID, herr != nil || held
			}
			return t.ID, err != nil || n > 0
		}
		return t.ID, false
	}
	_, err := jobs.ForEach(ctx, m.runner, m.spec(0), m.st.Tenants.OperatorAll(ctx), due,
		func(ctx context.Context, _ *jobs.Lease, t registry.Tenant) error { return m.follow(ctx, t.ID) })
	return err
}

// OnStateChange is the tenants capability's hook (tenants.StateHook), called once a suspension,
// cancellation or reactivation is stored: the tenant's subscriptions follow its state at once. It waits
// for a reconcile in progress (as long as ctx allows); what it cannot finish, Run does.
func (m *Manager) OnStateChange(ctx context.Context, tenant core.TenantID, _ registry.TenantState) error {
	m.applier.Forget(tenant)
	return m.withLease(ctx, tenant, func() error { return m.follow(ctx, tenant) })
}

// follow brings a tenant's subscriptions in line with its state, read afresh under the lease: a state
// change that raced the caller's view (Run lists tenants before it reconciles them) must not leave a
// suspended tenant with a new subscription, nor a reactivated one without.
func (m *Manager) follow(ctx context.Context, tenant core.TenantID) error {
	t, err := m.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	switch t.State {
	case registry.TenantActive:
		if m.o.NotificationURL == "" {
			return nil // presence sync is off: nothing to create
		}
		_, err := m.Reconcile(ctx, tenant)
		return errors.Join(err, m.followPBX(ctx, tenant))
	case registry.TenantSuspended, registry.TenantCancelled:
		return errors.Join(m.deactivate(ctx, tenant), m.followPBX(ctx, tenant))
	}
	return nil
}

// FollowPBX brings the tenant's PBX → Teams subscription in line at once (its connector or direction
// changed), under the tenant's lease like every reconcile.
func (m *Manager) FollowPBX(ctx context.Context, tenant core.TenantID) error {
	m.applier.Forget(tenant)
	return m.withLease(ctx, tenant, func() error { return m.followPBX(ctx, tenant) })
}

// followPBX runs the PBX → Teams direction's subscription keeper, when one is wired.
func (m *Manager) followPBX(ctx context.Context, tenant core.TenantID) error {
	if m.o.PBX == nil {
		return nil
	}
	if err := m.o.PBX.Follow(ctx, tenant); err != nil {
		return fmt.Errorf("pbx subscription: %w", err)
	}
	return nil
}

// deactivate deletes every presence subscription of a tenant that is not active: at Graph, through the
// service user that made it (presence subscriptions are delegated), then our row, which stops the
// webhook accepting its notifications. A subscription Graph does not delete now (Graph down, the
// service user's sign-in revoked) keeps its row, so the next Run tries again, until its expiry has
// passed: then Graph has dropped it anyway (an hour at most, and an inactive tenant's subscriptions
// are never renewed), and the row goes too.
func (m *Manager) deactivate(ctx context.Context, tenant core.TenantID) error {
	var subs []registry.Subscription
	for s, err := range m.st.Subscriptions.All(ctx, tenant, nil) {
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		if s.Kind == registry.KindPresence {
			subs = append(subs, s)
		}
	}
	now := m.o.Now()
	var errs []error
	for _, s := range subs {
		err := m.remove(ctx, tenant, s, true)
		if err != nil && !s.ExpiresAt.After(now) {
			err = m.remove(ctx, tenant, s, false)
		}
		errs = append(errs, err)
	}
	m.applier.stats.dropTenant(string(tenant))
	err := errors.Join(errs...)
	left := len(slices.DeleteFunc(errs, func(e error) bool { return e == nil }))
	if len(subs) > 0 {
		m.o.Log.InfoContext(ctx, "presence subscriptions of an inactive tenant deleted",
			"deleted", len(subs)-left, "left_for_retry", left)
	}
	return err
}

// withLease runs fn holding the tenant's lease, waiting for a reconcile in progress up to LeaseWait.
func (m *Manager) withLease(ctx context.Context, tenant core.TenantID, fn func() error) error {
	_, err := m.runner.Run(ctx, tenant, m.spec(m.o.LeaseWait), func(context.Context, *jobs.Lease) error { return fn() })
	return err
}

// spec is the tenant lease's job; wait is how long to wait for it (0: skip a tenant someone is on).
func (m *Manager) spec(wait time.Duration) jobs.Spec {
	return jobs.Spec{Name: leaseName, Lease: leaseTTL, Wait: wait, FailureCode: "reconcile_failed"}
}

// pbxKind is the row key of the RingCentral subscription (ringcentral.Kind; package presence does not
// import its connectors).
const pbxKind = "ringcentral"

// liveStatusMax: up to this many licensed users (two pages of user rows) Status counts afresh on every
// call; above it, it answers from the count of the last reconcile (every 10 minutes, RenewSubscriptions),
// so that a 100,000-user tenant's status costs a handful of reads, not 100 pages.
const liveStatusMax = 2000

// Status is a tenant's presence sync state: what the admin sees. Service users and subscriptions are
// counted live (they are few: one per 650 users); the licensed users are counted live for a small tenant
// and taken from the last reconcile's count for a large one, and AsOf says when they were counted.
// Needed, missing and unassigned follow from the two: Pack fills every service user to the limit before
// it leaves anyone out.
func (m *Manager) Status(ctx context.Context, tenant core.TenantID) (TenantStatus, error) {
	st, err := m.syncStatus(ctx, tenant)
	if err != nil {
		return st, err
	}
	// The PBX → Teams direction's subscription, when the tenant has one: one point read.
	sub, err := OpenData(m.st.DB()).PBXSubscriptions.Get(ctx, tenant, pbxKind)
	switch {
	case err == nil:
		st.PBX = &PBXStatus{Status: sub.Status, Extensions: sub.Extensions, ExpiresAt: sub.ExpiresAt, LastError: sub.LastError, Recreated: sub.Recreated}
	case !errors.Is(err, tables.ErrNotFound):
		return TenantStatus{}, fmt.Errorf("read pbx subscription: %w", err)
	}
	return st, nil
}

func (m *Manager) syncStatus(ctx context.Context, tenant core.TenantID) (TenantStatus, error) {
	// An unknown id is 404, not a row of zeros.
	if _, err := m.st.Tenants.Get(ctx, tenant); errors.Is(err, tables.ErrNotFound) {
		return TenantStatus{}, apperr.New(apperr.NotFound, "no such tenant", err)
	} else if err != nil {
		return TenantStatus{}, fmt.Errorf("read tenant: %w", err)
	}
	snap, err := m.status.Get(ctx, tenant, statusRowKey)
	switch {
	case errors.Is(err, tables.ErrNotFound) || (err == nil && snap.Licensed <= m.o.LiveStatusMax):
		v, err := m.view(ctx, tenant)
		if err != nil {
			return TenantStatus{}, err
		}
		st := v.status(Pack(v.licensed, v.active, v.members))
		st.Errors = snap.Errors
		st.AsOf = m.o.Now().UTC().Truncate(time.Millisecond) // as stored
		m.recordStatus(ctx, tenant, st)
		return st, nil
	case err != nil:
		return TenantStatus{}, fmt.Errorf("read presence status: %w", err)
	}
	active, all, err := m.countServiceUsers(ctx, tenant)
	if err != nil {
		return TenantStatus{}, fmt.Errorf("count service users: %w", err)
	}
	subs, err := m.countSubscriptions(ctx, tenant)
	if err != nil {
		return TenantStatus{}, fmt.Errorf("count subscriptions: %w", err)
	}
	needed := (snap.Licensed + MaxUsersPerSubscription - 1) / MaxUsersPerSubscription
	return TenantStatus{Licensed: snap.Licensed, ServiceUsers: active, NeedsReconsent: all - active, Subscriptions: subs,
		ServiceUsersNeeded: needed, ServiceUsersMissing: max(0, needed-active),
		Unassigned: max(0, snap.Licensed-active*MaxUsersPerSubscription), Errors: snap.Errors, AsOf: snap.TakenAt}, nil
}

// recordStatus keeps the count for Status. A failure only costs the next Status a live count: logged,
// never the caller's error.
func (m *Manager) recordStatus(ctx context.Context, tenant core.TenantID, st TenantStatus) {
	if _, err := m.status.Upsert(ctx, tenant, StatusSnapshot{Licensed: st.Licensed, Errors: st.Errors, TakenAt: st.AsOf}); err != nil {
		m.o.Log.WarnContext(ctx, "presence status not recorded", "error", err)
	}
}

type tenantView struct {
	licensed []string
	active   []string                         // active service users, oldest connection first
	all      int                              // service users including those needing re-consent
	subs     map[string]registry.Subscription // by service user
	members  map[string][]string
	orphans  []registry.Subscription // rows whose service user is gone or duplicated
}

func (v tenantView) status(p Plan) TenantStatus {
	return TenantStatus{Licensed: len(v.licensed), ServiceUsers: len(v.active), NeedsReconsent: v.all - len(v.active),
		Subscriptions: len(v.subs), ServiceUsersNeeded: p.Needed, ServiceUsersMissing: p.Missing, Unassigned: len(p.Unassigned)}
}

func (m *Manager) view(ctx context.Context, tenant core.TenantID) (tenantView, error) {
	v := tenantView{subs: map[string]registry.Subscription{}, members: map[string][]string{}}
	// Only the flags are read: the sealed personal fields are not needed here.
	for u, err := range m.st.Users.All(ctx, tenant, &tables.ListOptions{Select: []string{"Licensed", "ProcessingRestricted"}}) {
		if err != nil {
			return v, fmt.Errorf("list users: %w", err)
		}
		if u.Licensed && !u.ProcessingRestricted {
			v.licensed = append(v.licensed, u.ID)
		}
	}
	var sus []serviceuser.ServiceUser
	for su, err := range m.serviceUsers.All(ctx, tenant, &tables.ListOptions{Select: []string{"State", "ConnectedAt"}}) {
		if err != nil {
			return v, fmt.Errorf("list service users: %w", err)
		}
		v.all++
		if su.State == serviceuser.Active {
			sus = append(sus, su)
		}
	}
	slices.SortFunc(sus, func(a, b serviceuser.ServiceUser) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	active := map[string]bool{}
	for _, su := range sus {
		v.active = append(v.active, su.ID)
		active[su.ID] = true
	}
	for s, err := range m.st.Subscriptions.All(ctx, tenant, nil) {
		if err != nil {
			return v, fmt.Errorf("list subscriptions: %w", err)
		}
		if s.Kind != registry.KindPresence {
			continue
		}
		ids, perr := ParseResource(s.Resource)
		prev, dup := v.subs[s.ServiceUserID]
		switch {
		case !active[s.ServiceUserID] || perr != nil:
			v.orphans = append(v.orphans, s)
		case dup && prev.CreatedAt.After(s.CreatedAt):
			v.orphans = append(v.orphans, s)
		default:
			if dup {
				v.orphans = append(v.orphans, prev)
			}
			v.subs[s.ServiceUserID] = s
			v.members[s.ServiceUserID] = ids
		}
	}
	return v, nil
}

// Reconcile makes one tenant's subscriptions match its licensed users and service users: renew what
// expires within the margin, create what is missing, re-create what changed or disappeared, delete
// what is no longer needed. Call it holding the tenant's lease (Run and Handle do).
func (m *Manager) Reconcile(ctx context.Context, tenant core.TenantID) (TenantStatus, error) {
	v, err := m.view(ctx, tenant)
	if err != nil {
		return TenantStatus{}, err
	}
	plan := Pack(v.licensed, v.active, v.members)
	var errs []error
	for _, s := range v.orphans {
		errs = append(errs, m.remove(ctx, tenant, s, slices.Contains(v.active, s.ServiceUserID)))
	}
	for _, su := range v.active {
		want := plan.Members[su]
		sub, has := v.subs[su]
		switch {
		case len(want) == 0 && has:
			errs = append(errs, m.remove(ctx, tenant, sub, true))
		case len(want) == 0:
		case has && slices.Equal(want, v.members[su]):
			errs = append(errs, m.renew(ctx, tenant, sub, want))
		case has:
			if err := m.remove(ctx, tenant, sub, true); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, m.create(ctx, tenant, su, want))
		default:
			errs = append(errs, m.create(ctx, tenant, su, want))
		}
	}
	st := v.status(plan)
	err = errors.Join(errs...)
	if err != nil {
		st.Errors = len(slices.DeleteFunc(errs, func(e error) bool { return e == nil }))
	}
	// Count what exists now, not what existed before the run: a refused token refresh during the run
	// has just marked its service user for re-consent.
	if n, cerr := m.countSubscriptions(ctx, tenant); cerr == nil {
		st.Subscriptions = n
	}
	if err != nil {
		if active, all, cerr := m.countServiceUsers(ctx, tenant); cerr == nil {
			st.ServiceUsers, st.NeedsReconsent = active, all-active
		}
	}
	st.AsOf = m.o.Now().UTC().Truncate(time.Millisecond) // as stored
	m.recordStatus(ctx, tenant, st)
	m.applier.stats.setTenant(string(tenant), st)
	if st.ServiceUsersMissing > 0 {
		m.o.Log.WarnContext(ctx, "presence: service users missing", "missing", st.ServiceUsersMissing, "unassigned_users", st.Unassigned)
	}
	return st, err
}

func (m *Manager) countSubscriptions(ctx context.Context, tenant core.TenantID) (int, error) {
	n := 0
	for s, err := range m.st.Subscriptions.All(ctx, tenant, &tables.ListOptions{Select: []string{"Kind"}}) {
		if err != nil {
			return 0, err
		}
		if s.Kind == registry.KindPresence {
			n++
		}
	}
	return n, nil
}

func (m *Manager) countServiceUsers(ctx context.Context, tenant core.TenantID) (active, all int, err error) {
	for su, err := range m.serviceUsers.All(ctx, tenant, &tables.ListOptions{Select: []string{"State"}}) {
		if err != nil {
			return 0, 0, err
		}
		all++
		if su.State == serviceuser.Active {
			active++
		}
	}
	return active, all, nil
}

func (m *Manager) client(ctx context.Context, tenant core.TenantID, su string) (Graph, error) {
	g, err := m.clients.For(ctx, tenant, su)
	if err != nil {
		return nil, fmt.Errorf("graph client of service user %s: %w", su, err)
	}
	return g, nil
}

// renew moves the expiry when it is within the margin. A subscription Graph no longer has (or one that
// already lapsed) is re-created, and its users resynced: changes during a lapse are lost otherwise.
func (m *Manager) renew(ctx context.Context, tenant core.TenantID, sub registry.Subscription, members []string) error {
	now := m.o.Now()
	if sub.ExpiresAt.Sub(now) > m.o.RenewMargin {
		return nil
	}
	g, err := m.client(ctx, tenant, sub.ServiceUserID)
	if err != nil {
		return err
	}
	if sub.ExpiresAt.After(now) {
		exp, err := g.RenewSubscription(ctx, sub.ID, now.Add(m.o.Lifetime))
		if err == nil {
			_, err = m.st.Subscriptions.Update(ctx, tenant, sub.ID, func(s *registry.Subscription) error {
				s.ExpiresAt, s.UpdatedAt = exp, now.UTC()
				return nil
			})
			if err != nil {
				return fmt.Errorf("record renewal: %w", err)
			}
			m.o.Log.InfoContext(ctx, "presence subscription renewed", "subscription_id", sub.ID)
			return nil
		}
		if !errors.Is(err, graph.ErrNotFound) {
			return fmt.Errorf("renew subscription %s: %w", sub.ID, err)
		}
	}
	m.o.Log.InfoContext(ctx, "presence subscription gone; re-creating", "subscription_id", sub.ID)
	if err := m.remove(ctx, tenant, sub, false); err != nil {
		return err
	}
	return m.create(ctx, tenant, sub.ServiceUserID, members)
}

// remove deletes a subscription at Graph (when its service user can still do it) and our record.
func (m *Manager) remove(ctx context.Context, tenant core.TenantID, sub registry.Subscription, atGraph bool) error {
	if atGraph {
		g, err := m.client(ctx, tenant, sub.ServiceUserID)
		if err == nil {
			err = g.DeleteSubscription(ctx, sub.ID)
		}
		if err != nil {
			return fmt.Errorf("delete subscription %s: %w", sub.ID, err)
		}
	}
	if err := m.st.Subscriptions.Delete(ctx, tenant, sub.ID); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return fmt.Errorf("delete subscription record: %w", err)
	}
	return nil
}

// create subscribes for members through service user su, records the subscription and resyncs the
// members. If Graph says the service user already holds a presence subscription we have no record of
// (a crash between Graph's answer and our write), that orphan is deleted and creation tried once more.
func (m *Manager) create(ctx context.Context, tenant core.TenantID, su string, members []string) error {
	g, err := m.client(ctx, tenant, su)
	if err != nil {
		return err
	}
	state, hash, err := registry.NewClientState()
	if err != nil {
		return err
	}
	cur := m.certs.Current()
	req := graph.NewSubscription{
		Resource: Resource(members), ChangeType: "updated",
		NotificationURL: m.o.NotificationURL, LifecycleNotificationURL: m.o.LifecycleURL,
		ClientState: state, ExpiresAt: m.o.Now().Add(m.o.Lifetime),
		IncludeResourceData: true, EncryptionCertificate: base64.StdEncoding.EncodeToString(cur.Certificate.Raw),
		EncryptionCertificateID: cur.ID,
	}
	sub, err := g.CreateSubscription(ctx, req)
	var ge *graph.Error
	if errors.As(err, &ge) && (ge.Status == 403 || ge.Status == 409) {
		if cerr := m.deleteUnknown(ctx, tenant, g); cerr != nil {
			return errors.Join(fmt.Errorf("create subscription: %w", err), cerr)
		}
		sub, err = g.CreateSubscription(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("create subscription for service user %s: %w", su, err)
	}
	now := m.o.Now().UTC()
	if _, err := m.st.Subscriptions.Insert(ctx, tenant, registry.Subscription{ID: sub.ID, Kind: registry.KindPresence,
		Resource: req.Resource, ChangeType: req.ChangeType, ExpiresAt: sub.ExpiresAt, ClientStateHash: hash,
		ServiceUserID: su, CreatedAt: now, UpdatedAt: now}); err != nil {
		return fmt.Errorf("record subscription: %w", err)
	}
	m.o.Log.InfoContext(ctx, "presence subscription created", "subscription_id", sub.ID, "users", len(members))
	return m.resync(ctx, tenant, g, members)
}

// deleteUnknown deletes the service user's presence subscriptions at Graph that we hold no record of.
func (m *Manager) deleteUnknown(ctx context.Context, tenant core.TenantID, g Graph) error {
	subs, err := g.ListSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("list subscriptions: %w", err)
	}
	var errs []error
	for _, s := range subs {
		if _, perr := ParseResource(s.Resource); perr != nil {
			continue
		}
		if _, err := m.st.Subscriptions.Get(ctx, tenant, s.ID); errors.Is(err, tables.ErrNotFound) {
			m.o.Log.WarnContext(ctx, "deleting unknown presence subscription", "subscription_id", s.ID)
			errs = append(errs, g.DeleteSubscription(ctx, s.ID))
		}
	}
	return errors.Join(errs...)
}

// resync reads the members' presence in bulk and pushes what changed. PBX failures are recorded per
// user (syncerrors) and do not fail the resync; storage failures do.
func (m *Manager) resync(ctx context.Context, tenant core.TenantID, g Graph, members []string) error {
	ps, err := g.PresencesByUserID(ctx, members)
	if err != nil {
		return fmt.Errorf("read presences: %w", err)
	}
	now := m.o.Now().UTC()
	var mu sync.Mutex
	var errs []error
	pushed, failed := 0, 0
	// A few at a time: each user costs a handful of table calls and maybe a PBX call.
	var g8 errgroup.Group
	g8.SetLimit(resyncParallelism)
	for _, p := range ps {
		g8.Go(func() error {
			out, err := m.applier.Apply(ctx, tenant, Observation{UserID: strings.ToLower(p.UserID), Availability: p.Availability,
				Activity: p.Activity, Sequence: p.Sequence, At: now})
			mu.Lock()
			defer mu.Unlock()
			var pe *PushError
			switch {
			case errors.As(err, &pe):
				failed++
			case err != nil:
				errs = append(errs, err)
			case out == Pushed:
				pushed++
			}
			return nil
		})
	}
	_ = g8.Wait()
	m.o.Log.InfoContext(ctx, "presence resynced", "users", len(ps), "pushed", pushed, "push_failures", failed)
	return errors.Join(errs...)
}

// resyncParallelism bounds the concurrent applies of one resync.
const resyncParallelism = 8

// Lifecycle events Graph sends.
const (
	EventReauthorizationRequired = "reauthorizationRequired"
	EventSubscriptionRemoved     = "subscriptionRemoved"
	EventMissed                  = "missed"
)

// Handle is ProcessLifecycle's action (ingest.LifecycleAction): reauthorizationRequired → reauthorize;
// subscriptionRemoved → re-create and resync; missed → resync.
func (m *Manager) Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error {
	if sub.Kind != registry.KindPresence {
		return nil
	}
	return m.withLease(ctx, tenant, func() error {
		// An inactive tenant's subscription is not reauthorized nor re-created: it is deleted.
		if t, err := m.st.Tenants.Get(ctx, tenant); err != nil && !errors.Is(err, tables.ErrNotFound) {
			return fmt.Errorf("read tenant: %w", err)
		} else if t.State != registry.TenantActive {
			return m.follow(ctx, tenant)
		}
		switch event {
		case EventReauthorizationRequired:
			g, err := m.client(ctx, tenant, sub.ServiceUserID)
			if err != nil {
				return err
			}
			err = g.ReauthorizeSubscription(ctx, sub.ID)
			if errors.Is(err, graph.ErrNotFound) {
				return m.recreate(ctx, tenant, sub)
			}
			if err != nil {
				return fmt.Errorf("reauthorize subscription %s: %w", sub.ID, err)
			}
			m.o.Log.InfoContext(ctx, "presence subscription reauthorized", "subscription_id", sub.ID)
			return nil
		case EventSubscriptionRemoved:
			return m.recreate(ctx, tenant, sub)
		case EventMissed:
			ids, err := ParseResource(sub.Resource)
			if err != nil {
				return err
			}
			g, err := m.client(ctx, tenant, sub.ServiceUserID)
			if err != nil {
				return err
			}
			return m.resync(ctx, tenant, g, ids)
		default:
			m.o.Log.WarnContext(ctx, "unknown lifecycle event", "subscription_id", sub.ID, "event", event)
			return nil
		}
	})
}

// recreate drops our record of a subscription Graph removed and reconciles the tenant, which creates the
// service user's subscription again (with the current members) and resyncs them.
func (m *Manager) recreate(ctx context.Context, tenant core.TenantID, sub registry.Subscription) error {
	if err := m.remove(ctx, tenant, sub, false); err != nil {
		return err
	}
	_, err := m.Reconcile(ctx, tenant)
	return err
}
