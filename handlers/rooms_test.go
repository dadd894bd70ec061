package handlers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
)

type fakeRooms struct {
	mu    sync.Mutex
	calls []string
	err   error
}

var roomsView = func() bookings.DirectoryView {
	at := time.Date(2026, 3, 2, 1, 30, 0, 0, time.UTC)
	return bookings.DirectoryView{SyncedAt: &at, Rooms: []bookings.RoomView{bookings.Room{Email: "oslo@contoso.com", DisplayName: "Oslo",
		Capacity: 8, Tags: "video", RoomLists: "hq@contoso.com"}.View()},
		RoomLists: []bookings.RoomListView{{Email: "hq@contoso.com", DisplayName: "HQ", Selected: true}}}
}()

func (f *fakeRooms) View(_ context.Context, t core.TenantID) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "view:"+string(t))
	return roomsView, f.err
}

func (f *fakeRooms) ChooseAndSync(_ context.Context, t core.TenantID, lists []string) (bookings.DirectoryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "choose:"+string(t)+":"+strings.Join(lists, ","))
	return roomsView, f.err
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
		{"another tenant's user", httpCall{function: "ListRooms", method: "GET", params: tp,
			headers: map[string][]string{"Authorization": {"Bearer as:" + otherTenant + ":" + userA}}}, nil, 403, "", "not allowed"},
		{"no token", httpCall{function: "ListRooms", method: "GET", params: tp, headers: map[string][]string{"Authorization": {""}}}, nil, 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeRooms{err: tt.err}
			code, body, _ := invokeHTTP(t, &App{Rooms: RoomServices{Directory: f}}, tt.call)
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
