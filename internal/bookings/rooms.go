package bookings

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The room metadata tables.
const (
	TableRooms        = "rooms"
	TableRoomLists    = "roomlists"
	TableRoomSettings = "roomsettings"
)

// Room is a room the tenant serves to the Room Finder (table rooms): what an availability query filters
// on, keyed by the room mailbox's e-mail address (lower case) — the v1.0 Places id is not stable. Rooms
// are resources, not people: nothing here is personal.
type Room struct {
	Email       string `table:"key"`
	DisplayName string
	Capacity    int
	Building    string
	FloorLabel  string
	FloorNumber int
	BookingType string // standard, reserved (first come first served, not bookable), unknown
	Accessible  bool   // wheelchair accessible
	Tags        string // newline-separated (the codec stores no lists)
	RoomLists   string // newline-separated lower-case e-mail addresses of the room lists it belongs to
	SyncedAt    time.Time
	// Kept by the bookings cache, carried over by the metadata sync.
	SubscriptionID string
	ResyncedAt     time.Time
	LastChangeAt   time.Time
}

func (r *Room) RowKey() (string, error)   { return tables.SimpleKey("room e-mail", r.Email) }
func (r *Room) SetRowKey(rk string) error { r.Email = rk; return nil }

// TagList and Lists split the stored newline-joined fields.
func (r Room) TagList() []string { return splitLines(r.Tags) }
func (r Room) Lists() []string   { return splitLines(r.RoomLists) }

// RoomList is a room list of the tenant's Places directory (table roomlists) and whether the tenant
// admin chose to serve it.
type RoomList struct {
	Email       string `table:"key"`
	DisplayName string
	Selected    bool
	SyncedAt    time.Time
}

func (r *RoomList) RowKey() (string, error)   { return tables.SimpleKey("room list e-mail", r.Email) }
func (r *RoomList) SetRowKey(rk string) error { r.Email = rk; return nil }

// RoomSettings is the tenant's room cache state (table roomsettings, one row "settings"): whether the
// admin narrowed the rooms to chosen room lists, and when the metadata sync last succeeded.
type RoomSettings struct {
	Name      string `table:"key"`
	Selective bool   // false (the default): every room of the directory is served
	UpdatedAt time.Time
	SyncedAt  time.Time
	// AddInOrigins are the origins (https://host[:port], newline-separated) the tenant's Room Finder
	// add-in is served from: browsers may call the room API from them (CORS).
	AddInOrigins string
}

const settingsRow = "settings"

func (s *RoomSettings) RowKey() (string, error)   { return tables.SimpleKey("settings", s.Name) }
func (s *RoomSettings) SetRowKey(rk string) error { s.Name = rk; return nil }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// NormEmail is the key form of a room or room list e-mail address: trimmed, lower case (Exchange
// addresses are case-insensitive). It refuses what cannot be an address or a key.
func NormEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || len(e) > 320 || strings.ContainsAny(e, " \n\t,;\"<>") {
		return "", apperr.New(apperr.Invalid, "not an e-mail address", nil)
	}
	if err := tables.ValidateKeyPart("e-mail", e); err != nil {
		return "", apperr.New(apperr.Invalid, "not an e-mail address", err)
	}
	return e, nil
}

// PlaceRoom is a room as the Places directory describes it.
type PlaceRoom struct {
	Email       string
	DisplayName string
	Capacity    int
	Building    string
	FloorLabel  string
	FloorNumber int
	BookingType string
	Accessible  bool
	Tags        []string
}

// PlaceRoomList is a room list of the Places directory.
type PlaceRoomList struct{ Email, DisplayName string }

// Places reads a tenant's Places directory, app-only (Place.Read.All). ListRooms with roomList ""
// lists every room the directory shows.
type Places interface {
	ListRooms(ctx context.Context, tenant core.TenantID, roomList string) ([]PlaceRoom, error)
	ListRoomLists(ctx context.Context, tenant core.TenantID) ([]PlaceRoomList, error)
}

