package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/jsonscan"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

const (
	appID   = "11111111-2222-3333-4444-555555555555"
	tenantA = "aaaaaaaa-0000-4000-8000-000000000001"
	tenantB = "bbbbbbbb-0000-4000-8000-000000000002"
	// Subscription ids are GUIDs, as Graph issues them (graph-samples/11: "c6126aa3-0ed8-…").
	subA = "5ab5c71b-0000-4000-8000-00000000000a"
	subB = "5ab5c71b-0000-4000-8000-00000000000b"
)

func newStore(t testing.TB) *registry.Registry { return storetest.New(t) }

// queues is the devhost's real in-memory queue semantics behind the Sender interface.
type queues struct {
	mu   sync.Mutex
	q    map[string]*devhost.Queue
	fail error
}

func newQueues() *queues {
	return &queues{q: map[string]*devhost.Queue{
		queue.Notifications: devhost.NewQueue(queue.Notifications, true, nil),
		queue.Lifecycle:     devhost.NewQueue(queue.Lifecycle, false, nil),
	}}
}

func (qs *queues) Send(_ context.Context, name string, msgs []queue.Message) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.fail != nil {
		return qs.fail
	}
	qs.q[name].Send(msgs)
	return nil
}

func (qs *queues) active(name string) int { return qs.q[name].Stats().Active }

