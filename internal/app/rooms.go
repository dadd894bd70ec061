package app

import (
	"context"
	"fmt"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/ingest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// wireRooms builds the room cache for the Room Finder add-in: room metadata from Places (SyncRooms,
// the admin's choice of room lists) and the rooms API.
func (w *Wired) wireRooms(clients *graph.AppClients) error {
	data := bookings.OpenData(w.Store.DB())
	data.MaxWindowDays = w.Config.Tenants.BookingWindowDays
	dir := bookings.NewDirectory(data, placesGraph{clients}, clock.Now)
	dir.Tenants = w.Store.Tenants
	dir.Audit = audit.Trail{Table: audit.OpenLog(w.Store.DB()), Now: clock.Now, Log: w.Log}
	var notificationURL, lifecycleURL string
	if base := w.Config.Presence.PublicBaseURL; base != "" {
		notificationURL, lifecycleURL = base+"/api/graph/notifications", base+"/api/graph/lifecycle"
	}
	cache := bookings.NewCache(data, w.Store, bookingGraph{clients},
		bookings.CacheOptions{NotificationURL: notificationURL, LifecycleURL: lifecycleURL, Now: clock.Now, Log: w.Log})
	// Room notifications carry no resource data: the worker re-reads the room's window.
	if err := w.notifications.Handle(string(registry.KindBooking), cache); err != nil {
		return fmt.Errorf("route booking notifications: %w", err)
	}
	cache.Audit = dir.Audit
	w.roomCache = cache
	leases := jobs.OpenLeases(w.Store.DB())
	w.App.Rooms = handlers.RoomServices{
		Directory:    dir,
		Availability: bookings.NewAvailability(data, cache.Window, clock.Now),
		Cache:        cache,
		Sync:         bookings.NewRoomSync(dir, w.Store.Tenants.OperatorAll, leases, w.Config.Tenants.JobRunBudget, w.Log),
		Maintain:     bookings.NewRoomMaintenance(cache, w.Store.Tenants.OperatorAll, leases, w.Config.Tenants.JobRunBudget, w.Log),
	}
	return nil
}

// bookingGraph hands the cache the tenant's app-only client (Calendars.Read, subscriptions).
type bookingGraph struct{ clients *graph.AppClients }

func (b bookingGraph) For(ctx context.Context, tenant core.TenantID) (bookings.Graph, error) {
	return b.clients.For(ctx, string(tenant))
}

// lifecycleByKind sends each subscription's lifecycle events to the capability that owns its kind;
// each ignores the kinds it does not own.
type lifecycleByKind []ingest.LifecycleAction

func (l lifecycleByKind) Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error {
	for _, a := range l {
		if err := a.Handle(ctx, tenant, sub, event); err != nil {
			return err
		}
	}
	return nil
}

// placesGraph reads Places with the tenant's app-only client (Place.Read.All).
type placesGraph struct{ clients *graph.AppClients }

var _ bookings.Places = placesGraph{}

func (p placesGraph) ListRooms(ctx context.Context, tenant core.TenantID, roomList string) ([]bookings.PlaceRoom, error) {
	c, err := p.clients.For(ctx, string(tenant))
	if err != nil {
		return nil, err
	}
	rooms, err := c.ListRooms(ctx, roomList)
	if err != nil {
		return nil, err
	}
	out := make([]bookings.PlaceRoom, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, bookings.PlaceRoom{Email: r.EmailAddress, DisplayName: r.DisplayName, Capacity: r.Capacity,
			Building: r.Building, FloorLabel: r.FloorLabel, FloorNumber: r.FloorNumber, BookingType: r.BookingType,
			Accessible: r.Accessible, Tags: r.Tags})
	}
	return out, nil
}

func (p placesGraph) ListRoomLists(ctx context.Context, tenant core.TenantID) ([]bookings.PlaceRoomList, error) {
	c, err := p.clients.For(ctx, string(tenant))
	if err != nil {
		return nil, err
	}
	lists, err := c.ListRoomLists(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bookings.PlaceRoomList, 0, len(lists))
	for _, l := range lists {
		out = append(out, bookings.PlaceRoomList{Email: l.EmailAddress, DisplayName: l.DisplayName})
	}
	return out, nil
}
