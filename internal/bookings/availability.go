package bookings

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// MaxQueryWindow is the longest availability query: Graph's own free/busy (getSchedule) takes windows
// under 62 days (GH concepts/outlook-get-free-busy-schedule.md), and the cache holds a few weeks.
const MaxQueryWindow = 62 * 24 * time.Hour

// AvailabilityQuery is GET rooms/availability: a window and the room filters (zero values: any).
type AvailabilityQuery struct {
	Start, End time.Time
	Capacity   int    // at least this many seats
	Building   string // exact, case-insensitive
	Floor      *int   // floor number
	RoomList   string // member of this room list (e-mail address)
	Accessible *bool  // wheelchair accessible
}

// Interval is a busy time of a room, clipped to the query's window.
type Interval struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	ShowAs string    `json:"showAs"`
}

// RoomAvailability is one room's answer.
type RoomAvailability struct {
	RoomView
	Free bool       `json:"free"`
	Busy []Interval `json:"busy"`
}

// AvailabilityAnswer is the answer to a query: every matching room, free or not.
type AvailabilityAnswer struct {
	Start time.Time          `json:"start"`
	End   time.Time          `json:"end"`
	Rooms []RoomAvailability `json:"rooms"`
}

// Schedule is one room's bookings in a window (GET rooms/{room}/schedule): times and free/busy only.
type Schedule struct {
	RoomView
	Start    time.Time       `json:"start"`
	End      time.Time       `json:"end"`
	Bookings []ScheduleEntry `json:"bookings"`
}

// ScheduleEntry is a booking as the schedule shows it; cancelled and free ones are shown, marked.
type ScheduleEntry struct {
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	ShowAs      string    `json:"showAs"`
	IsCancelled bool      `json:"isCancelled"`
	ICalUID     string    `json:"iCalUId"`
}

// Availability answers from the cache only, from an in-memory index per tenant, so an answer costs
// no storage round trip. The index follows the tables incrementally: every MaxAge (and at once after
// this process changed the tenant's rooms) it reads the rooms table — a row per room — and re-reads
// the bookings of only those rooms whose ResyncedAt moved (the cache stamps it after every write of a
// room's bookings), on whichever instance wrote them. The first query of a tenant reads its partition.
type Availability struct {
	d      *Data
	window func(ctx context.Context, tenant core.TenantID) (from, to time.Time, err error)
	now    func() time.Time
	// MaxAge bounds how stale an index may be (default 15 s).
	MaxAge time.Duration

	mu      sync.Mutex
	indexes map[core.TenantID]*tenantIndex
}

type tenantIndex struct {
	mu       sync.Mutex // one refresh at a time per tenant
	built    time.Time
	dirty    bool // guarded by Availability.mu
	idx      *Index
	from, to time.Time
	per      map[string][]indexed // room → bookings by start
	versions map[string]time.Time // room → ResyncedAt its bookings were read at
}

// NewAvailability answers availability from d; window is the tenant's cached window (Cache.Window).
func NewAvailability(d *Data, window func(context.Context, core.TenantID) (time.Time, time.Time, error), now func() time.Time) *Availability {
	if now == nil {
		now = time.Now
	}
	a := &Availability{d: d, window: window, now: now, MaxAge: 15 * time.Second, indexes: map[core.TenantID]*tenantIndex{}}
	d.Rooms.Rooms.Watch(func(t core.TenantID, _ string) {
		a.mu.Lock()
		if ti := a.indexes[t]; ti != nil {
			ti.dirty = true
		}
		a.mu.Unlock()
	})
	return a
}

func (a *Availability) index(ctx context.Context, tenant core.TenantID) (*Index, time.Time, time.Time, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	a.mu.Lock()
	ti := a.indexes[tenant]
	if ti == nil {
		ti = &tenantIndex{}
		a.indexes[tenant] = ti
	}
	a.mu.Unlock()
	ti.mu.Lock()
	defer ti.mu.Unlock()
	a.mu.Lock()
	fresh := ti.idx != nil && !ti.dirty && a.now().Sub(ti.built) < a.MaxAge
	ti.dirty = false
	a.mu.Unlock()
	if fresh {
		return ti.idx, ti.from, ti.to, nil
	}
	if err := a.refresh(ctx, tenant, ti); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	return ti.idx, ti.from, ti.to, nil
}

