package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// RoomDirectory is the tenant's rooms for the Room Finder (bookings.Directory).
type RoomDirectory interface {
	View(ctx context.Context, tenant core.TenantID) (bookings.DirectoryView, error)
	ChooseAndSync(ctx context.Context, a core.Actor, tenant core.TenantID, roomLists []string) (bookings.DirectoryView, error)
	SetSettings(ctx context.Context, a core.Actor, tenant core.TenantID, c bookings.SettingsChange) (bookings.DirectoryView, error)
	AllowedOrigin(ctx context.Context, tenant core.TenantID, origin string) (bool, error)
	Refresh(ctx context.Context, a core.Actor, tenant core.TenantID) (bookings.DirectoryView, error)
}

// RoomCache re-reads a room's bookings on an admin's request (bookings.Cache).
type RoomCache interface {
	Resync(ctx context.Context, a core.Actor, tenant core.TenantID, room string) (bookings.RoomResync, error)
}

// RoomAvailability answers from the booking cache (bookings.Availability).
type RoomAvailability interface {
	Query(ctx context.Context, tenant core.TenantID, q bookings.AvailabilityQuery) (bookings.AvailabilityAnswer, error)
	Schedule(ctx context.Context, tenant core.TenantID, room string, start, end time.Time) (bookings.Schedule, error)
}

// RoomServices are the services behind the room functions.
type RoomServices struct {
	Directory    RoomDirectory    // ListRooms, SetRoomLists
	Availability RoomAvailability // GetRoomAvailability, GetRoomSchedule
	Cache        RoomCache        // ResyncRoom
	Sync         Job              // SyncRooms (daily)
	Maintain     Job              // MaintainRooms: room subscriptions and the rolling resync
}

// roomFunctions are the room cache's functions: the add-in's reads (rooms.read, any user of the
// tenant) and the admin's choice of room lists (rooms.write).
func (a *App) roomFunctions() []function {
	return []function{
		{azfunc.HTTPRoute("ListRooms", "req", "res", a.withCORS(a.listRooms)), a.Rooms.Directory},
		{azfunc.HTTPRoute("SetRoomLists", "req", "res", a.setRoomLists), a.Rooms.Directory},
		{azfunc.HTTPRoute("SetRoomSettings", "req", "res", a.setRoomSettings), a.Rooms.Directory},
		{azfunc.HTTPRoute("RefreshRooms", "req", "res", a.refreshRooms), a.Rooms.Directory},
		{azfunc.HTTPRoute("ResyncRoom", "req", "res", a.resyncRoom), a.Rooms.Cache},
		{azfunc.HTTPRoute("GetRoomAvailability", "req", "res", a.withCORS(a.getRoomAvailability)), a.Rooms.Availability},
		{azfunc.HTTPRoute("GetRoomSchedule", "req", "res", a.withCORS(a.getRoomSchedule)), a.Rooms.Availability},
		// The browser's preflights of the three reads (OPTIONS, no credentials by the CORS rules).
		{azfunc.HTTPRoute("ListRoomsPreflight", "req", "res", a.withCORS(nil)), a.Rooms.Directory},
		{azfunc.HTTPRoute("GetRoomAvailabilityPreflight", "req", "res", a.withCORS(nil)), a.Rooms.Directory},
		{azfunc.HTTPRoute("GetRoomSchedulePreflight", "req", "res", a.withCORS(nil)), a.Rooms.Directory},
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
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsWrite}, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
		var body struct {
			RoomLists []string `json:"roomLists"`
		}
		if err := decodeJSONBody(r, &body); err != nil {
			return 0, nil, err
		}
		v, err := a.Rooms.Directory.ChooseAndSync(ctx, p.Actor(azfunc.InvocationID(ctx)), id, body.RoomLists)
		return http.StatusOK, v, err
	})
}

// refreshRooms answers POST tenants/{tenantId}/rooms/refresh: the rooms and room lists read from
// Places now rather than at the daily sync (rooms.write).
func (a *App) refreshRooms(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsWrite}, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
		v, err := a.Rooms.Directory.Refresh(ctx, p.Actor(azfunc.InvocationID(ctx)), id)
		return http.StatusOK, v, err
	})
}

// resyncRoom answers POST tenants/{tenantId}/rooms/{roomEmail}/resync: the room's window re-read from
// its calendar now rather than at its slot of the night (rooms.write).
func (a *App) resyncRoom(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsWrite}, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
		v, err := a.Rooms.Cache.Resync(ctx, p.Actor(azfunc.InvocationID(ctx)), id, r.Params["roomEmail"])
		return http.StatusOK, v, err
	})
}

func (a *App) syncRooms(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.Rooms.Sync)
}

func (a *App) maintainRooms(ctx context.Context, t *azfunc.TimerInfo) error {
	return runJob(ctx, t, a.Rooms.Maintain)
}

// timeParam reads an ISO 8601 date-time with an offset (RFC 3339); a value without one is refused
// rather than guessed, since the add-in and the cache may sit in different zones.
func timeParam(r *azfunc.HTTPRequest, name string) (time.Time, error) {
	v := r.Query.Get(name)
	if v == "" {
		return time.Time{}, apperr.New(apperr.Invalid, name+" is required (ISO 8601 with an offset, e.g. 2026-03-02T09:00:00+01:00)", nil)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, apperr.New(apperr.Invalid, name+" must be ISO 8601 with an offset, e.g. 2026-03-02T09:00:00+01:00", nil)
	}
	return t, nil
}

