package bookings_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
)

var day = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return day.Add(time.Duration(h * float64(time.Hour))) }

func busyOf(a bookings.AvailabilityAnswer) map[string]string {
	out := map[string]string{}
	for _, r := range a.Rooms {
		var parts []string
		for _, b := range r.Busy {
			parts = append(parts, b.Start.Format("15:04")+"-"+b.End.Format("15:04")+" "+b.ShowAs)
		}
		out[r.Email] = fmt.Sprintf("free=%v %s", r.Free, strings.Join(parts, ","))
	}
	return out
}

func TestIndexWindowEdgesAndFilters(t *testing.T) {
	t.Parallel()
	cet, _ := time.LoadLocation("Europe/Oslo")
	rooms := []bookings.Room{
		{Email: "oslo@contoso.com", Capacity: 8, Building: "HQ", FloorNumber: 2, Accessible: true, RoomLists: "hq@contoso.com"},
		{Email: "bergen@contoso.com", Capacity: 4, Building: "HQ", FloorNumber: 1},
		{Email: "annex@contoso.com", Capacity: 12, Building: "Annex"},
	}
	rows := []bookings.Booking{
		// crosses the query's start: clipped to it
		{RoomID: "oslo@contoso.com", EventID: "early", Start: at(7), End: at(9.5), ShowAs: "busy"},
		// a series' occurrence and its exception
		{RoomID: "oslo@contoso.com", EventID: "s_0", Type: "occurrence", Start: at(10), End: at(11), ShowAs: "tentative"},
		{RoomID: "oslo@contoso.com", EventID: "s_1", Type: "exception", Start: at(24 + 15), End: at(24 + 16), ShowAs: "busy"},
		// cancelled and free do not block
		{RoomID: "bergen@contoso.com", EventID: "c", Start: at(9), End: at(10), ShowAs: "busy", IsCancelled: true},
		{RoomID: "bergen@contoso.com", EventID: "f", Start: at(11), End: at(12), ShowAs: "free"},
		// an all-day event (midnight to midnight) blocks the whole day
		{RoomID: "annex@contoso.com", EventID: "allday", Start: at(0), End: at(24), ShowAs: "oof"},
		// ends exactly when the window starts: does not overlap
		{RoomID: "bergen@contoso.com", EventID: "before", Start: at(8), End: at(9), ShowAs: "busy"},
		// a room not served: ignored
		{RoomID: "gone@contoso.com", EventID: "x", Start: at(9), End: at(10), ShowAs: "busy"},
	}
	ix := bookings.NewIndex(rooms, rows)
	// 10:00 in Oslo is 09:00 UTC: the window is read with its offset.
	q := bookings.AvailabilityQuery{Start: time.Date(2026, 3, 2, 10, 0, 0, 0, cet), End: time.Date(2026, 3, 2, 13, 0, 0, 0, cet)}
	got := busyOf(ix.Query(q))
	want := map[string]string{
		"oslo@contoso.com":   "free=false 09:00-09:30 busy,10:00-11:00 tentative",
		"bergen@contoso.com": "free=true ",
		"annex@contoso.com":  "free=false 09:00-12:00 oof",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if len(got) != 3 {
		t.Errorf("rooms answered: %v", got)
	}
	if a := ix.Query(q); !a.Start.Equal(at(9)) || a.Start.Location() != time.UTC {
		t.Errorf("answer start = %v, want 09:00 UTC", a.Start)
	}

	floor2, yes := 2, true
	tests := []struct {
		name string
		q    bookings.AvailabilityQuery
		want []string
	}{
		{"capacity", bookings.AvailabilityQuery{Capacity: 8}, []string{"annex@contoso.com", "oslo@contoso.com"}},
		{"building, any case", bookings.AvailabilityQuery{Building: "hq"}, []string{"bergen@contoso.com", "oslo@contoso.com"}},
		{"floor", bookings.AvailabilityQuery{Floor: &floor2}, []string{"oslo@contoso.com"}},
		{"accessible", bookings.AvailabilityQuery{Accessible: &yes}, []string{"oslo@contoso.com"}},
		{"room list", bookings.AvailabilityQuery{RoomList: "hq@contoso.com"}, []string{"oslo@contoso.com"}},
	}
	for _, tt := range tests {
		tt.q.Start, tt.q.End = q.Start, q.End
		var got []string
		for _, r := range ix.Query(tt.q).Rooms {
			got = append(got, r.Email)
		}
		sort.Strings(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAvailabilityLimitsAndTenantScope(t *testing.T) {
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	a, b := storetest.NewTenantID(t), storetest.NewTenantID(t)
	data := bookings.OpenData(env.DB)
	now := at(10)
	window := func(_ context.Context, _ core.TenantID) (time.Time, time.Time, error) {
		return day, day.AddDate(0, 0, 21), nil
	}
	av := bookings.NewAvailability(data, window, func() time.Time { return now })
	if err := data.Rooms.Rooms.UpsertBatch(ctx, a, []bookings.Room{{Email: "oslo@contoso.com", Capacity: 8}}); err != nil {
		t.Fatal(err)
	}
	if err := data.Bookings.UpsertBatch(ctx, a, []bookings.Booking{{RoomID: "oslo@contoso.com", EventID: "e1", Start: at(11), End: at(12), ShowAs: "busy"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		start, end time.Time
		wantMsg    string
	}{
		{"over 62 days", day, day.Add(bookings.MaxQueryWindow + time.Minute), "62 days"},
		{"before the cached window", day.Add(-time.Hour), at(2), "inside the cached window"},
		{"after the cached window", day.AddDate(0, 0, 20), day.AddDate(0, 0, 22), "inside the cached window"},
		{"reversed", at(3), at(2), "after start"},
		{"missing", time.Time{}, at(2), "required"},
	}
	for _, tt := range tests {
		_, err := av.Query(ctx, a, bookings.AvailabilityQuery{Start: tt.start, End: tt.end})
		if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.PublicMessage(err), tt.wantMsg) {
			t.Errorf("%s: %v, want Invalid with %q", tt.name, err, tt.wantMsg)
		}
	}
	got, err := av.Query(ctx, a, bookings.AvailabilityQuery{Start: at(10), End: at(13)})
	if err != nil || len(got.Rooms) != 1 || got.Rooms[0].Free || len(got.Rooms[0].Busy) != 1 {
		t.Fatalf("a's availability = %+v, %v", got, err)
	}
	// Another tenant sees none of a's rooms or bookings.
	if got, err := av.Query(ctx, b, bookings.AvailabilityQuery{Start: at(10), End: at(13)}); err != nil || len(got.Rooms) != 0 {
		t.Errorf("b sees %+v, %v", got, err)
	}
	if _, err := av.Schedule(ctx, b, "oslo@contoso.com", at(10), at(13)); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("b's schedule of a's room: %v, want NotFound", err)
	}
	// Bookings change as the cache writes them: the rows, then the room's ResyncedAt. A booking row
	// changed without the stamp is not looked at again (the index re-reads only resynced rooms)...
	if err := data.Bookings.Delete(ctx, a, mustKey(t, "oslo@contoso.com", "e1")); err != nil {
		t.Fatal(err)
	}
	av.MaxAge = 0 // every query refreshes: as if another instance had written
	if sch, err := av.Schedule(ctx, a, "oslo@contoso.com", at(10), at(13)); err != nil || len(sch.Bookings) != 1 {
		t.Errorf("schedule before the room's stamp = %+v, %v; want the indexed booking still", sch, err)
	}
	// ...and with the stamp the room's bookings are read again.
	if _, err := data.Rooms.Rooms.Update(ctx, a, "oslo@contoso.com", func(r *bookings.Room) error { r.ResyncedAt = now; return nil }); err != nil {
		t.Fatal(err)
	}
	sch, err := av.Schedule(ctx, a, "OSLO@contoso.com", at(10), at(13))
	if err != nil || len(sch.Bookings) != 0 {
		t.Errorf("schedule after delete = %+v, %v", sch, err)
	}
}

func mustKey(t *testing.T, room, id string) string {
	k, err := bookings.BookingKey(room, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// BenchmarkAvailabilityQuery answers one 1-hour query across 2,000 rooms with four weeks of bookings
// (eight a working day each, some series occurrences cancelled or free), from the in-memory index the
// API serves. It reports p50 and p99 of single queries; the target is p99 < 20 ms.
func BenchmarkAvailabilityQuery(b *testing.B) {
	rooms, rows := benchData(2000, 28)
	ix := bookings.NewIndex(rooms, rows)
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := day.AddDate(0, 0, rng.IntN(27)).Add(time.Duration(8+rng.IntN(9)) * time.Hour)
		t0 := time.Now()
		a := ix.Query(bookings.AvailabilityQuery{Start: start, End: start.Add(time.Hour), Capacity: 4})
		lat = append(lat, time.Since(t0))
		if len(a.Rooms) == 0 {
			b.Fatal("no rooms")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

// BenchmarkIndexBuild is the rebuild after a change: 2,000 rooms × 4 weeks.
func BenchmarkIndexBuild(b *testing.B) {
	rooms, rows := benchData(2000, 28)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = bookings.NewIndex(rooms, rows)
	}
	b.ReportMetric(float64(len(rows)), "bookings")
}

var benchOnce = sync.OnceValues(func() ([]bookings.Room, []bookings.Booking) { return makeBenchData(2000, 28) })

// benchData is built once per test binary: the benchmark functions run several times while b.N grows.
func benchData(nRooms, days int) ([]bookings.Room, []bookings.Booking) {
	if nRooms == 2000 && days == 28 {
		return benchOnce()
	}
	return makeBenchData(nRooms, days)
}

func makeBenchData(nRooms, days int) ([]bookings.Room, []bookings.Booking) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rooms []bookings.Room
	var rows []bookings.Booking
	for i := range nRooms {
		email := fmt.Sprintf("room%04d@contoso.com", i)
		rooms = append(rooms, bookings.Room{Email: email, Capacity: 2 + rng.IntN(20), Building: fmt.Sprintf("B%d", i%10), FloorNumber: i % 8})
		for d := range days {
			for h := 8; h < 16; h++ {
				show := "busy"
				switch rng.IntN(10) {
				case 0:
					show = "free"
				case 1:
					show = "tentative"
				}
				s := day.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour)
				rows = append(rows, bookings.Booking{RoomID: email, EventID: fmt.Sprintf("%d-%d-%d", i, d, h), Start: s,
					End: s.Add(45 * time.Minute), ShowAs: show, IsCancelled: rng.IntN(50) == 0, Type: "occurrence"})
			}
		}
	}
	return rooms, rows
}
