package bookings_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// places is a Places directory per tenant. The Graph client's wire behaviour (paging, the room list
// addressed by e-mail) is tested against graphtest in the graph package; this stands for its answers.
type places struct {
	mu    sync.Mutex
	rooms map[core.TenantID][]bookings.PlaceRoom
	lists map[core.TenantID]map[string][]string // list e-mail → room e-mails
	names map[string]string
	fail  error
}

func (p *places) ListRooms(_ context.Context, t core.TenantID, list string) ([]bookings.PlaceRoom, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	if list == "" {
		return slices.Clone(p.rooms[t]), nil
	}
	var out []bookings.PlaceRoom
	for _, r := range p.rooms[t] {
		if slices.Contains(p.lists[t][list], r.Email) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (p *places) ListRoomLists(_ context.Context, t core.TenantID) ([]bookings.PlaceRoomList, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []bookings.PlaceRoomList
	for e := range p.lists[t] {
		out = append(out, bookings.PlaceRoomList{Email: e, DisplayName: p.names[e]})
	}
	return out, nil
}

func emails(rs []bookings.Room) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Email)
	}
	slices.Sort(out)
	return out
}

func TestDirectorySyncAndChoose(t *testing.T) {
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	a, b := storetest.NewTenantID(t), storetest.NewTenantID(t)
	cap8 := bookings.PlaceRoom{Email: "Oslo@Contoso.com", DisplayName: "Oslo", Capacity: 8, Building: "HQ", FloorNumber: 2,
		BookingType: "standard", Accessible: true, Tags: []string{"video", "whiteboard"}}
	p := &places{
		rooms: map[core.TenantID][]bookings.PlaceRoom{
			a: {cap8, {Email: "bergen@contoso.com", DisplayName: "Bergen", Capacity: 4}, {Email: "loose@contoso.com", DisplayName: "No list"}},
			b: {{Email: "other@fabrikam.com", DisplayName: "Other"}},
		},
		lists: map[core.TenantID]map[string][]string{a: {
			"hq@contoso.com":    {"Oslo@Contoso.com"},
			"annex@contoso.com": {"bergen@contoso.com"},
		}},
		names: map[string]string{"hq@contoso.com": "Headquarters", "annex@contoso.com": "Annex"},
	}
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	d := bookings.NewDirectory(bookings.OpenData(env.DB), p, func() time.Time { return now })

	// Nothing chosen: every room is served, with its room lists for the roomList filter.
	res, err := d.Sync(ctx, a)
	if err != nil || res.Rooms != 3 || res.Lists != 2 {
		t.Fatalf("sync = %+v, %v; want 3 rooms, 2 lists", res, err)
	}
	rooms, err := d.Rooms(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := emails(rooms), []string{"bergen@contoso.com", "loose@contoso.com", "oslo@contoso.com"}; !slices.Equal(got, want) {
		t.Errorf("rooms = %v, want %v (keyed by lower-case e-mail)", got, want)
	}
	i := slices.IndexFunc(rooms, func(r bookings.Room) bool { return r.Email == "oslo@contoso.com" })
	if r := rooms[i]; r.Capacity != 8 || r.Building != "HQ" || !r.Accessible || !slices.Equal(r.TagList(), []string{"video", "whiteboard"}) ||
		!slices.Equal(r.Lists(), []string{"hq@contoso.com"}) || !r.SyncedAt.Equal(now) {
		t.Errorf("oslo = %+v", r)
	}

	// The admin chooses the HQ list: only its room stays, the others go at the next sync.
	if err := d.Choose(ctx, a, []string{"HQ@contoso.com"}); err != nil {
		t.Fatal(err)
	}
	if res, err = d.Sync(ctx, a); err != nil || res.Rooms != 1 || res.Removed != 2 {
		t.Fatalf("sync after choice = %+v, %v; want 1 room, 2 removed", res, err)
	}
	rooms, _ = d.Rooms(ctx, a)
	if got := emails(rooms); !slices.Equal(got, []string{"oslo@contoso.com"}) {
		t.Errorf("rooms after choice = %v", got)
	}
	lists, _ := d.Lists(ctx, a)
	for _, l := range lists {
		if l.Selected != (l.Email == "hq@contoso.com") {
			t.Errorf("list %s selected = %v", l.Email, l.Selected)
		}
	}

	// A list the directory never showed is refused; choosing none serves everything again.
	if err := d.Choose(ctx, a, []string{"nope@contoso.com"}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("unknown list: %v, want Invalid", err)
	}
	if err := d.Choose(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if res, _ = d.Sync(ctx, a); res.Rooms != 3 {
		t.Errorf("after choosing none: %d rooms, want 3", res.Rooms)
	}

	// A failing directory leaves the rooms in place.
	p.fail = errors.New("graph down")
	if _, err := d.Sync(ctx, a); err == nil {
		t.Error("sync with Graph down succeeded")
	}
	if rooms, _ = d.Rooms(ctx, a); len(rooms) != 3 {
		t.Errorf("rooms after a failed sync = %d, want 3", len(rooms))
	}
	p.fail = nil

	// Tenant scoping: b sees only its own room.
	if _, err := d.Sync(ctx, b); err != nil {
		t.Fatal(err)
	}
	if rooms, _ = d.Rooms(ctx, b); !slices.Equal(emails(rooms), []string{"other@fabrikam.com"}) {
		t.Errorf("b's rooms = %v", emails(rooms))
	}
}

func TestAddInOrigins(t *testing.T) {
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	a, b := storetest.NewTenantID(t), storetest.NewTenantID(t)
	d := bookings.NewDirectory(bookings.OpenData(env.DB), &places{}, time.Now)
	for _, bad := range []string{"http://rooms.contoso.com", "https://rooms.contoso.com/addin", "rooms.contoso.com", "https://u:p@rooms.contoso.com", "https://"} {
		if _, err := d.SetOrigins(ctx, a, []string{bad}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%q: %v, want Invalid", bad, err)
		}
	}
	v, err := d.SetOrigins(ctx, a, []string{"https://Rooms.Contoso.com/", "https://rooms.contoso.com", "https://localhost:3000"})
	if err != nil || !slices.Equal(v.AddInOrigins, []string{"https://rooms.contoso.com", "https://localhost:3000"}) {
		t.Fatalf("origins = %v, %v", v.AddInOrigins, err)
	}
	for origin, want := range map[string]bool{"https://rooms.contoso.com": true, "https://ROOMS.contoso.com": true, "https://localhost:3000": true,
		"https://evil.example": false, "null": false, "": false} {
		if got, err := d.AllowedOrigin(ctx, a, origin); err != nil || got != want {
			t.Errorf("a allows %q = %v, %v; want %v", origin, got, err, want)
		}
	}
	if got, _ := d.AllowedOrigin(ctx, b, "https://rooms.contoso.com"); got {
		t.Error("another tenant's origin list allowed a's add-in")
	}
}

func TestSetSettingsBookingWindow(t *testing.T) {
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	a := storetest.NewTenantID(t)
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: a, State: registry.TenantActive, BookingWindowDays: 21}); err != nil {
		t.Fatal(err)
	}
	data := bookings.OpenData(env.DB)
	data.MaxWindowDays = 28
	d := bookings.NewDirectory(data, &places{}, time.Now)
	d.Tenants = env.Store.Tenants
	days := func(n int) *int { return &n }
	admin := core.Actor{ID: "a0000000-0000-4000-8000-0000000000ad", Kind: "user"}
	if _, err := d.SetSettings(ctx, admin, a, bookings.SettingsChange{BookingWindowDays: days(7)}); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("a change without an audit trail: %v, want refused", err)
	}
	trail := audit.OpenLog(env.DB)
	d.Audit = audit.Trail{Table: trail, Now: time.Now}
	for _, bad := range []int{0, 29, -1} {
		if _, err := d.SetSettings(ctx, admin, a, bookings.SettingsChange{BookingWindowDays: days(bad)}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%d days: %v, want Invalid", bad, err)
		}
	}
	origins := []string{"https://rooms.contoso.com"}
	v, err := d.SetSettings(ctx, admin, a, bookings.SettingsChange{BookingWindowDays: days(7), AddInOrigins: &origins})
	if err != nil || v.BookingWindowDays != 7 || len(v.AddInOrigins) != 1 {
		t.Fatalf("view = %+v, %v", v, err)
	}
	// Leaving a field out keeps it.
	if v, err = d.SetSettings(ctx, admin, a, bookings.SettingsChange{BookingWindowDays: days(28)}); err != nil || v.BookingWindowDays != 28 || len(v.AddInOrigins) != 1 {
		t.Errorf("after changing only the window: %+v, %v", v, err)
	}
	if tn, _ := env.Store.Tenants.Get(ctx, a); tn.BookingWindowDays != 28 {
		t.Errorf("tenant's window = %d, want 28 (read by the cache and the retention sweep)", tn.BookingWindowDays)
	}
	// Every attempt is in the tenant's audit trail with its outcome, by the admin who made it.
	page, err := trail.List(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range page.Items {
		if e.Action != "rooms.settings.set" || e.ActorID != admin.ID {
			t.Errorf("audit entry %+v", e)
		}
		outcomes[e.Outcome]++
	}
	if len(page.Items) != 5 || outcomes["success"] != 2 {
		t.Errorf("audit outcomes = %v over %d entries, want 3 refused and 2 successes", outcomes, len(page.Items))
	}
}

