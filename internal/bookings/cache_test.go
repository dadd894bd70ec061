package bookings_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

const clientID = "11111111-2222-3333-4444-555555555555"

// appGraph is the real app-only client (certificate credential) against the fake authority and Graph.
type appGraph struct {
	auth *graphtest.Authority
	g    *graphtest.Graph
	pem  []byte
	mu   sync.Mutex
	m    map[core.TenantID]*graph.Client
}

func (a *appGraph) For(_ context.Context, t core.TenantID) (bookings.Graph, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.m[t]; ok {
		return c, nil
	}
	cred, err := graph.NewAppCredential(string(t), clientID, a.pem, graph.AuthOptions{AuthorityHost: a.auth.Host(), HTTPClient: a.auth.Client()})
	if err != nil {
		return nil, err
	}
	c, err := graph.New(cred, graph.Options{BaseURL: a.g.URL()})
	if err != nil {
		return nil, err
	}
	a.m[t] = c
	return c, nil
}

type cacheEnv struct {
	st     *registry.Registry
	data   *bookings.Data
	graph  *graphtest.Graph
	cache  *bookings.Cache
	dir    *bookings.Directory
	tenant core.TenantID
	now    time.Time
	// deliveries the fake's notifications reach (the webhook and queue stand here for the spine,
	// which the e2e test runs for real)
	hook *httptest.Server
	gc   *appGraph
}

func newCacheEnv(t testing.TB, now time.Time, rooms ...string) *cacheEnv {
	t.Helper()
	env := storetest.NewEnv(t, storetest.Options{})
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	auth := graphtest.NewAuthority(t)
	auth.AppCertificate = cert
	tenant := storetest.NewTenantID(t)
	auth.GrantConsent(string(tenant), clientID)
	g := graphtest.NewGraph(t, auth)
	// The notification URL answers Graph's validation handshake with the decoded token.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(tok))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	ctx := context.Background()
	if err := env.Store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive, BookingWindowDays: 14}); err != nil {
		t.Fatal(err)
	}
	data := bookings.OpenData(env.DB)
	data.MaxWindowDays = 21
	clock := func() time.Time { return now }
	var places []bookings.PlaceRoom
	for _, r := range rooms {
		g.PutRoom(string(tenant), graphtest.PlaceRoom{EmailAddress: r, DisplayName: r})
		places = append(places, bookings.PlaceRoom{Email: r, DisplayName: r})
	}
	dir := bookings.NewDirectory(data, &places_{rooms: places}, clock)
	if _, err := dir.Sync(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	gc := &appGraph{auth: auth, g: g, pem: pemText, m: map[core.TenantID]*graph.Client{}}
	cache := bookings.NewCache(data, env.Store, gc,
		bookings.CacheOptions{NotificationURL: hook.URL + "/api/graph/notifications", LifecycleURL: hook.URL + "/api/graph/lifecycle", Now: clock})
	return &cacheEnv{st: env.Store, data: data, graph: g, cache: cache, dir: dir, tenant: tenant, now: now, hook: hook, gc: gc}
}

// places_ is a fixed directory without room lists.
type places_ struct{ rooms []bookings.PlaceRoom }

func (p *places_) ListRooms(_ context.Context, _ core.TenantID, list string) ([]bookings.PlaceRoom, error) {
	if list != "" {
		return nil, nil
	}
	return p.rooms, nil
}
func (p *places_) ListRoomLists(context.Context, core.TenantID) ([]bookings.PlaceRoomList, error) {
	return nil, nil
}