// refresh brings ti up to the tables: the rooms, and the bookings of rooms resynced since.
func (a *Availability) refresh(ctx context.Context, tenant core.TenantID, ti *tenantIndex) error {
	built := a.now()
	from, to, err := a.window(ctx, tenant)
	if err != nil {
		return err
	}
	var rooms []Room
	for r, err := range a.d.Rooms.Rooms.All(ctx, tenant, nil) {
		if err != nil {
			return fmt.Errorf("read rooms: %w", err)
		}
		rooms = append(rooms, r)
	}
	per := make(map[string][]indexed, len(rooms))
	versions := make(map[string]time.Time, len(rooms))
	if ti.per == nil {
		for b, err := range a.d.Bookings.All(ctx, tenant, nil) {
			if err != nil {
				return fmt.Errorf("read bookings: %w", err)
			}
			per[b.RoomID] = append(per[b.RoomID], toIndexed(b))
		}
		for k := range per {
			sortIndexed(per[k])
		}
	}
	for _, r := range rooms {
		versions[r.Email] = r.ResyncedAt
		if ti.per == nil {
			continue
		}
		if v, ok := ti.versions[r.Email]; ok && v.Equal(r.ResyncedAt) {
			per[r.Email] = ti.per[r.Email]
			continue
		}
		bs, err := a.roomBookings(ctx, tenant, r.Email)
		if err != nil {
			return err
		}
		per[r.Email] = bs
	}
	ti.idx, ti.per, ti.versions, ti.from, ti.to, ti.built = buildIndex(rooms, per), per, versions, from, to, built
	return nil
}

func (a *Availability) roomBookings(ctx context.Context, tenant core.TenantID, room string) ([]indexed, error) {
	var out []indexed
	opts := &tables.ListOptions{}
	for {
		page, err := a.d.Bookings.ListPrefix(ctx, tenant, room+tables.KeySep, opts)
		if err != nil {
			return nil, fmt.Errorf("read room bookings: %w", err)
		}
		for _, b := range page.Items {
			out = append(out, toIndexed(b))
		}
		if page.Next == "" {
			sortIndexed(out)
			return out, nil
		}
		opts.Token = page.Next
	}
}

// checkWindow refuses what the cache cannot answer: an empty or reversed window, one over 62 days, and
// one reaching outside the cached window [from, to).
func checkWindow(start, end, from, to time.Time) error {
	switch {
	case start.IsZero() || end.IsZero():
		return apperr.New(apperr.Invalid, "start and end are required (ISO 8601 with an offset, e.g. 2026-03-02T09:00:00+01:00)", nil)
	case !end.After(start):
		return apperr.New(apperr.Invalid, "end must be after start", nil)
	case end.Sub(start) > MaxQueryWindow:
		return apperr.New(apperr.Invalid, "the window may span at most 62 days", nil)
	case start.Before(from) || end.After(to):
		return apperr.New(apperr.Invalid, fmt.Sprintf("the window must lie inside the cached window %s to %s",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)), nil)
	}
	return nil
}

// Query answers every matching room with free and its busy intervals inside the window.
func (a *Availability) Query(ctx context.Context, tenant core.TenantID, q AvailabilityQuery) (AvailabilityAnswer, error) {
	idx, from, to, err := a.index(ctx, tenant)
	if err != nil {
		return AvailabilityAnswer{}, err
	}
	if err := checkWindow(q.Start, q.End, from, to); err != nil {
		return AvailabilityAnswer{}, err
	}
	if q.RoomList != "" {
		if q.RoomList, err = NormEmail(q.RoomList); err != nil {
			return AvailabilityAnswer{}, apperr.New(apperr.Invalid, "roomList must be a room list's e-mail address", err)
		}
	}
	return idx.Query(q), nil
}

// Schedule answers one room's bookings in the window.
func (a *Availability) Schedule(ctx context.Context, tenant core.TenantID, room string, start, end time.Time) (Schedule, error) {
	room, err := NormEmail(room)
	if err != nil {
		return Schedule{}, apperr.New(apperr.Invalid, "the room is named by its e-mail address", err)
	}
	idx, from, to, err := a.index(ctx, tenant)
	if err != nil {
		return Schedule{}, err
	}
	if err := checkWindow(start, end, from, to); err != nil {
		return Schedule{}, err
	}
	ri, ok := idx.byEmail[room]
	if !ok {
		return Schedule{}, apperr.New(apperr.NotFound, "no such room", nil)
	}
	r := &idx.rooms[ri]
	out := Schedule{RoomView: r.view, Start: start.UTC(), End: end.UTC(), Bookings: []ScheduleEntry{}}
	r.each(start, end, func(b *indexed) {
		out.Bookings = append(out.Bookings, ScheduleEntry{Start: b.start, End: b.end, ShowAs: b.showAs, IsCancelled: b.cancelled, ICalUID: b.iCalUID})
	})
	return out, nil
}

