package pbx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
	"github.com/connecthub/connecthub/internal/presence/pbx"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

var ctx = context.Background()

const (
	appID       = "11111111-2222-3333-4444-555555555555"
	ada         = "aaaaaaaa-0000-4000-8000-000000000001"
	grace       = "aaaaaaaa-0000-4000-8000-000000000002"
	serviceUser = "aaaaaaaa-0000-4000-8000-0000000000ff"
)

type staticCred string

func (s staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// appClients are app-only Graph clients (Presence.ReadWrite.All), one token per call from the fake
// authority.
type appClients struct {
	auth *graphtest.Authority
	base string
}

func (c appClients) For(_ context.Context, tenant core.TenantID) (pbx.Teams, error) {
	tok := c.auth.IssueToken(graphtest.Identity{Tenant: string(tenant), ClientID: appID})
	return graph.New(staticCred(tok), graph.Options{BaseURL: c.base})
}

// delegated are the service users' clients of the Teams → PBX direction.
type delegated struct {
	auth *graphtest.Authority
	base string
}

func (c delegated) For(_ context.Context, tenant core.TenantID, su string) (presence.Graph, error) {
	tok := c.auth.IssueToken(graphtest.Identity{Tenant: string(tenant), ClientID: appID, UserID: su})
	return graph.New(staticCred(tok), graph.Options{BaseURL: c.base})
}

// recSender keeps what the intake queues.
type recSender struct {
	mu   sync.Mutex
	msgs []queue.Message
}

func (s *recSender) Send(_ context.Context, _ string, msgs []queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msgs...)
	return nil
}

func (s *recSender) take() []queue.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs
	s.msgs = nil
	return m
}

type fixture struct {
	env        *storetest.Env
	st         *registry.Registry
	tenant     core.TenantID
	rc         *rctest.Server
	conn       *ringcentral.Connector
	auth       *graphtest.Authority
	graph      *graphtest.Graph
	stats      *presence.Stats
	sender     *recSender
	intake     *pbx.Intake
	worker     *pbx.Worker
	subscriber *pbx.Subscriber
	applier    *presence.Applier
	manager    *presence.Manager
	teamsW     *presence.Worker
	endpoint   *httptest.Server
}