func (e *cacheEnv) bookingsOf(t *testing.T, room string) []string {
	t.Helper()
	page, err := e.data.Bookings.ListRoom(context.Background(), e.tenant, room, e.now.AddDate(-1, 0, 0), e.now.AddDate(1, 0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range page.Items {
		s := b.EventID + " " + b.Type + " " + b.Start.Format("01-02T15:04") + "/" + b.End.Format("01-02T15:04") + " " + b.ShowAs
		if b.IsCancelled {
			s += " cancelled"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// subscribed runs maintenance once (the room subscribed and read) and returns the room's one
// subscription at the fake Graph.
func (e *cacheEnv) subscribed(t *testing.T, room string) []graphtest.Subscription {
	t.Helper()
	if _, err := e.cache.Maintain(context.Background(), e.tenant, bookings.ResyncedBefore(e.now), 10, nil); err != nil {
		t.Fatal(err)
	}
	subs := e.graph.EventSubscriptions(string(e.tenant), room)
	if len(subs) != 1 {
		t.Fatalf("subscriptions = %d", len(subs))
	}
	return subs
}

// deliver runs the notification through the worker as the queue would hand it over.
func (e *cacheEnv) deliver(t testing.TB, ds []graphtest.Delivery) {
	t.Helper()
	if len(ds) == 0 {
		t.Fatal("no subscription got a notification")
	}
	for _, d := range ds {
		body := strings.TrimSuffix(strings.TrimPrefix(string(d.Body), `{"value":[`), `]}`)
		err := e.cache.Process(context.Background(), &queue.Delivery{Body: []byte(body),
			ApplicationProperties: map[string]string{queue.PropTenant: string(e.tenant), queue.PropKind: string(registry.KindBooking)}})
		if err != nil {
			t.Fatalf("process: %v", err)
		}
	}
}

func TestCacheFollowsTheRoomCalendar(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
	day := now.Truncate(24 * time.Hour)
	const room = "oslo@contoso.com"
	e := newCacheEnv(t, now, room, "bergen@contoso.com")
	ten := string(e.tenant)
	ctx := context.Background()

	// Window edges: one crossing midnight and now, an all-day event, a series with a moved and a
	// deleted occurrence, one past the tenant's 14 days, one ended yesterday.
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "overnight", Subject: "Alice Example", Organizer: "alice@contoso.com",
		Attendees: []string{"bob@contoso.com"}, Start: day.Add(-2 * time.Hour), End: day.Add(12 * time.Hour)})
	// Ended this morning (now is 10:30): not cached.
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "morning", Start: day.Add(8 * time.Hour), End: day.Add(9 * time.Hour)})
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "allday", IsAllDay: true, ShowAs: "free", Start: day.AddDate(0, 0, 1), End: day.AddDate(0, 0, 2)})
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "weekly", Start: day.Add(14 * time.Hour), End: day.Add(15 * time.Hour), EveryDays: 7, Count: 3,
		Exceptions: map[int]graphtest.Exception{1: {Start: day.AddDate(0, 0, 8).Add(9 * time.Hour), End: day.AddDate(0, 0, 8).Add(10 * time.Hour)}, 2: {Deleted: true}}})
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "far", Start: day.AddDate(0, 0, 15), End: day.AddDate(0, 0, 15).Add(time.Hour)})
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "past", Start: day.AddDate(0, 0, -1), End: day.AddDate(0, 0, -1).Add(time.Hour)})

	res, err := e.cache.Maintain(ctx, e.tenant, bookings.ResyncedBefore(now), 10, nil)
	if err != nil || res.Created != 2 || res.Resynced != 2 {
		t.Fatalf("maintain = %+v, %v; want 2 subscriptions created and 2 rooms read", res, err)
	}
	want := []string{"allday singleInstance 03-03T00:00/03-04T00:00 free", "overnight singleInstance 03-01T22:00/03-02T12:00 busy",
		"weekly_0 occurrence 03-02T14:00/03-02T15:00 busy", "weekly_1 exception 03-10T09:00/03-10T10:00 busy"}
	if got := e.bookingsOf(t, room); !slices.Equal(got, want) {
		t.Errorf("bookings:\n got %q\nwant %q", got, want)
	}
	subs := e.graph.EventSubscriptions(ten, room)
	if len(subs) != 1 || subs[0].ChangeType != "created,updated,deleted" || subs[0].IncludeResourceData ||
		subs[0].ExpiresAt.Sub(time.Now()) > graphtest.MaxOutlookLifetime {
		t.Fatalf("subscriptions of the room = %+v", subs)
	}

	// Moved, cancelled, deleted — each notified and applied by the worker.
	e.deliver(t, e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "overnight", Start: day.Add(11 * time.Hour), End: day.Add(12 * time.Hour)}))
	e.deliver(t, e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "weekly", Start: day.Add(14 * time.Hour), End: day.Add(15 * time.Hour),
		EveryDays: 7, Count: 3, IsCancelled: true}))
	e.deliver(t, e.graph.DeleteEvent(ten, room, "allday"))
	want = []string{"overnight singleInstance 03-02T11:00/03-02T12:00 busy", "weekly_0 occurrence 03-02T14:00/03-02T15:00 busy cancelled",
		"weekly_1 occurrence 03-09T14:00/03-09T15:00 busy cancelled"} // weekly_2 starts where the 14-day window ends
	if got := e.bookingsOf(t, room); !slices.Equal(got, want) {
		t.Errorf("after changes:\n got %q\nwant %q", got, want)
	}
	r, _ := e.data.Rooms.Rooms.Get(ctx, e.tenant, room)
	if r.SubscriptionID != subs[0].ID || r.ResyncedAt.IsZero() || r.LastChangeAt.IsZero() {
		t.Errorf("room state = %+v", r)
	}

	// subscriptionRemoved: a new subscription, the room read again.
	sub, _ := e.st.Subscriptions.Get(ctx, e.tenant, subs[0].ID)
	e.graph.DropSubscription(sub.ID)
	if err := e.cache.Handle(ctx, e.tenant, sub, bookings.EventSubscriptionRemoved); err != nil {
		t.Fatal(err)
	}
	again := e.graph.EventSubscriptions(ten, room)
	if len(again) != 1 || again[0].ID == sub.ID {
		t.Fatalf("after subscriptionRemoved: %+v", again)
	}
	if _, err := e.st.Subscriptions.Get(ctx, e.tenant, sub.ID); err == nil {
		t.Error("the removed subscription's record is still there")
	}

	// Renewal: within the margin the subscription is renewed, not recreated. (The fake Graph keeps
	// real time while this test's clock is fixed in March: the margin spans the difference.)
	before := e.graph.Count(http.MethodPatch, "/subscriptions/")
	e.cache = bookings.NewCache(e.data, e.st, e.gc, bookings.CacheOptions{NotificationURL: e.hook.URL + "/n", LifecycleURL: e.hook.URL + "/l",
		RenewMargin: 5 * 365 * 24 * time.Hour, Now: func() time.Time { return now }})
	res, err = e.cache.Maintain(ctx, e.tenant, bookings.ResyncedBefore(day), 10, nil)
	if err != nil || res.Renewed != 2 || res.Created != 0 {
		t.Errorf("renewal pass = %+v, %v", res, err)
	}
	if e.graph.Count(http.MethodPatch, "/subscriptions/") != before+2 {
		t.Error("no PATCH renewals reached Graph")
	}

	f, err := e.cache.Freshness(ctx, e.tenant)
	if err != nil || f.Rooms != 2 || f.SubscriptionsLive != 2 || f.OldestResyncAt == nil || f.LastSyncAt == nil || f.NewestChangeAgeSeconds == nil {
		t.Errorf("freshness = %+v, %v", f, err)
	}

	// A room no longer served: its subscription goes and its bookings with it.
	e.graph.DeleteRoom(ten, room)
	if _, err := bookings.NewDirectory(e.data, &places_{rooms: []bookings.PlaceRoom{{Email: "bergen@contoso.com"}}}, func() time.Time { return now }).Sync(ctx, e.tenant); err != nil {
		t.Fatal(err)
	}
	if got := e.bookingsOf(t, room); len(got) != 0 {
		t.Errorf("bookings of an unserved room: %q", got)
	}
	if res, err = e.cache.Maintain(ctx, e.tenant, bookings.ResyncedBefore(day), 10, nil); err != nil || res.Deleted != 1 {
		t.Errorf("maintain after removal = %+v, %v; want 1 deleted", res, err)
	}
	if n := len(e.graph.EventSubscriptions(ten, room)); n != 0 {
		t.Errorf("subscriptions left on the unserved room: %d", n)
	}

	// Suspension: the tenant's room subscriptions go at Graph and in the registry; the bookings stay.
	if err := e.cache.OnStateChange(ctx, e.tenant, registry.TenantSuspended); err != nil {
		t.Fatal(err)
	}
	if n := len(e.graph.EventSubscriptions(ten, "bergen@contoso.com")); n != 0 {
		t.Errorf("subscriptions of a suspended tenant at Graph: %d", n)
	}
	for s, err := range e.st.Subscriptions.All(ctx, e.tenant, nil) {
		if err != nil || s.Kind == registry.KindBooking {
			t.Errorf("subscription record left after suspension: %+v, %v", s, err)
		}
	}
}

