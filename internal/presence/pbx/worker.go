package pbx

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
)

// Teams writes a user's Teams presence in our application session (graph.Client, app-only).
type Teams interface {
	SetPresence(ctx context.Context, userID, sessionID, availability, activity string, expiry time.Duration) error
	ClearPresence(ctx context.Context, userID, sessionID string) error
}

var _ Teams = (*graph.Client)(nil)

// TeamsClients gives the tenant's app-only Graph client.
type TeamsClients interface {
	For(ctx context.Context, tenant core.TenantID) (Teams, error)
}

// Outcomes of the worker, counted as "teams_<outcome>".
const (
	OutSet       = "set"       // a session was set or refreshed
	OutCleared   = "cleared"   // our session was cleared
	OutUnchanged = "unchanged" // nothing to write
	OutEcho      = "echo"      // the PBX reported the state our own push set: not mirrored
	OutStale     = "stale"     // an older sequence than the one applied
	OutSkipped   = "skipped"   // extension unknown, user unlicensed or restricted, direction off
	OutInactive  = "inactive"  // the tenant is not active
	OutFailed    = "failed"    // Graph refused for good (e.g. no Presence.ReadWrite.All consent)
)

// WorkerOptions configure the Worker.
type WorkerOptions struct {
	// AppID is our application (client) id: the sessionId of every setPresence (Graph requires it with
	// the application permission).
	AppID string
	// SessionLength is the expirationDuration of a session (default 1 h; Graph allows 5 min to 4 h).
	// Should we stop hearing from the PBX, Teams drops the busy state by itself after it.
	SessionLength time.Duration
	// RefreshMargin: a session of a call still going that ends within it is set again by
	// RefreshSessions (default 25 min: more than two 10-minute RenewSubscriptions runs).
	RefreshMargin time.Duration
	// MaxHold bounds how long one session is refreshed (default 8 h): should the PBX's end-of-call event
	// be lost, the user does not stay busy in Teams for ever; the session then lapses within
	// SessionLength.
	MaxHold time.Duration
	Now     func() time.Time
	Log     *slog.Logger
}

// Graph's session bounds (presence-setpresence.md).
const (
	minSession = 5 * time.Minute
	maxSession = 4 * time.Hour
)

// Worker applies queued PBX events to Teams.
type Worker struct {
	st    *registry.Registry
	data  *presence.Data
	teams TeamsClients
	stats *presence.Stats
	o     WorkerOptions
}

// NewWorker builds the worker.
func NewWorker(st *registry.Registry, teams TeamsClients, stats *presence.Stats, o WorkerOptions) (*Worker, error) {
	if o.AppID == "" {
		return nil, errors.New("pbx worker: no application id for the presence session")
	}
	if o.SessionLength <= 0 {
		o.SessionLength = time.Hour
	}
	o.SessionLength = min(max(o.SessionLength, minSession), maxSession)
	if o.RefreshMargin <= 0 {
		o.RefreshMargin = 25 * time.Minute
	}
	o.RefreshMargin = min(o.RefreshMargin, o.SessionLength/2)
	if o.MaxHold <= 0 {
		o.MaxHold = 8 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = presence.NewStats()
	}
	return &Worker{st: st, data: presence.OpenData(st.DB()), teams: teams, stats: stats, o: o}, nil
}

// Process handles one queued PBX event.
func (w *Worker) Process(ctx context.Context, d *queue.Delivery) error {
	tenant, err := core.ParseTenantID(d.ApplicationProperties[queue.PropTenant])
	if err != nil {
		return apperr.New(apperr.Invalid, "pbx message without a tenant", err)
	}
	ctx = core.WithTenant(ctx, tenant)
	if k := d.ApplicationProperties[queue.PropKind]; k != Kind {
		return apperr.New(apperr.Invalid, fmt.Sprintf("message of kind %q on the pbx worker", k), nil)
	}
	var ev Event
	if err := json.Unmarshal(d.Body, &ev); err != nil || (ev.ExtensionID == "" && ev.UserID == "") {
		return apperr.New(apperr.Invalid, "pbx message is not an event", err)
	}
	out, err := w.Apply(ctx, tenant, ev)
	w.stats.AddPBX("teams_" + out)
	if err != nil {
		return err
	}
	w.o.Log.DebugContext(ctx, "pbx presence applied", "outcome", out, "sequence", ev.Sequence)
	return nil
}

