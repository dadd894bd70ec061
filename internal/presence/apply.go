package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Observation is one presence as Graph reported it (a notification or a bulk read).
type Observation struct {
	UserID       string
	Availability string
	Activity     string
	// Sequence is Graph's sequenceNumber ("" if absent): a lexicographically sortable version stamp.
	Sequence string
	// At is when Graph reported it: the time of a bulk read, or the webhook's first acceptance of a
	// notification.
	At time.Time
	// FromNotification marks a change notification. Its At is only an upper bound of when the state
	// held: Graph may deliver a notification more than once and up to hours late, so arrival order proves
	// nothing (see order). A read (false) held exactly at At.
	FromNotification bool
}

// Outcome is what Apply did.
type Outcome string

// Outcomes.
const (
	Pushed    Outcome = "pushed"    // the PBX got the new state
	Unchanged Outcome = "unchanged" // same PBX state as last pushed: stored, not pushed
	Stale     Outcome = "stale"     // older than what is stored: dropped
	Skipped   Outcome = "skipped"   // not a licensed, unrestricted user of an active tenant
	Inactive  Outcome = "inactive"  // the tenant is suspended, cancelled or gone: dropped
	Failed    Outcome = "failed"    // the push failed (see the error)
	// Unconfirmed: a notification that may be a late or repeated one and would change the PBX state;
	// nothing was stored or pushed. The caller reads the user's presence from Graph and applies the read
	// (Worker.confirm).
	Unconfirmed Outcome = "unconfirmed"
	// Echo: Teams reports the presence our own PBX-driven session set; stored, never pushed back.
	Echo Outcome = "echo"
)

// syncResourceRecord names a user's presence in the ledger and in syncerrors: Resource = user id (so
// the licensing job's DeleteResource(user) and erasure requests reach it), RecordID "presence".
const syncRecord = "presence"

// Applier stores a presence and pushes what changed to the tenant's PBX. The worker (notifications) and
// the subscription manager (resyncs) share it, so both follow the same rules.
type Applier struct {
	st       *registry.Registry
	data     *Data
	pushers  connector.Registry
	defaults Mapping
	now      func() time.Time
	log      *slog.Logger
	stats    *Stats

	tenants *ttlcache.Cache[core.TenantID, tenantSettings]
	users   *ttlcache.Cache[string, userEntry]
}

type tenantSettings struct {
	active  bool
	kind    string
	mapping Mapping
	err     error // a mapping the tenant saved that does not parse
	toPBX   bool  // the tenant's direction includes Teams → PBX
}

type userEntry struct {
	found bool
	user  registry.User
}

// settingsTTL bounds how long a licensing or settings change takes to reach the worker.
const settingsTTL = time.Minute

// NewApplier builds the applier. defaults is the mapping every tenant starts from (its Tenant.PresenceMap
// overrides apply on top).
func NewApplier(st *registry.Registry, pushers connector.Registry, defaults Mapping, stats *Stats, now func() time.Time, log *slog.Logger) *Applier {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = NewStats()
	}
	return &Applier{st: st, data: OpenData(st.DB()), pushers: pushers, defaults: defaults, now: now, log: log, stats: stats,
		tenants: ttlcache.New[core.TenantID, tenantSettings](settingsTTL, 10_000, now),
		users:   ttlcache.New[string, userEntry](settingsTTL, 100_000, now)}
}

func (a *Applier) settings(ctx context.Context, tenant core.TenantID) (tenantSettings, error) {
	if s, ok := a.tenants.Get(tenant); ok {
		return s, nil
	}
	return a.load(ctx, tenant)
}

// load reads the tenant's settings from storage (a point read) and caches them.
func (a *Applier) load(ctx context.Context, tenant core.TenantID) (tenantSettings, error) {
	t, err := a.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		s := tenantSettings{}
		a.tenants.Set(tenant, s)
		return s, nil
	}
	if err != nil {
		return tenantSettings{}, fmt.Errorf("read tenant: %w", err)
	}
	s := tenantSettings{active: t.State == registry.TenantActive, kind: t.PBXKind, toPBX: ParseSyncSettings(t.PBXSettings).ToPBX()}
	s.mapping, s.err = ParseMapping(a.defaults, t.PresenceMap)
	a.tenants.Set(tenant, s)
	return s, nil
}

