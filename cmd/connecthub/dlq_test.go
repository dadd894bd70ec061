package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// deliveries collects what devhost's test handler reports of each delivery.
type deliveries struct {
	mu   sync.Mutex
	seen []delivery
	done map[string]int
}

type delivery struct {
	ID    string            `json:"id"`
	Count int               `json:"count"`
	Props map[string]string `json:"props"`
}

func (d *deliveries) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	var e struct {
		Kind  string          `json:"kind"`
		Value json.RawMessage `json:"value"`
	}
	_ = json.NewDecoder(r.Body).Decode(&e)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Kind {
	case "delivery":
		var v delivery
		_ = json.Unmarshal(e.Value, &v)
		d.seen = append(d.seen, v)
	case "processed":
		var id string
		_ = json.Unmarshal(e.Value, &id)
		d.done[id]++
	}
}

func (d *deliveries) processed(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done[id]
}

func (d *deliveries) last(id string) delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.seen) - 1; i >= 0; i-- {
		if d.seen[i].ID == id {
			return d.seen[i]
		}
	}
	return delivery{}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // stops a broken test; asserts nothing about speed
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDLQProcedureOnDevhost follows the runbook's dead-letter procedure on devhost with the real handler
// runtime: a message fails while a dependency is down until it is dead-lettered, `dlq list` and `dlq show`
// say why, the fault is removed, `dlq replay` resubmits it with its properties and it is processed;
// `dlq purge` removes what is not worth replaying; the dead-letter queue ends empty.
func TestDLQProcedureOnDevhost(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "testhandler")
	build := exec.Command("go", "build", "-o", bin, "../../internal/dev/devhost/testdata/testhandler")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build test handler: %v", err)
	}
	rec := &deliveries{done: map[string]int{}}
	recSrv := httptest.NewServer(rec)
	t.Cleanup(recSrv.Close)
	root, _ := filepath.Abs("../..")
	const master = "dlq-test-master-key"
	h, err := devhost.New(devhost.Options{AppRoot: root, HandlerPath: bin, Addr: "127.0.0.1:0", NoSchedules: true,
		MasterKey: master, Settings: map[string]string{"RECORD_URL": recSrv.URL},
		// Short redelivery waits so ten deliveries pass quickly; a duplicate window shorter than the time
		// to dead-letter, so the replay is not refused (that refusal is devhost's TestQueueReplayAndPurge).
		Queues: devhost.QueueSettings{RedeliveryMin: time.Millisecond, RedeliveryMax: 10 * time.Millisecond, DuplicateWindow: time.Millisecond},
		Output: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)

	// make run's local.settings.json: the CLI finds devhost's port and master key there.
	u, _ := url.Parse(h.URL())
	settings := filepath.Join(dir, "local.settings.json")
	raw, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Host": map[string]any{"LocalHttpPort": json.Number(u.Port())},
		"Values": map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom", devhost.SettingMasterKey: master}})
	if err := os.WriteFile(settings, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dlq := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := realMain(context.Background(), append(append([]string{"dlq"}, args...), "--settings", settings), nil, &out, &errOut)
		return out.String(), err
	}

	// A PBX outage (the fault file) that outlasts every delivery, and a message that can never succeed.
	pbxDown := filepath.Join(dir, "pbx-down")
	if err := os.WriteFile(pbxDown, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	forever := filepath.Join(dir, "never-fixed")
	if err := os.WriteFile(forever, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const tenant = "3f2a8c1e-5b7d-4e9f-a1c2-0d4e6f8a9b1c"
	props := map[string]string{queue.PropKind: "test", queue.PropTenant: tenant, "attempt": "1"}
	body := func(fault string) []byte {
		b, _ := json.Marshal(map[string]string{"failWhileFileExists": fault})
		return b
	}
	base, token := h.QueueEndpoint()
	sender, err := queue.NewDevhostSender(base, token)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(context.Background(), queue.Notifications, []queue.Message{
		{ID: "dlq-1", SessionID: "user-1", Body: body(pbxDown), ApplicationProperties: props},
		{ID: "dlq-2", SessionID: "user-2", Body: body(forever), ApplicationProperties: map[string]string{queue.PropKind: "test"}},
	}); err != nil {
		t.Fatal(err)
	}
	q := h.Queue(queue.Notifications)
	waitUntil(t, "both dead-lettered", func() bool { return q.Stats().DeadLetter == 2 })

	// 1. See what is there and why.
	out, err := dlq("list", "--queue", queue.Notifications)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dlq list:\n%s", out)
	enqueued := q.DeadLetters()[0].EnqueuedTime.UTC().Format(time.RFC3339)
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "dlq-1 ") {
			row = l
		}
	}
	for _, want := range []string{" 10 ", enqueued, tenant, "MaxDeliveryCountExceeded",
		"handler answered 500: invocation failed: unavailable: pbx unavailable (test fault)"} {
		if !strings.Contains(row, want) {
			t.Errorf("dlq list row of dlq-1 lacks %q:\n%s", want, out)
		}
	}
	out, err = dlq("show", "--queue", queue.Notifications, "--id", "dlq-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"property attempt:", "property kind:", "property tenantId:", tenant, "bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, out)
		}
	}
	t.Logf("dlq show:\n%s", out)
	if strings.Contains(out, pbxDown) {
		t.Error("dlq show printed the body")
	}

	// 2. Fix the cause, then replay.
	if err := os.Remove(pbxDown); err != nil {
		t.Fatal(err)
	}
	if out, err = dlq("replay", "--queue", queue.Notifications, "--id", "dlq-1"); err != nil || !strings.Contains(out, "replayed dlq-1") {
		t.Fatalf("replay = %q, %v", out, err)
	}
	waitUntil(t, "the replayed message processed", func() bool { return rec.processed("dlq-1") == 1 })
	if d := rec.last("dlq-1"); d.Count != 1 || !maps.Equal(d.Props, props) {
		t.Errorf("replayed delivery = count %d props %v; want a fresh count and %v", d.Count, d.Props, props)
	}

	// 3. What cannot be fixed is purged; the dead-letter queue ends empty.
	if out, err = dlq("purge", "--queue", queue.Notifications, "--all"); err != nil || !strings.Contains(out, "purged dlq-2") {
		t.Fatalf("purge = %q, %v", out, err)
	}
	if out, err = dlq("list", "--queue", queue.Notifications); err != nil || !strings.Contains(out, "no dead letters") {
		t.Errorf("list at the end = %q, %v", out, err)
	}
	if s := q.Stats(); s.DeadLetter != 0 {
		t.Errorf("dead letters at the end = %d", s.DeadLetter)
	}

	// A replay of what is not there says so.
	if _, err := dlq("replay", "--queue", queue.Notifications, "--id", "dlq-1"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("replay of a missing dead letter = %v, want devhost's 404", err)
	}
}

func TestDLQUsage(t *testing.T) {
	t.Parallel()
	settings := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(settings, []byte(`{"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","CONNECTHUB_DEVHOST_MASTER_KEY":"k"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"no queue", []string{"dlq", "list", "--settings", settings}},
		{"replay needs an id or all", []string{"dlq", "replay", "--queue", "notifications", "--settings", settings}},
		{"id and all", []string{"dlq", "purge", "--queue", "notifications", "--id", "x", "--all", "--settings", settings}},
		{"show needs an id", []string{"dlq", "show", "--queue", "notifications", "--settings", settings}},
		{"namespace not service bus", []string{"dlq", "list", "--queue", "notifications", "--namespace", "https://evil.example.com"}},
		{"namespace and settings", []string{"dlq", "list", "--queue", "notifications", "--namespace", "sb-x.servicebus.windows.net", "--settings", settings}},
	}
	for _, tt := range tests {
		err := realMain(context.Background(), tt.args, nil, io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%s: err = %v, want a usage error", tt.name, err)
		}
	}
}