type fixture struct {
	store  *registry.Registry
	intake *Intake
	qs     *queues
	idp    *idptest.Platform
	states map[string]string // subscription id -> clientState
	seq    int               // makes every item distinct, so dedupe never hides a check
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := newStore(t)
	ctx := context.Background()
	f := &fixture{store: s, qs: newQueues(), idp: idptest.New(t), states: map[string]string{}}
	for _, sub := range []struct{ tenant, id string }{{tenantA, subA}, {tenantB, subB}} {
		state, hash, err := registry.NewClientState()
		if err != nil {
			t.Fatal(err)
		}
		tid, _ := core.ParseTenantID(sub.tenant)
		if err := s.Tenants.Create(ctx, registry.Tenant{ID: tid, State: registry.TenantActive}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Subscriptions.Insert(ctx, tid, registry.Subscription{ID: sub.id, Kind: registry.KindPresence,
			Resource: "/communications/presences", ChangeType: "updated", ClientStateHash: hash}); err != nil {
			t.Fatal(err)
		}
		f.states[sub.id] = state
	}
	v, err := validationtoken.New(validationtoken.Config{Audience: appID, OpenIDConfigURL: f.idp.ConfigURL(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.intake = New(s.NewSubscriptionLookup(registry.LookupOptions{}), s.NewTenantStateLookup(registry.TenantStateOptions{}), v, f.qs, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

type item struct {
	Sub, Tenant, State, Resource, Lifecycle string
	Rich                                    bool
}

func (f *fixture) body(t testing.TB, tokens []string, items ...item) []byte {
	t.Helper()
	var vals []map[string]any
	for _, it := range items {
		f.seq++
		i := f.seq
		v := map[string]any{
			"subscriptionId": it.Sub, "clientState": it.State, "changeType": "updated", "tenantId": it.Tenant,
			"resource": it.Resource, "subscriptionExpirationDateTime": "2026-11-22T11:00:00Z",
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.presence", "id": fmt.Sprintf("user-%d", i)},
		}
		if it.Resource == "" {
			v["resource"] = fmt.Sprintf("communications/presences/user-%d", i)
		}
		if it.Lifecycle != "" {
			v["lifecycleEvent"] = it.Lifecycle
		}
		if it.Rich {
			v["encryptedContent"] = map[string]any{"data": "ZGF0YQ==", "dataKey": "a2V5", "dataSignature": fmt.Sprintf("sig-%d", i),
				"encryptionCertificateId": "notification-cert", "encryptionCertificateThumbprint": "AB"}
		}
		vals = append(vals, v)
	}
	b, err := json.Marshal(map[string]any{"value": vals, "validationTokens": tokens})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) token(t testing.TB, tenant string, edit func(jwt.MapClaims)) string {
	c := idptest.Claims(appID, tenant, time.Now())
	if edit != nil {
		edit(c)
	}
	return f.idp.Mint(t, c)
}

func TestReceiveChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	goodA := item{Sub: subA, Tenant: tenantA, State: f.states[subA]}
	tests := []struct {
		name      string
		body      func() []byte
		wantQueue int
		wantLife  int
	}{
		{"basic item with the right clientState", func() []byte { return f.body(t, nil, goodA) }, 1, 0},
		{"wrong clientState", func() []byte {
			return f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subB]})
		}, 0, 0},
		{"clientState of another subscription's tenant", func() []byte {
			return f.body(t, nil, item{Sub: subB, Tenant: tenantA, State: f.states[subB]})
		}, 0, 0},
		{"unknown subscription", func() []byte {
			return f.body(t, nil, item{Sub: "5ab5c71b-0000-4000-8000-0000000000ff", Tenant: tenantA, State: "x"})
		}, 0, 0},
		{"hostile ids", func() []byte {
			return f.body(t, nil, item{Sub: "' or PartitionKey ne '", Tenant: tenantA, State: "x"}, item{Sub: subA, Tenant: "' or 1 eq 1", State: "x"})
		}, 0, 0},
		{"rich item without validation tokens", func() []byte {
			return f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 0, 0},
		{"rich item with a valid token", func() []byte {
			return f.body(t, []string{f.token(t, tenantA, nil)}, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 1, 0},
		{"expired token", func() []byte {
			return f.body(t, []string{f.token(t, tenantA, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
				item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 0, 0},
		{"wrong audience", func() []byte {
			return f.body(t, []string{f.token(t, tenantA, func(c jwt.MapClaims) { c["aud"] = "someone-else" })},
				item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 0, 0},
		{"wrong azp", func() []byte {
			return f.body(t, []string{f.token(t, tenantA, func(c jwt.MapClaims) { c["azp"] = "00000000-0000-0000-0000-000000000000" })},
				item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 0, 0},
		{"forged signature", func() []byte {
			tok := f.token(t, tenantA, nil)
			return f.body(t, []string{tok[:len(tok)-4] + "AAAA"}, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
		}, 0, 0},
		{"lifecycle item goes to the lifecycle queue", func() []byte {
			return f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Lifecycle: "reauthorizationRequired"})
		}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sequential: the subtests share the fixture's queues.
			beforeN, beforeL := f.qs.active(queue.Notifications), f.qs.active(queue.Lifecycle)
			if err := f.intake.Receive(context.Background(), false, tt.body()); err != nil {
				t.Fatalf("Receive = %v, want nil (202) even when items are dropped", err)
			}
			if got := f.qs.active(queue.Notifications) - beforeN; got != tt.wantQueue {
				t.Errorf("enqueued %d notifications, want %d", got, tt.wantQueue)
			}
			if got := f.qs.active(queue.Lifecycle) - beforeL; got != tt.wantLife {
				t.Errorf("enqueued %d lifecycle items, want %d", got, tt.wantLife)
			}
		})
	}
	snap := f.intake.Stats().Snapshot()
	if a := snap.Tenants[tenantA]; a.Rejected[ReasonClientState] < 1 || a.Rejected[ReasonToken] < 5 || a.Enqueued != 3 {
		t.Errorf("tenant A stats = %+v", a)
	}
	if u := snap.Tenants["unknown"]; u.Rejected[ReasonUnknownSubscription] != 2 || u.Rejected[ReasonBadSubscriptionID] != 1 || u.Rejected[ReasonNoTenant] != 1 {
		t.Errorf("unknown stats = %+v", u)
	}
}

func TestMixedTenantsSplit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// One POST, two tenants; only tenant A's token is valid, so only A's items are queued.
	body := f.body(t, []string{f.token(t, tenantA, nil), f.token(t, tenantB, func(c jwt.MapClaims) { c["aud"] = "x" })},
		item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true},
		item{Sub: subB, Tenant: tenantB, State: f.states[subB], Rich: true},
		item{Sub: subA, Tenant: strings.ToUpper(tenantA), State: f.states[subA], Rich: true},
	)
	if err := f.intake.Receive(context.Background(), false, body); err != nil {
		t.Fatal(err)
	}
	q := f.qs.q[queue.Notifications]
	if got := q.Stats().Active; got != 2 {
		t.Fatalf("queued %d, want 2 (tenant A's)", got)
	}
	snap := f.intake.Stats().Snapshot()
	if snap.Tenants[tenantB].Rejected[ReasonToken] != 1 || snap.Tenants[tenantA].Enqueued != 2 {
		t.Errorf("stats = %+v", snap.Tenants)
	}
}

// A body whose string stops the envelope reader found queues exactly what the same body read alone
// queues: the same messages, ids and bytes, and the same rejections.
func TestScannedBodyQueuesTheSame(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := f.body(t, []string{f.token(t, tenantA, nil)},
		item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true},
		item{Sub: subA, Tenant: tenantA, State: "not-" + f.states[subA], Rich: true},
		item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true, Resource: "communications/presences/\u00e9\"x"},
	)
	stops := jsonscan.StopsOf(body)
	var queued [2][]queue.Message
	for i, stops := range [][]int32{nil, stops} {
		qs := newQueues()
		in := New(f.intake.subs, f.intake.tenants, f.intake.tokens, qs, time.Second, slog.New(slog.DiscardHandler))
		if err := in.ReceiveScanned(context.Background(), false, body, stops); err != nil {
			t.Fatal(err)
		}
		for _, m := range qs.q[queue.Notifications].Snapshot() {
			queued[i] = append(queued[i], m.Message)
		}
		if got := in.Stats().Snapshot().Tenants[tenantA].Rejected[ReasonClientState]; got != 1 {
			t.Errorf("stops %v: %d rejected for the clientState, want 1", stops != nil, got)
		}
	}
	if len(queued[0]) != 2 || !reflect.DeepEqual(queued[0], queued[1]) {
		t.Fatalf("read alone queued %+v\nwith its stops %+v", queued[0], queued[1])
	}
}

func TestQueuedMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := f.body(t, []string{f.token(t, tenantA, nil)}, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
	if err := f.intake.Receive(context.Background(), false, body); err != nil {
		t.Fatal(err)
	}
	// Replays of the same POST are dropped by MessageID.
	for range 3 { // same bytes: Graph's replay
		if err := f.intake.Receive(context.Background(), false, body); err != nil {
			t.Fatal(err)
		}
	}
	q := f.qs.q[queue.Notifications]
	if got := q.Stats().Active; got != 1 {
		t.Fatalf("queued %d after 4 identical POSTs, want 1", got)
	}
	m := q.Snapshot()[0]
	if m.ApplicationProperties[queue.PropTenant] != tenantA || m.ApplicationProperties[queue.PropKind] != "presence" || m.SessionID == "" {
		t.Errorf("message properties = %+v session %q", m.ApplicationProperties, m.SessionID)
	}
	n, err := notification.Parse([]byte(`{"value":[` + string(m.Body) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n.Value[0].ClientState != "" {
		t.Error("clientState travelled into the queue")
	}
	if n.Value[0].EncryptedContent.Data != "ZGF0YQ==" {
		t.Error("encrypted content must stay encrypted, unchanged, in the queue")
	}
}

func TestQueueOutageIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.qs.fail = errors.New("service bus unavailable")
	err := f.intake.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]}))
	if apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("Receive = %v, want Unavailable (503)", err)
	}
	if f.qs.active(queue.Notifications) != 0 {
		t.Error("something was queued")
	}
	if f.intake.Stats().Snapshot().HandoffFailures != 1 {
		t.Error("hand-off failure not counted")
	}
	f.qs.fail = nil
	if err := f.intake.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]})); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNotACollection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, b := range []string{`[]`, `"x"`, `{"foo":1}`, `not json`, `{"value":"nope"}`} {
		if err := f.intake.Receive(context.Background(), false, []byte(b)); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("Receive(%s) = %v, want Invalid (400)", b, err)
		}
	}
}