func (a *Applier) user(ctx context.Context, tenant core.TenantID, id string) (userEntry, error) {
	k := string(tenant) + "/" + id
	if u, ok := a.users.Get(k); ok {
		return u, nil
	}
	u, err := a.st.Users.Get(ctx, tenant, id)
	switch {
	case errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey):
		a.users.Set(k, userEntry{})
		return userEntry{}, nil
	case err != nil:
		return userEntry{}, fmt.Errorf("read user: %w", err)
	}
	e := userEntry{found: true, user: u}
	a.users.Set(k, e)
	return e, nil
}

// Apply takes one observation through the rules: only licensed, unrestricted users of active tenants;
// never an older state over a newer one; store the current state (no history); push only when the PBX
// state changes. A failed push is recorded in syncerrors (with the user's name, temporarily) and
// returned; connector.Retryable tells whether trying later may help.
func (a *Applier) Apply(ctx context.Context, tenant core.TenantID, o Observation) (Outcome, error) {
	ctx = core.WithTenant(ctx, tenant) // its log lines name the tenant, whoever calls
	out, err := a.apply(ctx, tenant, o)
	a.stats.count(out)
	return out, err
}

func (a *Applier) apply(ctx context.Context, tenant core.TenantID, o Observation) (Outcome, error) {
	if o.UserID == "" {
		return Skipped, errors.New("apply presence: no user id")
	}
	set, err := a.settings(ctx, tenant)
	if err != nil {
		return Failed, err
	}
	if !set.active {
		// A cached "inactive" may predate a reactivation; such items are rare (the webhook drops them).
		if set, err = a.load(ctx, tenant); err != nil {
			return Failed, err
		}
		if !set.active {
			return Inactive, nil
		}
	}
	ue, err := a.user(ctx, tenant, o.UserID)
	if err != nil {
		return Failed, err
	}
	if !ue.found || !ue.user.Licensed || ue.user.ProcessingRestricted {
		return Skipped, nil
	}
	cur, etag, err := a.data.Presence.GetWithETag(ctx, tenant, o.UserID)
	exists := err == nil
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		return Failed, fmt.Errorf("read presence: %w", err)
	}
	v := order(o, cur, exists, a.now())
	if v == stale {
		return Stale, nil
	}
	if set.err != nil {
		a.recordFailure(ctx, tenant, ue.user, "mapping_invalid")
		return Failed, &PushError{Err: fmt.Errorf("tenant presence mapping: %w", connector.ErrNotConfigured)}
	}
	state := set.mapping.State(o.Availability, o.Activity)
	if v == unproven {
		if exists && string(state) == cur.PBXState {
			// Nothing to push whichever way the order goes; not stored, because it is not known to be
			// newer than what is.
			return Unchanged, nil
		}
		return Unconfirmed, nil
	}
	// The row also carries the PBX → Teams side (PBX*, TeamsSession*): kept as it is.
	next := cur
	next.UserID, next.Availability, next.Activity, next.Source = o.UserID, o.Availability, o.Activity, "teams"
	next.Sequence, next.ChangedAt = o.Sequence, o.At.UTC()
	outcome := Unchanged
	if !set.toPBX {
		// The tenant syncs PBX → Teams only: the state is stored (the echo rules need it), never pushed.
		state = connector.State(cur.PBXState)
	}
	if exists && isEcho(o, cur, a.now()) {
		// Teams reports what our own setPresence session made it show: pushing it to the PBX would loop
		// (a PBX call → Teams busy → PBX busy …). Stored, so the order of later notifications holds.
		state, outcome = connector.State(cur.PBXState), Echo
	}
	if string(state) != cur.PBXState {
		// The cached settings may predate a suspension or cancellation, and another instance may have
		// made it: the state is read afresh before anything leaves for the PBX.
		fresh, err := a.load(ctx, tenant)
		if err != nil {
			return Failed, err
		}
		if !fresh.active {
			return Inactive, nil
		}
		pusher, err := a.pushers.For(set.kind)
		if err == nil {
			err = pusher.Push(ctx, tenant, connector.UserOf(ue.user), state)
		}
		if err != nil {
			a.recordFailure(ctx, tenant, ue.user, connector.Code(err))
			return Failed, &PushError{Err: err}
		}
		next.PBXState, outcome = string(state), Pushed
	}
	if exists {
		_, err = a.data.Presence.Replace(ctx, tenant, next, etag)
	} else {
		_, err = a.data.Presence.Insert(ctx, tenant, next)
	}
	if err != nil {
		// A concurrent writer (a resync, or the PBX → Teams worker recording its session): the
		// redelivery decides again on fresh data. A conflict, not a bug.
		if errors.Is(err, tables.ErrConflict) || errors.Is(err, tables.ErrExists) {
			return Failed, apperr.New(apperr.Conflict, "presence changed concurrently", fmt.Errorf("store presence: %w", err))
		}
		return Failed, fmt.Errorf("store presence: %w", err)
	}
	if outcome == Pushed {
		if _, err := a.data.Ledger.Upsert(ctx, tenant, LedgerEntry{Resource: o.UserID, RecordID: syncRecord, LastModified: next.ChangedAt}); err != nil {
			return outcome, fmt.Errorf("record ledger: %w", err)
		}
		a.clearFailure(ctx, tenant, o.UserID)
	}
	return outcome, nil
}

