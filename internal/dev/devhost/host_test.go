package devhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// recorder collects what the test handler reports.
type recorder struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	Kind  string          `json:"kind"`
	Value json.RawMessage `json:"value"`
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var e event
	_ = json.NewDecoder(req.Body).Decode(&e)
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) count(kind, contains string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && strings.Contains(string(e.Value), contains) {
			n++
		}
	}
	return n
}

// processed returns how many distinct message ids with prefix the handler reported processed.
func (r *recorder) processed(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range r.events {
		var id string
		if e.Kind == "processed" && json.Unmarshal(e.Value, &id) == nil && strings.HasPrefix(id, prefix) {
			seen[id] = true
		}
	}
	return len(seen)
}

// waitFor polls cond; the bound only stops a broken test, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 20*time.Second, what, cond)
}

func waitForWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testKind is the kind testhandler's ProcessNotification has a worker for.
var testKind = map[string]string{queue.PropKind: "test"}

// startHost builds the test handler and runs devhost on the repository's real host.json and function
// folders.
func startHost(t *testing.T, options ...func(*Options)) (*Host, *recorder) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testhandler")
	build := exec.Command("go", "build", "-o", bin, "./testdata/testhandler")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build test handler: %v", err)
	}
	rec := &recorder{}
	recSrv := httptest.NewServer(rec)
	t.Cleanup(recSrv.Close)
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AppRoot: root, HandlerPath: bin, Addr: "127.0.0.1:0", NoSchedules: true,
		FunctionKey: "fk", MasterKey: "mk", Settings: map[string]string{"RECORD_URL": recSrv.URL},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range options {
		o(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h, rec
}

func TestEndToEnd(t *testing.T) {
	var logs syncBuffer
	h, rec := startHost(t, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	base, token := h.QueueEndpoint()
	sender, err := queue.NewDevhostSender(base, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("http trigger echoes the validation token", func(t *testing.T) {
		resp, err := http.Post(h.URL()+"/api/graph/notifications?validationToken=Validation%3A%20Testing%20client", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "Validation: Testing client" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("got %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
		resp, err = http.Get(h.URL() + "/api/graph/notifications")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET on a POST-only route = %d, want 404", resp.StatusCode)
		}
	})

	t.Run("webhook hands off to the queue and the worker receives it", func(t *testing.T) {
		resp, err := http.Post(h.URL()+"/api/graph/notifications", "application/json", strings.NewReader("webhook-item-1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook = %d, want 202", resp.StatusCode)
		}
		waitFor(t, "worker to process the webhook item", func() bool { return rec.count("processed", "webhook-item-1") == 1 })
	})

	t.Run("failed message is redelivered until it succeeds", func(t *testing.T) {
		err := sender.Send(ctx, queue.Notifications, []queue.Message{{ID: "flaky-1", SessionID: "user-1", Body: []byte(`{"succeedOnDelivery":3}`), ApplicationProperties: testKind}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "flaky-1 processed", func() bool { return rec.count("processed", "flaky-1") == 1 })
		for _, n := range []string{`"count":1`, `"count":2`, `"count":3`} {
			if rec.count("delivery", n) < 1 {
				t.Errorf("no delivery with %s: the handler must see DeliveryCount through the envelope", n)
			}
		}
		if got := rec.count("delivery", `"session":"user-1"`); got != 3 {
			t.Errorf("deliveries of flaky-1 = %d, want 3", got)
		}
	})

	t.Run("replayed MessageID is dropped", func(t *testing.T) {
		msg := queue.Message{ID: "flaky-1", Body: []byte(`{"succeedOnDelivery":1}`), ApplicationProperties: testKind}
		if err := sender.Send(ctx, queue.Notifications, []queue.Message{msg}); err != nil {
			t.Fatal(err)
		}
		if err := h.Queue(queue.Notifications).WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := rec.count("processed", "flaky-1"); got != 1 {
			t.Errorf("flaky-1 processed %d times, want 1", got)
		}
	})

	// The router cannot dead-letter (a custom handler only succeeds or fails an invocation), so a kind
	// without a worker completes at once, counted in Health, instead of failing ten deliveries.
	t.Run("message of a kind without a worker completes at once", func(t *testing.T) {
		q := h.Queue(queue.Notifications)
		deadBefore := q.Stats().DeadLetter
		msg := queue.Message{ID: "booking-1", Body: []byte(`{"succeedOnDelivery":1}`),
			ApplicationProperties: map[string]string{queue.PropKind: "booking"}}
		if err := sender.Send(ctx, queue.Notifications, []queue.Message{msg}); err != nil {
			t.Fatal(err)
		}
		if err := q.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := q.Stats().DeadLetter; got != deadBefore {
			t.Errorf("dead letters = %d, want %d: the message was failed until dead-lettered", got, deadBefore)
		}
		if got := rec.count("delivery", "booking-1"); got != 0 {
			t.Errorf("the test worker saw booking-1 %d times", got)
		}
		req, _ := http.NewRequest(http.MethodGet, h.URL()+"/api/health", nil)
		req.Header.Set("Authorization", "Bearer devhost-test-staff") // counters are for staff
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var health struct {
			Stats struct {
				Unroutable map[string]int64 `json:"unroutable"`
			} `json:"stats"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
			t.Fatal(err)
		}
		if got := health.Stats.Unroutable["booking"]; got != 1 {
			t.Errorf("health unroutable = %v, want booking 1", health.Stats.Unroutable)
		}
	})

	t.Run("poison message is dead-lettered after 10 deliveries, nothing lost", func(t *testing.T) {
		body := `{"succeedOnDelivery":99}`
		if err := sender.Send(ctx, queue.Lifecycle, []queue.Message{{ID: "poison-1", Body: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
		q := h.Queue(queue.Lifecycle)
		waitFor(t, "dead-letter", func() bool { return q.Stats().DeadLetter == 1 })
		dl := q.DeadLetters()[0]
		if dl.ID != "poison-1" || string(dl.Body) != body || dl.DeliveryCount != 10 || dl.DeadLetterReason != "MaxDeliveryCountExceeded" {
			t.Errorf("dead letter = id %s body %s count %d reason %s", dl.ID, dl.Body, dl.DeliveryCount, dl.DeadLetterReason)
		}
		if got := rec.count("delivery", "poison-1"); got != 10 {
			t.Errorf("deliveries = %d, want 10", got)
		}
		if rec.count("processed", "poison-1") != 0 {
			t.Error("poison message reported processed")
		}
		// The description carries the last failure as the handler reported it (code and public message).
		if want := "handler answered 500: invocation failed: internal: internal error"; dl.DeadLetterError != want {
			t.Errorf("description = %q, want %q", dl.DeadLetterError, want)
		}
		var lines []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "message dead-lettered") && strings.Contains(l, "message_id=poison-1") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "function=ProcessLifecycle") || !strings.Contains(lines[0], "reason=MaxDeliveryCountExceeded") ||
			!strings.Contains(lines[0], "invocation failed: internal") {
			t.Errorf("dead-letter log lines = %q, want one with function, reason and description", lines)
		}
	})

	t.Run("dead-letter admin API: list, show, replay refused in the duplicate window, purge", func(t *testing.T) {
		call := func(method, path, key string) (int, []byte) {
			req, _ := http.NewRequest(method, h.URL()+"/admin/queues/lifecycle/deadletter"+path, nil)
			if key != "" {
				req.Header.Set("x-functions-key", key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		if code, _ := call(http.MethodGet, "", ""); code != http.StatusUnauthorized {
			t.Errorf("list without the master key = %d, want 401", code)
		}
		if code, _ := call(http.MethodGet, "", "fk"); code != http.StatusUnauthorized {
			t.Errorf("list with the function key = %d, want 401", code)
		}
		code, raw := call(http.MethodGet, "", "mk")
		var list struct{ DeadLetters []DeadLetter }
		if err := json.Unmarshal(raw, &list); code != 200 || err != nil || len(list.DeadLetters) != 1 {
			t.Fatalf("list = %d %s", code, raw)
		}
		if d := list.DeadLetters[0]; d.MessageID != "poison-1" || d.DeliveryCount != 10 || d.DeadLetterReason != "MaxDeliveryCountExceeded" ||
			d.EnqueuedTime.IsZero() || d.Body != nil || d.BodySize == 0 {
			t.Errorf("listed = %+v", d)
		}
		code, raw = call(http.MethodGet, "/poison-1", "mk")
		var one DeadLetter
		if err := json.Unmarshal(raw, &one); code != 200 || err != nil || string(one.Body) != `{"succeedOnDelivery":99}` {
			t.Errorf("show = %d %s", code, raw)
		}
		// Sent seconds ago: Service Bus would drop the resubmission as a duplicate, so devhost refuses.
		if code, raw := call(http.MethodPost, "/poison-1/replay", "mk"); code != http.StatusConflict || !strings.Contains(string(raw), "duplicate detection window") {
			t.Errorf("replay inside the window = %d %s, want 409", code, raw)
		}
		if code, _ := call(http.MethodDelete, "/poison-1", "mk"); code != http.StatusNoContent {
			t.Errorf("purge = %d, want 204", code)
		}
		if code, _ := call(http.MethodGet, "/poison-1", "mk"); code != http.StatusNotFound {
			t.Errorf("show after purge = %d, want 404", code)
		}
		if got := h.Queue(queue.Lifecycle).Stats().DeadLetter; got != 0 {
			t.Errorf("dead letters after purge = %d", got)
		}
	})

	t.Run("timer fired on demand through the admin endpoint", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.URL()+"/admin/functions/RenewSubscriptions", strings.NewReader(`{"input":""}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("admin without master key = %d, want 401", resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodPost, h.URL()+"/admin/functions/RenewSubscriptions", strings.NewReader(`{"input":""}`))
		req.Header.Set("x-functions-key", "mk")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("admin invoke = %d, want 202", resp.StatusCode)
		}
		waitFor(t, "timer run", func() bool { return rec.count("timer", "RenewSubscriptions") == 1 })
	})

	t.Run("queue endpoint refuses a wrong token", func(t *testing.T) {
		bad, _ := queue.NewDevhostSender(base, "wrong")
		if err := bad.Send(ctx, queue.Notifications, []queue.Message{{ID: "x"}}); err == nil {
			t.Error("send with a wrong token succeeded")
		}
	})
}

// TestHandlerCrashDeadLettersNothing kills the handler with SIGKILL while thousands of messages are in
// flight and holds its successor before it listens: nothing may be dead-lettered, every message must be
// processed, and the webhook must answer 503 with Retry-After (never 500) while no handler is ready.
func TestHandlerCrashDeadLettersNothing(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	var logs syncBuffer
	h, rec := startHost(t, func(o *Options) {
		o.Settings["TESTHANDLER_GATE_FILE"] = gate
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	base, token := h.QueueEndpoint()
	sender, err := queue.NewDevhostSender(base, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 3000
	for start := 0; start < n; start += 500 {
		batch := make([]queue.Message, 0, 500)
		for i := start; i < start+500; i++ {
			batch = append(batch, queue.Message{ID: fmt.Sprintf("crash-%04d", i), SessionID: fmt.Sprintf("user-%02d", i%40),
				Body: []byte(`{"succeedOnDelivery":1}`), ApplicationProperties: testKind})
		}
		if err := sender.Send(ctx, queue.Notifications, batch); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a tenth processed", func() bool { return rec.processed("crash-") >= n/10 })

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.childMu.Lock()
	victim := h.child.Process
	h.childMu.Unlock()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := rec.processed("crash-"); got == n {
		t.Fatalf("all %d processed before the kill: the test proves nothing", n)
	}

	// The successor is running but not listening: the webhook must say "come back later".
	waitFor(t, "503 while the handler restarts", func() bool {
		resp, err := http.Post(h.URL()+"/api/graph/notifications", "application/json", strings.NewReader("during-restart"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			return false // the old handler took it before it died
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			return true
		default:
			t.Fatalf("webhook answered %d while the handler restarted, want 503", resp.StatusCode)
			return false
		}
	})
	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	q := h.Queue(queue.Notifications)
	waitForWithin(t, 2*time.Minute, "every message processed", func() bool { return rec.processed("crash-") == n })
	if err := q.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if dl := q.DeadLetters(); len(dl) != 0 {
		t.Errorf("%d dead-lettered after a handler crash, want 0; first: %s %s", len(dl), dl[0].ID, dl[0].DeadLetterError)
	}
	if !strings.Contains(logs.String(), "handler exited; restarting") {
		t.Error("the crash was not logged")
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkHTTPRoundTrip(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "testhandler")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/testhandler").CombinedOutput(); err != nil {
		b.Fatalf("build: %v %s", err, out)
	}
	root, _ := filepath.Abs("../../..")
	h, err := New(Options{AppRoot: root, HandlerPath: bin, Addr: "127.0.0.1:0", NoSchedules: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.Stop()
	url := h.URL() + "/api/graph/notifications?validationToken=Validation%3A%20Testing%20client"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(url, "text/plain", nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