// newFixture wires both directions against Azurite and the fakes: the RingCentral fake posts to an
// endpoint that does what PbxWebhook does (echo the handshake, hand the body to the intake).
func newFixture(t *testing.T, settings string) *fixture {
	t.Helper()
	env := storetest.NewEnv(t, storetest.Options{})
	f := &fixture{env: env, st: env.Store, tenant: env.NewTenant(t), rc: rctest.New(t), stats: presence.NewStats(), sender: &recSender{}}
	f.rc.AddExtension(rctest.Extension{ID: 101, Number: "101", Email: "ada@contoso.example"})
	f.rc.AddExtension(rctest.Extension{ID: 102, Number: "102", Email: "grace@contoso.example"})
	if err := connector.SaveCredential(ctx, env.Secrets, env.Keys, f.tenant, ringcentral.Credential{Kind: ringcentral.Kind,
		ClientID: f.rc.ClientID, ClientSecret: f.rc.ClientSecret, JWT: f.rc.JWT}); err != nil {
		t.Fatal(err)
	}
	f.conn = ringcentral.New(ringcentral.Options{BaseURL: f.rc.URL(), HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, env.Secrets, env.Keys)
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: f.tenant, State: registry.TenantActive, PBXKind: ringcentral.Kind, PBXSettings: settings}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Users.InsertBatch(ctx, f.tenant, []registry.User{
		{ID: ada, DisplayName: "Ada", Mail: "ada@contoso.example", Licensed: true},
		{ID: grace, DisplayName: "Grace", Mail: "grace@contoso.example", Licensed: true},
	}); err != nil {
		t.Fatal(err)
	}
	f.auth = graphtest.NewAuthority(t)
	f.auth.AppRoles = append(f.auth.AppRoles, "Presence.ReadWrite.All")
	f.graph = graphtest.NewGraph(t, f.auth)

	f.intake = pbx.NewIntake(f.st.DB(), f.st.NewTenantStateLookup(registry.TenantStateOptions{TTL: time.Millisecond}), env.Secrets, env.Keys, f.sender, f.stats, 2*time.Second, nil)
	f.endpoint = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := pbx.ValidationToken(r.Header.Get("Validation-Token")); v != "" {
			w.Header().Set("Validation-Token", v)
			w.Header().Set("Content-Type", "application/json")
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, pbx.MaxBody))
		if err := f.intake.Receive(r.Context(), r.PathValue("tenant"), r.Header.Get("Verification-Token"), body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(f.endpoint.Close)
	mux := http.NewServeMux()
	mux.Handle("POST /api/pbx/{tenant}/ringcentral", f.endpoint.Config.Handler)
	f.endpoint.Config.Handler = mux

	w, err := pbx.NewWorker(f.st, appClients{f.auth, f.graph.URL()}, f.stats, pbx.WorkerOptions{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	f.worker = w
	f.subscriber = pbx.NewSubscriber(f.st, f.conn, f.stats, w.RefreshSessions, pbx.SubscriberOptions{PublicBaseURL: f.endpoint.URL})

	// Teams → PBX, as wired in the app: its notifications come from the fake Graph's subscription.
	f.applier = presence.NewApplier(f.st, connector.Registry{ringcentral.Kind: f.conn}, presence.DefaultMapping(), f.stats, nil, nil)
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := graphcrypto.NewKeyRing(graphcrypto.Key{ID: "notification-cert", Certificate: cert, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
	}))
	t.Cleanup(hook.Close)
	if _, err := serviceuser.OpenTable(f.st.DB()).Insert(ctx, f.tenant, serviceuser.ServiceUser{ID: serviceUser, State: serviceuser.Active, ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.manager = presence.NewManager(f.st, delegated{f.auth, f.graph.URL()}, f.applier, ring, presence.ManagerOptions{
		NotificationURL: hook.URL + "/n", LifecycleURL: hook.URL + "/l", Lifetime: 55 * time.Minute, RenewMargin: 25 * time.Minute, Owner: "t"})
	f.teamsW = presence.NewWorker(f.applier, ring, f.sender, presence.WorkerOptions{Graph: delegated{f.auth, f.graph.URL()}})
	return f
}

// follow runs the subscriber as RenewSubscriptions does.
func (f *fixture) follow(t *testing.T) {
	t.Helper()
	if err := f.subscriber.Follow(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
}

// pbxEvent has RingCentral deliver a presence change of ext to our webhook and runs the worker on
// what got queued (the same worker run), returning the outcomes.
func (f *fixture) pbxEvent(t *testing.T, ext string, ev rctest.PresenceEvent) {
	t.Helper()
	if err := f.rc.Deliver(ctx, ext, ev); err != nil {
		t.Fatal(err)
	}
	f.work(t)
}

func (f *fixture) work(t *testing.T) {
	t.Helper()
	for _, m := range f.sender.take() {
		d := &queue.Delivery{Body: m.Body, MessageID: m.ID, SessionID: m.SessionID, EnqueuedTime: time.Now(), ApplicationProperties: m.ApplicationProperties}
		var err error
		if m.ApplicationProperties[queue.PropKind] == pbx.Kind {
			err = f.worker.Process(ctx, d)
		} else {
			err = f.teamsW.Process(ctx, d)
		}
		if err != nil {
			t.Fatalf("process %s: %v", m.ApplicationProperties[queue.PropKind], err)
		}
	}
}

// teamsEcho delivers to the Teams → PBX worker the notifications Graph sends for the presence changes
// our own sessions caused, as the Graph webhook would queue them.
func (f *fixture) teamsEcho(t *testing.T) int {
	t.Helper()
	n := 0
	for _, d := range f.graph.TakeDeliveries() {
		coll, err := notification.Parse(d.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range coll.Value {
			body, _ := json.Marshal(item)
			id, _ := notification.MessageID(item)
			if err := f.teamsW.Process(ctx, &queue.Delivery{Body: body, MessageID: id, SessionID: notification.OrderingKey(item), EnqueuedTime: time.Now(),
				ApplicationProperties: map[string]string{queue.PropTenant: string(f.tenant), queue.PropKind: string(registry.KindPresence)}}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

func (f *fixture) writes(user string) []graphtest.PresenceWrite {
	var out []graphtest.PresenceWrite
	for _, w := range f.graph.PresenceWrites() {
		if w.UserID == user {
			out = append(out, w)
		}
	}
	return out
}

func connected() rctest.PresenceEvent {
	return rctest.PresenceEvent{TelephonyStatus: "CallConnected", UserStatus: "Available", DNDStatus: "TakeAllCalls",
		ActiveCalls: []rctest.Call{{ID: "c1", Direction: "Inbound", TelephonyStatus: "CallConnected", From: "+4930123456"}}}
}

func ended() rctest.PresenceEvent {
	return rctest.PresenceEvent{TelephonyStatus: "NoCall", UserStatus: "Available", DNDStatus: "TakeAllCalls", ActiveCalls: []rctest.Call{}}
}

const both = `{"direction":"both"}`

func TestCallSetsTeamsBusyAndEndClears(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	subs := f.rc.Subscriptions()
	if len(subs) != 1 || len(subs[0].EventFilters) != 2 || subs[0].Address != f.subscriber.Address(f.tenant) {
		t.Fatalf("subscriptions = %+v, want one for both extensions at our address", subs)
	}

	f.pbxEvent(t, "101", connected())
	w := f.writes(ada)
	if len(w) != 1 || w[0].Op != "set" || w[0].SessionID != appID || w[0].Availability+"/"+w[0].Activity != "Busy/InACall" {
		t.Fatalf("writes after the call started = %+v, want one Busy/InACall in our session", w)
	}
	if len(f.writes(grace)) != 0 {
		t.Errorf("another user's presence was written")
	}
	f.pbxEvent(t, "101", ended())
	w = f.writes(ada)
	if len(w) != 2 || w[1].Op != "clear" || w[1].SessionID != appID {
		t.Fatalf("writes after the call ended = %+v, want our session cleared", w)
	}
	if s := f.graph.Sessions(string(f.tenant), ada); len(s) != 0 {
		t.Errorf("sessions left = %v", s)
	}
}

func TestCallPresenceIsConfigurable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `{"direction":"pbx-to-teams","callPresence":"DoNotDisturb/Presenting"}`)
	f.follow(t)
	f.pbxEvent(t, "102", connected())
	if w := f.writes(grace); len(w) != 1 || w[0].Availability+"/"+w[0].Activity != "DoNotDisturb/Presenting" {
		t.Fatalf("writes = %+v, want DoNotDisturb/Presenting (Busy set through Graph does not trigger busy-on-busy)", w)
	}
}

func TestOlderEventIsIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	start := f.rc.Event("101", connected())
	end := f.rc.Event("101", ended())
	// The end (sequence 2) arrives first; the start (sequence 1) comes late and must not make Ada busy.
	for _, e := range append(end, start...) {
		if status, err := f.rc.Send(ctx, e); err != nil || status != http.StatusOK {
			t.Fatalf("send = %d, %v", status, err)
		}
	}
	f.work(t)
	if w := f.writes(ada); len(w) != 0 {
		t.Errorf("writes = %+v, want none: the start is older than the end", w)
	}
	if got := f.stats.PBX()["teams_stale"]; got != 1 {
		t.Errorf("stale = %d, want 1", got)
	}
}

func TestForgedAndUnknownDeliveriesPushNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	genuine := f.rc.Event("101", connected())[0]
	tests := []struct {
		name   string
		env    rctest.Envelope
		reason string
	}{
		{"wrong verification token", rctest.Envelope{Address: genuine.Address, Token: "guessed", Body: genuine.Body}, pbx.ReasonForged},
		{"no verification token", rctest.Envelope{Address: genuine.Address, Body: genuine.Body}, pbx.ReasonForged},
		{"another subscription id", rctest.Envelope{Address: genuine.Address, Token: genuine.Token,
			Body: []byte(`{"uuid":"1","subscriptionId":"sub-other","body":{"extensionId":"101","sequence":9,"telephonyStatus":"CallConnected"}}`)}, pbx.ReasonUnknownSubscription},
		{"another tenant's address", rctest.Envelope{Address: f.endpoint.URL + "/api/pbx/" + string(storetest.NewTenantID(t)) + "/ringcentral",
			Token: genuine.Token, Body: genuine.Body}, pbx.ReasonUnknownSubscription},
	}
	for _, tt := range tests {
		if status, err := f.rc.Send(ctx, tt.env); err != nil || status != http.StatusOK {
			t.Fatalf("%s: status %d, %v (dropped deliveries answer 200)", tt.name, status, err)
		}
		if n := len(f.sender.take()); n != 0 {
			t.Errorf("%s: %d messages queued", tt.name, n)
		}
		if got := f.stats.PBX()["dropped_"+tt.reason]; got == 0 {
			t.Errorf("%s: not counted as %s (%v)", tt.name, tt.reason, f.stats.PBX())
		}
	}
	if len(f.graph.PresenceWrites()) != 0 {
		t.Errorf("a forged delivery wrote presence")
	}
}

func TestInactiveTenantStopsBothWays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	pending := f.rc.Event("101", connected())
	if _, err := f.st.Tenants.Update(ctx, f.tenant, func(t *registry.Tenant) error { t.State = registry.TenantSuspended; return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the state lookup's TTL
	for _, e := range pending {
		_, _ = f.rc.Send(ctx, e)
	}
	if n := len(f.sender.take()); n != 0 || f.stats.PBX()["dropped_"+pbx.ReasonTenantInactive] != 1 {
		t.Errorf("queued %d, counters %v: a suspended tenant's delivery must be dropped", n, f.stats.PBX())
	}
	f.follow(t)
	if subs := f.rc.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions at RingCentral after suspension = %d, want 0", len(subs))
	}
	if held, err := f.subscriber.Holds(ctx, f.tenant); err != nil || held {
		t.Errorf("row held = %v, %v", held, err)
	}
}

func TestBlacklistedSubscriptionIsRecreated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	old := f.rc.Subscriptions()[0].ID
	f.rc.Blacklist(old, "Webhook responses are failing")
	f.follow(t)
	subs := f.rc.Subscriptions()
	if len(subs) != 1 || subs[0].ID == old || subs[0].Status != "Active" {
		t.Fatalf("subscriptions = %+v, want one new active one", subs)
	}
	f.pbxEvent(t, "101", connected())
	if w := f.writes(ada); len(w) != 1 {
		t.Errorf("the new subscription's delivery wrote %d, want 1", len(w))
	}
}

func TestHandshakeRefusedLeavesNoSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Validation-Token", r.Header.Get("Validation-Token"))
	}))
	defer slow.Close()
	f.rc.HandshakeTimeout = 100 * time.Millisecond // RingCentral's is 3 s; shorter keeps the test fast
	s := pbx.NewSubscriber(f.st, f.conn, f.stats, nil, pbx.SubscriberOptions{PublicBaseURL: slow.URL})
	if err := s.Follow(ctx, f.tenant); err == nil {
		t.Fatal("a refused handshake reported success")
	}
	if held, _ := s.Holds(ctx, f.tenant); held || len(f.rc.Subscriptions()) != 0 {
		t.Errorf("held %v, subscriptions %d", held, len(f.rc.Subscriptions()))
	}
}