// want is the Teams session a PBX state calls for: a call sets the tenant's call pair, DND on the PBX
// sets DoNotDisturb, anything else none (our session is cleared and Teams shows the user's own state).
func want(call, dnd bool, s presence.SyncSettings) string {
	switch {
	case call:
		return s.CallPresence
	case dnd:
		return presence.DNDPair
	}
	return ""
}

// Apply takes one event through the rules: active tenant, direction includes PBX → Teams, a known
// extension of a licensed, unrestricted user; never an older sequence over a newer one; the PBX state
// our own push caused is not mirrored; write only what changes the session.
func (w *Worker) Apply(ctx context.Context, tenant core.TenantID, ev Event) (string, error) {
	t, err := w.st.Tenants.Get(ctx, tenant)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return OutInactive, nil
	case err != nil:
		return OutFailed, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("read tenant: %w", err))
	case t.State != registry.TenantActive:
		return OutInactive, nil
	}
	set := presence.ParseSyncSettings(t.PBXSettings)
	source := cmp.Or(ev.Source, ringcentral.Kind)
	if !set.ToTeams() || t.PBXKind != source {
		return OutSkipped, nil // the direction is off, or the event comes from a connector the tenant no longer uses
	}
	userID := ev.UserID
	if source == ringcentral.Kind {
		x, err := w.data.PBXExtensions.Get(ctx, tenant, ev.ExtensionID)
		switch {
		case errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey):
			return OutSkipped, nil
		case err != nil:
			return OutFailed, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("read pbx extension: %w", err))
		}
		userID = x.UserID
	}
	u, err := w.st.Users.Get(ctx, tenant, userID)
	switch {
	case errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey):
		return OutSkipped, nil
	case err != nil:
		return OutFailed, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("read user: %w", err))
	case !u.Licensed || u.ProcessingRestricted:
		return OutSkipped, nil
	}
	cur, err := w.data.Presence.Get(ctx, tenant, u.ID)
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		return OutFailed, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("read presence: %w", err))
	}
	had := err == nil // the row existed: if it is gone by the final write, the person was erased meanwhile
	if ev.Sequence <= cur.PBXSequence {
		return OutStale, nil
	}
	call := cur.PBXCall
	switch {
	case ev.DetailedCalls:
		call = ev.ActiveCalls > 0
	case ev.TelephonyStatus != "":
		call = ev.TelephonyStatus == "CallConnected" || ev.TelephonyStatus == "OnHold"
	}
	dnd := cur.PBXDND
	if ev.DNDStatus != "" {
		dnd = ev.DNDStatus == "DoNotAcceptAnyCalls"
	}
	// Our own push comes back: the PBX reports exactly the userStatus and dndStatus we set for the state
	// we pushed from Teams. That part is Teams' own state and is not mirrored back (a Teams meeting →
	// PBX DND → Teams DND would hold the user in DND after the meeting); a call is never ours.
	ours := false
	switch {
	case source == ringcentral.Kind && cur.PBXState != "" && ev.UserStatus != "":
		us, ds := ringcentral.PresenceFields(connector.State(cur.PBXState))
		ours = ev.UserStatus == us && (ev.DNDStatus == "" || ev.DNDStatus == ds)
	case source != ringcentral.Kind:
		// The webhook connector's PBX reports only call and DND: DND is ours when we pushed DND.
		ours = dnd && cur.PBXState == string(connector.DND)
	}
	target := want(call, dnd && !ours, set)
	now := w.o.Now().UTC()
	out := OutUnchanged
	switch {
	case target == "" && cur.TeamsSession == "":
		if ours {
			out = OutEcho
		}
	case target == "":
		if err := w.clear(ctx, tenant, u.ID); err != nil {
			return OutFailed, err
		}
		out = OutCleared
	case target == cur.TeamsSession && cur.TeamsSessionUntil.Sub(now) > w.o.RefreshMargin:
	default:
		// Recorded first: Graph may report the session's presence before setPresence answers, and the
		// Teams → PBX worker must know it for our own (the echo) by then.
		if _, err := w.data.Presence.UpdateOrCreate(ctx, tenant, u.ID, func(p *presence.Presence, exists bool) error {
			p.UserID, p.TeamsSessionPending, p.TeamsSessionPendingAt = u.ID, target, now
			if !exists {
				p.Source = "pbx"
			}
			return nil
		}); err != nil {
			return OutFailed, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("store presence: %w", err))
		}
		if err := w.set(ctx, tenant, u.ID, target); err != nil {
			return OutFailed, err
		}
		out = OutSet
	}
	// Only this direction's fields: a Teams notification may have updated the row meanwhile.
	_, err = w.data.Presence.UpdateOrCreate(ctx, tenant, u.ID, func(p *presence.Presence, exists bool) error {
		if !exists && (had || out == OutSet) {
			return errRowGone // erased (or unlicensed) while this event was handled: nothing is written back
		}
		if exists && ev.Sequence <= p.PBXSequence {
			return nil // a concurrent worker applied a newer event; what it wrote stands
		}
		p.UserID, p.PBXSequence, p.PBXCall, p.PBXDND = u.ID, ev.Sequence, call, dnd
		switch out {
		case OutSet:
			if p.TeamsSession != target {
				p.TeamsSessionPrev, p.TeamsSessionAt = p.TeamsSession, now
			}
			p.TeamsSession, p.TeamsSessionUntil = target, now.Add(w.o.SessionLength)
			p.TeamsSessionPending, p.TeamsSessionPendingAt = "", time.Time{}
		case OutCleared:
			p.TeamsSessionPrev, p.TeamsSessionAt = p.TeamsSession, now
			p.TeamsSession, p.TeamsSessionUntil = "", time.Time{}
		}
		if !exists {
			p.Source = "pbx"
		}
		return nil
	})
	if errors.Is(err, errRowGone) {
		// The erasure's withdrawal may have run before our setPresence landed: take the session back.
		if out == OutSet {
			if err := w.clear(ctx, tenant, u.ID); err != nil {
				w.o.Log.WarnContext(ctx, "session set for an erased user could not be cleared; it lapses by itself", "error", err)
			}
		}
		return OutSkipped, nil
	}
	if err != nil {
		// Teams is already written; the redelivery writes the same session again (idempotent).
		return out, apperr.New(apperr.Unavailable, "storage unavailable", fmt.Errorf("store presence: %w", err))
	}
	return out, nil
}

