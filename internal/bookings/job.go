package bookings

import (
	"context"
	"hash/fnv"
	"iter"
	"log/slog"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// SyncRoomsJob is the job name of SyncRooms in each tenant's jobs partition.
const SyncRoomsJob = "sync-rooms"

// RoomSync is the daily SyncRooms job: each active tenant's room metadata from Places, once per UTC
// day, each tenant under its own lease (runs may overlap, repeat or die midway); failures are collected
// per tenant. Daily is enough: Places changes take up to 24 h to show anyway (Learn, Set-PlaceV3).
type RoomSync struct {
	dir     *Directory
	tenants func(context.Context) iter.Seq2[registry.Tenant, error]
	runner  *jobs.Runner
	spec    jobs.Spec
	log     *slog.Logger
	now     func() time.Time
}

// NewRoomSync returns the job; budget bounds one run (below the invocation timeout).
func NewRoomSync(dir *Directory, tenants func(context.Context) iter.Seq2[registry.Tenant, error], leases jobs.Table,
	budget time.Duration, log *slog.Logger) *RoomSync {
	if budget <= 0 {
		budget = 40 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RoomSync{dir: dir, tenants: tenants, runner: jobs.New(leases, jobs.Options{Log: log}), log: log, now: dir.now,
		spec: jobs.Spec{Name: SyncRoomsJob, Budget: budget, Lease: budget + 30*time.Second, FailureCode: "sync-rooms-failed"}}
}

// Run syncs every active tenant not yet done today.
func (j *RoomSync) Run(ctx context.Context) error {
	rooms := 0
	active := func(t registry.Tenant) (core.TenantID, bool) { return t.ID, t.State == registry.TenantActive }
	tally, err := jobs.ForEach(ctx, j.runner, j.spec, j.tenants(ctx), active,
		func(ctx context.Context, l *jobs.Lease, t registry.Tenant) error {
			if last := l.Job().LastSuccessAt; !last.IsZero() && last.UTC().Truncate(24*time.Hour).Equal(j.now().UTC().Truncate(24*time.Hour)) {
				return nil
			}
			res, err := j.dir.Sync(ctx, t.ID)
			rooms += res.Rooms
			return err
		})
	j.log.InfoContext(ctx, "sync rooms done", "tenants", tally.Ran, "rooms", rooms, "left", tally.Left, "failures", tally.Failures)
	return err
}

// MaintainRoomsJob is the job name of MaintainRooms in each tenant's jobs partition.
const MaintainRoomsJob = "maintain-rooms"

// RoomMaintenance is the MaintainRooms timer: per active tenant, under its lease, the room
// subscriptions are created, renewed and deleted (Cache.Maintain) and each room's routine resync runs at
// its slot of the night (NightlyDue) — at most MaxResyncsPerTenant per run, so one tenant's rooms never
// hold up another's.
type RoomMaintenance struct {
	cache   *Cache
	tenants func(context.Context) iter.Seq2[registry.Tenant, error]
	runner  *jobs.Runner
	spec    jobs.Spec
	log     *slog.Logger
	// MaxResyncsPerTenant bounds one run's resyncs per tenant (default 50).
	MaxResyncsPerTenant int
}

// NewRoomMaintenance returns the job; budget bounds one run.
func NewRoomMaintenance(cache *Cache, tenants func(context.Context) iter.Seq2[registry.Tenant, error], leases jobs.Table,
	budget time.Duration, log *slog.Logger) *RoomMaintenance {
	if budget <= 0 {
		budget = 40 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RoomMaintenance{cache: cache, tenants: tenants, runner: jobs.New(leases, jobs.Options{Log: log}), log: log,
		MaxResyncsPerTenant: 50,
		spec:                jobs.Spec{Name: MaintainRoomsJob, Budget: budget, Lease: budget + 30*time.Second, FailureCode: "maintain-rooms-failed"}}
}

// Run maintains every active tenant's rooms.
func (j *RoomMaintenance) Run(ctx context.Context) error {
	var total MaintainResult
	// Suspended and cancelled tenants are visited too: their room subscriptions are deleted here when
	// the state change's own attempt failed.
	visited := func(t registry.Tenant) (core.TenantID, bool) {
		return t.ID, t.State == registry.TenantActive || t.State == registry.TenantSuspended || t.State == registry.TenantCancelled
	}
	tally, err := jobs.ForEach(ctx, j.runner, j.spec, j.tenants(ctx), visited,
		func(ctx context.Context, l *jobs.Lease, t registry.Tenant) error {
			if t.State != registry.TenantActive {
				n, err := j.cache.Unsubscribe(ctx, t.ID)
				total.Deleted += n
				return err
			}
			now := j.cache.o.Now()
			due := func(room string, at time.Time) bool { return NightlyDue(room, at, now) }
			res, err := j.cache.Maintain(ctx, t.ID, due, j.MaxResyncsPerTenant, l.Spent)
			total.Created += res.Created
			total.Renewed += res.Renewed
			total.Deleted += res.Deleted
			total.Resynced += res.Resynced
			return err
		})
	j.log.InfoContext(ctx, "maintain rooms done", "tenants", tally.Ran, "created", total.Created, "renewed", total.Renewed,
		"deleted", total.Deleted, "resynced", total.Resynced, "left", tally.Left, "failures", tally.Failures)
	return err
}

// The nightly resync (issue 15: "spread the nightly resync over the night"). Outlook allows an app 10,000
// requests per 10 minutes and 4 at a time per mailbox, and a resync reads a room's whole window: done by
// day, it competes with the notifications people's bookings cause. So each room has a slot in the night
// window — 00:00 to 05:00 UTC, 01:00 to 07:00 in the EU time zones the service runs in — from a hash of its
// address, and its routine resync is due once tonight's slot has passed, unless it was read whole since
// the window opened. MaintainRooms runs every 15 minutes with at most MaxResyncsPerTenant (50) resyncs
// per tenant, so a night holds 20 runs and 1,000 rooms per tenant; a room that has not been read whole
// for ResyncFallback (a missed night, a larger tenant) is due at any hour.
const (
	NightWindow    = 5 * time.Hour
	ResyncFallback = 30 * time.Hour
)

// NightlyDue reports whether room's routine resync is due at now, given when it was last read whole.
func NightlyDue(room string, resyncedAt, now time.Time) bool {
	now = now.UTC()
	if resyncedAt.Before(now.Add(-ResyncFallback)) {
		return true
	}
	start := now.Truncate(24 * time.Hour)
	if now.Sub(start) >= NightWindow || !resyncedAt.Before(start) {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.ToLower(room)))
	// Slots end half an hour before the window does, so the window's last runs (every 15 minutes) still
	// see every slot pass.
	slot := start.Add(time.Duration(h.Sum64() % uint64(NightWindow-30*time.Minute)))
	return !now.Before(slot)
}

// ResyncedBefore is the policy "every room not read whole since t" (tests; an operator's catch-up).
func ResyncedBefore(t time.Time) func(string, time.Time) bool {
	return func(_ string, at time.Time) bool { return at.Before(t) }
}