// Index is one tenant's rooms and bookings, arranged for queries: per room, bookings by start.
type Index struct {
	rooms   []indexedRoom
	byEmail map[string]int
}

type indexedRoom struct {
	Room
	view     RoomView
	lists    []string
	bookings []indexed // by start
	maxDur   time.Duration
}

type indexed struct {
	start, end time.Time
	showAs     string
	cancelled  bool
	iCalUID    string
}

// NewIndex arranges rooms and their bookings; bookings of rooms not given are left out.
func NewIndex(rooms []Room, bookings []Booking) *Index {
	per := map[string][]indexed{}
	for _, b := range bookings {
		per[b.RoomID] = append(per[b.RoomID], toIndexed(b))
	}
	for k := range per {
		sortIndexed(per[k])
	}
	return buildIndex(rooms, per)
}

func toIndexed(b Booking) indexed {
	return indexed{start: b.Start.UTC(), end: b.End.UTC(), showAs: b.ShowAs, cancelled: b.IsCancelled, iCalUID: b.ICalUID}
}

func sortIndexed(bs []indexed) {
	sort.Slice(bs, func(a, b int) bool { return bs[a].start.Before(bs[b].start) })
}

// buildIndex arranges rooms with their bookings, each room's already sorted by start (shared, never
// changed: a refresh replaces a room's slice).
func buildIndex(rooms []Room, per map[string][]indexed) *Index {
	rooms = slices.Clone(rooms)
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].Email < rooms[j].Email })
	ix := &Index{rooms: make([]indexedRoom, len(rooms)), byEmail: make(map[string]int, len(rooms))}
	for i, r := range rooms {
		ir := indexedRoom{Room: r, view: r.View(), lists: r.Lists(), bookings: per[r.Email]}
		for _, b := range ir.bookings {
			if d := b.end.Sub(b.start); d > ir.maxDur {
				ir.maxDur = d
			}
		}
		ix.rooms[i] = ir
		ix.byEmail[r.Email] = i
	}
	return ix
}

// each calls fn for every booking overlapping [start, end), in start order.
func (r *indexedRoom) each(start, end time.Time, fn func(*indexed)) {
	// A booking overlapping the window started at most maxDur before it.
	lo := sort.Search(len(r.bookings), func(i int) bool { return !r.bookings[i].start.Before(start.Add(-r.maxDur)) })
	for i := lo; i < len(r.bookings) && r.bookings[i].start.Before(end); i++ {
		if b := &r.bookings[i]; b.end.After(start) {
			fn(b)
		}
	}
}

func (r *indexedRoom) matches(q AvailabilityQuery) bool {
	return r.Capacity >= q.Capacity &&
		(q.Building == "" || strings.EqualFold(r.Building, q.Building)) &&
		(q.Floor == nil || r.FloorNumber == *q.Floor) &&
		(q.Accessible == nil || r.Accessible == *q.Accessible) &&
		(q.RoomList == "" || slices.Contains(r.lists, q.RoomList))
}

// Query answers q from the index: cancelled bookings and those shown as free do not block; busy
// intervals are clipped to the window.
func (ix *Index) Query(q AvailabilityQuery) AvailabilityAnswer {
	start, end := q.Start.UTC(), q.End.UTC()
	out := AvailabilityAnswer{Start: start, End: end, Rooms: make([]RoomAvailability, 0, len(ix.rooms))}
	for i := range ix.rooms {
		r := &ix.rooms[i]
		if !r.matches(q) {
			continue
		}
		ra := RoomAvailability{RoomView: r.view, Free: true, Busy: []Interval{}}
		r.each(start, end, func(b *indexed) {
			if b.cancelled || b.showAs == "free" {
				return
			}
			ra.Free = false
			ra.Busy = append(ra.Busy, Interval{Start: maxTime(b.start, start), End: minTime(b.end, end), ShowAs: b.showAs})
		})
		out.Rooms = append(out.Rooms, ra)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
