package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

type actionFunc func(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error

func (f actionFunc) Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error {
	return f(ctx, tenant, sub, event)
}

func TestLifecycleWorkerRecordsEvent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	tid, _ := core.ParseTenantID(tenantA)
	if _, err := s.Subscriptions.Insert(ctx, tid, registry.Subscription{ID: "sub-a", Kind: registry.KindPresence}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var acted []string
	fail := true
	w := NewLifecycleWorker(s.Subscriptions, actionFunc(func(_ context.Context, _ core.TenantID, sub registry.Subscription, ev string) error {
		acted = append(acted, ev+":"+sub.LastLifecycleEvent)
		if fail {
			fail = false
			return errors.New("graph unavailable")
		}
		return nil
	}), func() time.Time { return at }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d := &queue.Delivery{Body: []byte(`{"subscriptionId":"sub-a","lifecycleEvent":"reauthorizationRequired","tenantId":"` + tenantA + `"}`),
		ApplicationProperties: map[string]string{queue.PropTenant: tenantA}}

	if err := w.Process(ctx, d); err == nil {
		t.Fatal("a failed action must fail the invocation so Service Bus redelivers")
	}
	if err := w.Process(ctx, d); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	got, err := s.Subscriptions.Get(ctx, tid, "sub-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastLifecycleEvent != "reauthorizationRequired" || !got.LastLifecycleAt.Equal(at) {
		t.Errorf("subscription = %+v", got)
	}
	if len(acted) != 2 || acted[1] != "reauthorizationRequired:reauthorizationRequired" {
		t.Errorf("actions = %v", acted)
	}

	// Another tenant's id in the message properties cannot touch tenant A's record.
	other := *d
	other.ApplicationProperties = map[string]string{queue.PropTenant: tenantB}
	if err := w.Process(ctx, &other); err != nil {
		t.Fatalf("unknown subscription in tenant B: %v", err)
	}
	for _, bad := range []*queue.Delivery{
		{Body: []byte(`not json`), ApplicationProperties: map[string]string{queue.PropTenant: tenantA}},
		{Body: d.Body},
		{Body: []byte(`{"subscriptionId":"sub-a"}`), ApplicationProperties: map[string]string{queue.PropTenant: tenantA}},
	} {
		if err := w.Process(ctx, bad); err == nil {
			t.Errorf("Process(%s) = nil, want an error (dead-lettered after retries, never silently dropped)", bad.Body)
		}
	}
}