// A PBX call makes Teams busy through our session; Graph reports the busy state back through the Teams
// → PBX subscription, and nothing is pushed to the PBX.
func TestPBXCallEchoIsNotPushedBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	if _, err := f.manager.Reconcile(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.follow(t)
	before := len(f.rc.Pushes())
	f.pbxEvent(t, "101", connected())
	if n := f.teamsEcho(t); n != 1 {
		t.Fatalf("echo notifications = %d, want 1 (Graph reports our session's Busy/InACall)", n)
	}
	if p := f.rc.Pushes(); len(p) != before {
		t.Errorf("PBX pushes = %+v, want none: Teams' busy came from the PBX call", p[before:])
	}
	if got := f.stats.Snapshot().Echoes; got != 1 {
		t.Errorf("echoes = %d, want 1", got)
	}
	// The call ends: our session goes, Teams reports the user's own state again, which is pushed.
	f.pbxEvent(t, "101", ended())
	f.teamsEcho(t)
	if w := f.writes(ada); len(w) != 2 || w[1].Op != "clear" {
		t.Errorf("writes = %+v", w)
	}
}

// A Teams meeting (presenting) sets DND on the PBX; RingCentral reports that DND back, and nothing is
// written into Teams.
func TestTeamsMeetingEchoIsNotMirroredBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	if _, err := f.manager.Reconcile(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.follow(t)
	if out, err := f.applier.Apply(ctx, f.tenant, presence.Observation{UserID: ada, Availability: "DoNotDisturb", Activity: "Presenting", At: time.Now()}); err != nil || out != presence.Pushed {
		t.Fatalf("teams → pbx = %s, %v", out, err)
	}
	pushed, _ := f.rc.Presence("101")
	// RingCentral reports the DND we set, as a presence event.
	f.pbxEvent(t, "101", rctest.PresenceEvent{TelephonyStatus: "NoCall", UserStatus: pushed.UserStatus, DNDStatus: pushed.DNDStatus})
	if w := f.writes(ada); len(w) != 0 {
		t.Errorf("writes = %+v, want none: the PBX's DND came from Teams", w)
	}
	if got := f.stats.PBX()["teams_echo"]; got != 1 {
		t.Errorf("echo = %d, want 1", got)
	}
}

