package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
)

type fakeRooms struct {
	mu      sync.Mutex
	calls   []string
	err     error
	origins []string
}

func (f *fakeRooms) SetSettings(_ context.Context, _ core.Actor, t core.TenantID, c bookings.SettingsChange) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := "settings:" + string(t)
	if c.AddInOrigins != nil {
		call += ":origins=" + strings.Join(*c.AddInOrigins, ",")
	}
	if c.BookingWindowDays != nil {
		call += fmt.Sprintf(":days=%d", *c.BookingWindowDays)
	}
	f.calls = append(f.calls, call)
	return roomsView, f.err
}

func (f *fakeRooms) AllowedOrigin(_ context.Context, _ core.TenantID, origin string) (bool, error) {
	return slices.Contains(f.origins, origin), nil
}

var roomsView = func() bookings.DirectoryView {
	at := time.Date(2026, 3, 2, 1, 30, 0, 0, time.UTC)
	return bookings.DirectoryView{SyncedAt: &at, AddInOrigins: []string{}, BookingWindowDays: 21, Rooms: []bookings.ServedRoomView{{RoomView: bookings.Room{Email: "oslo@contoso.com", DisplayName: "Oslo",
		Capacity: 8, Tags: "video", RoomLists: "hq@contoso.com"}.View(), ResyncedAt: &at}},
		RoomLists: []bookings.RoomListView{{Email: "hq@contoso.com", DisplayName: "HQ", Selected: true}}}
}()

func (f *fakeRooms) View(_ context.Context, t core.TenantID) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "view:"+string(t))
	return roomsView, f.err
}

func (f *fakeRooms) ChooseAndSync(_ context.Context, _ core.Actor, t core.TenantID, lists []string) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "choose:"+string(t)+":"+strings.Join(lists, ","))
	return roomsView, f.err
}

func (f *fakeRooms) Refresh(_ context.Context, _ core.Actor, t core.TenantID) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "refresh:"+string(t))
	return roomsView, f.err
}

func (f *fakeRooms) Resync(_ context.Context, _ core.Actor, t core.TenantID, room string) (bookings.RoomResync, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "resync:"+string(t)+":"+room)
	return bookings.RoomResync{Room: room, Bookings: 3, ResyncedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Subscribed: true}, f.err
}