// errRowGone: the user's presence row was deleted while an event was handled (an erasure).
var errRowGone = errors.New("presence row deleted meanwhile")

// Withdraw clears the Teams presence session ConnectHub holds for the user, if any (privacy.Withdrawer):
// a user erased during a PBX call would otherwise show busy in Teams from our session until it lapsed.
func (w *Worker) Withdraw(ctx context.Context, tenant core.TenantID, userID string) error {
	p, err := w.data.Presence.Get(ctx, tenant, userID)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read presence: %w", err)
	}
	now := w.o.Now()
	live := p.TeamsSession != "" && now.Before(p.TeamsSessionUntil)
	// A session being set when the erasure came: recorded before the setPresence call, it may hold at
	// Graph before TeamsSession says so. Clearing one that never came to be is a harmless 404.
	setting := p.TeamsSessionPending != "" && now.Sub(p.TeamsSessionPendingAt) < w.o.SessionLength
	if !live && !setting {
		return nil // no session of ours, or it has lapsed
	}
	return w.clear(ctx, tenant, userID)
}

func (w *Worker) set(ctx context.Context, tenant core.TenantID, userID, pair string) error {
	c, err := w.teams.For(ctx, tenant)
	if err != nil {
		return apperr.New(apperr.Unavailable, "graph client unavailable", err)
	}
	avail, act, _ := strings.Cut(pair, "/")
	return w.graphErr(ctx, "set", c.SetPresence(ctx, userID, w.o.AppID, avail, act, w.o.SessionLength))
}

