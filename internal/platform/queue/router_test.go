package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// recordingWorker records the message ids it saw and answers err.
type recordingWorker struct {
	mu  sync.Mutex
	ids []string
	err error
}

func (w *recordingWorker) Process(_ context.Context, d *queue.Delivery) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids = append(w.ids, d.MessageID)
	return w.err
}

func delivery(id, kind string) *queue.Delivery {
	props := map[string]string{queue.PropTenant: "aaaaaaaa-0000-4000-8000-000000000001"}
	if kind != "" {
		props[queue.PropKind] = kind
	}
	return &queue.Delivery{MessageID: id, DeliveryCount: 1, Body: []byte(`{"secret":"body"}`), ApplicationProperties: props}
}

func TestRouterPicksWorkerByKind(t *testing.T) {
	t.Parallel()
	presence, booking := &recordingWorker{}, &recordingWorker{err: errors.New("graph throttled")}
	r := queue.NewRouter(nil)
	if err := r.Handle("presence", presence); err != nil {
		t.Fatal(err)
	}
	if err := r.Handle("booking", booking); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Process(ctx, delivery("p-1", "presence")); err != nil {
		t.Errorf("presence message: %v", err)
	}
	// A worker's failure is the invocation's failure, so Service Bus redelivers as before.
	if err := r.Process(ctx, delivery("b-1", "booking")); err == nil || err.Error() != "graph throttled" {
		t.Errorf("booking message error = %v, want the worker's", err)
	}
	if fmt.Sprint(presence.ids) != "[p-1]" || fmt.Sprint(booking.ids) != "[b-1]" {
		t.Errorf("presence saw %v, booking saw %v", presence.ids, booking.ids)
	}
	if got := r.Unroutable(); len(got) != 0 {
		t.Errorf("Unroutable = %v, want none", got)
	}
}

// A message no worker can take completes at once (nil: the host completes it) instead of failing ten
// times; the reason is logged with its ids, never the body, and counted by kind.
func TestRouterDropsUnknownKindAtOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	presence := &recordingWorker{}
	r := queue.NewRouter(slog.New(core.NewLogHandler(slog.NewJSONHandler(&logs, nil)))) // as cmd/handler builds it
	if err := r.Handle("presence", presence); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []*queue.Delivery{delivery("k-1", "booking"), delivery("k-2", "booking"), delivery("k-3", "")} {
		if err := r.Process(ctx, d); err != nil {
			t.Errorf("%s: Process = %v, want nil (completed, not redelivered)", d.MessageID, err)
		}
	}
	if len(presence.ids) != 0 {
		t.Errorf("presence worker got %v", presence.ids)
	}
	got := r.Unroutable()
	if got["booking"] != 2 || got[queue.NoKind] != 1 || len(got) != 2 {
		t.Errorf("Unroutable = %v, want booking 2, %s 1", got, queue.NoKind)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"queue message dropped"`, `"reason":"no worker for the message's kind"`,
		`"kind":"booking"`, `"message_id":"k-1"`, `"reason":"message without a kind"`, `"message_id":"k-3"`,
		`"tenant_id":"aaaaaaaa-0000-4000-8000-000000000001"`, `"delivery_count":1`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("log holds the message body:\n%s", out)
	}
}

// Kinds come from the message: invented ones must not grow the counters (or the log line) without end.
func TestRouterBoundsUnknownKinds(t *testing.T) {
	t.Parallel()
	r := queue.NewRouter(nil)
	for i := range 40 {
		if err := r.Process(context.Background(), delivery("m", fmt.Sprintf("kind-%02d-%s", i, strings.Repeat("x", 100)))); err != nil {
			t.Fatal(err)
		}
	}
	got := r.Unroutable()
	if len(got) > 17 || got[queue.OtherKind] == 0 {
		t.Errorf("Unroutable has %d keys, %s = %d; want at most 16 kinds plus %s", len(got), queue.OtherKind, got[queue.OtherKind], queue.OtherKind)
	}
	var total int64
	for k, v := range got {
		total += v
		if len(k) > 64 {
			t.Errorf("counter key of %d bytes", len(k))
		}
	}
	if total != 40 {
		t.Errorf("counted %d drops, want 40", total)
	}
}

func TestRouterHandleRefusesBadRegistrations(t *testing.T) {
	t.Parallel()
	r := queue.NewRouter(nil)
	if err := r.Handle("presence", &recordingWorker{}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"second worker for a kind": func() error { return r.Handle("presence", &recordingWorker{}) },
		"empty kind":               func() error { return r.Handle("", &recordingWorker{}) },
		"nil worker":               func() error { return r.Handle("booking", nil) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: Handle = nil, want an error", name)
		}
	}
}