// EchoWindow is how long after our session changed a Teams notification of its previous value is still
// taken for our own write coming back: twice Graph's worst presence notification latency (1 min,
// changenotifications-for-presence.md), as next-capabilities.md §2.8 advises.
const EchoWindow = 2 * time.Minute

// isEcho reports whether the Teams presence o is what our setPresence session made Teams show: the
// session's pair while it holds (before it expires), the pair being set within EchoWindow (the echo
// arriving before setPresence answered), or its previous pair within EchoWindow of the change (a
// notification of a state we have just replaced, arriving late).
func isEcho(o Observation, cur Presence, now time.Time) bool {
	pair := o.Availability + "/" + o.Activity
	if cur.TeamsSession != "" && strings.EqualFold(pair, cur.TeamsSession) && now.Before(cur.TeamsSessionUntil) {
		return true
	}
	if cur.TeamsSessionPending != "" && strings.EqualFold(pair, cur.TeamsSessionPending) && now.Sub(cur.TeamsSessionPendingAt) < EchoWindow {
		return true
	}
	return cur.TeamsSessionPrev != "" && strings.EqualFold(pair, cur.TeamsSessionPrev) && now.Sub(cur.TeamsSessionAt) < EchoWindow
}

// PushError is a failed push to the PBX (as opposed to a storage failure); connector.Retryable and
// connector.RetryAfter classify its cause.
type PushError struct{ Err error }

func (e *PushError) Error() string { return "push presence: " + e.Err.Error() }
func (e *PushError) Unwrap() error { return e.Err }

// The ordering rule. A presence notification carries no time of its own: the payload has the user id,
// availability, activity and, only sometimes, sequenceNumber; subscriptionExpirationDateTime belongs to
// the subscription. Graph delivers a notification more than once and up to 4 hours late (retries), plus
// up to 10 minutes held for a slow endpoint; Service Bus drops a replay only within its 10-minute
// duplicate window. So the webhook's acceptance time At says only that the state held at some instant
// in [At - redeliveryHorizon, At]: two notifications without sequence numbers cannot be ordered by
// arrival. An observation is therefore, against the stored presence:
//
//   - stale (dropped) when both carry sequence numbers and its number is not greater; a read (not a
//     notification) also when it was taken before the stored state's evidence;
//   - in order (applied, no Graph call) when it is a read, or a notification that is fresh (accepted
//     less than freshFor ago) and provably newer: a greater sequence number, or accepted more than
//     redeliveryHorizon after the stored state's evidence (ChangedAt), or there is no stored state;
//   - unproven otherwise — without sequence numbers every notification within the horizon, and every
//     notification that waited past freshFor in our queue (push retries). An unproven notification
//     that maps to the PBX state already pushed changes nothing and is neither stored nor pushed; one
//     that would change the PBX is confirmed by a presence read from Graph, and the read — Graph's
//     current state — is what is applied (Unconfirmed, Worker.confirm).
//
// Stored ChangedAt is thus always an upper bound of when the stored state held (a read's time, or the
// acceptance of a notification proven newer), which is what the horizon comparison needs.
type verdict int