// Both at once: a Teams meeting put the PBX on DND, then a PBX call starts. The call wins in Teams (our
// session), the DND we set is not mirrored, and the busy Teams reports is not pushed back.
func TestBothAtOnceResolveDeterministically(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	if _, err := f.manager.Reconcile(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.follow(t)
	if _, err := f.applier.Apply(ctx, f.tenant, presence.Observation{UserID: ada, Availability: "DoNotDisturb", Activity: "Presenting", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	pushes := len(f.rc.Pushes())
	ev := connected()
	ev.UserStatus, ev.DNDStatus = ringcentral.PresenceFields(connector.DND)
	f.pbxEvent(t, "101", ev)
	f.teamsEcho(t)
	if w := f.writes(ada); len(w) != 1 || w[0].Availability+"/"+w[0].Activity != "Busy/InACall" {
		t.Errorf("writes = %+v, want the call's Busy/InACall only", w)
	}
	if n := len(f.rc.Pushes()); n != pushes {
		t.Errorf("PBX pushes %d → %d, want none", pushes, n)
	}
	// The call ends with the meeting's DND still set by us: the session is cleared, not turned into DND.
	end := ended()
	end.UserStatus, end.DNDStatus = ringcentral.PresenceFields(connector.DND)
	f.pbxEvent(t, "101", end)
	if w := f.writes(ada); len(w) != 2 || w[1].Op != "clear" {
		t.Errorf("writes = %+v, want the session cleared", w)
	}
}

func TestDirectionSettings(t *testing.T) {
	t.Parallel()
	t.Run("teams to pbx only holds no pbx subscription", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, `{"direction":"teams-to-pbx"}`)
		f.follow(t)
		if n := len(f.rc.Subscriptions()); n != 0 {
			t.Errorf("subscriptions = %d", n)
		}
	})
	t.Run("pbx to teams only pushes nothing to the pbx", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, `{"direction":"pbx-to-teams"}`)
		if out, err := f.applier.Apply(ctx, f.tenant, presence.Observation{UserID: ada, Availability: "Busy", Activity: "InACall", At: time.Now()}); err != nil || out == presence.Pushed {
			t.Errorf("apply = %s, %v; want no push", out, err)
		}
		if n := len(f.rc.Pushes()); n != 0 {
			t.Errorf("pushes = %d", n)
		}
	})
	t.Run("restricted user is not written", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, both)
		f.follow(t)
		if _, err := f.st.Users.Update(ctx, f.tenant, ada, func(u *registry.User) error { u.ProcessingRestricted = true; return nil }); err != nil {
			t.Fatal(err)
		}
		f.pbxEvent(t, "101", connected())
		if w := f.writes(ada); len(w) != 0 {
			t.Errorf("writes = %+v", w)
		}
	})
}

