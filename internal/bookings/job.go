package bookings

import (
	"context"
	"iter"
	"log/slog"
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