// availabilityQuery decodes the query string of GetRoomAvailability.
func availabilityQuery(r *azfunc.HTTPRequest) (bookings.AvailabilityQuery, error) {
	var q bookings.AvailabilityQuery
	var err error
	if q.Start, err = timeParam(r, "start"); err != nil {
		return q, err
	}
	if q.End, err = timeParam(r, "end"); err != nil {
		return q, err
	}
	if v := r.Query.Get("capacity"); v != "" {
		if q.Capacity, err = strconv.Atoi(v); err != nil || q.Capacity < 0 || q.Capacity > 100000 {
			return q, apperr.New(apperr.Invalid, "capacity must be a whole number of seats", nil)
		}
	}
	if v := r.Query.Get("floor"); v != "" {
		f, err := strconv.Atoi(v)
		if err != nil {
			return q, apperr.New(apperr.Invalid, "floor must be a whole number", nil)
		}
		q.Floor = &f
	}
	if v := r.Query.Get("accessible"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return q, apperr.New(apperr.Invalid, "accessible must be true or false", nil)
		}
		q.Accessible = &b
	}
	q.Building, q.RoomList = r.Query.Get("building"), r.Query.Get("roomList")
	if len(q.Building) > 256 || len(q.RoomList) > 320 {
		return q, apperr.New(apperr.Invalid, "building or roomList too long", nil)
	}
	return q, nil
}

// getRoomAvailability answers GET tenants/{tenantId}/rooms/availability?start=&end=[&capacity=]
// [&building=][&floor=][&roomList=][&accessible=] from the cache only.
func (a *App) getRoomAvailability(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsRead}, func(ctx context.Context, _ access.Principal, id core.TenantID) (int, any, error) {
		q, err := availabilityQuery(r)
		if err != nil {
			return 0, nil, err
		}
		ans, err := a.Rooms.Availability.Query(ctx, id, q)
		return http.StatusOK, ans, err
	})
}

// getRoomSchedule answers GET tenants/{tenantId}/rooms/{roomEmail}/schedule?start=&end=.
func (a *App) getRoomSchedule(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsRead}, func(ctx context.Context, _ access.Principal, id core.TenantID) (int, any, error) {
		start, err := timeParam(r, "start")
		if err != nil {
			return 0, nil, err
		}
		end, err := timeParam(r, "end")
		if err != nil {
			return 0, nil, err
		}
		s, err := a.Rooms.Availability.Schedule(ctx, id, r.Params["roomEmail"], start, end)
		return http.StatusOK, s, err
	})
}

// setRoomSettings answers PUT tenants/{tenantId}/rooms/settings {"addInOrigins": [...],
// "bookingWindowDays": n}: the origins the tenant's Room Finder add-in is served from and how far
// ahead bookings are cached; a field left out stays as it is (rooms.write).
func (a *App) setRoomSettings(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return a.principalCall(ctx, r, maxAdminBody, guard{perm: access.RoomsWrite}, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
		var body struct {
			AddInOrigins      *[]string `json:"addInOrigins"`
			BookingWindowDays *int      `json:"bookingWindowDays"`
		}
		if err := decodeJSONBody(r, &body); err != nil {
			return 0, nil, err
		}
		v, err := a.Rooms.Directory.SetSettings(ctx, p.Actor(azfunc.InvocationID(ctx)), id, bookings.SettingsChange{AddInOrigins: body.AddInOrigins, BookingWindowDays: body.BookingWindowDays})
		return http.StatusOK, v, err
	})
}

// withCORS lets the tenant's add-in call a room read from its own origin; with h nil it is the
// preflight function of that read. The add-in runs in a
// browser (Outlook on the web, or a webview) on its origin, so the browser sends a preflight OPTIONS
// without credentials before the GET with the bearer token. Origins are per tenant (RoomSettings): a
// preflight is answered 204, with the allowing headers only when the tenant listed the origin; the
// GET itself is authorised by its token as before, and its answer carries the header again.
func (a *App) withCORS(h func(context.Context, *azfunc.HTTPRequest) azfunc.HTTPResponse) func(context.Context, *azfunc.HTTPRequest) azfunc.HTTPResponse {
	return func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
		origin := r.Header("Origin")
		allowed := false
		if origin != "" {
			if tenant, err := core.ParseCustomerTenant(r.Params["tenantId"]); err == nil {
				ok, err := a.Rooms.Directory.AllowedOrigin(ctx, tenant, origin)
				if err != nil {
					azfunc.Logger(ctx).WarnContext(ctx, "add-in origins unreadable", "error", err)
				}
				allowed = ok
			}
		}
		var res azfunc.HTTPResponse
		if h == nil || r.Method == http.MethodOptions {
			res = azfunc.HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{}}
			if allowed {
				res.Headers["Access-Control-Allow-Methods"] = "GET"
				res.Headers["Access-Control-Allow-Headers"] = "Authorization"
				res.Headers["Access-Control-Max-Age"] = "600"
			}
		} else {
			res = h(ctx, r)
		}
		if res.Headers == nil {
			res.Headers = map[string]string{}
		}
		res.Headers["Vary"] = "Origin"
		if allowed {
			res.Headers["Access-Control-Allow-Origin"] = origin
		}
		return res
	}
}
