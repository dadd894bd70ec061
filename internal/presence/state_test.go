package presence_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// setState changes the tenant's state the way the tenants capability stores it, without telling the
// manager or the applier: as another instance would.
func (f *fixture) setState(t *testing.T, state registry.TenantState) {
	t.Helper()
	if _, err := f.st.Tenants.Update(ctx, f.tenant, func(t *registry.Tenant) error { t.State = state; return nil }); err != nil {
		t.Fatal(err)
	}
}

// deletesBy lists the subscription DELETEs Graph received, with who sent them.
func deletesBy(g *graphtest.Graph) []graphtest.Identity {
	var out []graphtest.Identity
	for _, r := range g.Requests() {
		if r.Method == http.MethodDelete && r.Status == http.StatusNoContent {
			out = append(out, r.Identity)
		}
	}
	return out
}

func TestSuspendDeletesSubscriptionsAndReactivateRestoresThem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	old := f.subscriptions(t)
	if len(old) != 1 || len(f.graph.Subscriptions()) != 1 {
		t.Fatalf("before suspension: rows %+v, Graph %d", old, len(f.graph.Subscriptions()))
	}

	for _, state := range []registry.TenantState{registry.TenantSuspended, registry.TenantCancelled} {
		f.setState(t, state)
		if err := f.manager.OnStateChange(ctx, f.tenant, state); err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if n := len(f.graph.Subscriptions()); n != 0 {
			t.Errorf("%s: Graph still holds %d subscriptions", state, n)
		}
		if rows := f.subscriptions(t); len(rows) != 0 {
			t.Errorf("%s: rows left %+v", state, rows)
		}
	}
	// Presence subscriptions are delegated: deleted by the service user that made it, once.
	if got := deletesBy(f.graph); len(got) != 1 || got[0].UserID != su1 || got[0].Tenant != string(f.tenant) {
		t.Errorf("deletes = %+v, want one by service user %s", got, su1)
	}
	// RenewSubscriptions leaves an inactive tenant without subscriptions.
	writes := graphWrites(f.graph)
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if graphWrites(f.graph) != writes || len(f.graph.Subscriptions()) != 0 {
		t.Error("RenewSubscriptions wrote to Graph for a cancelled tenant")
	}

	// While the tenant was away, u1 went busy; reactivation subscribes again and resyncs.
	f.graph.SetPresenceQuietly(string(f.tenant), u1, "Busy", "InACall")
	before := len(f.pusher.all())
	f.setState(t, registry.TenantActive)
	if err := f.manager.OnStateChange(ctx, f.tenant, registry.TenantActive); err != nil {
		t.Fatal(err)
	}
	rows := f.subscriptions(t)
	if len(rows) != 1 || rows[0].ID == old[0].ID {
		t.Fatalf("after reactivation rows = %+v", rows)
	}
	if held, ok := f.graph.Subscriptions()[rows[0].ID]; !ok || held.CreatorID != su1 {
		t.Errorf("Graph does not hold the new subscription: %+v", f.graph.Subscriptions())
	}
	got := f.pusher.all()[before:]
	if len(got) != 1 || got[0].user.ID != u1 || got[0].state != connector.Busy {
		t.Errorf("pushes after reactivation = %+v, want u1 Busy (the resync)", got)
	}
}