// RoomTables are the room metadata tables.
type RoomTables struct {
	Rooms    *tables.Table[Room, *Room]
	Lists    *tables.Table[RoomList, *RoomList]
	Settings *tables.Table[RoomSettings, *RoomSettings]
}

// Directory is the tenant's room metadata: synchronised from Places, narrowed by the admin's choice
// of room lists.
type Directory struct {
	t        RoomTables
	bookings *BookingTable
	// Tenants, when set, lets SetSettings change the tenant's booking window (within MaxWindowDays).
	Tenants *registry.TenantRegistry
	// Audit records the admins' changes (the room lists served, the add-in's origins, the window); an
	// admin change without it is refused rather than left unaudited.
	Audit         Recorder
	maxWindowDays int

	mu      sync.Mutex
	origins map[core.TenantID]cachedOrigins
	places  Places
	now     func() time.Time
}

// NewDirectory returns the room directory on the module's tables.
func NewDirectory(d *Data, places Places, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{t: d.Rooms, bookings: d.Bookings, places: places, now: now, origins: map[core.TenantID]cachedOrigins{},
		maxWindowDays: d.MaxWindowDays}
}

// Settings returns the tenant's settings (the defaults when it never chose).
func (d *Directory) Settings(ctx context.Context, tenant core.TenantID) (RoomSettings, error) {
	s, err := d.t.Settings.Get(ctx, tenant, settingsRow)
	if errors.Is(err, tables.ErrNotFound) {
		return RoomSettings{Name: settingsRow}, nil
	}
	return s, err
}

// SyncResult is what one metadata sync did.
type SyncResult struct {
	Rooms   int `json:"rooms"`   // rooms served now
	Removed int `json:"removed"` // rooms no longer served (gone from the directory or from the chosen lists)
	Lists   int `json:"roomLists"`
}

