package presence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
)

var ctx = context.Background()

const clientID = "11111111-2222-3333-4444-555555555555"

// recPusher records pushes and fails on demand.
type recPusher struct {
	mu     sync.Mutex
	pushes []pushed
	fail   []error
	// during, when set, runs inside Push: another writer acting while the push is under way.
	during func()
}

type pushed struct {
	user  connector.User
	state connector.State
}

func (r *recPusher) Push(_ context.Context, _ core.TenantID, u connector.User, s connector.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.during != nil {
		r.during()
	}
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		return err
	}
	r.pushes = append(r.pushes, pushed{u, s})
	return nil
}

func (r *recPusher) failNext(errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = append(r.fail, errs...)
}

func (r *recPusher) all() []pushed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pushed(nil), r.pushes...)
}

func (r *recPusher) last(userID string) (connector.State, int) {
	n := 0
	var st connector.State
	for _, p := range r.all() {
		if p.user.ID == userID {
			n++
			st = p.state
		}
	}
	return st, n
}

// recSender records messages the worker reschedules.
type recSender struct {
	mu   sync.Mutex
	msgs []queue.Message
}

func (s *recSender) Send(_ context.Context, q string, msgs []queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q != queue.Notifications {
		return fmt.Errorf("unexpected queue %s", q)
	}
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

// hook is our webhook as Graph sees it: echoes validation tokens, keeps what is posted.
type hook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts [][]byte
}

func newHook(t testing.TB) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, tok)
			return
		}
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.posts = append(h.posts, b)
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) take() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.posts
	h.posts = nil
	return p
}

type staticCred string

func (s staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// clients gives each service user a delegated client with a token from the fake authority.
type clients struct {
	auth *graphtest.Authority
	base string
}

func (c *clients) For(_ context.Context, tenant core.TenantID, su string) (presence.Graph, error) {
	tok := c.auth.IssueToken(graphtest.Identity{Tenant: string(tenant), ClientID: clientID, UserID: su})
	return graph.New(staticCred(tok), graph.Options{BaseURL: c.base})
}

type fixture struct {
	env     *storetest.Env
	st      *registry.Registry
	tenant  core.TenantID
	auth    *graphtest.Authority
	graph   *graphtest.Graph
	hook    *hook
	pusher  *recPusher
	sender  *recSender
	ring    *graphcrypto.KeyRing
	stats   *presence.Stats
	applier *presence.Applier
	manager *presence.Manager
	worker  *presence.Worker
}

type fixtureOptions struct {
	maxAttempts int
	now         func() time.Time // the applier's and the worker's clock (default time.Now)
	liveStatus  int              // ManagerOptions.LiveStatusMax
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	env := storetest.NewEnv(t, storetest.Options{})
	cert, key, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := graphcrypto.NewKeyRing(graphcrypto.Key{ID: "notification-cert", Certificate: cert, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	auth := graphtest.NewAuthority(t)
	g := graphtest.NewGraph(t, auth)
	h := newHook(t)
	f := &fixture{env: env, st: env.Store, tenant: env.NewTenant(t), auth: auth, graph: g, hook: h,
		pusher: &recPusher{}, sender: &recSender{}, ring: ring, stats: presence.NewStats()}
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: f.tenant, State: registry.TenantActive, PBXKind: "test"}); err != nil {
		t.Fatal(err)
	}
	f.applier = presence.NewApplier(f.st, connector.Registry{"test": f.pusher}, presence.DefaultMapping(), f.stats, o.now, nil)
	cl := &clients{auth: auth, base: g.URL()}
	f.manager = presence.NewManager(f.st, cl, f.applier, ring, presence.ManagerOptions{
		NotificationURL: h.srv.URL + "/api/graph/notifications", LifecycleURL: h.srv.URL + "/api/graph/lifecycle",
		Lifetime: 55 * time.Minute, RenewMargin: 25 * time.Minute, Owner: "test-1", Now: o.now, LiveStatusMax: o.liveStatus})
	max := o.maxAttempts
	if max == 0 {
		max = 3
	}
	f.worker = presence.NewWorker(f.applier, ring, f.sender, presence.WorkerOptions{Graph: cl, MaxAttempts: max, RetryDelay: time.Second, Now: o.now})
	return f
}

func (f *fixture) addUsers(t testing.TB, ids ...string) {
	t.Helper()
	var us []registry.User
	for _, id := range ids {
		us = append(us, registry.User{ID: id, DisplayName: "User " + id[:8], Mail: id[:8] + "@contoso.example", Licensed: true})
	}
	for start := 0; start < len(us); start += 100 {
		if err := f.st.Users.InsertBatch(ctx, f.tenant, us[start:min(start+100, len(us))]); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) addServiceUser(t testing.TB, id string, at time.Time) {
	t.Helper()
	if _, err := serviceuser.OpenTable(f.st.DB()).Insert(ctx, f.tenant, serviceuser.ServiceUser{ID: id, State: serviceuser.Active, ConnectedAt: at}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) subscriptions(t testing.TB) []registry.Subscription {
	t.Helper()
	var out []registry.Subscription
	for s, err := range f.st.Subscriptions.All(ctx, f.tenant, nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// deliveries turns what Graph posted into queue deliveries exactly as the intake queues them.
func (f *fixture) deliveries(t testing.TB, ds []graphtest.Delivery, enqueued time.Time) []*queue.Delivery {
	t.Helper()
	var out []*queue.Delivery
	for _, d := range ds {
		coll, err := notification.Parse(d.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range coll.Value {
			n.ClientState = ""
			body, _ := json.Marshal(n)
			id, _ := notification.MessageID(n) // rich: always versioned by its signature
			out = append(out, &queue.Delivery{Body: body, MessageID: id, SessionID: notification.OrderingKey(n),
				DeliveryCount: 1, EnqueuedTime: enqueued, ContentType: "application/json",
				ApplicationProperties: map[string]string{queue.PropTenant: string(f.tenant), queue.PropKind: string(registry.KindPresence)}})
		}
	}
	return out
}

// notify changes a presence at the fake Graph and returns the worker's deliveries for it.
func (f *fixture) notify(t testing.TB, user, availability, activity string) []*queue.Delivery {
	t.Helper()
	ds, err := f.graph.SetPresence(string(f.tenant), user, availability, activity)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) == 0 {
		t.Fatalf("no subscription covers %s", user)
	}
	return f.deliveries(t, ds, time.Now())
}

func redeliver(m queue.Message) *queue.Delivery {
	return &queue.Delivery{Body: m.Body, MessageID: m.ID, SessionID: m.SessionID, DeliveryCount: 1, EnqueuedTime: time.Now(),
		ContentType: m.ContentType, ApplicationProperties: m.ApplicationProperties}
}

func nopLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