func TestKeysUnavailableIs503(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	qs := newQueues()
	v, err := validationtoken.New(validationtoken.Config{Audience: appID, OpenIDConfigURL: "http://127.0.0.1:1/none",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	in := New(s.NewSubscriptionLookup(registry.LookupOptions{}), s.NewTenantStateLookup(registry.TenantStateOptions{}), v, qs, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f := &fixture{idp: idptest.New(t)}
	body := f.body(t, []string{f.token(t, tenantA, nil)}, item{Sub: subA, Tenant: tenantA, State: "x", Rich: true})
	if err := in.Receive(context.Background(), false, body); apperr.CodeOf(err) != apperr.Unavailable {
		t.Errorf("Receive with no signing keys loaded = %v, want Unavailable (503) so Graph retries", err)
	}
}

func BenchmarkReceive(b *testing.B) {
	for _, items := range []int{1, 50} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			f := newFixture(b)
			var its []item
			for range items {
				its = append(its, item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true})
			}
			body := f.body(b, []string{f.token(b, tenantA, nil)}, its...)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := f.intake.Receive(context.Background(), false, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReceiveWrongClientState is a 50-item rich POST of a known subscription whose clientState is
// wrong (a forger who learnt a subscription id): every item must be dropped for the cost of a hash and
// a compare, not a full decode.
func BenchmarkReceiveWrongClientState(b *testing.B) {
	f := newFixture(b)
	var its []item
	for range 50 {
		its = append(its, item{Sub: subA, Tenant: tenantA, State: f.states[subB], Rich: true})
	}
	body := f.body(b, []string{f.token(b, tenantA, nil)}, its...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.intake.Receive(context.Background(), false, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiveForged is the largest POST an anonymous caller may send: MaxItems items of made-up
// subscription ids, once their misses are remembered (a fresh id costs a read, bounded by MaxLookups).
func BenchmarkReceiveForged(b *testing.B) {
	f := newFixture(b)
	var its []item
	for i := range MaxItems {
		its = append(its, item{Sub: guid(i % MaxLookups), Tenant: tenantA, State: "forged"})
	}
	body := f.body(b, nil, its...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.intake.Receive(context.Background(), false, body); err != nil {
			b.Fatal(err)
		}
	}
}

// slowQueue never answers until the caller gives up, like a Service Bus namespace that hangs.
type slowQueue struct{}

func (slowQueue) Send(ctx context.Context, _ string, _ []queue.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestHandoffDeadlineIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := New(f.intake.subs, f.intake.tenants, f.intake.tokens, slowQueue{}, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := in.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]}))
	if apperr.CodeOf(err) != apperr.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %v, want Unavailable caused by the hand-off deadline", err)
	}
}

// A suspended or cancelled tenant's genuine items are dropped and counted as tenant_inactive (not
// queued, so no personal data travels on); forged ones still count as what they are.
func TestInactiveTenantItemsAreDropped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := core.ParseTenantID(tenantA)
	setState := func(state registry.TenantState) {
		t.Helper()
		if _, err := f.store.Tenants.Update(context.Background(), a, func(t *registry.Tenant) error { t.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(body []byte) (notes, lifecycles int) {
		t.Helper()
		beforeN, beforeL := f.qs.active(queue.Notifications), f.qs.active(queue.Lifecycle)
		if err := f.intake.Receive(context.Background(), false, body); err != nil {
			t.Fatalf("Receive = %v, want nil (202): dropped items are acknowledged", err)
		}
		return f.qs.active(queue.Notifications) - beforeN, f.qs.active(queue.Lifecycle) - beforeL
	}
	all := func() []byte {
		return f.body(t, []string{f.token(t, tenantA, nil), f.token(t, tenantB, nil)},
			item{Sub: subA, Tenant: tenantA, State: f.states[subA], Rich: true},
			item{Sub: subA, Tenant: tenantA, State: f.states[subA], Lifecycle: "reauthorizationRequired"},
			item{Sub: subA, Tenant: tenantA, State: f.states[subB], Rich: true}, // forged clientState
			item{Sub: subB, Tenant: tenantB, State: f.states[subB], Rich: true},
		)
	}

	for _, state := range []registry.TenantState{registry.TenantSuspended, registry.TenantCancelled} {
		setState(state)
		if n, l := receive(all()); n != 1 || l != 0 {
			t.Errorf("%s: queued %d notifications and %d lifecycle items, want only tenant B's notification", state, n, l)
		}
	}
	snap := f.intake.Stats().Snapshot()
	if got := snap.Tenants[tenantA]; got.Rejected[ReasonTenantInactive] != 4 || got.Rejected[ReasonClientState] != 2 || got.Enqueued != 0 {
		t.Errorf("tenant A stats = %+v, want 4 tenant_inactive, 2 client_state, nothing enqueued", got)
	}
	if got := snap.Tenants[tenantB]; got.Rejected[ReasonTenantInactive] != 0 || got.Enqueued != 2 {
		t.Errorf("tenant B stats = %+v", got)
	}

	setState(registry.TenantActive)
	if n, l := receive(all()); n != 2 || l != 1 {
		t.Errorf("reactivated: queued %d notifications and %d lifecycle items, want 2 and 1", n, l)
	}
}

type failingTenants struct{}

func (failingTenants) Active(context.Context, core.TenantID, time.Time) (bool, error) {
	return false, errors.New("table storage unavailable")
}

// When the state cannot be read we cannot tell whether to drop: Graph must retry, as for a failed
// subscription lookup.
func TestTenantStateOutageIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := New(f.intake.subs, failingTenants{}, f.intake.tokens, f.qs, time.Second, slog.New(slog.DiscardHandler))
	err := in.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]}))
	if apperr.CodeOf(err) != apperr.Unavailable || f.qs.active(queue.Notifications) != 0 {
		t.Errorf("Receive = %v with %d queued, want Unavailable and nothing queued", err, f.qs.active(queue.Notifications))
	}
}

