package bookings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphsubs"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Graph is what the cache needs of a tenant's app-only Graph client (graph.Client).
type Graph interface {
	CalendarView(ctx context.Context, mailbox string, start, end time.Time) ([]graph.Event, error)
	CreateSubscription(ctx context.Context, s graph.NewSubscription) (graph.Subscription, error)
	RenewSubscription(ctx context.Context, id string, expires time.Time) (time.Time, error)
	ReauthorizeSubscription(ctx context.Context, id string) error
	DeleteSubscription(ctx context.Context, id string) error
}

// GraphClients hands out a tenant's app-only client.
type GraphClients interface {
	For(ctx context.Context, tenant core.TenantID) (Graph, error)
}

// CacheOptions configure the cache.
type CacheOptions struct {
	NotificationURL, LifecycleURL string
	// Lifetime of a subscription: under Graph's 10,080 minutes for Outlook events without resource data
	// (default 10,000 minutes); RenewMargin is how long before expiry it is renewed (default 2 days, so
	// a day of failed hourly runs still renews in time).
	Lifetime, RenewMargin time.Duration
	Now                   func() time.Time
	Log                   *slog.Logger
}

// Cache keeps each served room's bookings inside the tenant's window: a subscription per room on its
// events, a room's whole window re-read (calendarView) when Graph says something changed, and again
// nightly to repair what was missed.
type Cache struct {
	d       *Data
	tenants *registry.TenantRegistry
	keep    *graphsubs.Keeper
	graph   GraphClients
	o       CacheOptions
	// Audit records an admin's resync (rooms.resync); Resync is refused without it.
	Audit Recorder

	mu    sync.Mutex
	rooms map[string]*sync.Mutex // one resync per room mailbox at a time in this instance

	coalesced atomic.Int64
}

// NewCache returns the cache on the module's data and the registry's tenants and subscriptions.
func NewCache(d *Data, st *registry.Registry, g GraphClients, o CacheOptions) *Cache {
	if o.Lifetime <= 0 || o.Lifetime > graphsubs.MaxLifetime {
		o.Lifetime = graphsubs.MaxLifetime
	}
	if o.RenewMargin <= 0 {
		o.RenewMargin = 48 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	keep := &graphsubs.Keeper{Subs: st.Subscriptions, Kind: registry.KindBooking, NotificationURL: o.NotificationURL,
		LifecycleURL: o.LifecycleURL, Lifetime: o.Lifetime, Now: o.Now, Log: o.Log}
	return &Cache{d: d, tenants: st.Tenants, keep: keep, graph: g, o: o, rooms: map[string]*sync.Mutex{}}
}

// Window is the tenant's booking window: from the start of today (UTC) for its BookingWindowDays,
// capped by MaxWindowDays — the same rule the retention sweep applies. Availability takes queries from
// the start of today; what has ended before now is no longer cached and shows as free.
func (c *Cache) Window(ctx context.Context, tenant core.TenantID) (from, to time.Time, err error) {
	t, err := c.tenants.Get(ctx, tenant)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read tenant: %w", err)
	}
	return windowOf(t.BookingWindowDays, c.d.MaxWindowDays, c.o.Now())
}

func windowOf(days, max int, now time.Time) (time.Time, time.Time, error) {
	if max <= 0 {
		return time.Time{}, time.Time{}, errors.New("no booking window configured")
	}
	if days <= 0 || days > max {
		days = max
	}
	from := now.UTC().Truncate(24 * time.Hour)
	return from, from.AddDate(0, 0, days), nil
}