// Graph down at suspension: the hook reports it (the tenants capability logs it and the state change
// stands), the row stays as the to-do list, and the next RenewSubscriptions deletes the subscription.
func TestDeletionGraphRefusedIsRetriedByRenewSubscriptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1, u2)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sub := f.subscriptions(t)[0]

	// 500 is not retried by the SDK (only 429/503/504 are): one answer is an outage for this call.
	f.graph.Fail(http.MethodDelete, "/subscriptions/", graphtest.Failure{Status: http.StatusInternalServerError, Code: "generalException"})
	f.setState(t, registry.TenantSuspended)
	if err := f.manager.OnStateChange(ctx, f.tenant, registry.TenantSuspended); err == nil {
		t.Fatal("OnStateChange = nil while Graph refused the deletion")
	}
	if _, ok := f.graph.Subscriptions()[sub.ID]; !ok {
		t.Fatal("the fake deleted the subscription despite the injected failure")
	}
	if rows := f.subscriptions(t); len(rows) != 1 {
		t.Fatalf("rows = %+v, want the undeleted subscription kept for the retry", rows)
	}

	if err := f.manager.Run(ctx); err != nil {
		t.Fatalf("RenewSubscriptions: %v", err)
	}
	if n := len(f.graph.Subscriptions()); n != 0 {
		t.Errorf("after RenewSubscriptions Graph holds %d subscriptions", n)
	}
	if rows := f.subscriptions(t); len(rows) != 0 {
		t.Errorf("after RenewSubscriptions rows = %+v", rows)
	}
	if got := deletesBy(f.graph); len(got) != 1 || got[0].UserID != su1 {
		t.Errorf("deletes = %+v", got)
	}
}

// A subscription that cannot be deleted and has expired is gone at Graph: its row goes too, so the
// retry ends.
func TestExpiredUndeletableSubscriptionRowIsDropped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	f.addUsers(t, u1)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sub := f.subscriptions(t)[0]
	f.setState(t, registry.TenantCancelled)
	for range 2 {
		f.graph.Fail(http.MethodDelete, "/subscriptions/", graphtest.Failure{Status: http.StatusInternalServerError, Code: "generalException"})
	}
	if err := f.manager.OnStateChange(ctx, f.tenant, registry.TenantCancelled); err == nil {
		t.Fatal("OnStateChange = nil while Graph refused the deletion")
	}
	if _, err := f.st.Subscriptions.Update(ctx, f.tenant, sub.ID, func(s *registry.Subscription) error {
		s.ExpiresAt = time.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.manager.Run(ctx); err != nil {
		t.Fatalf("RenewSubscriptions: %v", err)
	}
	if rows := f.subscriptions(t); len(rows) != 0 {
		t.Errorf("rows = %+v, want the expired subscription's row dropped", rows)
	}
}

// A notification queued before the cancellation and processed after it pushes nothing and completes,
// although the applier's cached settings (a minute) still say active; so does a rescheduled retry.
func TestQueuedNotificationAfterCancelIsDropped(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	// Warm the applier's cache with the active tenant.
	if err := f.worker.Process(ctx, f.notify(t, u1, "Busy", "InACall")[0]); err != nil {
		t.Fatal(err)
	}
	queued := f.notify(t, u1, "Away", "Away")[0]
	f.pusher.failNext(&connector.Error{Op: "presence", Status: 503})
	if err := f.worker.Process(ctx, f.notify(t, u2, "Busy", "InACall")[0]); err != nil {
		t.Fatal(err)
	}
	retry := f.sender.take()
	if len(retry) != 1 {
		t.Fatalf("rescheduled = %d, want 1", len(retry))
	}
	pushes := len(f.pusher.all())

	f.setState(t, registry.TenantCancelled) // by another instance: this applier was not told
	for name, d := range map[string]func() error{
		"queued notification": func() error { return f.worker.Process(ctx, queued) },
		"rescheduled retry":   func() error { return f.worker.Process(ctx, redeliver(retry[0])) },
	} {
		if err := d(); err != nil {
			t.Errorf("%s: Process = %v, want nil (completed, not retried)", name, err)
		}
	}
	if got := f.pusher.all()[pushes:]; len(got) != 0 {
		t.Errorf("pushed after cancellation: %+v", got)
	}
	if n := len(f.sender.take()); n != 0 {
		t.Errorf("%d messages rescheduled after cancellation", n)
	}
	if got := f.stats.Snapshot().Inactive; got != 2 {
		t.Errorf("inactive = %d, want 2", got)
	}

	// Reactivated (again elsewhere): the next change is pushed, the cached "inactive" notwithstanding.
	f.setState(t, registry.TenantActive)
	if err := f.worker.Process(ctx, f.notify(t, u1, "DoNotDisturb", "Presenting")[0]); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.pusher.last(u1); st != connector.DND {
		t.Errorf("after reactivation u1 = %s, want DND pushed", st)
	}
}
