package presence_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/ingest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

const (
	su1 = "5e000000-0000-4000-8000-000000000001"
	su2 = "5e000000-0000-4000-8000-000000000002"
	u1  = "a0000000-0000-4000-8000-000000000001"
	u2  = "a0000000-0000-4000-8000-000000000002"
	u3  = "a0000000-0000-4000-8000-000000000003"
	u4  = "a0000000-0000-4000-8000-000000000004"
)

func graphWrites(g *graphtest.Graph) int {
	n := 0
	for _, r := range g.Requests() {
		if r.Path == "/subscriptions" && r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodDelete {
			n++
		}
	}
	return n
}

func TestReconcileCreatesRenewsAndRebalances(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2, u3)
	if _, err := f.st.Users.Insert(ctx, f.tenant, registry.User{ID: u4, Licensed: false}); err != nil {
		t.Fatal(err)
	}
	f.addServiceUser(t, su1, time.Now())
	f.graph.SetPresenceQuietly(string(f.tenant), u1, "Busy", "InACall")
	start := time.Now()

	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.subscriptions(t)
	if len(rows) != 1 {
		t.Fatalf("subscription rows = %+v", rows)
	}
	row := rows[0]
	held, ok := f.graph.Subscriptions()[row.ID]
	if !ok {
		t.Fatal("Graph has no such subscription")
	}
	cur := f.ring.Current()
	checks := []struct {
		name string
		ok   bool
	}{
		{"created by the service user (delegated)", held.CreatorID == su1 && held.Tenant == string(f.tenant)},
		{"filter lists exactly the licensed users", slices.Equal(held.UserIDs, []string{u1, u2, u3}) && held.Resource == presence.Resource([]string{u1, u2, u3})},
		{"rich notifications with our certificate and id", held.IncludeResourceData && held.EncryptionCertificateID == cur.ID &&
			held.EncryptionCertificate == base64.StdEncoding.EncodeToString(cur.Certificate.Raw)},
		{"both URLs", held.NotificationURL == f.hook.srv.URL+"/api/graph/notifications" && held.LifecycleNotificationURL == f.hook.srv.URL+"/api/graph/lifecycle"},
		{"expiry about the lifetime ahead", held.ExpiresAt.Sub(start) > 54*time.Minute && held.ExpiresAt.Sub(start) <= 56*time.Minute},
		{"only the clientState's hash is stored, and it matches", registry.ClientStateMatches(row.ClientStateHash, held.ClientState) && len(held.ClientState) >= 32},
		{"row records kind, service user and expiry", row.Kind == registry.KindPresence && row.ServiceUserID == su1 && row.ExpiresAt.Equal(held.ExpiresAt)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: row %+v, Graph %+v", c.name, row, held)
		}
	}
	// The initial resync pushed everyone's current state.
	if st, n := f.pusher.last(u1); st != connector.Busy || n != 1 {
		t.Errorf("u1 pushed %s ×%d, want Busy once", st, n)
	}
	if st, _ := f.pusher.last(u2); st != connector.Offline {
		t.Errorf("u2 (no presence yet) pushed %s, want Offline", st)
	}
	if _, n := f.pusher.last(u4); n != 0 {
		t.Error("an unlicensed user was pushed")
	}

	// Idempotent: nothing to do, nothing done.
	writes := graphWrites(f.graph)
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if graphWrites(f.graph) != writes {
		t.Errorf("a second run wrote to Graph")
	}

	// Renewal: within the margin the expiry is PATCHed.
	if _, err := f.st.Subscriptions.Update(ctx, f.tenant, row.ID, func(s *registry.Subscription) error {
		s.ExpiresAt = time.Now().Add(10 * time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	patches := f.graph.Count(http.MethodPatch, "/subscriptions/")
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	renewed, _ := f.st.Subscriptions.Get(ctx, f.tenant, row.ID)
	if f.graph.Count(http.MethodPatch, "/subscriptions/") != patches+1 || renewed.ExpiresAt.Sub(time.Now()) < 50*time.Minute ||
		!f.graph.Subscriptions()[row.ID].ExpiresAt.Equal(renewed.ExpiresAt) {
		t.Errorf("renewal: row expiry %v, Graph %v", renewed.ExpiresAt, f.graph.Subscriptions()[row.ID].ExpiresAt)
	}

	// Licensing changed: the subscription is re-created with the new member, who is synced.
	if _, err := f.st.Users.Update(ctx, f.tenant, u4, func(u *registry.User) error { u.Licensed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f.applier.Forget(f.tenant)
	before := len(f.pusher.all())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows = f.subscriptions(t)
	if len(rows) != 1 || rows[0].ID == row.ID {
		t.Fatalf("after licensing change rows = %+v", rows)
	}
	if _, still := f.graph.Subscriptions()[row.ID]; still || len(f.graph.Subscriptions()) != 1 {
		t.Error("the old subscription is still at Graph")
	}
	if ids, _ := presence.ParseResource(rows[0].Resource); !slices.Equal(ids, []string{u1, u2, u3, u4}) {
		t.Errorf("members = %v", ids)
	}
	if got := f.pusher.all()[before:]; len(got) != 1 || got[0].user.ID != u4 {
		t.Errorf("pushes after rebalance = %+v, want only the new user", got)
	}

	// Graph lost it (no lifecycle notification came): the renewal's 404 re-creates it.
	lost := rows[0]
	f.graph.DropSubscription(lost.ID)
	if _, err := f.st.Subscriptions.Update(ctx, f.tenant, lost.ID, func(s *registry.Subscription) error {
		s.ExpiresAt = time.Now().Add(10 * time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows = f.subscriptions(t)
	if len(rows) != 1 || rows[0].ID == lost.ID || len(f.graph.Subscriptions()) != 1 {
		t.Errorf("after loss rows = %+v, Graph %d", rows, len(f.graph.Subscriptions()))
	}
}

func TestOverlappingRunsCreateOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2)
	f.addServiceUser(t, su1, time.Now())
	other := presence.NewManager(f.st, &clients{auth: f.auth, base: f.graph.URL()}, f.applier, f.ring, presence.ManagerOptions{
		NotificationURL: f.hook.srv.URL + "/n", LifecycleURL: f.hook.srv.URL + "/l", Lifetime: 55 * time.Minute,
		RenewMargin: 25 * time.Minute, Owner: "test-2"})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*presence.Manager{f.manager, other} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.Run(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("run: %v", err)
		}
	}
	if n := f.graph.Count(http.MethodPost, "/subscriptions"); n != 1 || len(f.subscriptions(t)) != 1 {
		t.Errorf("creates = %d, rows = %d; want 1 and 1", n, len(f.subscriptions(t)))
	}
}

func TestServiceUsersNeeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		licensed      int
		serviceUsers  int
		wantSizes     []int
		wantMissing   int
		thenAdd       int // service users connected afterwards
		wantSizesThen []int
	}{
		{"1 user", 1, 1, []int{1}, 0, 0, nil},
		{"650 users", 650, 1, []int{650}, 0, 0, nil},
		{"651 users", 651, 1, []int{650}, 1, 1, []int{650, 1}},
		{"2000 users", 2000, 3, []int{650, 650, 650}, 1, 1, []int{650, 650, 650, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOptions{})
			ids := users(tt.licensed)
			f.addUsers(t, ids...)
			s := sus(tt.serviceUsers + tt.thenAdd)
			base := time.Now().Add(-time.Hour)
			for i := range tt.serviceUsers {
				f.addServiceUser(t, s[i], base.Add(time.Duration(i)*time.Second))
			}
			if err := f.manager.Run(ctx); err != nil {
				t.Fatal(err)
			}
			check := func(wantSizes []int, wantMissing int) {
				t.Helper()
				var got []int
				for _, sub := range f.graph.Subscriptions() {
					got = append(got, len(sub.UserIDs))
				}
				slices.Sort(got)
				want := slices.Clone(wantSizes)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("Graph subscription sizes = %v, want %v", got, want)
				}
				st, err := f.manager.Status(ctx, f.tenant)
				if err != nil {
					t.Fatal(err)
				}
				if st.ServiceUsersMissing != wantMissing || st.Licensed != tt.licensed || st.Subscriptions != len(wantSizes) {
					t.Errorf("status = %+v, want %d missing", st, wantMissing)
				}
				_, attention := f.stats.Snapshot().Attention[string(f.tenant)]
				if attention != (wantMissing > 0) {
					t.Errorf("Health attention = %v, want %v", attention, wantMissing > 0)
				}
			}
			check(tt.wantSizes, tt.wantMissing)
			if tt.thenAdd == 0 {
				return
			}
			creates := f.graph.Count(http.MethodPost, "/subscriptions")
			for i := tt.serviceUsers; i < tt.serviceUsers+tt.thenAdd; i++ {
				f.addServiceUser(t, s[i], time.Now())
			}
			if err := f.manager.Run(ctx); err != nil {
				t.Fatal(err)
			}
			check(tt.wantSizesThen, 0)
			if got := f.graph.Count(http.MethodPost, "/subscriptions") - creates; got != tt.thenAdd {
				t.Errorf("connecting %d service users created %d subscriptions; the full ones must stay", tt.thenAdd, got)
			}
		})
	}
}

