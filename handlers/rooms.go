package handlers

import (
	"context"
	"net/http"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// RoomDirectory is the tenant's rooms for the Room Finder (bookings.Directory).
type RoomDirectory interface {
	View(ctx context.Context, tenant core.TenantID) (bookings.DirectoryView, error)
	ChooseAndSync(ctx context.Context, tenant core.TenantID, roomLists []string) (bookings.DirectoryView, error)
}

// RoomServices are the services behind the room functions.
type RoomServices struct {
	Directory RoomDirectory // ListRooms, SetRoomLists
	Sync      Job           // SyncRooms (daily)
	Maintain  Job           // MaintainRooms: room subscriptions and the rolling resync
}

// roomFunctions are the room cache's functions: the add-in's reads (rooms.read, any user of the
// tenant) and the admin's choice of room lists (rooms.write).
func (a *App) roomFunctions() []function {
	return []function{
		{azfunc.HTTPRoute("ListRooms", "req", "res", a.listRooms), a.Rooms.Directory},
		{azfunc.HTTPRoute("SetRoomLists", "req", "res", a.setRoomLists), a.Rooms.Directory},
		{azfunc.TimerRoute("SyncRooms", "timer", a.syncRooms), a.Rooms.Sync},
		{azfunc.TimerRoute("MaintainRooms", "timer", a.maintainRooms), a.Rooms.Maintain},
	}
}

// listRooms answers GET tenants/{tenantId}/rooms.
func (a *App) listRooms(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsRead}, func(ctx context.Context, _ access.Principal, id core.TenantID) (int, any, error) {
		v, err := a.Rooms.Directory.View(ctx, id)
		return http.StatusOK, v, err
	})
}

// setRoomLists answers PUT tenants/{tenantId}/rooms/lists {"roomLists": [...]}: the room lists
// served, none for every room; the rooms follow at once.
func (a *App) setRoomLists(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsWrite}, func(ctx context.Context, _ access.Principal, id core.TenantID) (int, any, error) {
		var body struct {
			RoomLists []string `json:"roomLists"`
		}
		if err := decodeJSONBody(r, &body); err != nil {
			return 0, nil, err
		}
		v, err := a.Rooms.Directory.ChooseAndSync(ctx, id, body.RoomLists)
		return http.StatusOK, v, err
	})
}

func (a *App) syncRooms(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.Rooms.Sync)
}

func (a *App) maintainRooms(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.Rooms.Maintain)
}