// Sync refreshes the tenant's rooms and room lists from Places. With no choice made every room is
// served; otherwise the rooms of the chosen lists. Rooms no longer served are deleted with their
// cached bookings. It is idempotent; a failure leaves the previous rooms in place.
func (d *Directory) Sync(ctx context.Context, tenant core.TenantID) (SyncResult, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return SyncResult{}, err
	}
	set, err := d.Settings(ctx, tenant)
	if err != nil {
		return SyncResult{}, fmt.Errorf("read room settings: %w", err)
	}
	lists, err := d.places.ListRoomLists(ctx, tenant)
	if err != nil {
		return SyncResult{}, fmt.Errorf("list room lists: %w", err)
	}
	old := map[string]RoomList{}
	for l, err := range d.t.Lists.All(ctx, tenant, nil) {
		if err != nil {
			return SyncResult{}, fmt.Errorf("read room lists: %w", err)
		}
		old[l.Email] = l
	}
	existing := map[string]Room{}
	for r, err := range d.t.Rooms.All(ctx, tenant, nil) {
		if err != nil {
			return SyncResult{}, fmt.Errorf("read rooms: %w", err)
		}
		existing[r.Email] = r
	}
	now := d.now().UTC()
	rooms := map[string]*Room{}
	add := func(p PlaceRoom, list string) {
		e, err := NormEmail(p.Email)
		if err != nil {
			return // a room without a usable address cannot be booked through Exchange
		}
		r, ok := rooms[e]
		if !ok {
			r = &Room{Email: e, DisplayName: p.DisplayName, Capacity: p.Capacity, Building: p.Building,
				FloorLabel: p.FloorLabel, FloorNumber: p.FloorNumber, BookingType: p.BookingType, Accessible: p.Accessible,
				Tags:     strings.Join(slices.DeleteFunc(slices.Clone(p.Tags), func(s string) bool { return strings.ContainsRune(s, '\n') }), "\n"),
				SyncedAt: now}
			if o, ok := existing[e]; ok {
				r.SubscriptionID, r.ResyncedAt, r.LastChangeAt = o.SubscriptionID, o.ResyncedAt, o.LastChangeAt
			}
			rooms[e] = r
		}
		if list != "" && !slices.Contains(r.Lists(), list) {
			r.RoomLists = strings.Join(append(r.Lists(), list), "\n")
		}
	}
	var keepLists []RoomList
	for _, pl := range lists {
		e, err := NormEmail(pl.Email)
		if err != nil {
			continue
		}
		l := RoomList{Email: e, DisplayName: pl.DisplayName, Selected: old[e].Selected, SyncedAt: now}
		keepLists = append(keepLists, l)
		// The rooms of every list are read even when all rooms are served: the roomList filter of the
		// availability API needs the membership.
		members, err := d.places.ListRooms(ctx, tenant, e)
		if err != nil {
			return SyncResult{}, fmt.Errorf("list rooms of a room list: %w", err)
		}
		if set.Selective && !l.Selected {
			continue
		}
		for _, p := range members {
			add(p, e)
		}
	}
	if !set.Selective {
		all, err := d.places.ListRooms(ctx, tenant, "")
		if err != nil {
			return SyncResult{}, fmt.Errorf("list rooms: %w", err)
		}
		for _, p := range all {
			add(p, "")
		}
	}
	res := SyncResult{Rooms: len(rooms), Lists: len(keepLists)}
	var batch []Room
	for _, r := range rooms {
		batch = append(batch, *r)
	}
	sort.Slice(batch, func(i, j int) bool { return batch[i].Email < batch[j].Email })
	if err := d.t.Rooms.UpsertBatch(ctx, tenant, batch); err != nil {
		return res, fmt.Errorf("store rooms: %w", err)
	}
	if err := d.t.Lists.UpsertBatch(ctx, tenant, keepLists); err != nil {
		return res, fmt.Errorf("store room lists: %w", err)
	}
	var gone []string
	for l := range old {
		if !slices.ContainsFunc(keepLists, func(k RoomList) bool { return k.Email == l }) {
			gone = append(gone, l)
		}
	}
	if _, err := d.t.Lists.DeleteBatch(ctx, tenant, gone); err != nil {
		return res, fmt.Errorf("delete room lists: %w", err)
	}
	gone = gone[:0]
	for e := range existing {
		if rooms[e] == nil {
			gone = append(gone, e)
		}
	}
	// A room no longer served loses its bookings now; its subscription is deleted by the next
	// MaintainRooms run, which finds it without a room.
	for _, e := range gone {
		if _, err := d.bookings.DeletePrefix(ctx, tenant, e+tables.KeySep); err != nil {
			return res, fmt.Errorf("delete bookings of a room no longer served: %w", err)
		}
	}
	n, err := d.t.Rooms.DeleteBatch(ctx, tenant, gone)
	res.Removed = n
	if err != nil {
		return res, fmt.Errorf("delete rooms: %w", err)
	}
	if _, err := d.t.Settings.UpdateOrCreate(ctx, tenant, settingsRow, func(s *RoomSettings, _ bool) error {
		s.Name, s.SyncedAt = settingsRow, now
		return nil
	}); err != nil {
		return res, fmt.Errorf("record sync: %w", err)
	}
	return res, nil
}

// Choose sets which room lists are served: none named serves every room of the directory. Every list
// named must be one the directory showed at the last sync. The rooms follow at the next Sync, which
// the caller runs.
func (d *Directory) Choose(ctx context.Context, tenant core.TenantID, roomLists []string) error {
	if err := tables.CheckTenant(tenant); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, l := range roomLists {
		e, err := NormEmail(l)
		if err != nil {
			return apperr.New(apperr.Invalid, "roomLists: every entry must be a room list's e-mail address", err)
		}
		want[e] = true
	}
	var lists []RoomList
	for l, err := range d.t.Lists.All(ctx, tenant, nil) {
		if err != nil {
			return fmt.Errorf("read room lists: %w", err)
		}
		l.Selected = want[l.Email]
		delete(want, l.Email)
		lists = append(lists, l)
	}
	if len(want) > 0 {
		return apperr.New(apperr.Invalid, fmt.Sprintf("roomLists: %d of the lists named are not room lists of this tenant (see GET rooms)", len(want)), nil)
	}
	if err := d.t.Lists.UpsertBatch(ctx, tenant, lists); err != nil {
		return fmt.Errorf("store room lists: %w", err)
	}
	_, err := d.t.Settings.UpdateOrCreate(ctx, tenant, settingsRow, func(s *RoomSettings, _ bool) error {
		s.Name, s.Selective, s.UpdatedAt = settingsRow, len(roomLists) > 0, d.now().UTC()
		return nil
	})
	if err != nil {
		return fmt.Errorf("store room settings: %w", err)
	}
	return nil
}