// BenchmarkWorkerThroughput is the booking worker end to end except the webhook: a notification of a
// changed event in a room with a busy fortnight (80 bookings in its window, 8 calendarView pages) is
// applied — calendarView through the real Graph client to the fake over HTTP, the room's rows written
// to Azurite. Reported: notifications per second.
func BenchmarkWorkerThroughput(b *testing.B) {
	now := time.Now().UTC()
	const room = "oslo@contoso.com"
	e := newCacheEnv(b, now, room)
	ten := string(e.tenant)
	day := now.Truncate(24 * time.Hour)
	for d := range 10 {
		for h := 8; h < 16; h++ {
			e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: fmt.Sprintf("ev-%d-%d", d, h), Subject: "x",
				Start: day.AddDate(0, 0, d+1).Add(time.Duration(h) * time.Hour), End: day.AddDate(0, 0, d+1).Add(time.Duration(h)*time.Hour + 45*time.Minute)})
		}
	}
	if _, err := e.cache.Maintain(context.Background(), e.tenant, bookings.ResyncedBefore(now), 10, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		e.deliver(b, e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "ev-0-8", Start: day.AddDate(0, 0, 1).Add(time.Duration(8+i%8) * time.Hour),
			End: day.AddDate(0, 0, 1).Add(time.Duration(8+i%8)*time.Hour + 30*time.Minute)}))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notifications/s")
}