// An admin who added a room reads the directory now instead of waiting for the daily sync; Places
// failing leaves the served rooms as they were. Both attempts are audited with their outcome.
func TestRefreshReadsPlacesNow(t *testing.T) {
	env := storetest.NewEnv(t, storetest.Options{})
	ctx := context.Background()
	a := storetest.NewTenantID(t)
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: a, State: registry.TenantActive}); err != nil {
		t.Fatal(err)
	}
	p := &places{rooms: map[core.TenantID][]bookings.PlaceRoom{a: {{Email: "oslo@contoso.com", DisplayName: "Oslo"}}}}
	d := bookings.NewDirectory(bookings.OpenData(env.DB), p, time.Now)
	admin := core.Actor{ID: "a0000000-0000-4000-8000-0000000000ad", Kind: "user"}
	if _, err := d.Refresh(ctx, admin, a); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("refresh without an audit trail: %v, want refused", err)
	}
	trail := audit.OpenLog(env.DB)
	d.Audit = audit.Trail{Table: trail, Now: time.Now}
	if v, err := d.Refresh(ctx, admin, a); err != nil || len(v.Rooms) != 1 || v.SyncedAt == nil {
		t.Fatalf("refresh = %+v, %v", v, err)
	}
	p.mu.Lock()
	p.rooms[a] = append(p.rooms[a], bookings.PlaceRoom{Email: "bergen@contoso.com", DisplayName: "Bergen"})
	p.fail = errors.New("places down")
	p.mu.Unlock()
	if _, err := d.Refresh(ctx, admin, a); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("refresh with Places down: %v, want Unavailable", err)
	}
	if v, _ := d.View(ctx, a); len(v.Rooms) != 1 {
		t.Errorf("rooms after a failed refresh = %d, want the one served before", len(v.Rooms))
	}
	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	v, err := d.Refresh(ctx, admin, a)
	if err != nil || len(v.Rooms) != 2 {
		t.Fatalf("refresh = %+v, %v; want the new room served", v, err)
	}
	page, err := trail.List(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range page.Items {
		if e.Action != "rooms.refresh" || e.ActorID != admin.ID {
			t.Errorf("audit entry %+v", e)
		}
		outcomes[e.Outcome]++
	}
	if outcomes["success"] != 2 || outcomes["failed"] != 1 {
		t.Errorf("audit outcomes = %v, want 2 successes and 1 failure", outcomes)
	}
}
