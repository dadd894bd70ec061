package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
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

// memoryParker keeps what the router parks, or fails when told to.
type memoryParker struct {
	mu     sync.Mutex
	parked []string // "message id: code: reason"
	fail   error
}

func (p *memoryParker) Park(_ context.Context, q string, d *queue.Delivery, cause error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.parked = append(p.parked, d.MessageID+": "+apperr.CodeOf(cause).String()+": "+apperr.PublicMessage(cause))
	return nil
}

func newRouter(t *testing.T, log *slog.Logger) (*queue.Router, *memoryParker) {
	t.Helper()
	p := &memoryParker{}
	r, err := queue.NewRouter(queue.Notifications, p, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
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
	r, _ := newRouter(t, nil)
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

// A message no worker can take is parked and completed at once (nil: the host completes it) instead of
// failing ten times; the reason is logged with its ids, never the body, and counted by kind.
func TestRouterParksUnknownKindAtOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	presence := &recordingWorker{}
	r, parker := newRouter(t, slog.New(core.NewLogHandler(slog.NewJSONHandler(&logs, nil)))) // as cmd/handler builds it
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
	if fmt.Sprint(parker.parked) != "[k-1: invalid: no worker for the message's kind k-2: invalid: no worker for the message's kind k-3: invalid: message without a kind]" {
		t.Errorf("parked = %q", parker.parked)
	}
	for _, want := range []string{`"msg":"queue message parked"`, `"reason":"no worker for the message's kind"`,
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
	r, _ := newRouter(t, nil)
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
	if _, err := queue.NewRouter(queue.Notifications, nil, nil, nil); err == nil {
		t.Error("a router without a parker was built: what cannot succeed would have nowhere to go")
	}
	r, _ := newRouter(t, nil)
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

// The error decides the message's fate: a transient failure comes back (Service Bus redelivers), a
// permanent one is parked at once with its reason and completed, and a permanent one that cannot be
// parked comes back too, so nothing is dropped.
func TestRouterErrorsDecideRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		parkFails  bool
		wantErr    bool
		wantParked string
	}{
		{"success", nil, false, false, ""},
		{"storage trouble", errors.New("table storage: 503"), false, true, ""},
		{"dependency down", apperr.New(apperr.Unavailable, "graph unavailable", nil), false, true, ""},
		{"forged content", apperr.New(apperr.Invalid, "presence content does not decrypt", errors.New("gcm: auth failed")), false, false,
			"m: invalid: presence content does not decrypt"},
		{"unknown tenant", fmt.Errorf("apply: %w", apperr.New(apperr.NotFound, "no such tenant", nil)), false, false, "m: not-found: no such tenant"},
		{"permanent, but parking fails", apperr.New(apperr.Invalid, "not a notification", nil), true, true, ""},
	}
	for _, tc := range tests {
		r, parker := newRouter(t, nil)
		if tc.parkFails {
			parker.fail = errors.New("table storage down")
		}
		if err := r.Handle("presence", &recordingWorker{err: tc.err}); err != nil {
			t.Fatal(err)
		}
		err := r.Process(context.Background(), delivery("m", "presence"))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: Process = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if got := strings.Join(parker.parked, ";"); got != tc.wantParked {
			t.Errorf("%s: parked %q, want %q", tc.name, got, tc.wantParked)
		}
		if tc.wantParked != "" && r.Parked()["presence"] != 1 {
			t.Errorf("%s: Parked = %v", tc.name, r.Parked())
		}
	}
}

// memorySender keeps what the router schedules, or fails when told to.
type memorySender struct {
	sent []queue.Message
	fail error
}

func (s *memorySender) Send(_ context.Context, q string, msgs []queue.Message) error {
	if q != queue.Notifications {
		return fmt.Errorf("sent to %s", q)
	}
	if s.fail != nil {
		return s.fail
	}
	s.sent = append(s.sent, msgs...)
	return nil
}

// A transient failure comes back later, not at once: an outage of 90 s (storage, Key Vault) costs a few
// scheduled copies with growing delays, each with every property of the original; the message is parked
// with its last reason only once the failures have lasted GiveUpAfter; and if the copy cannot be
// scheduled the invocation fails, so Service Bus keeps the original.
func TestRouterRetriesTransientFailuresLater(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	now := t0
	snd, p := &memorySender{}, &memoryParker{}
	r, err := queue.NewRouter(queue.Notifications, p, &queue.Retry{Sender: snd, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &recordingWorker{err: fmt.Errorf("read presence: %w", apperr.New(apperr.Unavailable, "table storage unavailable", nil))}
	if err := r.Handle("presence", w); err != nil {
		t.Fatal(err)
	}
	d := delivery("m", "presence")
	d.SessionID, d.ContentType = "user-1", "application/json"
	var delays []time.Duration
	for now.Sub(t0) < 90*time.Second {
		if err := r.Process(context.Background(), d); err != nil {
			t.Fatalf("transient failure at +%s: %v; want a scheduled copy", now.Sub(t0), err)
		}
		c := snd.sent[len(snd.sent)-1]
		delays = append(delays, c.ScheduledEnqueueTime.Sub(now))
		if c.ID != fmt.Sprintf("m~retry%d", len(delays)) || c.SessionID != "user-1" || c.ContentType != "application/json" ||
			string(c.Body) != string(d.Body) || c.ApplicationProperties[queue.PropKind] != "presence" ||
			c.ApplicationProperties[queue.PropTenant] != d.ApplicationProperties[queue.PropTenant] ||
			c.ApplicationProperties[queue.PropFirstFailure] != "2026-12-03T10:00:00Z" {
			t.Fatalf("copy %d = %+v", len(delays), c)
		}
		now = *c.ScheduledEnqueueTime
		d = &queue.Delivery{MessageID: c.ID, SessionID: c.SessionID, ContentType: c.ContentType, Body: c.Body,
			DeliveryCount: 1, ApplicationProperties: c.ApplicationProperties}
	}
	if want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
	w.err = nil
	if err := r.Process(context.Background(), d); err != nil || len(p.parked) != 0 || r.Retried()["presence"] != 5 {
		t.Fatalf("after the outage: %v, parked %v, retried %v", err, p.parked, r.Retried())
	}

	// Service Bus down too: the invocation fails and the original stays.
	w.err = apperr.New(apperr.Unavailable, "key vault unavailable", nil)
	snd.fail = errors.New("service bus unavailable")
	if err := r.Process(context.Background(), d); err == nil || !strings.Contains(err.Error(), "key vault unavailable") {
		t.Errorf("with no way to schedule: %v; want the invocation failed", err)
	}
	snd.fail = nil

	// Twelve hours of failures: parked with the last reason, not scheduled again.
	sent := len(snd.sent)
	now = t0.Add(12 * time.Hour)
	if err := r.Process(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if len(snd.sent) != sent || len(p.parked) != 1 || !strings.Contains(p.parked[0], "gave-up: transient failures for 12h0m0s: key vault unavailable") {
		t.Errorf("after 12 h: parked %v, %d more sent", p.parked, len(snd.sent)-sent)
	}
}