// The routine resync happens at night, spread over it: over a night of 15-minute runs each of 2,000
// rooms read the day before is due exactly from its own slot on, none by day, no run's share of newly
// due rooms is much above an even spread, and a room missed for 30 hours is due at any hour.
func TestNightlyResyncIsSpreadOverTheNight(t *testing.T) {
	day := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	lastRead := day.Add(-20 * time.Hour) // yesterday afternoon
	rooms := make([]string, 2000)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("room-%04d@contoso.com", i)
	}
	firstDue := map[string]time.Time{}
	perRun := map[time.Time]int{}
	for at := day.Add(-6 * time.Hour); at.Before(day.Add(18 * time.Hour)); at = at.Add(15 * time.Minute) {
		for _, r := range rooms {
			if _, seen := firstDue[r]; !seen && bookings.NightlyDue(r, lastRead, at) {
				firstDue[r] = at
				perRun[at]++
			}
		}
	}
	if len(firstDue) != len(rooms) {
		t.Fatalf("%d of %d rooms became due", len(firstDue), len(rooms))
	}
	for r, at := range firstDue {
		if at.Before(day) || !at.Before(day.Add(bookings.NightWindow)) {
			t.Errorf("%s first due at %s, outside the night window", r, at)
		}
	}
	even := len(rooms) / int(bookings.NightWindow/(15*time.Minute))
	for at, n := range perRun {
		if n > even*3/2 {
			t.Errorf("%d rooms became due at %s; an even spread is %d per run", n, at.Format("15:04"), even)
		}
	}
	// Read tonight: not due again until tomorrow night. Read 31 hours ago: due now, at noon.
	noon := day.Add(12 * time.Hour)
	if bookings.NightlyDue(rooms[0], day.Add(time.Hour), day.Add(4*time.Hour+59*time.Minute)) {
		t.Error("a room read tonight was due again the same night")
	}
	if !bookings.NightlyDue(rooms[0], noon.Add(-31*time.Hour), noon) || bookings.NightlyDue(rooms[0], noon.Add(-29*time.Hour), noon) {
		t.Error("the 30-hour fallback does not hold")
	}
}