func (c *Cache) lock(tenant core.TenantID, room string) func() {
	c.mu.Lock()
	m := c.rooms[string(tenant)+"/"+room]
	if m == nil {
		m = &sync.Mutex{}
		c.rooms[string(tenant)+"/"+room] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// ResyncRoom reads the room's whole window from Graph (calendarView: series expanded, only times and
// free/busy selected) and makes the cached bookings equal to it. Re-reading the window rather than
// the one event makes a notification of any kind — created, updated, deleted, of a series master or
// one occurrence, replayed or out of order — end in the same state, and nothing but the selected
// fields ever reaches the process. A room no longer served loses its bookings.
func (c *Cache) ResyncRoom(ctx context.Context, tenant core.TenantID, room string) (int, error) {
	room, err := NormEmail(room)
	if err != nil {
		return 0, err
	}
	defer c.lock(tenant, room)()
	r, err := c.d.Rooms.Rooms.Get(ctx, tenant, room)
	if errors.Is(err, tables.ErrNotFound) {
		_, err := c.d.Bookings.DeletePrefix(ctx, tenant, room+tables.KeySep)
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("read room: %w", err)
	}
	from, to, err := c.Window(ctx, tenant)
	if err != nil {
		return 0, err
	}
	g, err := c.graph.For(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("graph client: %w", err)
	}
	// What has ended is not cached (the retention sweep would remove it within the hour anyway).
	readAt := c.o.Now().UTC()
	if readAt.After(from) {
		from = readAt
	}
	events, err := g.CalendarView(ctx, room, from, to)
	if err != nil {
		return 0, fmt.Errorf("read room calendar: %w", err)
	}
	keep := map[string]bool{}
	var rows []Booking
	newest := r.LastChangeAt
	for _, e := range events {
		// A series master never comes from calendarView; it is left out should one appear.
		if e.ID == "" || e.Type == "seriesMaster" || !e.End.After(from) {
			continue
		}
		b := Booking{RoomID: room, EventID: e.ID, ICalUID: e.ICalUID, Start: e.Start.UTC(), End: e.End.UTC(),
			ShowAs: e.ShowAs, IsCancelled: e.IsCancelled, Type: e.Type, LastModified: e.LastModified.UTC()}
		rk, err := b.RowKey()
		if err != nil {
			continue // an id too long for a key: the booking cannot be cached
		}
		keep[rk] = true
		rows = append(rows, b)
		if b.LastModified.After(newest) {
			newest = b.LastModified
		}
	}
	if err := c.d.Bookings.UpsertBatch(ctx, tenant, rows); err != nil {
		return 0, fmt.Errorf("store bookings: %w", err)
	}
	var gone []string
	opts := &tables.ListOptions{Select: []string{"End"}}
	for {
		page, err := c.d.Bookings.ListPrefix(ctx, tenant, room+tables.KeySep, opts)
		if err != nil {
			return 0, fmt.Errorf("read bookings: %w", err)
		}
		for _, b := range page.Items {
			if rk, _ := b.RowKey(); !keep[rk] {
				gone = append(gone, rk)
			}
		}
		if page.Next == "" {
			break
		}
		opts.Token = page.Next
	}
	if _, err := c.d.Bookings.DeleteBatch(ctx, tenant, gone); err != nil {
		return 0, fmt.Errorf("delete bookings: %w", err)
	}
	// The stamp is written after the rows (the availability index re-reads a room when it moves) and
	// says when the read began: every change notified before then is in these rows (Process).
	if _, err := c.d.Rooms.Rooms.Update(ctx, tenant, room, func(r *Room) error {
		r.ResyncedAt, r.LastChangeAt = readAt, newest
		return nil
	}); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return 0, fmt.Errorf("record resync: %w", err)
	}
	return len(rows), nil
}

// RoomResync is what an admin's resync of one room did.
type RoomResync struct {
	Room       string    `json:"room"`
	Bookings   int       `json:"bookings"`   // bookings cached for the room's window now
	ResyncedAt time.Time `json:"resyncedAt"` // when the read began: every change made before is in
	// Subscribed says whether Graph notifies the room's changes; false until the next maintenance run
	// (every 15 minutes) creates its subscription.
	Subscribed bool `json:"subscribed"`
}

// Resync re-reads one served room's window now, for an admin who sees a room's bookings go wrong
// (a change Graph never notified) rather than wait for its night; audited as rooms.resync. A room the
// tenant does not serve is 404; Microsoft 365 failing is 503 and changes nothing.
func (c *Cache) Resync(ctx context.Context, a core.Actor, tenant core.TenantID, room string) (RoomResync, error) {
	if c.Audit == nil {
		return RoomResync{}, errNotAudited
	}
	room, err := NormEmail(room)
	if err != nil {
		return RoomResync{}, apperr.New(apperr.Invalid, "roomEmail: "+err.Error(), nil)
	}
	r, err := c.d.Rooms.Rooms.Get(ctx, tenant, room)
	if errors.Is(err, tables.ErrNotFound) {
		return RoomResync{}, apperr.New(apperr.NotFound, "no such room: the tenant does not serve it (GET rooms lists those it does)", nil)
	}
	if err != nil {
		return RoomResync{}, fmt.Errorf("read room: %w", err)
	}
	started := c.o.Now().UTC()
	n, err := c.ResyncRoom(ctx, tenant, room)
	if err != nil {
		c.o.Log.WarnContext(ctx, "room resync failed", "error", err)
		err = apperr.New(apperr.Unavailable, "the room's calendar could not be read from Microsoft 365 now; the cached bookings are unchanged, try again in a few minutes", err)
	}
	if err := c.Audit.Record(ctx, tenant, a, "rooms.resync", "room", room, err); err != nil {
		return RoomResync{}, err
	}
	return RoomResync{Room: room, Bookings: n, ResyncedAt: started, Subscribed: r.SubscriptionID != ""}, nil
}

// resourceOf is the subscription resource of a room's events.
func resourceOf(room string) string { return "/users/" + url.PathEscape(room) + "/events" }

var resourceRoom = regexp.MustCompile(`^/users/([^/]+)/events$`)

// roomOf reads the room back from a subscription's resource.
func roomOf(resource string) (string, bool) {
	m := resourceRoom.FindStringSubmatch(resource)
	if m == nil {
		return "", false
	}
	room, err := url.PathUnescape(m[1])
	if err != nil {
		return "", false
	}
	room, err = NormEmail(room)
	return room, err == nil
}

// MaintainResult is what one maintenance pass over a tenant did.
type MaintainResult struct {
	Created, Renewed, Deleted, Resynced int
}

// Maintain keeps the tenant's subscriptions in line with its rooms — one per served room, created
// when missing, renewed RenewMargin before expiry, deleted when its room is no longer served — and
// resyncs the rooms whose routine resync is due (due: the job's NightlyDue, or ResyncedBefore), at most
// maxResyncs of them (so one tenant's many rooms do not starve the next tenant's in a run). Failures
// are collected per room.
func (c *Cache) Maintain(ctx context.Context, tenant core.TenantID, due func(room string, resyncedAt time.Time) bool, maxResyncs int, spent func() bool) (MaintainResult, error) {
	var res MaintainResult
	if c.o.NotificationURL == "" {
		return res, apperr.New(apperr.Unavailable, "no public notification URL configured", nil)
	}
	g, err := c.graph.For(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("graph client: %w", err)
	}
	rooms := map[string]Room{}
	for r, err := range c.d.Rooms.Rooms.All(ctx, tenant, nil) {
		if err != nil {
			return res, fmt.Errorf("read rooms: %w", err)
		}
		rooms[r.Email] = r
	}
	var errs []error
	now := c.o.Now()
	covered := map[string]bool{}
	subs, err := c.keep.All(ctx, tenant)
	if err != nil {
		return res, err
	}
	for _, s := range subs {
		room, ok := roomOf(s.Resource)
		r, served := rooms[room]
		switch {
		case !ok || !served || covered[room] || r.SubscriptionID != "" && r.SubscriptionID != s.ID:
			if err := c.keep.Remove(ctx, tenant, g, s.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Deleted++
		case s.ExpiresAt.Sub(now) < c.o.RenewMargin:
			// Expired or gone at Graph: its record goes, a new one is created below and the room resynced.
			gone, err := c.keep.Renew(ctx, tenant, g, s)
			switch {
			case gone && err == nil:
				res.Deleted++
			case err != nil:
				errs = append(errs, err)
				covered[room] = !gone
			default:
				res.Renewed++
				covered[room] = true
			}
		default:
			covered[room] = true
		}
	}
	// New subscriptions count against the same cap as resyncs (each is followed by one): a tenant
	// whose 2,000 rooms are all new takes many runs instead of every run's whole budget.
	for room := range rooms {
		if covered[room] || res.Resynced >= maxResyncs || spent != nil && spent() {
			continue
		}
		if err := c.subscribe(ctx, tenant, g, room); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Created++
		// Changes made before the subscription existed were never notified.
		if _, err := c.ResyncRoom(ctx, tenant, room); err != nil {
			errs = append(errs, fmt.Errorf("resync new room: %w", err))
			continue
		}
		res.Resynced++
	}
	for room, r := range rooms {
		if res.Resynced >= maxResyncs || spent != nil && spent() {
			break
		}
		if !due(room, r.ResyncedAt) || !covered[room] {
			continue
		}
		if _, err := c.ResyncRoom(ctx, tenant, room); err != nil {
			errs = append(errs, fmt.Errorf("resync room: %w", err))
			continue
		}
		res.Resynced++
	}
	return res, errors.Join(errs...)
}

// subscribe creates the room's subscription and records it on the room.
func (c *Cache) subscribe(ctx context.Context, tenant core.TenantID, g Graph, room string) error {
	sub, err := c.keep.Create(ctx, tenant, g, resourceOf(room))
	if err != nil {
		return err
	}
	if _, err := c.d.Rooms.Rooms.Update(ctx, tenant, room, func(r *Room) error {
		r.SubscriptionID = sub.ID
		return nil
	}); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return fmt.Errorf("record room subscription: %w", err)
	}
	return nil
}

// Process is the worker of booking notifications (queue kind booking): the notification names the
// subscription, the subscription the room; the room's window is re-read. A notification for a
// subscription we no longer hold is dropped (its room is no longer served).
func (c *Cache) Process(ctx context.Context, d *queue.Delivery) error {
	ctx, tenant, sub, held, err := c.keep.Received(ctx, d)
	if err != nil || !held {
		return err
	}
	room, ok := roomOf(sub.Resource)
	if !ok {
		return apperr.New(apperr.Invalid, "booking notification for a subscription that is not a room's", nil)
	}
	// Bursts coalesce: a room read whole after this notification was queued already holds its change
	// (Graph notifies after the change is stored), so a burst of changes to one room costs one read of its
	// window, not one per notification — Outlook's 4 concurrent requests and 10,000 per 10 minutes per
	// mailbox are spent on news. The queue's enqueued time may be cut to the second (devhost does), so
	// the read must have begun more than a second after it.
	if !d.EnqueuedTime.IsZero() {
		r, err := c.d.Rooms.Rooms.Get(ctx, tenant, room)
		if err != nil && !errors.Is(err, tables.ErrNotFound) {
			return fmt.Errorf("read room: %w", err)
		}
		if err == nil && r.ResyncedAt.After(d.EnqueuedTime.Add(time.Second)) {
			c.coalesced.Add(1)
			c.o.Log.InfoContext(ctx, "room notification already covered by a later read", "subscription_id", sub.ID)
			return nil
		}
	}
	n2, err := c.ResyncRoom(ctx, tenant, room)
	if err != nil {
		return err
	}
	c.o.Log.InfoContext(ctx, "room bookings refreshed", "subscription_id", sub.ID, "bookings", n2)
	return nil
}

// Coalesced counts the room notifications that needed no read because a later read covered them.
func (c *Cache) Coalesced() int64 { return c.coalesced.Load() }

// Lifecycle events (graphsubs).
const (
	EventReauthorizationRequired = graphsubs.EventReauthorizationRequired
	EventSubscriptionRemoved     = graphsubs.EventSubscriptionRemoved
	EventMissed                  = graphsubs.EventMissed
)

// Handle acts on a lifecycle event of a room subscription: reauthorize it, recreate a removed one
// (and resync the room: changes in between were never notified), resync after missed notifications.
func (c *Cache) Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error {
	if sub.Kind != registry.KindBooking {
		return nil
	}
	room, ok := roomOf(sub.Resource)
	if !ok {
		return apperr.New(apperr.Invalid, "lifecycle event for a subscription that is not a room's", nil)
	}
	g, err := c.graph.For(ctx, tenant)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	reread, err := c.keep.Lifecycle(ctx, tenant, g, sub, event, func() (bool, error) {
		if _, err := c.d.Rooms.Rooms.Get(ctx, tenant, room); errors.Is(err, tables.ErrNotFound) {
			return false, nil // no longer served
		} else if err != nil {
			return false, fmt.Errorf("read room: %w", err)
		}
		return true, c.subscribe(ctx, tenant, g, room)
	})
	if err != nil || !reread {
		return err
	}
	_, err = c.ResyncRoom(ctx, tenant, room)
	return err
}

// Freshness is what Health shows of a tenant's room cache.
type Freshness struct {
	Rooms             int        `json:"rooms"`             // rooms served
	SubscriptionsLive int        `json:"subscriptionsLive"` // room subscriptions not expired
	LastSyncAt        *time.Time `json:"lastSyncAt"`        // last metadata sync (Places)
	// OldestResyncAt is the least recently read whole room: every room was resynced since.
	OldestResyncAt *time.Time `json:"oldestResyncAt"`
	LastResyncAt   *time.Time `json:"lastResyncAt"`
	// NewestChangeAgeSeconds is how long ago the newest applied booking change was made in Exchange.
	NewestChangeAgeSeconds *int64 `json:"newestChangeAgeSeconds"`
}

// Freshness reads the tenant's room cache state (rooms, settings and room subscriptions).
func (c *Cache) Freshness(ctx context.Context, tenant core.TenantID) (Freshness, error) {
	var f Freshness
	if err := tables.CheckTenant(tenant); err != nil {
		return f, err
	}
	tp := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	if s, err := c.d.Rooms.Settings.Get(ctx, tenant, settingsRow); err == nil {
		f.LastSyncAt = tp(s.SyncedAt)
	} else if !errors.Is(err, tables.ErrNotFound) {
		return f, fmt.Errorf("read room settings: %w", err)
	}
	var oldest, last, newest time.Time
	unsynced := false
	for r, err := range c.d.Rooms.Rooms.All(ctx, tenant, &tables.ListOptions{Select: []string{"ResyncedAt", "LastChangeAt"}}) {
		if err != nil {
			return f, fmt.Errorf("read rooms: %w", err)
		}
		f.Rooms++
		if r.ResyncedAt.IsZero() {
			unsynced = true
		} else if oldest.IsZero() || r.ResyncedAt.Before(oldest) {
			oldest = r.ResyncedAt
		}
		if r.ResyncedAt.After(last) {
			last = r.ResyncedAt
		}
		if r.LastChangeAt.After(newest) {
			newest = r.LastChangeAt
		}
	}
	if !unsynced {
		f.OldestResyncAt = tp(oldest)
	}
	f.LastResyncAt = tp(last)
	if !newest.IsZero() {
		age := int64(c.o.Now().Sub(newest) / time.Second)
		f.NewestChangeAgeSeconds = &age
	}
	now := c.o.Now()
	for s, err := range c.keep.Subs.All(ctx, tenant, &tables.ListOptions{Select: []string{"Kind", "ExpiresAt"}}) {
		if err != nil {
			return f, fmt.Errorf("read subscriptions: %w", err)
		}
		if s.Kind == registry.KindBooking && s.ExpiresAt.After(now) {
			f.SubscriptionsLive++
		}
	}
	return f, nil
}

// Unsubscribe deletes the tenant's room subscriptions at Graph and their records: a suspended or
// cancelled tenant's rooms are not followed. The cached bookings stay until the tenant's data goes
// (T24/T7); MaintainRooms subscribes again after a reactivation.
func (c *Cache) Unsubscribe(ctx context.Context, tenant core.TenantID) (int, error) {
	var ids []string
	for s, err := range c.keep.Subs.All(ctx, tenant, &tables.ListOptions{Select: []string{"Kind"}}) {
		if err != nil {
			return 0, fmt.Errorf("read subscriptions: %w", err)
		}
		if s.Kind == registry.KindBooking {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	g, err := c.graph.For(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("graph client: %w", err)
	}
	var errs []error
	n := 0
	for _, id := range ids {
		if err := c.keep.Remove(ctx, tenant, g, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// OnStateChange follows a tenant's lifecycle (tenants.StateHook): a tenant that is no longer active
// loses its room subscriptions at once; an active one gets them from the next MaintainRooms run.
func (c *Cache) OnStateChange(ctx context.Context, tenant core.TenantID, state registry.TenantState) error {
	if state == registry.TenantActive {
		return nil
	}
	_, err := c.Unsubscribe(ctx, tenant)
	return err
}