// A forged POST decides what ends up in our logs only up to a bound: a 100 kB subscription id is
// logged as a short prefix, whatever the rejection.
func TestRejectionLogIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var logs bytes.Buffer
	in := New(f.intake.subs, f.intake.tenants, f.intake.tokens, f.qs, time.Second, slog.New(slog.NewJSONHandler(&logs, nil)))
	huge := strings.Repeat("9", 100_000)
	body := f.body(t, nil,
		item{Sub: huge, Tenant: tenantA, State: "x"},
		item{Sub: huge + "-2", Tenant: tenantA, State: "x"},
		item{Sub: subA, Tenant: tenantA, State: strings.Repeat("s", 100_000)},
	)
	if err := in.Receive(context.Background(), false, body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "notifications rejected") {
		t.Fatalf("no rejection logged: %s", logs.String())
	}
	if logs.Len() > 2048 {
		t.Errorf("a %d-byte POST wrote %d bytes of log, want at most 2 kB", len(body), logs.Len())
	}
}

// A forger decides how many POSTs we get, not how many lines we log: POSTs with rejected items write
// one line per second at most, and the next line says how many went unlogged. Every item is still
// counted in the stats.
func TestRejectionLogIsRateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var logs bytes.Buffer
	in := New(f.intake.subs, f.intake.tenants, f.intake.tokens, f.qs, time.Second, slog.New(slog.NewJSONHandler(&logs, nil)))
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	in.now = func() time.Time { return now }
	forged := f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: "not-" + f.states[subA]})
	lines := func() []map[string]any {
		var out []map[string]any
		for l := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			if m["msg"] == "notifications rejected" {
				out = append(out, m)
			}
		}
		return out
	}
	for range 5 {
		if err := in.Receive(context.Background(), false, forged); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if got := lines(); len(got) != 1 || got[0]["posts_unlogged"] != 0.0 {
		t.Fatalf("five forged POSTs in half a second logged %v, want one line with posts_unlogged 0", got)
	}
	now = now.Add(time.Second)
	if err := in.Receive(context.Background(), false, forged); err != nil {
		t.Fatal(err)
	}
	if got := lines(); len(got) != 2 || got[1]["posts_unlogged"] != 4.0 {
		t.Fatalf("a forged POST a second later logged %v, want a second line with posts_unlogged 4", got)
	}
	if got := in.Stats().Snapshot().Tenants[tenantA].Rejected[ReasonClientState]; got != 6 {
		t.Errorf("rejections counted = %d, want 6", got)
	}
}