// lifecycle delivers what Graph posted to the lifecycle URL through ProcessLifecycle with the manager as
// its action, the way the queue does.
func (f *fixture) lifecycle(t *testing.T, post func() (int, error)) {
	t.Helper()
	f.hook.take()
	if code, err := post(); err != nil || code != http.StatusAccepted {
		t.Fatalf("lifecycle post = %d, %v", code, err)
	}
	bodies := f.hook.take()
	if len(bodies) != 1 {
		t.Fatalf("%d lifecycle posts", len(bodies))
	}
	coll, err := notification.Parse(bodies[0])
	if err != nil || len(coll.Value) != 1 || !coll.Value[0].IsLifecycle() {
		t.Fatalf("lifecycle body %s: %v", bodies[0], err)
	}
	n := coll.Value[0]
	n.ClientState = ""
	body, _ := json.Marshal(n)
	w := ingest.NewLifecycleWorker(f.st.Subscriptions, f.manager, nil, nopLog())
	id, _ := notification.MessageID(n) // lifecycle: always a dedupe key
	if err := w.Process(ctx, &queue.Delivery{Body: body, MessageID: id, DeliveryCount: 1,
		ApplicationProperties: map[string]string{queue.PropTenant: string(f.tenant), queue.PropKind: string(registry.KindPresence)}}); err != nil {
		t.Fatalf("ProcessLifecycle: %v", err)
	}
}

func TestLifecycleEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2, u3)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sub := f.subscriptions(t)[0]

	t.Run("reauthorizationRequired reauthorizes", func(t *testing.T) {
		f.lifecycle(t, func() (int, error) { return f.graph.SendLifecycle(ctx, sub.ID, presence.EventReauthorizationRequired) })
		if n := f.graph.Subscriptions()[sub.ID].Reauthorized; n != 1 {
			t.Errorf("reauthorized %d times, want 1", n)
		}
		row, _ := f.st.Subscriptions.Get(ctx, f.tenant, sub.ID)
		if row.LastLifecycleEvent != presence.EventReauthorizationRequired {
			t.Errorf("event not recorded: %+v", row)
		}
	})
	t.Run("missed resyncs and pushes only what changed", func(t *testing.T) {
		f.graph.SetPresenceQuietly(string(f.tenant), u2, "Away", "Away")
		before := len(f.pusher.all())
		f.lifecycle(t, func() (int, error) { return f.graph.SendLifecycle(ctx, sub.ID, presence.EventMissed) })
		got := f.pusher.all()[before:]
		if len(got) != 1 || got[0].user.ID != u2 || got[0].state != connector.Away {
			t.Errorf("pushes after missed = %+v, want u2 Away only", got)
		}
		if f.graph.Count(http.MethodPost, "/communications/getPresencesByUserId") < 2 {
			t.Error("no bulk presence read")
		}
	})
	t.Run("subscriptionRemoved re-creates and resyncs", func(t *testing.T) {
		f.graph.SetPresenceQuietly(string(f.tenant), u3, "DoNotDisturb", "Presenting")
		before := len(f.pusher.all())
		f.lifecycle(t, func() (int, error) { return f.graph.RemoveSubscription(ctx, sub.ID) })
		rows := f.subscriptions(t)
		if len(rows) != 1 || rows[0].ID == sub.ID {
			t.Fatalf("rows after removal = %+v", rows)
		}
		if _, ok := f.graph.Subscriptions()[rows[0].ID]; !ok || len(f.graph.Subscriptions()) != 1 {
			t.Error("Graph does not hold the new subscription")
		}
		got := f.pusher.all()[before:]
		if len(got) != 1 || got[0].user.ID != u3 || got[0].state != connector.DND {
			t.Errorf("pushes after re-creation = %+v, want u3 DND only", got)
		}
	})
	t.Run("events of a deleted subscription are ignored", func(t *testing.T) {
		rows := f.subscriptions(t)
		if err := f.manager.Handle(ctx, f.tenant, registry.Subscription{ID: "gone", Kind: registry.KindBooking}, presence.EventMissed); err != nil {
			t.Errorf("booking event: %v", err)
		}
		if len(f.subscriptions(t)) != len(rows) {
			t.Error("an unrelated event changed subscriptions")
		}
	})
}