const (
	inOrder  verdict = iota // apply
	stale                   // drop
	unproven                // confirm with a read before anything reaches the PBX
)

const (
	// freshFor is how long after the webhook accepted it a notification may still be pushed as it
	// stands: beyond it (push retries), Graph's current state is read and pushed instead.
	freshFor = 2 * time.Minute
	// redeliveryHorizon bounds how late Graph delivers a notification: retries for up to 4 hours, after
	// up to 10 minutes held for a slow endpoint; the rest is margin.
	redeliveryHorizon = 5 * time.Hour
)

func order(o Observation, cur Presence, exists bool, now time.Time) verdict {
	switch {
	case exists && older(o, cur):
		return stale
	case !o.FromNotification:
		return inOrder
	case now.Sub(o.At) > freshFor:
		return unproven
	case !exists:
		return inOrder
	case o.Sequence != "" && cur.Sequence != "":
		return inOrder // older said the number is greater
	case o.At.Add(-redeliveryHorizon).After(cur.ChangedAt):
		return inOrder
	default:
		return unproven
	}
}

// older reports whether o is provably not newer than what is stored. Graph's sequence numbers decide
// when both sides have one. Otherwise only a read is placed by its time, at the precision of a second
// (the Functions host hands queue timestamps without fractions, so within the same second the later
// arrival wins); a notification's arrival time proves nothing (see order).
func older(o Observation, cur Presence) bool {
	if o.Sequence != "" && cur.Sequence != "" {
		return compareSequence(o.Sequence, cur.Sequence) <= 0
	}
	if o.FromNotification {
		return false
	}
	return o.At.Before(cur.ChangedAt.Truncate(time.Second))
}

// compareSequence orders sequence numbers: "lexicographically sortable" per Graph; shorter first covers
// numbers that are not zero-padded.
func compareSequence(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// recordFailure notes the failed record for the tenant's error report. The user's name is kept only here
// and only temporarily (retention S7); failures to record are logged, never hide the push error.
func (a *Applier) recordFailure(ctx context.Context, tenant core.TenantID, u registry.User, code string) {
	now := a.now().UTC()
	rk, err := SyncErrorKey(u.ID, syncRecord)
	if err != nil {
		return
	}
	_, err = a.data.SyncErrors.UpdateOrCreate(ctx, tenant, rk, func(e *SyncError, exists bool) error {
		if !exists {
			e.FirstFailedAt = now
		}
		e.RecordName = u.DisplayName
		e.ErrorCode = code
		e.Attempts++
		e.LastFailedAt = now
		return nil
	})
	if err != nil {
		a.log.WarnContext(ctx, "record sync error failed", "user_id", u.ID, "error", err)
	}
}

func (a *Applier) clearFailure(ctx context.Context, tenant core.TenantID, userID string) {
	rk, err := SyncErrorKey(userID, syncRecord)
	if err != nil {
		return
	}
	if err := a.data.SyncErrors.Delete(ctx, tenant, rk); err != nil && !errors.Is(err, tables.ErrNotFound) {
		a.log.WarnContext(ctx, "clear sync error failed", "user_id", userID, "error", err)
	}
}

// Forget drops the cached settings of a tenant (they changed); otherwise changes apply within a minute.
func (a *Applier) Forget(tenant core.TenantID) {
	a.tenants.Delete(tenant)
}

// ForgetUser drops a cached user (licensing or a processing restriction changed); otherwise such
// changes reach the worker within a minute.
func (a *Applier) ForgetUser(tenant core.TenantID, userID string) {
	a.users.Delete(string(tenant) + "/" + userID)
}