// stalledSubs is a subscription store that never answers, as a frozen Table Storage connection: it
// returns only when the caller's context ends. It records the deadline it was given; without one it
// fails at once instead of hanging the test.
type stalledSubs struct{ deadline chan time.Time }

func (s stalledSubs) Get(ctx context.Context, _ core.TenantID, _ string) (registry.Subscription, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return registry.Subscription{}, errors.New("subscription lookup called without a deadline")
	}
	s.deadline <- d
	<-ctx.Done()
	return registry.Subscription{}, ctx.Err()
}

func (stalledSubs) Cached(core.TenantID, string) (registry.Subscription, bool, bool) {
	return registry.Subscription{}, false, false
}

type stalledTenants struct{ deadline chan time.Time }

func (s stalledTenants) Active(ctx context.Context, _ core.TenantID, _ time.Time) (bool, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return false, errors.New("tenant state lookup called without a deadline")
	}
	s.deadline <- d
	<-ctx.Done()
	return false, ctx.Err()
}

// Every read the webhook waits for runs under the intake's one deadline, so a store that stops
// answering costs Graph a prompt 503 and a retry, not a hung POST.
func TestStalledStoreIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const budget = 50 * time.Millisecond
	tests := []struct {
		name     string
		intake   func(deadline chan time.Time) *Intake
		wantStep string
	}{
		{"subscription lookup", func(d chan time.Time) *Intake {
			return New(stalledSubs{d}, f.intake.tenants, f.intake.tokens, f.qs, budget, slog.New(slog.DiscardHandler))
		}, "subscription lookup failed"},
		{"tenant state", func(d chan time.Time) *Intake {
			// The subscription lookup must not be what runs out: read the subscription once first, so it
			// is in the lookup's cache and a slow Azurite (a loaded machine) cannot eat the 50 ms.
			if err := f.intake.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]})); err != nil {
				t.Fatalf("warming the subscription lookup: %v", err)
			}
			return New(f.intake.subs, stalledTenants{d}, f.intake.tokens, f.qs, budget, slog.New(slog.DiscardHandler))
		}, "tenant state lookup failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deadline := make(chan time.Time, 1)
			err := tt.intake(deadline).Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]}))
			if apperr.CodeOf(err) != apperr.Unavailable || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tt.wantStep) {
				t.Fatalf("Receive = %v, want Unavailable (503) from the %s running out of the deadline", err, tt.name)
			}
			// The read got the intake's deadline, not one of its own: it was set before Receive returned.
			if d := <-deadline; d.After(time.Now().Add(budget)) {
				t.Errorf("read deadline %v is later than the budget allows", d)
			}
		})
	}
}