// A notification queued before the room's last whole read needs no read of its own: a burst of
// changes to one room costs one calendarView, and the cache still holds every change. One queued after
// that read is read.
func TestBurstsOfRoomNotificationsCoalesce(t *testing.T) {
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	const room = "oslo@contoso.com"
	e := newCacheEnv(t, now, room)
	ctx := context.Background()
	subs := e.subscribed(t, room)
	delivery := func(enqueued time.Time) *queue.Delivery {
		body, _ := json.Marshal(map[string]any{"subscriptionId": subs[0].ID, "changeType": "updated",
			"resource": "Users/" + room + "/Events/AAMk1", "tenantId": string(e.tenant)})
		return &queue.Delivery{MessageID: "m", Body: body, EnqueuedTime: enqueued,
			ApplicationProperties: map[string]string{queue.PropTenant: string(e.tenant)}}
	}
	reads := func() int { return e.graph.Count(http.MethodGet, "/users/"+room+"/calendarView") }
	before := reads()
	for i := 0; i < 5; i++ { // a burst queued before the read Maintain just made
		if err := e.cache.Process(ctx, delivery(now.Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if got := reads() - before; got != 0 || e.cache.Coalesced() != 5 {
		t.Errorf("burst before the last read: %d reads, %d coalesced; want 0 and 5", got, e.cache.Coalesced())
	}
	// Within a second of the read (the enqueued time may be cut to the second): read again.
	if err := e.cache.Process(ctx, delivery(now.Add(-500*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Process(ctx, delivery(now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := reads() - before; got != 2 {
		t.Errorf("notifications at or after the last read: %d reads, want 2", got)
	}
}

// Notifications of one room handled at once on one instance read its calendar one at a time (the
// room's lock; across instances the room's Service Bus session does it), so a burst never meets
// Outlook's 4-concurrent-requests limit on the mailbox.
func TestOneRoomIsReadOneRequestAtATime(t *testing.T) {
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	const room = "oslo@contoso.com"
	e := newCacheEnv(t, now, room)
	ctx := context.Background()
	subs := e.subscribed(t, room)
	e.graph.MailboxLatency = 20 * time.Millisecond
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"subscriptionId": subs[0].ID, "changeType": "updated",
				"resource": fmt.Sprintf("Users/%s/Events/AAMk%d", room, i), "tenantId": string(e.tenant)})
			// Queued after the last read, so none is coalesced: each reads the window.
			if err := e.cache.Process(ctx, &queue.Delivery{MessageID: "m", Body: body, EnqueuedTime: now.Add(time.Minute),
				ApplicationProperties: map[string]string{queue.PropTenant: string(e.tenant)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := e.graph.MaxMailboxConcurrency(clientID, string(e.tenant), room); got != 1 {
		t.Errorf("requests to the room mailbox at once = %d, want 1", got)
	}
	for _, r := range e.graph.Requests() {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("%s %s throttled", r.Method, r.Path)
		}
	}
}

// An admin who finds a room's bookings wrong (a change Graph never notified) re-reads it at once: the
// cache equals the calendar again, the resync is audited with its outcome, a room not served is 404,
// and Microsoft 365 failing leaves the cached bookings as they were.
func TestAdminResyncRepairsARoom(t *testing.T) {
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	day := now.Truncate(24 * time.Hour)
	const room = "oslo@contoso.com"
	e := newCacheEnv(t, now, room)
	ten := string(e.tenant)
	ctx := context.Background()
	e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "a", Start: day.Add(10 * time.Hour), End: day.Add(11 * time.Hour)})
	if _, err := e.cache.Maintain(ctx, e.tenant, bookings.ResyncedBefore(now), 10, nil); err != nil {
		t.Fatal(err)
	}
	admin := core.Actor{ID: "a0000000-0000-4000-8000-0000000000ad", Kind: "user"}
	if _, err := e.cache.Resync(ctx, admin, e.tenant, room); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("resync without an audit trail: %v, want refused", err)
	}
	trail := audit.OpenLog(e.st.DB())
	e.cache.Audit = audit.Trail{Table: trail, Now: time.Now}

	// Changes whose notifications never arrive.
	_ = e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "a", Start: day.Add(13 * time.Hour), End: day.Add(14 * time.Hour)})
	_ = e.graph.PutEvent(ten, room, graphtest.CalEvent{ID: "b", Start: day.Add(15 * time.Hour), End: day.Add(16 * time.Hour)})
	stale := []string{"a singleInstance 03-02T10:00/03-02T11:00 busy"}
	if got := e.bookingsOf(t, room); !slices.Equal(got, stale) {
		t.Fatalf("before the resync: %q", got)
	}

	// Graph failing: 503, nothing changed.
	e.graph.Fail(http.MethodGet, "/users/"+room+"/calendarView", graphtest.Failure{Status: http.StatusForbidden, Code: "ErrorAccessDenied"})
	if _, err := e.cache.Resync(ctx, admin, e.tenant, room); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("resync with Graph refusing: %v, want Unavailable", err)
	}
	if got := e.bookingsOf(t, room); !slices.Equal(got, stale) {
		t.Errorf("after a failed resync: %q, want the cache unchanged", got)
	}

	r, err := e.cache.Resync(ctx, admin, e.tenant, "Oslo@Contoso.com")
	if err != nil || r.Room != room || r.Bookings != 2 || !r.Subscribed || !r.ResyncedAt.Equal(now) {
		t.Fatalf("resync = %+v, %v", r, err)
	}
	want := []string{"a singleInstance 03-02T13:00/03-02T14:00 busy", "b singleInstance 03-02T15:00/03-02T16:00 busy"}
	if got := e.bookingsOf(t, room); !slices.Equal(got, want) {
		t.Errorf("after the resync:\n got %q\nwant %q", got, want)
	}
	if _, err := e.cache.Resync(ctx, admin, e.tenant, "nowhere@contoso.com"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a room not served: %v, want NotFound", err)
	}
	if _, err := e.cache.Resync(ctx, admin, e.tenant, "not an address"); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("a malformed address: %v, want Invalid", err)
	}

	page, err := trail.List(ctx, e.tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range page.Items {
		if a.ActorID != admin.ID {
			t.Errorf("audit entry by %q", a.ActorID)
		}
		got = append(got, a.Action+" "+a.TargetID+" "+a.Outcome)
	}
	sort.Strings(got)
	if len(got) != 2 || !strings.HasSuffix(got[0], " failed") || !strings.HasSuffix(got[1], " success") ||
		!strings.HasPrefix(got[0], "rooms.resync "+room) {
		t.Errorf("audit = %q, want the failed and the successful resync of %s", got, room)
	}
}