// Rooms lists the rooms served, by e-mail address.
func (d *Directory) Rooms(ctx context.Context, tenant core.TenantID) ([]Room, error) {
	var out []Room
	for r, err := range d.t.Rooms.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("read rooms: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Lists lists the tenant's room lists and which are chosen.
func (d *Directory) Lists(ctx context.Context, tenant core.TenantID) ([]RoomList, error) {
	var out []RoomList
	for l, err := range d.t.Lists.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("read room lists: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// RoomView is a room as the API shows it.
type RoomView struct {
	Email       string   `json:"email"`
	DisplayName string   `json:"displayName"`
	Capacity    int      `json:"capacity"`
	Building    string   `json:"building,omitempty"`
	FloorLabel  string   `json:"floorLabel,omitempty"`
	FloorNumber int      `json:"floorNumber"`
	BookingType string   `json:"bookingType,omitempty"`
	Accessible  bool     `json:"accessible"`
	Tags        []string `json:"tags"`
	RoomLists   []string `json:"roomLists"`
}

// ServedRoomView is a room as GET rooms shows it to the admin: its metadata and how fresh its cached
// bookings are. ResyncedAt is when the room's window was last read whole (null before the first read),
// LastChangeAt the modification time of the newest booking applied (null before any).
type ServedRoomView struct {
	RoomView
	ResyncedAt   *time.Time `json:"resyncedAt"`
	LastChangeAt *time.Time `json:"lastChangeAt"`
}

// View is a room's API form.
func (r Room) View() RoomView {
	return RoomView{Email: r.Email, DisplayName: r.DisplayName, Capacity: r.Capacity, Building: r.Building,
		FloorLabel: r.FloorLabel, FloorNumber: r.FloorNumber, BookingType: r.BookingType, Accessible: r.Accessible,
		Tags: nonNil(r.TagList()), RoomLists: nonNil(r.Lists())}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RoomListView is a room list as the API shows it.
type RoomListView struct {
	Email       string `json:"email"`
	DisplayName string `json:"displayName"`
	Selected    bool   `json:"selected"`
}

// DirectoryView is GET rooms: the rooms served, the tenant's room lists and the choice.
type DirectoryView struct {
	AllRooms     bool             `json:"allRooms"`     // no room list chosen: every room of the directory
	AddInOrigins []string         `json:"addInOrigins"` // origins allowed to call the room API from a browser
	SyncedAt     *time.Time       `json:"syncedAt"`     // last successful metadata sync, null before the first
	Rooms        []ServedRoomView `json:"rooms"`
	RoomLists    []RoomListView   `json:"roomLists"`
	// BookingWindowDays is how many days ahead bookings are cached (0 when not known here).
	BookingWindowDays int `json:"bookingWindowDays"`
}

// View answers the tenant's rooms, room lists and choice.
func (d *Directory) View(ctx context.Context, tenant core.TenantID) (DirectoryView, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return DirectoryView{}, err
	}
	set, err := d.Settings(ctx, tenant)
	if err != nil {
		return DirectoryView{}, fmt.Errorf("read room settings: %w", err)
	}
	rooms, err := d.Rooms(ctx, tenant)
	if err != nil {
		return DirectoryView{}, err
	}
	lists, err := d.Lists(ctx, tenant)
	if err != nil {
		return DirectoryView{}, err
	}
	v := DirectoryView{AllRooms: !set.Selective, AddInOrigins: nonNil(splitLines(set.AddInOrigins)), Rooms: []ServedRoomView{}, RoomLists: []RoomListView{}}
	if d.Tenants != nil {
		t, err := d.Tenants.Get(ctx, tenant)
		if err != nil && !errors.Is(err, tables.ErrNotFound) {
			return DirectoryView{}, fmt.Errorf("read tenant: %w", err)
		}
		v.BookingWindowDays = t.BookingWindowDays
		if v.BookingWindowDays <= 0 || v.BookingWindowDays > d.maxWindowDays {
			v.BookingWindowDays = d.maxWindowDays
		}
	}
	if !set.SyncedAt.IsZero() {
		at := set.SyncedAt
		v.SyncedAt = &at
	}
	for _, r := range rooms {
		v.Rooms = append(v.Rooms, ServedRoomView{RoomView: r.View(), ResyncedAt: timeOrNil(r.ResyncedAt), LastChangeAt: timeOrNil(r.LastChangeAt)})
	}
	for _, l := range lists {
		v.RoomLists = append(v.RoomLists, RoomListView{Email: l.Email, DisplayName: l.DisplayName, Selected: l.Selected})
	}
	return v, nil
}

// Recorder appends an admin change to the tenant's audit trail (audit.Trail).
type Recorder interface {
	Record(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error
}

var errNotAudited = apperr.New(apperr.Unavailable, "room settings cannot be changed: the audit trail is not wired", nil)

// ChooseAndSync records the admin's choice of room lists and applies it at once (a metadata sync);
// the choice stays recorded when the sync fails, and the daily sync applies it then. The choice is
// audited (rooms.lists.set).
func (d *Directory) ChooseAndSync(ctx context.Context, a core.Actor, tenant core.TenantID, roomLists []string) (DirectoryView, error) {
	if d.Audit == nil {
		return DirectoryView{}, errNotAudited
	}
	if err := d.Audit.Record(ctx, tenant, a, "rooms.lists.set", "tenant", string(tenant), d.Choose(ctx, tenant, roomLists)); err != nil {
		return DirectoryView{}, err
	}
	if _, err := d.Sync(ctx, tenant); err != nil {
		return DirectoryView{}, apperr.New(apperr.Unavailable, "the choice is saved; the rooms could not be read from Microsoft 365 now and follow at the next daily sync", err)
	}
	return d.View(ctx, tenant)
}

// Refresh reads the tenant's rooms and room lists from Places now, for an admin who added or changed
// a room and will not wait for the daily sync; audited as rooms.refresh. Places itself can take up to
// 24 hours to show a change made in Exchange.
func (d *Directory) Refresh(ctx context.Context, a core.Actor, tenant core.TenantID) (DirectoryView, error) {
	if d.Audit == nil {
		return DirectoryView{}, errNotAudited
	}
	_, err := d.Sync(ctx, tenant)
	if err != nil {
		err = apperr.New(apperr.Unavailable, "the rooms could not be read from Microsoft 365 now; the served rooms are unchanged, try again in a few minutes", err)
	}
	if err := d.Audit.Record(ctx, tenant, a, "rooms.refresh", "tenant", string(tenant), err); err != nil {
		return DirectoryView{}, err
	}
	return d.View(ctx, tenant)
}

type cachedOrigins struct {
	list []string
	at   time.Time
}

// originsTTL bounds how long a changed origin list takes to reach every instance.
const originsTTL = time.Minute

// MaxAddInOrigins bounds a tenant's list.
const MaxAddInOrigins = 10

// NormOrigin is an origin's canonical form: https, a host, an optional port, nothing else (no path,
// query, user or fragment); lower case.
func NormOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(u.Host, " \n") {
		return "", apperr.New(apperr.Invalid, "addInOrigins: every entry must be an https origin such as https://rooms.contoso.com", nil)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// SettingsChange is what SetSettings changes; nil fields stay as they are.
type SettingsChange struct {
	AddInOrigins *[]string
	// BookingWindowDays is the tenant's window, 1 to the configured limit (CONNECTHUB_BOOKING_WINDOW_DAYS).
	BookingWindowDays *int
}

// SetSettings changes the tenant's add-in origins and booking window, audited (rooms.settings.set: the
// origins decide which web pages may read the tenant's room API). A shorter window takes effect at the
// next resync and retention sweep; a longer one as rooms are resynced (within 20 h).
func (d *Directory) SetSettings(ctx context.Context, a core.Actor, tenant core.TenantID, c SettingsChange) (DirectoryView, error) {
	if d.Audit == nil {
		return DirectoryView{}, errNotAudited
	}
	v, err := d.setSettings(ctx, tenant, c)
	if err := d.Audit.Record(ctx, tenant, a, "rooms.settings.set", "tenant", string(tenant), err); err != nil {
		return DirectoryView{}, err
	}
	return v, nil
}

func (d *Directory) setSettings(ctx context.Context, tenant core.TenantID, c SettingsChange) (DirectoryView, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return DirectoryView{}, err
	}
	if c.BookingWindowDays != nil {
		if d.Tenants == nil || d.maxWindowDays <= 0 {
			return DirectoryView{}, apperr.New(apperr.Unavailable, "the booking window cannot be changed here", nil)
		}
		if n := *c.BookingWindowDays; n < 1 || n > d.maxWindowDays {
			return DirectoryView{}, apperr.New(apperr.Invalid, fmt.Sprintf("bookingWindowDays must be 1 to %d", d.maxWindowDays), nil)
		}
	}
	if c.AddInOrigins != nil {
		if _, err := d.SetOrigins(ctx, tenant, *c.AddInOrigins); err != nil {
			return DirectoryView{}, err
		}
	}
	if c.BookingWindowDays != nil {
		if _, err := d.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
			t.BookingWindowDays = *c.BookingWindowDays
			return nil
		}); err != nil {
			return DirectoryView{}, fmt.Errorf("store booking window: %w", err)
		}
	}
	return d.View(ctx, tenant)
}

// SetOrigins records the origins the tenant's add-in is served from (none: no browser may call).
func (d *Directory) SetOrigins(ctx context.Context, tenant core.TenantID, origins []string) (DirectoryView, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return DirectoryView{}, err
	}
	if len(origins) > MaxAddInOrigins {
		return DirectoryView{}, apperr.New(apperr.Invalid, fmt.Sprintf("addInOrigins: at most %d", MaxAddInOrigins), nil)
	}
	var norm []string
	for _, o := range origins {
		n, err := NormOrigin(o)
		if err != nil {
			return DirectoryView{}, err
		}
		if !slices.Contains(norm, n) {
			norm = append(norm, n)
		}
	}
	if _, err := d.t.Settings.UpdateOrCreate(ctx, tenant, settingsRow, func(s *RoomSettings, _ bool) error {
		s.Name, s.AddInOrigins, s.UpdatedAt = settingsRow, strings.Join(norm, "\n"), d.now().UTC()
		return nil
	}); err != nil {
		return DirectoryView{}, fmt.Errorf("store room settings: %w", err)
	}
	d.mu.Lock()
	delete(d.origins, tenant)
	d.mu.Unlock()
	return d.View(ctx, tenant)
}

// AllowedOrigin reports whether a browser page of origin may call the tenant's room API. The list is
// cached for a minute: a preflight and its request must not cost two storage reads.
func (d *Directory) AllowedOrigin(ctx context.Context, tenant core.TenantID, origin string) (bool, error) {
	o, err := NormOrigin(origin)
	if err != nil {
		return false, nil
	}
	if err := tables.CheckTenant(tenant); err != nil {
		return false, err
	}
	d.mu.Lock()
	c, ok := d.origins[tenant]
	d.mu.Unlock()
	if !ok || d.now().Sub(c.at) > originsTTL || d.now().Before(c.at) {
		set, err := d.Settings(ctx, tenant)
		if err != nil {
			return false, err
		}
		c = cachedOrigins{list: splitLines(set.AddInOrigins), at: d.now()}
		d.mu.Lock()
		d.origins[tenant] = c
		d.mu.Unlock()
	}
	return slices.Contains(c.list, o), nil
}