// recordingQueue accepts everything and records the deadline of each send.
type recordingQueue struct{ deadlines []time.Time }

func (q *recordingQueue) Send(ctx context.Context, _ string, _ []queue.Message) error {
	d, _ := ctx.Deadline()
	q.deadlines = append(q.deadlines, d)
	return nil
}

type recordingSubs struct {
	Subscriptions
	deadlines []time.Time
}

func (s *recordingSubs) Get(ctx context.Context, tenant core.TenantID, id string) (registry.Subscription, error) {
	d, _ := ctx.Deadline()
	s.deadlines = append(s.deadlines, d)
	return s.Subscriptions.Get(ctx, tenant, id)
}

// The lookups and the hand-off share one deadline: time spent reading is not given again to the send.
func TestOneDeadlineForLookupAndHandoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	subs, q := &recordingSubs{Subscriptions: f.intake.subs}, &recordingQueue{}
	in := New(subs, f.intake.tenants, f.intake.tokens, q, time.Second, slog.New(slog.DiscardHandler))
	if err := in.Receive(context.Background(), false, f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]})); err != nil {
		t.Fatal(err)
	}
	if len(subs.deadlines) != 1 || len(q.deadlines) != 2 {
		t.Fatalf("%d lookups and %d sends, want 1 and 2", len(subs.deadlines), len(q.deadlines))
	}
	for _, d := range append(subs.deadlines, q.deadlines...) {
		if d.IsZero() || !d.Equal(subs.deadlines[0]) {
			t.Errorf("deadlines %v (lookup) and %v (sends), want one and the same", subs.deadlines, q.deadlines)
			break
		}
	}
}

// deadStore is a subscription lookup on the real Table Storage client whose endpoint refuses
// connections (refuse) or accepts them and never answers (freeze).
func deadStore(t *testing.T, freeze bool) Subscriptions {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if freeze {
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		release := func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		}
		// Without the intake's deadline the client would wait for ever; letting go after a while
		// makes such a regression fail instead of hanging the run.
		timer := time.AfterFunc(20*time.Second, release)
		t.Cleanup(func() { timer.Stop(); release() })
	} else {
		ln.Close()
	}
	conn := regexp.MustCompile(`TableEndpoint=[a-z]+://[^/;]+`).ReplaceAllString(storetest.ConnectionString(t), "TableEndpoint=http://"+addr)
	s, err := registry.NewFromConnectionString(conn, tables.Options{TablePrefix: storetest.UniquePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	return s.NewSubscriptionLookup(registry.LookupOptions{})
}

// The same through the real Table Storage client: a refusing store used to answer 503 only after the
// SDK's retries (about 10 s), a frozen one never. The deadline ends both.
func TestDeadStoreIs503WithinTheDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		freeze bool
	}{{"refusing", false}, {"frozen", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := New(deadStore(t, tt.freeze), f.intake.tenants, f.intake.tokens, f.qs, 200*time.Millisecond, slog.New(slog.DiscardHandler))
			body := f.body(t, nil, item{Sub: subA, Tenant: tenantA, State: f.states[subA]})
			err := in.Receive(context.Background(), false, body)
			if apperr.CodeOf(err) != apperr.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Receive = %v, want Unavailable (503) ended by the deadline", err)
			}
		})
	}
}

// countingSubs counts the lookups that reach the subscription store.
type countingSubs struct {
	Subscriptions
	mu    sync.Mutex
	calls int
}

func (s *countingSubs) Get(ctx context.Context, tenant core.TenantID, id string) (registry.Subscription, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.Subscriptions.Get(ctx, tenant, id)
}

// Graph's subscription ids are GUIDs: anything else is forged, dropped and counted before any lookup,
// and not quoted in the log.
func TestMalformedSubscriptionIDsAreNotLookedUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	subs := &countingSubs{Subscriptions: f.intake.subs}
	var logs bytes.Buffer
	in := New(subs, f.intake.tenants, f.intake.tokens, f.qs, time.Second, slog.New(slog.NewJSONHandler(&logs, nil)))
	bad := []string{"", "sub-a", "nope", "' or PartitionKey ne '", "{" + subA + "}", subA + "0", strings.Repeat("f", 4096)}
	var items []item
	for _, id := range bad {
		items = append(items, item{Sub: id, Tenant: tenantA, State: f.states[subA]})
	}
	if err := in.Receive(context.Background(), false, f.body(t, nil, items...)); err != nil {
		t.Fatal(err)
	}
	if subs.calls != 0 {
		t.Errorf("%d lookups for malformed subscription ids, want none", subs.calls)
	}
	if got := in.Stats().Snapshot().Tenants["unknown"].Rejected[ReasonBadSubscriptionID]; got != int64(len(bad)) {
		t.Errorf("counted %d bad_subscription_id, want %d", got, len(bad))
	}
	if strings.Contains(logs.String(), "nope") || strings.Contains(logs.String(), "ffff") {
		t.Errorf("malformed ids were logged: %s", logs.String())
	}
}

