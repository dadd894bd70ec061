package crm_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// noticesFixture is the sync fixture with contact notifications: a webhook that answers Graph's
// handshake, and the deliveries the fake Graph queued handed to the worker as the queue would.
type noticesFixture struct {
	*syncFixture
	n      *crm.Notifications
	leases *jobs.Leases
}

func newNoticesFixture(t *testing.T) *noticesFixture {
	t.Helper()
	f := newSyncFixture(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(tok))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	leases := jobs.OpenLeases(f.env.Store.DB())
	n, err := crm.NewNotifications(crm.NotifyOptions{Syncer: f.syncer, Leases: leases, LeaseWait: 100 * time.Millisecond,
		Subscriptions: func(ctx context.Context, t core.TenantID) (crm.SubscriptionGraph, error) {
			return f.mailboxes.client(ctx, t)
		},
		NotificationURL: hook.URL + "/api/graph/notifications", LifecycleURL: hook.URL + "/api/graph/lifecycle",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &noticesFixture{syncFixture: f, n: n, leases: leases}
}

// subs are the fake Graph's subscriptions on Ada's contacts, and the records we keep of them.
func (f *noticesFixture) subs(t *testing.T) (atGraph []graphtest.Subscription, kept []registry.Subscription) {
	t.Helper()
	for _, s := range f.graph.Subscriptions() {
		if s.Tenant == string(f.tenant) && strings.HasSuffix(s.Resource, "/"+f.ada+"/contacts") {
			atGraph = append(atGraph, s)
		}
	}
	for s, err := range f.env.Store.Subscriptions.All(ctx, f.tenant, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind == registry.KindCRM {
			kept = append(kept, s)
		}
	}
	return atGraph, kept
}

// deliveries turns what the fake Graph queued into the queue's deliveries, as the webhook would.
func (f *noticesFixture) deliveries(t *testing.T, enqueued time.Time) []*queue.Delivery {
	t.Helper()
	var out []*queue.Delivery
	for _, d := range f.graph.TakeDeliveries() {
		var env struct{ Value []json.RawMessage }
		if err := json.Unmarshal(d.Body, &env); err != nil {
			t.Fatal(err)
		}
		for _, item := range env.Value {
			out = append(out, &queue.Delivery{MessageID: "m", Body: item, EnqueuedTime: enqueued,
				ApplicationProperties: map[string]string{queue.PropTenant: string(f.tenant), queue.PropKind: string(registry.KindCRM)}})
		}
	}
	return out
}

// A mapped user's contacts subscription is made, kept and taken back with the mapping; a change in
// Outlook runs the user's sync at once, a burst costs one run, a sync already running for the tenant
// makes the notification come back later, and a removed subscription is made again with a sync.
func TestContactNotificationsSyncTheUserAtOnce(t *testing.T) {
	f := newNoticesFixture(t)
	want := map[string]bool{"/users/" + f.ada + "/contacts": true}
	if err := f.n.Maintain(ctx, f.tenant, want); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Maintain(ctx, f.tenant, want); err != nil {
		t.Fatal(err)
	}
	atGraph, kept := f.subs(t)
	if len(atGraph) != 1 || len(kept) != 1 || atGraph[0].ID != kept[0].ID || atGraph[0].ChangeType != "created,updated,deleted" ||
		atGraph[0].IncludeResourceData || atGraph[0].ExpiresAt.Sub(time.Now()) > graphtest.MaxOutlookLifetime {
		t.Fatalf("subscriptions: at Graph %+v, kept %+v; want one, without resource data", atGraph, kept)
	}

	// A contact made in Outlook: Graph notifies, the worker syncs Ada, Salesforce has it.
	f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}})
	ds := f.deliveries(t, time.Now())
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(ds))
	}
	if err := f.n.Process(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if got := f.byEmail("grace@navy.example"); len(got) != 1 {
		t.Fatalf("Grace in Salesforce = %v, want one", got)
	}

	// A burst queued before that sync began needs no run of its own.
	deltas := func() int {
		return f.graph.Count(http.MethodGet, "/users/"+f.ada+"/contactFolders/contacts/contacts/delta")
	}
	before := deltas()
	alan := f.put(graphtest.Contact{GivenName: "Alan", Surname: "Turing", Emails: []string{"alan@bletchley.example"}})
	for _, title := range []string{"Mathematician", "Cryptanalyst"} { // and edited twice at once
		f.put(graphtest.Contact{ID: alan, GivenName: "Alan", Surname: "Turing", JobTitle: title, Emails: []string{"alan@bletchley.example"}})
	}
	for _, d := range f.deliveries(t, time.Now().Add(-time.Minute)) {
		if err := f.n.Process(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := deltas() - before; got != 0 {
		t.Errorf("a burst queued before the last sync began cost %d delta reads, want 0", got)
	}

	// The timer holds the tenant's lease: the notification is a conflict, tried again later.
	if _, err := f.leases.AcquireLease(ctx, f.tenant, crm.SyncCRMJob, "the-timer", time.Minute); err != nil {
		t.Fatal(err)
	}
	f.put(graphtest.Contact{GivenName: "Mary", Surname: "Somerville", Emails: []string{"mary@kelso.example"}})
	ds = f.deliveries(t, time.Now().Add(time.Minute))
	if err := f.n.Process(ctx, ds[0]); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("while the timer runs: %v, want Conflict (retried later)", err)
	}
	if len(f.byEmail("mary@kelso.example")) != 0 {
		t.Fatal("synced without the tenant's lease")
	}
	if _, err := f.leases.Release(ctx, f.tenant, crm.SyncCRMJob, "the-timer", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Process(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if a := f.byEmail("alan@bletchley.example"); len(f.byEmail("mary@kelso.example")) != 1 || len(a) != 1 || a[0]["Title"] != "Cryptanalyst" {
		t.Errorf("after the retry: Mary %d in Salesforce, Alan %v; want Mary and Alan's last edit", len(f.byEmail("mary@kelso.example")), a)
	}

	// Graph removes the subscription: a new one is made and Ada synced (changes in between were never
	// notified).
	old := kept[0]
	f.graph.DropSubscription(old.ID)
	f.put(graphtest.Contact{GivenName: "Ada", Surname: "Byron", Emails: []string{"ada@byron.example"}})
	f.graph.TakeDeliveries() // the removed subscription notifies nobody
	if err := f.n.Handle(ctx, f.tenant, old, "subscriptionRemoved"); err != nil {
		t.Fatal(err)
	}
	if atGraph, kept = f.subs(t); len(atGraph) != 1 || len(kept) != 1 || kept[0].ID == old.ID {
		t.Fatalf("after subscriptionRemoved: at Graph %+v, kept %+v", atGraph, kept)
	}
	if len(f.byEmail("ada@byron.example")) != 1 {
		t.Error("the change made while the subscription was gone was not synced")
	}

	// Unmapped (or turned to from-crm): the subscription goes; erasure takes it back too.
	if err := f.n.Maintain(ctx, f.tenant, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if atGraph, kept = f.subs(t); len(atGraph) != 0 || len(kept) != 0 {
		t.Fatalf("after unmapping: at Graph %+v, kept %+v", atGraph, kept)
	}
	if err := f.n.Maintain(ctx, f.tenant, want); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Withdraw(ctx, f.tenant, f.ada); err != nil {
		t.Fatal(err)
	}
	if atGraph, kept = f.subs(t); len(atGraph) != 0 || len(kept) != 0 {
		t.Fatalf("after erasure: at Graph %+v, kept %+v", atGraph, kept)
	}
	// Suspension deletes them too; reactivation leaves them to the next run.
	if err := f.n.Maintain(ctx, f.tenant, want); err != nil {
		t.Fatal(err)
	}
	if err := f.n.OnStateChange(ctx, f.tenant, registry.TenantActive); err != nil {
		t.Fatal(err)
	}
	if atGraph, _ = f.subs(t); len(atGraph) != 1 {
		t.Fatalf("an active tenant lost its subscription: %+v", atGraph)
	}
	if err := f.n.OnStateChange(ctx, f.tenant, registry.TenantSuspended); err != nil {
		t.Fatal(err)
	}
	if atGraph, kept = f.subs(t); len(atGraph) != 0 || len(kept) != 0 {
		t.Fatalf("after suspension: at Graph %+v, kept %+v", atGraph, kept)
	}
}

// An admin syncs a user now: the result says what moved, the request is audited with its outcome, a
// user without a mapping is 404, and a sync of the tenant that keeps running is a conflict to retry.
func TestSyncNow(t *testing.T) {
	f := newNoticesFixture(t)
	f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}})
	res, err := f.n.SyncNow(ctx, admin, f.tenant, f.ada)
	if err != nil || res.UserID != f.ada || res.Created != 1 || res.Skipped != "" {
		t.Fatalf("sync now = %+v, %v", res, err)
	}
	if len(f.byEmail("grace@navy.example")) != 1 {
		t.Fatal("Grace did not reach Salesforce")
	}
	if _, err := f.n.SyncNow(ctx, admin, f.tenant, "11111111-0000-4000-8000-0000000000ff"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unmapped user: %v, want NotFound", err)
	}
	if _, err := f.leases.AcquireLease(ctx, f.tenant, crm.SyncCRMJob, "the-timer", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.SyncNow(ctx, admin, f.tenant, f.ada); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("while the timer runs: %v, want Conflict", err)
	}
	p, err := audit.OpenLog(f.env.Store.DB()).List(ctx, f.tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(p.Items) - 1; i >= 0; i-- {
		if e := p.Items[i]; e.Action == "crm.sync" {
			if e.TargetType != "user" || e.TargetID != f.ada || e.ActorID != admin.ID {
				t.Errorf("audit entry %+v", e)
			}
			got = append(got, e.Outcome)
		}
	}
	if len(got) != 2 || got[0] != "success" || got[1] == "success" {
		t.Errorf("audit outcomes = %q, want the sync and the refused one", got)
	}
}