func TestLongCallSessionIsRefreshed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	now := time.Now()
	clock := func() time.Time { return now }
	w, err := pbx.NewWorker(f.st, appClients{f.auth, f.graph.URL()}, f.stats, pbx.WorkerOptions{AppID: appID, SessionLength: time.Hour, RefreshMargin: 20 * time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	f.worker = w
	f.follow(t)
	f.pbxEvent(t, "101", connected())
	if err := w.RefreshSessions(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if n := len(f.writes(ada)); n != 1 {
		t.Fatalf("writes = %d, want 1: a fresh session needs no refresh", n)
	}
	now = now.Add(45 * time.Minute)
	if err := w.RefreshSessions(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if ws := f.writes(ada); len(ws) != 2 || ws[1].Op != "set" || ws[1].Availability != "Busy" {
		t.Fatalf("writes = %+v, want the session set again before it lapses", ws)
	}
	// A call whose end never arrives is not held for ever: past MaxHold (8 h) it is left to lapse.
	held := len(f.writes(ada))
	for range 12 {
		now = now.Add(45 * time.Minute)
		if err := w.RefreshSessions(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.writes(ada)) - held; n < 8 || n > 11 || f.stats.PBX()["teams_hold_expired"] == 0 {
		t.Errorf("%d refreshes over 9 h (hold expired %d), want them to stop after 8 h", n, f.stats.PBX()["teams_hold_expired"])
	}
	f.pbxEvent(t, "101", ended())
	now = now.Add(50 * time.Minute)
	if err := w.RefreshSessions(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	if ws := f.writes(ada); ws[len(ws)-1].Op != "clear" || ws[len(ws)-2].Op != "set" {
		t.Errorf("writes = %+v, want the session cleared at the call's end and no refresh after it", ws)
	}
}

// RingCentral's penalty restarts with every request made during it (rate-limits.md): after a 429 the
// subscriber sends nothing until the penalty is over, then carries on.
func TestRateLimitPenaltyStopsSubscriptionCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	conn := ringcentral.New(ringcentral.Options{BaseURL: f.rc.URL(), Now: clock, HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, f.env.Secrets, f.env.Keys)
	s := pbx.NewSubscriber(f.st, conn, f.stats, nil, pbx.SubscriberOptions{PublicBaseURL: f.endpoint.URL, Now: clock})
	f.rc.Fail(http.MethodPost, "/restapi/v1.0/subscription", rctest.Failure{Status: http.StatusTooManyRequests}) // no Retry-After
	if err := s.Follow(ctx, f.tenant); err == nil {
		t.Fatal("a throttled creation reported success")
	}
	calls := f.rc.CallsPrefix("")
	if err := s.Follow(ctx, f.tenant); err == nil {
		t.Fatal("a call during the penalty reported success")
	}
	if n := f.rc.CallsPrefix(""); n != calls {
		t.Errorf("%d requests during the penalty, want none (each would restart it)", n-calls)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if err := s.Follow(ctx, f.tenant); err != nil {
		t.Fatalf("after the penalty: %v", err)
	}
	if n := len(f.rc.Subscriptions()); n != 1 {
		t.Errorf("subscriptions = %d, want 1", n)
	}
}

// Graph throttling setPresence is transient: the worker changes nothing and asks for a retry; the
// retry writes the session.
func TestThrottledSetPresenceIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.follow(t)
	f.graph.Fail(http.MethodPost, "/users/"+ada+"/presence/setPresence", graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "0"},
		graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "0"}, graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "0"},
		graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "0"})
	if err := f.rc.Deliver(ctx, "101", connected()); err != nil {
		t.Fatal(err)
	}
	msgs := f.sender.take()
	d := &queue.Delivery{Body: msgs[0].Body, MessageID: msgs[0].ID, ApplicationProperties: msgs[0].ApplicationProperties}
	err := f.worker.Process(ctx, d)
	if err == nil || !apperr.Retryable(err) {
		t.Fatalf("throttled = %v, want a retryable error", err)
	}
	if p, err := f.data().Presence.Get(ctx, f.tenant, ada); err == nil && p.PBXSequence != 0 {
		t.Errorf("the event was recorded as applied (sequence %d) although Teams was not written", p.PBXSequence)
	}
	if err := f.worker.Process(ctx, d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if w := f.writes(ada); len(w) != 1 || w[0].Availability != "Busy" {
		t.Errorf("writes = %+v", w)
	}
}

func (f *fixture) data() *presence.Data { return presence.OpenData(f.st.DB()) }

// The generic webhook connector's PBX posts signed events: a call makes the user busy in Teams, a bad
// signature or an old event writes nothing, and the DND we pushed is not mirrored back.
func TestSignedWebhookEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	secret := strings.Repeat("k", 40)
	if _, err := f.st.Tenants.Update(ctx, f.tenant, func(tn *registry.Tenant) error { tn.PBXKind = webhook.Kind; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := connector.SaveCredential(ctx, f.env.Secrets, f.env.Keys, f.tenant, webhook.Credential{Kind: webhook.Kind, URL: "https://pbx.example/hook", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	post := func(key string, ev pbx.SignedEvent, at time.Time) error {
		body, _ := json.Marshal(ev)
		return f.intake.ReceiveSigned(ctx, string(f.tenant), webhook.Sign([]byte(key), at, body), body)
	}
	now := time.Now()
	if err := post(secret, pbx.SignedEvent{Type: "presence", ID: "e1", UserID: ada, Sequence: 10, Call: true}, now); err != nil {
		t.Fatal(err)
	}
	f.work(t)
	if w := f.writes(ada); len(w) != 1 || w[0].Availability+"/"+w[0].Activity != "Busy/InACall" {
		t.Fatalf("writes = %+v, want Busy/InACall", w)
	}
	tests := []struct {
		name   string
		key    string
		ev     pbx.SignedEvent
		at     time.Time
		reason string
	}{
		{"wrong secret", strings.Repeat("x", 40), pbx.SignedEvent{Type: "presence", ID: "e2", UserID: ada, Sequence: 11}, now, "dropped_" + pbx.ReasonForged},
		{"signed too long ago (replay)", secret, pbx.SignedEvent{Type: "presence", ID: "e3", UserID: ada, Sequence: 12}, now.Add(-10 * time.Minute), "dropped_" + pbx.ReasonForged},
		{"older sequence", secret, pbx.SignedEvent{Type: "presence", ID: "e4", UserID: ada, Sequence: 9}, now, "teams_stale"},
	}
	for _, tt := range tests {
		before := f.stats.PBX()[tt.reason]
		if err := post(tt.key, tt.ev, tt.at); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		f.work(t)
		if got := f.stats.PBX()[tt.reason]; got != before+1 {
			t.Errorf("%s: %s = %d, want %d", tt.name, tt.reason, got, before+1)
		}
		if n := len(f.writes(ada)); n != 1 {
			t.Errorf("%s: %d writes, want still 1", tt.name, n)
		}
	}
	// Teams → PBX pushed DND for Grace (a Teams presentation); her PBX reports it back: not mirrored.
	if _, err := f.data().Presence.Insert(ctx, f.tenant, presence.Presence{UserID: grace, PBXState: string(connector.DND), Source: "teams"}); err != nil {
		t.Fatal(err)
	}
	if err := post(secret, pbx.SignedEvent{Type: "presence", ID: "e5", UserID: grace, Sequence: 1, DND: true}, now); err != nil {
		t.Fatal(err)
	}
	f.work(t)
	if w := f.writes(grace); len(w) != 0 {
		t.Errorf("writes = %+v, want none: the DND came from Teams", w)
	}
	if err := f.intake.ReceiveSigned(ctx, string(f.tenant), "t=1,v1=00", []byte(`{"type":"presence"}`)); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("an incomplete event = %v, want Invalid", err)
	}
}

// The admin's status shows the subscription at RingCentral, and what went wrong with it.
func TestStatusShowsThePBXSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	f.manager = presence.NewManager(f.st, delegated{f.auth, f.graph.URL()}, f.applier, nil, presence.ManagerOptions{NotificationURL: "https://x/n", PBX: f.subscriber, Owner: "t"})
	if st, err := f.manager.Status(ctx, f.tenant); err != nil || st.PBX != nil {
		t.Fatalf("before = %+v, %v; want no PBX part", st.PBX, err)
	}
	f.follow(t)
	f.rc.Blacklist(f.rc.Subscriptions()[0].ID, "Webhook responses are failing")
	f.follow(t)
	st, err := f.manager.Status(ctx, f.tenant)
	if err != nil || st.PBX == nil || st.PBX.Status != "Active" || st.PBX.Extensions != 2 || st.PBX.Recreated != 1 || st.PBX.LastError != "" {
		t.Errorf("status = %+v, %v", st.PBX, err)
	}
}

// echoFirst is the app-only client with Graph's notification of our session's presence arriving, and
// being processed, before the answer to setPresence: Graph gives no order between the two (the sandbox
// showed the Teams → PBX worker handling it while the PBX worker had not yet recorded the session).
type echoFirst struct {
	appClients
	arrived func()
}

func (c echoFirst) For(ctx context.Context, tenant core.TenantID) (pbx.Teams, error) {
	t, err := c.appClients.For(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return echoFirstTeams{t, c.arrived}, nil
}

type echoFirstTeams struct {
	pbx.Teams
	arrived func()
}

func (t echoFirstTeams) SetPresence(ctx context.Context, userID, sessionID, availability, activity string, expiry time.Duration) error {
	err := t.Teams.SetPresence(ctx, userID, sessionID, availability, activity, expiry)
	if err == nil {
		t.arrived()
	}
	return err
}

func TestEchoBeforeSetPresenceAnswersIsNotPushedBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	if _, err := f.manager.Reconcile(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.follow(t)
	echoes := 0
	w, err := pbx.NewWorker(f.st, echoFirst{appClients{f.auth, f.graph.URL()}, func() { echoes += f.teamsEcho(t) }}, f.stats, pbx.WorkerOptions{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	f.worker = w
	before := len(f.rc.Pushes())
	f.pbxEvent(t, "101", connected())
	if echoes != 1 {
		t.Fatalf("echo notifications = %d, want 1 (Graph reports our session's Busy/InACall)", echoes)
	}
	if p := f.rc.Pushes(); len(p) != before {
		t.Errorf("PBX pushes = %+v, want none: Teams' busy came from the PBX call", p[before:])
	}
	if got := f.stats.Snapshot().Echoes; got != 1 {
		t.Errorf("echoes = %d, want 1", got)
	}
	if w := f.writes(ada); len(w) != 1 || w[0].Op != "set" {
		t.Errorf("writes = %+v, want our one session", w)
	}
}

// A person erased while their call's event is handled — after setPresence landed, before the worker
// writes its row — gets no presence row back and keeps no session of ours in Teams.
func TestErasureDuringAnEventLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	f := newFixture(t, both)
	if _, err := f.manager.Reconcile(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.follow(t)
	rows := presence.OpenData(f.st.DB()).Presence
	erase := func() {
		if err := rows.Delete(ctx, f.tenant, ada); err != nil {
			t.Errorf("erase: %v", err)
		}
	}
	w, err := pbx.NewWorker(f.st, echoFirst{appClients{f.auth, f.graph.URL()}, erase}, f.stats, pbx.WorkerOptions{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	f.worker = w
	f.pbxEvent(t, "101", connected())
	if _, err := rows.Get(ctx, f.tenant, ada); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("presence row after the erasure: %v, want none", err)
	}
	if w := f.writes(ada); len(w) != 2 || w[0].Op != "set" || w[1].Op != "clear" {
		t.Errorf("Teams writes = %+v, want our session set and taken back", w)
	}
}