func TestRoomFunctions(t *testing.T) {
	t.Parallel()
	tp := map[string]string{"tenantId": tenantA}
	user := map[string][]string{"Authorization": {"Bearer as:" + tenantA + ":" + userA}}
	tests := []struct {
		name     string
		call     httpCall
		err      error
		wantCode int
		wantCall string
		wantBody string
	}{
		{"list rooms as a user of the tenant", httpCall{function: "ListRooms", method: "GET", params: tp, headers: user}, nil,
			200, "view:" + tenantA, `"email":"oslo@contoso.com"`},
		{"choose lists", httpCall{function: "SetRoomLists", method: "PUT", params: tp, body: `{"roomLists":["hq@contoso.com"]}`}, nil,
			200, "choose:" + tenantA + ":hq@contoso.com", `"selected":true`},
		{"choose all", httpCall{function: "SetRoomLists", method: "PUT", params: tp, body: `{"roomLists":[]}`}, nil,
			200, "choose:" + tenantA + ":", `"roomLists"`},
		{"unknown list", httpCall{function: "SetRoomLists", method: "PUT", params: tp, body: `{"roomLists":["x@contoso.com"]}`},
			apperr.New(apperr.Invalid, "roomLists: 1 of the lists named are not room lists of this tenant (see GET rooms)", nil),
			400, "choose:" + tenantA + ":x@contoso.com", "not room lists"},
		{"graph down", httpCall{function: "SetRoomLists", method: "PUT", params: tp, body: `{"roomLists":[]}`},
			apperr.New(apperr.Unavailable, "the choice is saved", errors.New("boom")), 503, "choose:" + tenantA + ":", "the choice is saved"},
		{"set add-in origins", httpCall{function: "SetRoomSettings", method: "PUT", params: tp, body: `{"addInOrigins":["https://rooms.contoso.com"]}`}, nil,
			200, "settings:" + tenantA + ":origins=https://rooms.contoso.com", `"addInOrigins"`},
		{"set the booking window only", httpCall{function: "SetRoomSettings", method: "PUT", params: tp, body: `{"bookingWindowDays":14}`}, nil,
			200, "settings:" + tenantA + ":days=14", `"bookingWindowDays"`},
		{"refresh rooms from Places", httpCall{function: "RefreshRooms", method: "POST", params: tp}, nil,
			200, "refresh:" + tenantA, `"syncedAt":"2026-03-02T01:30:00Z"`},
		{"refresh while Graph is down", httpCall{function: "RefreshRooms", method: "POST", params: tp},
			apperr.New(apperr.Unavailable, "the rooms could not be read from Microsoft 365 now", errors.New("boom")), 503, "refresh:" + tenantA, "could not be read"},
		{"resync a room", httpCall{function: "ResyncRoom", method: "POST", params: map[string]string{"tenantId": tenantA, "roomEmail": "oslo@contoso.com"}}, nil,
			200, "resync:" + tenantA + ":oslo@contoso.com", `"bookings":3`},
		{"resync a room not served", httpCall{function: "ResyncRoom", method: "POST", params: map[string]string{"tenantId": tenantA, "roomEmail": "x@contoso.com"}},
			apperr.New(apperr.NotFound, "no such room", nil), 404, "resync:" + tenantA + ":x@contoso.com", "no such room"},
		{"another tenant's user", httpCall{function: "ListRooms", method: "GET", params: tp,
			headers: map[string][]string{"Authorization": {"Bearer as:" + otherTenant + ":" + userA}}}, nil, 403, "", "not allowed"},
		{"no token", httpCall{function: "ListRooms", method: "GET", params: tp, headers: map[string][]string{"Authorization": {""}}}, nil, 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeRooms{err: tt.err}
			code, body, _ := invokeHTTP(t, &App{Rooms: RoomServices{Directory: f, Cache: f}}, tt.call)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.wantCode, tt.wantBody)
			}
			var got string
			if len(f.calls) > 0 {
				got = f.calls[0]
			}
			if got != tt.wantCall {
				t.Errorf("call = %q, want %q", got, tt.wantCall)
			}
		})
	}
}

type fakeAvailability struct {
	mu   sync.Mutex
	got  []bookings.AvailabilityQuery
	room string
	err  error
}

func (f *fakeAvailability) Query(_ context.Context, _ core.TenantID, q bookings.AvailabilityQuery) (bookings.AvailabilityAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, q)
	return bookings.AvailabilityAnswer{Start: q.Start.UTC(), End: q.End.UTC(), Rooms: []bookings.RoomAvailability{{RoomView: roomsView.Rooms[0].RoomView,
		Busy: []bookings.Interval{{Start: q.Start.UTC(), End: q.End.UTC(), ShowAs: "busy"}}}}}, f.err
}

func (f *fakeAvailability) Schedule(_ context.Context, _ core.TenantID, room string, start, end time.Time) (bookings.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.room = room
	return bookings.Schedule{RoomView: roomsView.Rooms[0].RoomView, Start: start, End: end, Bookings: []bookings.ScheduleEntry{}}, f.err
}