// A POST may carry at most MaxItems items and as many validation tokens; beyond that it is refused
// whole (413) before any item is looked up or queued.
func TestItemCapIs413(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	subs := &countingSubs{Subscriptions: f.intake.subs}
	in := New(subs, f.intake.tenants, f.intake.tokens, f.qs, 5*time.Second, slog.New(slog.DiscardHandler))
	good := item{Sub: subA, Tenant: tenantA, State: f.states[subA]}
	many := func(n int) []item { return slices.Repeat([]item{good}, n) }
	tokens := func(n int) []string { return slices.Repeat([]string{"not-a-jwt"}, n) }

	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"one item too many", f.body(t, nil, many(MaxItems+1)...)},
		{"one token too many", f.body(t, tokens(MaxItems+1), good)},
	} {
		err := in.Receive(context.Background(), false, tt.body)
		if apperr.CodeOf(err) != apperr.TooLarge {
			t.Errorf("%s: Receive = %v, want TooLarge (413)", tt.name, err)
		}
	}
	if subs.calls != 0 || f.qs.active(queue.Notifications) != 0 {
		t.Errorf("%d lookups and %d queued for refused POSTs, want none", subs.calls, f.qs.active(queue.Notifications))
	}
	if err := in.Receive(context.Background(), false, f.body(t, nil, many(MaxItems)...)); err != nil {
		t.Fatalf("Receive of exactly MaxItems items = %v, want nil (202)", err)
	}
	if got := f.qs.active(queue.Notifications); got != MaxItems {
		t.Errorf("queued %d of %d items", got, MaxItems)
	}
}

func guid(i int) string { return fmt.Sprintf("5ab5c71b-0000-4000-8000-%012x", 0x1000+i) }

// Made-up subscription ids cost at most MaxLookups storage reads per POST; a POST needing more is
// answered 503 without reading further, and its retry finds the ids read before in memory (misses
// too), so a genuine POST gets through on a later attempt.
func TestLookupBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	subs := &countingSubs{Subscriptions: f.store.NewSubscriptionLookup(registry.LookupOptions{})}
	in := New(subs, f.intake.tenants, f.intake.tokens, f.qs, 5*time.Second, slog.New(slog.DiscardHandler))
	items := []item{{Sub: subA, Tenant: tenantA, State: f.states[subA]}}
	for i := range MaxLookups + 10 {
		items = append(items, item{Sub: guid(i), Tenant: tenantA, State: "x"})
	}
	body := f.body(t, nil, items...)
	receive := func() (reads int, err error) {
		before := subs.calls
		err = in.Receive(context.Background(), false, body)
		return subs.calls - before, err
	}

	reads, err := receive()
	if apperr.CodeOf(err) != apperr.Unavailable || reads != MaxLookups {
		t.Fatalf("first POST: %v after %d reads, want Unavailable (503) after %d", err, reads, MaxLookups)
	}
	if f.qs.active(queue.Notifications) != 0 {
		t.Error("something was queued from a POST answered 503")
	}
	// 1 real + 31 made-up ids are in memory now; the other 11 made-up ones fit this time.
	if reads, err := receive(); err != nil || reads != len(items)-MaxLookups {
		t.Fatalf("retry: %v after %d reads, want nil (202) after %d", err, reads, len(items)-MaxLookups)
	}
	if f.qs.active(queue.Notifications) != 1 {
		t.Errorf("queued %d, want the one genuine item", f.qs.active(queue.Notifications))
	}
	if reads, err := receive(); err != nil || reads != 0 {
		t.Errorf("third POST: %v after %d reads, want nil after none: every id is in memory", err, reads)
	}
	if got := in.Stats().Snapshot().LookupsOverBudget; got != 1 {
		t.Errorf("lookupsOverBudget = %d, want 1", got)
	}

	// One made-up id repeated is one read, not one per item.
	if reads, err := func() (int, error) {
		before := subs.calls
		err := in.Receive(context.Background(), false, f.body(t, nil, slices.Repeat([]item{{Sub: guid(999), Tenant: tenantA, State: "x"}}, MaxItems)...))
		return subs.calls - before, err
	}(); err != nil || reads != 1 {
		t.Errorf("%d items of one made-up id: %v after %d reads, want nil after 1", MaxItems, err, reads)
	}
}

