// Package bookings is the room booking cache for the Room Finder add-in: times and free/busy of room
// bookings inside a window of a few weeks, never a subject or an attendee. Until the capability lands
// (issue 15) it holds its table, the booking window rule the retention job applies to it, and its
// answers for a person's export and erasure.
package bookings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableBookings is the booking cache.
const TableBookings = "bookings"

// Tables are the tables the bookings module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Booking](TableBookings, "bookings", tables.RetainTenantData),
	tables.SpecOf[Room](TableRooms, "bookings", tables.RetainTenantData),
	tables.SpecOf[RoomList](TableRoomLists, "bookings", tables.RetainTenantData),
	tables.SpecOf[RoomSettings](TableRoomSettings, "bookings", tables.RetainTenantData),
}

// Data is the module's tables and its window rule.
type Data struct {
	Bookings *BookingTable
	Rooms    RoomTables
	// MaxWindowDays is the window of tenants that set none, and the most any tenant may keep.
	MaxWindowDays int
}

// OpenData returns the module's table on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Bookings: &BookingTable{tables.New[Booking](db, TableBookings)}, Rooms: RoomTables{
		Rooms:    tables.New[Room](db, TableRooms),
		Lists:    tables.New[RoomList](db, TableRoomLists),
		Settings: tables.New[RoomSettings](db, TableRoomSettings),
	}}
}

// Sweep keeps only the bookings inside the tenant's window (W in the inventory): a booking goes as soon
// as it has ended, and nothing starting at or after the end of the tenant's BookingWindowDays (from the
// start of today, capped by MaxWindowDays) is kept.
func (d *Data) Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error) {
	if d.MaxWindowDays <= 0 {
		return nil, errors.New("bookings sweep: no booking window configured")
	}
	days := t.BookingWindowDays
	if days <= 0 || days > d.MaxWindowDays {
		days = d.MaxWindowDays
	}
	today := now.UTC().Truncate(24 * time.Hour)
	n, err := d.Bookings.DeleteOutsideWindow(ctx, t.ID, now.UTC(), today.AddDate(0, 0, days))
	if err != nil {
		err = fmt.Errorf("prune bookings: %w", err)
	}
	return map[string]int{TableBookings: n}, err
}

// Booking is a cached room booking (table bookings): times and free/busy only — no subject, no
// organizer, no attendees, no body. Graph's calendarView expands recurring series, so each occurrence
// or exception is a row of its own.
type Booking struct {
	RoomID       string `table:"key"`          // row key part 1: the room mailbox's e-mail address (lower case)
	EventID      string `table:"key,personal"` // row key part 2: the Graph event id, stored encoded
	ICalUID      string `table:"personal"`     // the meeting's id across calendars (the add-in matches its own appointment)
	Start        time.Time
	End          time.Time
	ShowAs       string // free, tentative, busy, oof, workingElsewhere, unknown
	IsCancelled  bool
	Type         string // singleInstance, occurrence, exception
	LastModified time.Time
}

// Blocks reports whether the booking makes the room unavailable: cancelled meetings and events shown
// as free do not.
func (b Booking) Blocks() bool { return !b.IsCancelled && b.ShowAs != "free" }

// BookingKey is the row key of (roomID, eventID).
func BookingKey(roomID, eventID string) (string, error) {
	return (&Booking{RoomID: roomID, EventID: eventID}).RowKey()
}

func (b *Booking) RowKey() (string, error) {
	if err := tables.ValidateKeyPart("room id", b.RoomID); err != nil {
		return "", err
	}
	id, err := tables.EncodeForeignID("event id", b.EventID)
	if err != nil {
		return "", err
	}
	return tables.JoinKey(b.RoomID, id), nil
}
func (b *Booking) SetRowKey(rk string) error {
	parts, err := tables.SplitKey("booking key", rk, 2)
	if err != nil {
		return err
	}
	b.RoomID = parts[0]
	b.EventID, err = tables.DecodeForeignID("event id", parts[1])
	return err
}

// BookingTable is the room booking cache.
type BookingTable struct {
	*tables.Table[Booking, *Booking]
}

// ListRoom returns the bookings of one room that overlap [from, to).
func (b *BookingTable) ListRoom(ctx context.Context, tenant core.TenantID, roomID string, from, to time.Time, opts *tables.ListOptions) (tables.Page[Booking], error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return tables.Page[Booking]{}, err
	}
	if err := tables.ValidateKeyPart("room id", roomID); err != nil {
		return tables.Page[Booking]{}, err
	}
	prefix := roomID + tables.KeySep
	f := tables.Filter("PartitionKey eq ? and RowKey ge ? and RowKey lt ? and End gt ? and Start lt ?",
		tenant, prefix, tables.PrefixUpperBound(prefix), from, to)
	return b.Query(ctx, tenant, f, opts)
}

// DeleteOutsideWindow deletes bookings that ended before from or start at or after to (retention:
// only the configured window is kept).
func (b *BookingTable) DeleteOutsideWindow(ctx context.Context, tenant core.TenantID, from, to time.Time) (int, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return 0, err
	}
	return b.DeleteWhere(ctx, tenant, tables.Filter("PartitionKey eq ? and (End le ? or Start ge ?)", tenant, from, to))
}

// Export lists nothing: the cache holds a room's bookings by the room mailbox and the event id, with
// times and free/busy only — no organiser, no attendee, no subject — so no row can be found by a
// person's id (and GDPR Art. 11 asks no more). The event id is personal only through Graph, where the
// event is the organiser's.
func (d *Data) Export(context.Context, core.TenantID, string) ([]tables.Record, error) {
	return nil, nil
}

// Erase deletes nothing, for the same reason; the rows leave within the booking window anyway.
func (d *Data) Erase(context.Context, core.TenantID, string) (tables.Erasure, error) {
	return tables.Erasure{TableBookings: {}}, nil
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableBookings} }