// A service user whose refresh failed no longer holds a subscription; its users go to the others if
// there is room, and the tenant shows in Health until an admin reconnects it.
func TestServiceUserNeedingReconsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2)
	f.addServiceUser(t, su1, time.Now().Add(-time.Hour))
	f.addServiceUser(t, su2, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	first := f.subscriptions(t)
	if len(first) != 1 || first[0].ServiceUserID != su1 {
		t.Fatalf("rows = %+v: the earliest connected service user takes the users", first)
	}
	if _, err := serviceuser.OpenTable(f.st.DB()).Update(ctx, f.tenant, su1, func(s *serviceuser.ServiceUser) error {
		s.State = serviceuser.Reconsent
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.subscriptions(t)
	if len(rows) != 1 || rows[0].ServiceUserID != su2 {
		t.Errorf("rows = %+v, want the other service user's subscription", rows)
	}
	att := f.stats.Snapshot().Attention[string(f.tenant)]
	if att.NeedsReconsent != 1 || att.ServiceUsersMissing != 0 {
		t.Errorf("attention = %+v", att)
	}
}

// An erasure leaves a shared subscription's row with the person's id replaced by a marker
// (registry.ErasedMarker): the next run deletes it at Graph and makes one without the person.
func TestReconcileRemakesASubscriptionAnErasureScrubbed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2, u3)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	old := f.subscriptions(t)[0]
	// What privacy's erasure of u2 does: u2's user row goes, and the shared row no longer names u2.
	if err := f.st.Users.Delete(ctx, f.tenant, u2); err != nil {
		t.Fatal(err)
	}
	if n, err := f.st.Erase(ctx, f.tenant, u2); err != nil || n["subscriptions"].Pseudonymised != 1 {
		t.Fatalf("erase = %v, %v", n, err)
	}
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.subscriptions(t)
	if len(rows) != 1 || rows[0].ID == old.ID {
		t.Fatalf("rows after the erasure = %+v", rows)
	}
	if _, still := f.graph.Subscriptions()[old.ID]; still {
		t.Error("the subscription listing the erased person is still at Graph")
	}
	if held := f.graph.Subscriptions()[rows[0].ID]; !slices.Equal(held.UserIDs, []string{u1, u3}) {
		t.Errorf("Graph watches %v, want u1 and u3", held.UserIDs)
	}
}

// TestStatusOfALargeTenant: above LiveStatusMax licensed users Status does not read the users: it takes
// their count from the last reconcile (saying when, in asOf), and derives the rest from the service users
// it counts live, so connecting one shows at once. A small tenant is counted afresh on every call.
func TestStatusOfALargeTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{liveStatus: 3})
	ids := users(5)
	f.addUsers(t, ids[:2]...)
	small, err := f.manager.Status(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	f.addUsers(t, ids[2:]...)
	st, err := f.manager.Status(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if small.Licensed != 2 || st.Licensed != 5 || st.ServiceUsersMissing != 1 || st.Unassigned != 5 || !st.AsOf.After(small.AsOf) {
		t.Fatalf("a small tenant is counted on every call: %+v then %+v", small, st)
	}

	// Now above the limit: more users and a restricted one are not seen until the next reconcile.
	f.addUsers(t, users(7)[5:]...)
	if _, err := f.st.Users.Update(ctx, f.tenant, ids[0], func(u *registry.User) error { u.ProcessingRestricted = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f.addServiceUser(t, su1, time.Now())
	got, err := f.manager.Status(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	want := presence.TenantStatus{Licensed: 5, ServiceUsers: 1, ServiceUsersNeeded: 1, AsOf: st.AsOf}
	if got != want {
		t.Fatalf("status from the last count = %+v, want %+v", got, want)
	}
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = f.manager.Status(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if got.Licensed != 6 || got.Subscriptions != 1 || got.ServiceUsersMissing != 0 || !got.AsOf.After(st.AsOf) {
		t.Fatalf("after a reconcile: %+v, want 6 licensed counted then, one subscription", got)
	}
}
