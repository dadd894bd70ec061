package graph_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

func TestPlacesRoomsPagedAndByRoomListEmail(t *testing.T) {
	e := newEnv(t)
	e.graph.PlacesPageSize = 2 // Graph pages 100; small pages exercise @odata.nextLink
	eight, two := 8, 2
	for i := range 5 {
		e.graph.PutRoom(tenant, graphtest.PlaceRoom{EmailAddress: fmt.Sprintf("room%d@contoso.com", i), DisplayName: fmt.Sprintf("Room %d", i),
			Capacity: &eight, FloorNumber: &two, Building: "HQ", BookingType: "standard", IsWheelChairAccessible: i == 0, Tags: []string{"video"}})
	}
	e.graph.PutRoom(tenant, graphtest.PlaceRoom{EmailAddress: "hidden@contoso.com", HiddenFromGAL: true})
	e.graph.PutRoomList(tenant, graphtest.PlaceRoomList{EmailAddress: "hq@contoso.com", DisplayName: "HQ",
		Rooms: []string{"room0@contoso.com", "room1@contoso.com", "room2@contoso.com", "hidden@contoso.com"}})
	c := e.appClient(t)

	all, err := c.ListRooms(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("rooms = %d, want 5 over three pages, the hidden room left out", len(all))
	}
	if r := all[0]; r.EmailAddress != "room0@contoso.com" || r.Capacity != 8 || r.FloorNumber != 2 || r.BookingType != "standard" ||
		!r.Accessible || !slices.Equal(r.Tags, []string{"video"}) {
		t.Errorf("room0 = %+v", r)
	}
	if n := e.graph.Count(http.MethodGet, "/places/"); n != 3 {
		t.Errorf("places calls = %d, want 3 pages", n)
	}
	for _, r := range e.graph.Requests() {
		if r.Query.Get("$skip") == "" && r.Query.Get("$select") == "" {
			t.Errorf("first page without $select: %s %v", r.Path, r.Query)
		}
	}

	lists, err := c.ListRoomLists(ctx)
	if err != nil || len(lists) != 1 || lists[0].EmailAddress != "hq@contoso.com" {
		t.Fatalf("room lists = %+v, %v", lists, err)
	}
	of, err := c.ListRooms(ctx, "hq@contoso.com")
	if err != nil || len(of) != 3 {
		t.Fatalf("rooms of hq = %d, %v; want 3", len(of), err)
	}
	if _, err := c.ListRooms(ctx, "not-an-address"); err == nil {
		t.Error("a room list named by id was accepted")
	}
}

func TestPlacesThrottledThenAnswered(t *testing.T) {
	e := newEnv(t)
	e.graph.PutRoom(tenant, graphtest.PlaceRoom{EmailAddress: "room@contoso.com"})
	// Graph answers 429 with Retry-After (Learn, throttling); the SDK's retry handler waits and retries.
	e.graph.Fail(http.MethodGet, "/places/", graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	rooms, err := e.appClient(t).ListRooms(ctx, "")
	if err != nil || len(rooms) != 1 {
		t.Fatalf("rooms = %v, %v", rooms, err)
	}
	if n := e.graph.Count(http.MethodGet, "/places/"); n != 2 {
		t.Errorf("calls = %d, want 2 (one throttled, one retried)", n)
	}
}
