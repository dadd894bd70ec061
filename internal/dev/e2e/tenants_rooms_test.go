package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

// availability is the part of GetRoomAvailability's answer the test reads.
type availability struct {
	Rooms []struct {
		Email string
		Free  bool
		Busy  []struct {
			Start, End time.Time
			ShowAs     string
		}
	}
}

// The file is named to run after setup_test.go: this test fires EnforceRetention over the shared
// Azurite, which changes the presence test's leftover tenant (its service user needs re-consent) so
// that a later RenewSubscriptions reports it as failed, and TestPresenceSetUpAsTheREADMETellsIt asserts
// a clean RenewSubscriptions run. TestRetentionTimerThroughDevhost, in tenants_test.go, runs after it
// for the same reason.
//
// The Room Finder through devhost and the real handler: rooms from a paged Places directory, the admin's
// choice of room list, room subscriptions validated through the public URL, bookings created, moved,
// cancelled and deleted in the fake Graph and reflected by the availability API, a throttled Graph, a
// removed subscription, and a raw scan of the bookings table that finds no subject, organizer or
// attendee.
func TestRoomFinderThroughDevhost(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	appCert, appKey, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	c.auth.AppCertificate = appCert
	s := startStack(t, c.settings)
	c.serve(t, s)
	der, _ := x509.MarshalPKCS8PrivateKey(appKey)
	if err := s.secrets.Set(ctx, secrets.AppClientCertName, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: appCert.Raw}))+
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	tenant := storetest.NewTenantID(t)
	ten := string(tenant)
	c.auth.GrantConsent(ten, appID)
	if err := tenantkey.New(s.secrets, tenantkey.Options{}).CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Tenants.Create(ctx, registry.Tenant{ID: tenant, State: registry.TenantActive, BookingWindowDays: 14}); err != nil {
		t.Fatal(err)
	}

	// Places: three rooms over two pages, a room list with two of them.
	c.graph.PlacesPageSize = 2
	eight, four, two := 8, 4, 2
	c.graph.PutRoom(ten, graphtest.PlaceRoom{EmailAddress: "Oslo@contoso.example", DisplayName: "Oslo", Capacity: &eight, Building: "HQ", FloorNumber: &two, BookingType: "standard", IsWheelChairAccessible: true})
	c.graph.PutRoom(ten, graphtest.PlaceRoom{EmailAddress: "bergen@contoso.example", DisplayName: "Bergen", Capacity: &four, Building: "HQ", BookingType: "standard"})
	c.graph.PutRoom(ten, graphtest.PlaceRoom{EmailAddress: "tromso@contoso.example", DisplayName: "Tromsø", Capacity: &four, Building: "North", BookingType: "standard"})
	c.graph.PutRoomList(ten, graphtest.PlaceRoomList{EmailAddress: "hq@contoso.example", DisplayName: "HQ", Rooms: []string{"oslo@contoso.example", "bergen@contoso.example"}})

	api := s.host.URL() + "/api/tenants/" + ten
	as := func(roles ...string) string {
		return "Bearer " + mintToken(t, s.host.URL(), devhost.DevTokenRequest{Tenant: ten, User: "a0000000-0000-4000-8000-0000000000b1", Roles: roles})
	}
	user, admin := as(), as(access.AppRoleTenantAdmin)
	do := func(method, u, auth, body string) (int, string) {
		t.Helper()
		return callWith(t, method, u, auth, body)
	}

	// Timers run over every active tenant in the shared Azurite, those of other tests too, whose Graph
	// is not this one: a run may report their failures. What counts is this tenant's outcome.
	fire := func(name string) {
		t.Helper()
		if err := s.host.FireTimer(ctx, name); err != nil {
			t.Logf("%s reported: %v", name, err)
		}
	}
	fire("SyncRooms")
	code, body := do("GET", api+"/rooms", user, "")
	if code != http.StatusOK || strings.Count(body, `"email":"`) != 4 || !strings.Contains(body, `"email":"oslo@contoso.example"`) {
		t.Fatalf("GET rooms as a user = %d %s; want 3 rooms and 1 list", code, body)
	}
	if code, _ := do("PUT", api+"/rooms/lists", user, `{"roomLists":["hq@contoso.example"]}`); code != http.StatusForbidden {
		t.Errorf("a plain user choosing room lists = %d, want 403", code)
	}
	code, body = do("PUT", api+"/rooms/lists", admin, `{"roomLists":["HQ@contoso.example"]}`)
	if code != http.StatusOK || strings.Contains(body, "tromso@") || !strings.Contains(body, `"selected":true`) {
		t.Fatalf("choose HQ = %d %s", code, body)
	}

	// CORS: the add-in's origin, set by the admin, passes the browser's preflight; another does not.
	if code, body := do("PUT", api+"/rooms/settings", admin, `{"addInOrigins":["https://rooms.contoso.example"]}`); code != http.StatusOK {
		t.Fatalf("SetRoomSettings = %d %s", code, body)
	}
	for origin, want := range map[string]string{"https://rooms.contoso.example": "https://rooms.contoso.example", "https://evil.example": ""} {
		req, _ := http.NewRequest(http.MethodOptions, api+"/rooms/availability", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != want {
			t.Errorf("preflight from %s = %d, allow-origin %q; want %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), want)
		}
	}

	// Bookings, in real time: the handler's window starts today (UTC).
	tomorrow := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	h := func(x float64) time.Time { return tomorrow.Add(time.Duration(x * float64(time.Hour))) }
	const oslo, bergen = "oslo@contoso.example", "bergen@contoso.example"
	secret := "Board meeting Ada Lovelace"
	c.graph.PutEvent(ten, oslo, graphtest.CalEvent{ID: "AAMkAD-board", Subject: secret, Organizer: "ada@contoso.example",
		Attendees: []string{"grace@contoso.example"}, Body: "confidential agenda", Start: h(9), End: h(10)})
	c.graph.PutEvent(ten, oslo, graphtest.CalEvent{ID: "AAMkAD-weekly", Subject: "Grace Hopper", Organizer: "grace@contoso.example",
		Start: h(13), End: h(14), EveryDays: 7, Count: 3, Exceptions: map[int]graphtest.Exception{1: {Start: h(7*24 + 15), End: h(7*24 + 16)}}})
	c.graph.PutEvent(ten, bergen, graphtest.CalEvent{ID: "AAMkAD-free", Subject: "Linus", ShowAs: "free", Start: h(9), End: h(10)})
	// Graph throttles the first calendar read; the SDK waits Retry-After and tries again.
	c.graph.Fail(http.MethodGet, "/users/", graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1"})

	fire("MaintainRooms")
	if n := len(c.graph.EventSubscriptions(ten, oslo)) + len(c.graph.EventSubscriptions(ten, bergen)); n != 2 {
		t.Fatalf("room subscriptions at Graph = %d, want 2", n)
	}
	if n := len(c.graph.EventSubscriptions(ten, "tromso@contoso.example")); n != 0 {
		t.Errorf("a room outside the chosen list got a subscription")
	}
	throttled := 0
	for _, r := range c.graph.Requests() {
		if r.Status == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled != 1 {
		t.Errorf("throttled answers = %d, want 1 (then retried)", throttled)
	}

	avail := func(from, to time.Time, extra string) availability {
		t.Helper()
		q := url.Values{"start": {from.Format(time.RFC3339)}, "end": {to.Format(time.RFC3339)}}
		code, body := do("GET", api+"/rooms/availability?"+q.Encode()+extra, user, "")
		if code != http.StatusOK {
			t.Fatalf("availability = %d %s", code, body)
		}
		var a availability
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	freeOf := func(a availability) map[string]bool {
		out := map[string]bool{}
		for _, r := range a.Rooms {
			out[r.Email] = r.Free
		}
		return out
	}
	// 10:00+01:00 is 09:00 UTC: Oslo has the board meeting, Bergen's event is shown as free.
	cet := time.FixedZone("CET", 3600)
	if got := freeOf(avail(h(9).In(cet), h(10).In(cet), "")); got[oslo] || !got[bergen] || len(got) != 2 {
		t.Errorf("09-10 = %v, want oslo busy, bergen free", got)
	}
	if got := freeOf(avail(h(7*24+15), h(7*24+16), "&capacity=6")); got[oslo] || len(got) != 1 {
		t.Errorf("the moved occurrence next week = %v, want oslo busy (capacity filter leaves bergen out)", got)
	}

	// Moved, cancelled, deleted: each notified to the public URL, queued and applied by the worker.
	send := func(ds []graphtest.Delivery) {
		t.Helper()
		if len(ds) == 0 {
			t.Fatal("no subscription was notified")
		}
		for _, d := range ds {
			if code, err := c.graph.Send(ctx, d); err != nil || code != http.StatusAccepted {
				t.Fatalf("webhook answered %d, %v", code, err)
			}
		}
		idle := func() {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for _, q := range []string{queue.Notifications, queue.Lifecycle} {
				if err := s.host.Queue(q).WaitIdle(wctx); err != nil {
					t.Fatalf("queue %s: %v", q, err)
				}
			}
		}
		idle()
	}
	send(c.graph.PutEvent(ten, oslo, graphtest.CalEvent{ID: "AAMkAD-board", Subject: secret, Organizer: "ada@contoso.example", Start: h(11), End: h(12)}))
	if got := freeOf(avail(h(9), h(10), "")); !got[oslo] {
		t.Errorf("after the move 09-10 = %v, want oslo free", got)
	}
	if got := freeOf(avail(h(11), h(12), "")); got[oslo] {
		t.Errorf("after the move 11-12 = %v, want oslo busy", got)
	}
	send(c.graph.PutEvent(ten, oslo, graphtest.CalEvent{ID: "AAMkAD-board", Subject: secret, Start: h(11), End: h(12), IsCancelled: true}))
	if got := freeOf(avail(h(11), h(12), "")); !got[oslo] {
		t.Errorf("after the cancellation 11-12 = %v, want oslo free", got)
	}
	send(c.graph.DeleteEvent(ten, oslo, "AAMkAD-board"))
	q := url.Values{"start": {h(0).Format(time.RFC3339)}, "end": {h(24).Format(time.RFC3339)}}
	code, body = do("GET", api+"/rooms/"+oslo+"/schedule?"+q.Encode(), user, "")
	if code != http.StatusOK || strings.Contains(body, "AAMkAD-board") || strings.Count(body, `"start"`) != 2 {
		t.Errorf("schedule after delete = %d %s; want only the weekly occurrence", code, body)
	}

	// Limits: over 62 days, outside the cached window.
	for name, w := range map[string][2]time.Time{"over 62 days": {h(0), h(63 * 24)}, "beyond the window": {h(20 * 24), h(21 * 24)}} {
		q := url.Values{"start": {w[0].Format(time.RFC3339)}, "end": {w[1].Format(time.RFC3339)}}
		if code, body := do("GET", api+"/rooms/availability?"+q.Encode(), user, ""); code != http.StatusBadRequest {
			t.Errorf("%s = %d %s, want 400", name, code, body)
		}
	}

	// A change whose notification never arrives: the admin sees the room's last read in GET rooms and
	// reads it again; a user may not.
	c.graph.PutEvent(ten, bergen, graphtest.CalEvent{ID: "AAMkAD-lost", Subject: "Lost notification", Start: h(13), End: h(14)})
	if got := freeOf(avail(h(13), h(14), "")); !got[bergen] {
		t.Fatalf("before the resync 13-14 = %v, want bergen still free (nothing was notified)", got)
	}
	if code, body := do("POST", api+"/rooms/"+bergen+"/resync", user, ""); code != http.StatusForbidden {
		t.Errorf("resync as a plain user = %d %s, want 403", code, body)
	}
	code, body = do("POST", api+"/rooms/"+bergen+"/resync", admin, "")
	if code != http.StatusOK || !strings.Contains(body, `"room":"`+bergen+`"`) || !strings.Contains(body, `"subscribed":true`) {
		t.Fatalf("resync = %d %s", code, body)
	}
	if got := freeOf(avail(h(13), h(14), "")); got[bergen] {
		t.Errorf("after the resync 13-14 = %v, want bergen busy", got)
	}
	if code, body := do("POST", api+"/rooms/tromso@contoso.example/resync", admin, ""); code != http.StatusNotFound {
		t.Errorf("resync of a room not served = %d %s, want 404", code, body)
	}
	if code, body := do("GET", api+"/rooms", admin, ""); code != http.StatusOK || !strings.Contains(body, `"resyncedAt":"`) {
		t.Errorf("GET rooms = %d %s, want each room's last read", code, body)
	}

	// subscriptionRemoved: Graph drops the subscription and says so; a new one is made and the room read.
	old := c.graph.EventSubscriptions(ten, oslo)[0]
	c.graph.PutEvent(ten, oslo, graphtest.CalEvent{ID: "AAMkAD-missed", Subject: "Missed while removed", Start: h(16), End: h(17)})
	if code, err := c.graph.RemoveSubscription(ctx, old.ID); err != nil || code != http.StatusAccepted {
		t.Fatalf("lifecycle post = %d, %v", code, err)
	}
	waitFor(t, "a new room subscription", func() bool {
		subs := c.graph.EventSubscriptions(ten, oslo)
		return len(subs) == 1 && subs[0].ID != old.ID
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.host.Queue(queue.Lifecycle).WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	if got := freeOf(avail(h(16), h(17), "")); got[oslo] {
		t.Errorf("the booking made while the subscription was gone: %v, want oslo busy", got)
	}

	// Health shows the tenant's admin how fresh the room cache is.
	code, body = do("GET", s.host.URL()+"/api/health?tenant="+ten, admin, "")
	var health struct {
		Stats struct {
			Rooms struct {
				Rooms, SubscriptionsLive int
				LastSyncAt, LastResyncAt *time.Time
				NewestChangeAgeSeconds   *int64
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &health); code != http.StatusOK || err != nil {
		t.Fatalf("health = %d %s", code, body)
	}
	if r := health.Stats.Rooms; r.Rooms != 2 || r.SubscriptionsLive != 2 || r.LastSyncAt == nil || r.LastResyncAt == nil ||
		r.NewestChangeAgeSeconds == nil || *r.NewestChangeAgeSeconds > 600 {
		t.Errorf("health rooms = %+v (%s)", r, body)
	}

	// Bookings that ended are removed by the retention job (rule W); those ahead stay.
	data := bookings.OpenData(s.store.DB())
	yesterday := tomorrow.AddDate(0, 0, -2)
	if err := data.Bookings.UpsertBatch(ctx, tenant, []bookings.Booking{{RoomID: oslo, EventID: "AAMkAD-ended", Start: yesterday.Add(9 * time.Hour),
		End: yesterday.Add(10 * time.Hour), ShowAs: "busy"}}); err != nil {
		t.Fatal(err)
	}
	fire("EnforceRetention")
	if _, err := data.Bookings.Get(ctx, tenant, mustBookingKey(t, oslo, "AAMkAD-ended")); err == nil {
		t.Error("a booking that ended yesterday survived the retention job")
	}
	if page, err := data.Bookings.ListRoom(ctx, tenant, oslo, h(0), h(24), nil); err != nil || len(page.Items) != 2 {
		t.Errorf("tomorrow's bookings after retention = %d, %v; want 2", len(page.Items), err)
	}

	// A raw scan of the bookings table: every property of every row, as stored.
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	pager := svc.NewClient(s.tablePrefix + bookings.TableBookings).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: ptr("PartitionKey eq '" + ten + "'")})
	rows := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Entities {
			rows++
			low := strings.ToLower(string(raw))
			for _, banned := range []string{"subject", "organizer", "attendee", "body", "ada@", "grace@", "lovelace", "grace hopper", "linus", "agenda", "missed while"} {
				if strings.Contains(low, banned) {
					t.Errorf("a booking row holds %q: %s", banned, raw)
				}
			}
		}
	}
	if rows < 4 {
		t.Errorf("bookings rows = %d, want at least 4", rows)
	}
}

func ptr[T any](v T) *T { return &v }

func mustBookingKey(t testing.TB, room, id string) string {
	t.Helper()
	k, err := bookings.BookingKey(room, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