func TestRoomAvailabilityFunctions(t *testing.T) {
	t.Parallel()
	tp := map[string]string{"tenantId": tenantA}
	user := map[string][]string{"Authorization": {"Bearer as:" + tenantA + ":" + userA}}
	win := map[string]string{"start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range win {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		call     httpCall
		err      error
		wantCode int
		wantBody string
	}{
		{"availability", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user,
			query: with(map[string]string{"capacity": "6", "floor": "2", "accessible": "true", "building": "HQ", "roomList": "hq@contoso.com"})},
			nil, 200, `"start":"2026-03-02T09:00:00Z"`},
		{"no offset", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user,
			query: map[string]string{"start": "2026-03-02T10:00:00", "end": "2026-03-02T11:00:00Z"}}, nil, 400, "with an offset"},
		{"missing end", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user,
			query: map[string]string{"start": "2026-03-02T10:00:00Z"}}, nil, 400, "end is required"},
		{"bad capacity", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user, query: with(map[string]string{"capacity": "many"})}, nil, 400, "capacity"},
		{"over 62 days (the service says so)", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user, query: win},
			apperr.New(apperr.Invalid, "the window may span at most 62 days", nil), 400, "62 days"},
		{"schedule", httpCall{function: "GetRoomSchedule", method: "GET", params: map[string]string{"tenantId": tenantA, "roomEmail": "oslo@contoso.com"},
			headers: user, query: win}, nil, 200, `"bookings":[]`},
		{"schedule of no room", httpCall{function: "GetRoomSchedule", method: "GET", params: map[string]string{"tenantId": tenantA, "roomEmail": "nope@contoso.com"},
			headers: user, query: win}, apperr.New(apperr.NotFound, "no such room", nil), 404, "no such room"},
		{"another tenant's user", httpCall{function: "GetRoomAvailability", method: "GET", params: tp,
			headers: map[string][]string{"Authorization": {"Bearer as:" + otherTenant + ":" + userA}}, query: win}, nil, 403, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAvailability{err: tt.err}
			code, body, _ := invokeHTTP(t, &App{Rooms: RoomServices{Availability: f}}, tt.call)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	f := &fakeAvailability{}
	invokeHTTP(t, &App{Rooms: RoomServices{Availability: f}}, httpCall{function: "GetRoomAvailability", method: "GET", params: tp, headers: user,
		query: with(map[string]string{"capacity": "6", "floor": "2", "accessible": "false"})})
	if len(f.got) != 1 || f.got[0].Capacity != 6 || *f.got[0].Floor != 2 || *f.got[0].Accessible || !f.got[0].Start.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("query passed on = %+v", f.got)
	}
}

func TestRoomAPICORS(t *testing.T) {
	t.Parallel()
	const addIn = "https://rooms.contoso.com"
	tp := map[string]string{"tenantId": tenantA}
	win := map[string]string{"start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00"}
	user := "Bearer as:" + tenantA + ":" + userA
	tests := []struct {
		name                 string
		call                 httpCall
		wantCode             int
		wantOrigin, wantMeth string
	}{
		{"preflight from the tenant's add-in", httpCall{function: "GetRoomAvailabilityPreflight", method: "OPTIONS", params: tp, query: win,
			headers: map[string][]string{"Authorization": {""}, "Origin": {addIn}, "Access-Control-Request-Method": {"GET"}}}, 204, addIn, "GET"},
		{"preflight from another origin", httpCall{function: "GetRoomAvailabilityPreflight", method: "OPTIONS", params: tp, query: win,
			headers: map[string][]string{"Authorization": {""}, "Origin": {"https://evil.example"}}}, 204, "", ""},
		{"GET from the add-in", httpCall{function: "GetRoomAvailability", method: "GET", params: tp, query: win,
			headers: map[string][]string{"Authorization": {user}, "Origin": {addIn}}}, 200, addIn, ""},
		{"GET from the add-in without a token", httpCall{function: "ListRooms", method: "GET", params: tp,
			headers: map[string][]string{"Authorization": {""}, "Origin": {addIn}}}, 401, addIn, ""},
		{"schedule preflight", httpCall{function: "GetRoomSchedulePreflight", method: "OPTIONS", params: map[string]string{"tenantId": tenantA, "roomEmail": "oslo@contoso.com"},
			query: win, headers: map[string][]string{"Authorization": {""}, "Origin": {addIn}}}, 204, addIn, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := &App{Rooms: RoomServices{Directory: &fakeRooms{origins: []string{addIn}}, Availability: &fakeAvailability{}}}
			code, body, h := invokeHTTP(t, app, tt.call)
			if code != tt.wantCode || h["Access-Control-Allow-Origin"] != tt.wantOrigin || h["Access-Control-Allow-Methods"] != tt.wantMeth || h["Vary"] != "Origin" {
				t.Errorf("got %d %v %s; want %d, origin %q, methods %q", code, h, body, tt.wantCode, tt.wantOrigin, tt.wantMeth)
			}
		})
	}
}