func (w *Worker) clear(ctx context.Context, tenant core.TenantID, userID string) error {
	c, err := w.teams.For(ctx, tenant)
	if err != nil {
		return apperr.New(apperr.Unavailable, "graph client unavailable", err)
	}
	err = c.ClearPresence(ctx, userID, w.o.AppID)
	if errors.Is(err, graph.ErrNotFound) {
		return nil // the session has already lapsed: the goal is met
	}
	return w.graphErr(ctx, "clear", err)
}

// graphErr classifies a Graph failure: throttling, 5xx and no answer are retried later (the queue
// router reschedules); a refusal (403: the tenant has not consented Presence.ReadWrite.All; 400; 404 for
// a user Graph does not know) is permanent and parked with its reason.
func (w *Worker) graphErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if graph.Retryable(err) {
		return apperr.New(apperr.Unavailable, "graph unavailable", err)
	}
	var ge *graph.Error
	code := apperr.Invalid
	if errors.As(err, &ge) && (ge.Status == http.StatusForbidden || ge.Status == http.StatusUnauthorized) {
		code = apperr.Forbidden
	}
	w.o.Log.WarnContext(ctx, "teams presence write refused", "op", op, "error", err)
	return apperr.New(code, "teams refused the presence write", err)
}

// RefreshSessions sets again the sessions of calls and DND still going that end within the margin, so
// Teams does not drop a long call's busy state (sessions last at most 4 h). RenewSubscriptions runs it
// per tenant (Subscriber.Follow). Failures are collected per user.
func (w *Worker) RefreshSessions(ctx context.Context, tenant core.TenantID) error {
	now := w.o.Now().UTC()
	t, err := w.st.Tenants.Get(ctx, tenant)
	if err != nil || t.State != registry.TenantActive {
		return nil
	}
	set := presence.ParseSyncSettings(t.PBXSettings)
	// Sessions that end within the margin, or lapsed within Graph's longest session (a call still going
	// after a missed refresh); rows without a session are not read.
	filter := tables.Filter("PartitionKey eq ? and TeamsSessionUntil gt ? and TeamsSessionUntil lt ?", tenant,
		now.Add(-maxSession), now.Add(w.o.RefreshMargin))
	var due []presence.Presence
	for p, err := range tables.Pages(func(o *tables.ListOptions) (tables.Page[presence.Presence], error) {
		return w.data.Presence.Query(ctx, tenant, filter, o)
	}, nil) {
		if err != nil {
			return fmt.Errorf("list presence sessions: %w", err)
		}
		if p.TeamsSession != "" {
			due = append(due, p)
		}
	}
	var errs []error
	for _, p := range due {
		target := want(p.PBXCall, p.PBXDND, set)
		if target == "" || target != p.TeamsSession {
			continue // the next event decides; a session that lapses shows the user's own state
		}
		if now.Sub(p.TeamsSessionAt) > w.o.MaxHold {
			w.stats.AddPBX("teams_hold_expired")
			continue
		}
		if err := w.set(ctx, tenant, p.UserID, target); err != nil {
			errs = append(errs, err)
			continue
		}
		_, err := w.data.Presence.Update(ctx, tenant, p.UserID, func(r *presence.Presence) error {
			if r.TeamsSession == target {
				r.TeamsSessionUntil = now.Add(w.o.SessionLength)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("store refreshed session: %w", err))
			continue
		}
		w.stats.AddPBX("teams_refreshed")
	}
	return errors.Join(errs...)
}
