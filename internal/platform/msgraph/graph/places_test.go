package graph_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestCalendarViewExpandsSeriesAndSelectsOnlyTimes(t *testing.T) {
	e := newEnv(t)
	e.graph.CalendarPageSize = 2
	const room = "oslo@contoso.com"
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	e.graph.PutEvent(tenant, room, graphtest.CalEvent{ID: "single", Subject: "Alice Example", Organizer: "alice@contoso.com",
		Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)})
	e.graph.PutEvent(tenant, room, graphtest.CalEvent{ID: "series", Subject: "Weekly", Start: day.Add(14 * time.Hour), End: day.Add(15 * time.Hour),
		EveryDays: 7, Count: 4, ShowAs: "tentative", Exceptions: map[int]graphtest.Exception{
			1: {Start: day.AddDate(0, 0, 7).Add(16 * time.Hour), End: day.AddDate(0, 0, 7).Add(17 * time.Hour)},
			2: {Deleted: true}}})
	// Outside the window: never returned.
	e.graph.PutEvent(tenant, room, graphtest.CalEvent{ID: "later", Start: day.AddDate(0, 2, 0), End: day.AddDate(0, 2, 0).Add(time.Hour)})

	evs, err := e.appClient(t).CalendarView(ctx, room, day, day.AddDate(0, 0, 28))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%s %s %s-%s %s", ev.ID, ev.Type, ev.Start.Format("01-02T15"), ev.End.Format("15"), ev.ShowAs))
		if ev.ICalUID == "" || ev.LastModified.IsZero() || ev.Start.Location() != time.UTC {
			t.Errorf("%s: iCalUId %q, lastModified %v, start zone %v", ev.ID, ev.ICalUID, ev.LastModified, ev.Start.Location())
		}
	}
	want := []string{"single singleInstance 03-02T09-10 busy", "series_0 occurrence 03-02T14-15 tentative",
		"series_1 exception 03-09T16-17 tentative", "series_3 occurrence 03-23T14-15 tentative"}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	for _, r := range e.graph.Requests() {
		if r.Path == "/users/"+room+"/calendarView" && r.Query.Get("$skip") == "" {
			if sel := r.Query.Get("$select"); strings.Contains(sel, "subject") || strings.Contains(sel, "organizer") || sel == "" {
				t.Errorf("$select = %q: the request must name only times and free/busy", sel)
			}
			if s := r.Query.Get("startDateTime"); s != "2026-03-02T00:00:00Z" {
				t.Errorf("startDateTime = %q, want an explicit UTC offset", s)
			}
		}
	}
}

// Outlook serves an app at most four requests to one mailbox at once and refuses the fifth with 429
// ApplicationThrottled (MailboxConcurrency); the SDK's retry handler backs off and the reads complete.
// Another mailbox is not affected.
func TestMailboxConcurrencyIsThrottledPerMailbox(t *testing.T) {
	e := newEnv(t)
	e.graph.MailboxLatency = 300 * time.Millisecond
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for _, room := range []string{"oslo@contoso.com", "bergen@contoso.com"} {
		e.graph.PutEvent(tenant, room, graphtest.CalEvent{ID: "e", Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)})
	}
	c := e.appClient(t)
	if _, err := c.CalendarView(ctx, "bergen@contoso.com", day, day.AddDate(0, 0, 1)); err != nil { // token cached
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			evs, err := c.CalendarView(ctx, "oslo@contoso.com", day, day.AddDate(0, 0, 1))
			if err == nil && len(evs) != 1 {
				err = fmt.Errorf("%d events, want 1", len(evs))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var throttled int
	for _, r := range e.graph.Requests() {
		if r.Status == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled == 0 {
		t.Error("six concurrent reads of one mailbox: none refused, want the fifth and sixth throttled")
	}
	if got := e.graph.MaxMailboxConcurrency(clientID, tenant, "oslo@contoso.com"); got != 4 {
		t.Errorf("most requests served at once = %d, want Outlook's 4", got)
	}
	if got := e.graph.MaxMailboxConcurrency(clientID, tenant, "bergen@contoso.com"); got != 1 {
		t.Errorf("the other mailbox served %d at once, want 1", got)
	}
}