// A basic notification without etag, sequence number or id (Graph's basic presence notifications,
// graph-samples/02) cannot be told from a second change to the same resource: two of them are both
// queued, never merged by duplicate detection while Health counts both. A versioned one is still
// deduplicated.
func TestVersionlessChangesAreNotMerged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	post := func(version string) []byte {
		return []byte(`{"value":[{"subscriptionId":"` + subA + `","clientState":"` + f.states[subA] + `","changeType":"updated",` +
			`"tenantId":"` + tenantA + `","resource":"communications/presences/u1","subscriptionExpirationDateTime":"2026-11-22T11:00:00Z",` +
			`"resourceData":{"@odata.id":"users/u1/presence","@odata.type":"#microsoft.graph.presence","id":"u1"` + version + `}}]}`)
	}
	for range 2 { // the user's presence changes twice within a minute
		if err := f.intake.Receive(context.Background(), false, post("")); err != nil {
			t.Fatal(err)
		}
	}
	if got, counted := f.qs.active(queue.Notifications), f.intake.Stats().Snapshot().Tenants[tenantA].Enqueued; got != 2 || counted != 2 {
		t.Errorf("queued %d of 2 versionless changes, Health counts %d; want both", got, counted)
	}
	for range 2 { // Graph replays a versioned notification
		if err := f.intake.Receive(context.Background(), false, post(`,"@odata.etag":"W/\"7\""`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.qs.active(queue.Notifications); got != 3 {
		t.Errorf("queued %d, want the versioned replay deduplicated (3)", got)
	}
	ids := map[string]bool{}
	for _, m := range f.qs.q[queue.Notifications].Snapshot() {
		if ids[m.ID] || m.ID == "" || len(m.ID) > 128 {
			t.Errorf("message id %q repeated, empty or over Service Bus's 128 characters", m.ID)
		}
		ids[m.ID] = true
	}
}

// A room's booking notifications, whatever event they name, share one Service Bus session per room
// subscription: the worker re-reads the room's whole window, and the session lock keeps those reads to
// one at a time per room mailbox on every instance (Outlook allows 4 concurrent requests per app and
// mailbox). Presence keeps one session per user, so users are applied in parallel.
func TestBookingNotificationsShareTheRoomsSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tid, _ := core.ParseTenantID(tenantA)
	rooms := map[string]string{"11111111-aaaa-4aaa-8aaa-000000000001": "", "11111111-aaaa-4aaa-8aaa-000000000002": ""}
	for id := range rooms {
		state, hash, err := registry.NewClientState()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Subscriptions.Insert(ctx, tid, registry.Subscription{ID: id, Kind: registry.KindBooking,
			Resource: "/users/room@contoso.com/events", ChangeType: "created,updated,deleted", ClientStateHash: hash}); err != nil {
			t.Fatal(err)
		}
		rooms[id] = state
	}
	var items []item
	for id, state := range rooms {
		for e := range 3 { // three different events of the room
			items = append(items, item{Sub: id, Tenant: tenantA, State: state, Resource: fmt.Sprintf("Users/room-id/Events/event-%d", e)})
		}
	}
	items = append(items, item{Sub: subA, Tenant: tenantA, State: f.states[subA]}, item{Sub: subA, Tenant: tenantA, State: f.states[subA]})
	if err := f.intake.Receive(ctx, false, f.body(t, nil, items...)); err != nil {
		t.Fatal(err)
	}
	sessions := map[string]map[string]bool{} // kind/subscription → sessions
	for _, m := range f.qs.q[queue.Notifications].Snapshot() {
		n, err := notification.Parse([]byte(`{"value":[` + string(m.Body) + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		k := m.ApplicationProperties[queue.PropKind] + "/" + n.Value[0].SubscriptionID
		if sessions[k] == nil {
			sessions[k] = map[string]bool{}
		}
		sessions[k][m.SessionID] = true
	}
	if len(sessions) != 3 {
		t.Fatalf("queued kinds/subscriptions %v, want two rooms and the presence subscription", sessions)
	}
	all := map[string]bool{}
	for k, s := range sessions {
		want := 1
		if strings.HasPrefix(k, "presence/") {
			want = 2 // two users
		}
		if len(s) != want {
			t.Errorf("%s: %d sessions, want %d", k, len(s), want)
		}
		for id := range s {
			if all[id] {
				t.Errorf("session %s shared across subscriptions or users", id)
			}
			all[id] = true
		}
	}
}
