package devhost

import (
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestQueueSemantics(t *testing.T) {
	t.Parallel()
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	q := NewQueue("q", false, c.now)

	acc, dup := q.Send([]queue.Message{{ID: "a", Body: []byte("1")}, {ID: "b"}, {ID: "a"}})
	if acc != 2 || dup != 1 {
		t.Fatalf("Send = %d accepted %d duplicates, want 2 and 1", acc, dup)
	}
	m := q.receive()
	if m == nil || m.ID != "a" || m.DeliveryCount != 1 {
		t.Fatalf("first receive = %+v", m)
	}
	// Locked: the next receive skips it.
	if n := q.receive(); n == nil || n.ID != "b" {
		t.Fatalf("second receive = %+v, want b", n)
	}
	if q.receive() != nil {
		t.Fatal("both messages locked, receive should find none")
	}
	q.settle(m.SequenceNumber, false, "boom") // abandon: available again after the backoff, count kept
	if again := q.receive(); again != nil {
		t.Fatalf("redelivered before its backoff: %+v", again)
	}
	c.t = c.t.Add(DefaultRedeliveryMin)
	if again := q.receive(); again == nil || again.ID != "a" || again.DeliveryCount != 2 {
		t.Fatalf("redelivery = %+v, want a with DeliveryCount 2", again)
	}
	// A lock that expires makes the message available again (a receiver that vanished).
	c.t = c.t.Add(q.LockDuration + time.Second)
	if again := q.receive(); again == nil || again.DeliveryCount != 2 && again.DeliveryCount != 3 {
		t.Fatalf("after lock expiry = %+v", again)
	}

	// Duplicate detection forgets ids after the window.
	c.t = c.t.Add(q.DuplicateWindow + time.Minute)
	if acc, _ := q.Send([]queue.Message{{ID: "a"}}); acc != 1 {
		t.Errorf("id outside the duplicate window should be accepted")
	}
}

func TestQueueDeadLetterAfterMaxDeliveries(t *testing.T) {
	t.Parallel()
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	q := NewQueue("q", false, c.now)
	q.Send([]queue.Message{{ID: "poison", Body: []byte("keep me")}})
	for i := 1; i <= DefaultMaxDeliveryCount; i++ {
		c.t = c.t.Add(DefaultRedeliveryMax)
		m := q.receive()
		if m == nil || m.DeliveryCount != i {
			t.Fatalf("delivery %d = %+v", i, m)
		}
		q.settle(m.SequenceNumber, false, "handler answered 500")
	}
	if m := q.receive(); m != nil {
		t.Fatalf("message delivered after MaxDeliveryCount: %+v", m)
	}
	dl := q.DeadLetters()
	if len(dl) != 1 || dl[0].DeadLetterReason != "MaxDeliveryCountExceeded" || string(dl[0].Body) != "keep me" || dl[0].DeadLetterError == "" {
		t.Fatalf("dead letters = %+v", dl)
	}
	if s := q.Stats(); s.Active != 0 || s.DeadLetter != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestQueueRedeliveryBackoff: a failed message waits 50 ms, then 100 ms, … up to 1 s before it is
// delivered again; a delivery that never reached the handler is released with its count unchanged and
// at once.
func TestQueueRedeliveryBackoff(t *testing.T) {
	t.Parallel()
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	q := NewQueue("q", true, c.now)
	q.Send([]queue.Message{{ID: "a", SessionID: "s"}})
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	for i, wait := range want {
		m := q.receive()
		if m == nil || m.DeliveryCount != i+1 {
			t.Fatalf("delivery %d = %+v", i+1, m)
		}
		q.settle(m.SequenceNumber, false, "boom")
		c.t = c.t.Add(wait*time.Millisecond - time.Millisecond)
		if m := q.receive(); m != nil {
			t.Fatalf("after failure %d redelivered before %d ms", i+1, wait)
		}
		c.t = c.t.Add(time.Millisecond)
	}
	m := q.receive()
	if m == nil {
		t.Fatal("not redelivered after its backoff")
	}
	q.release(m.SequenceNumber)
	again := q.receive()
	if again == nil || again.DeliveryCount != m.DeliveryCount {
		t.Fatalf("after release = %+v, want at once with DeliveryCount %d (a release is not an attempt)", again, m.DeliveryCount)
	}
}

// TestQueueReplayAndPurge: a replay is a new message with the same id, body and properties and a fresh
// delivery count; inside the duplicate detection window it is refused, because Service Bus would
// silently drop it as a duplicate and the message would be lost.
func TestQueueReplayAndPurge(t *testing.T) {
	t.Parallel()
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	q := NewQueue("q", true, c.now)
	props := map[string]string{queue.PropTenant: "11111111-2222-4333-8444-555555555555", queue.PropKind: "presence", "attempt": "4"}
	q.Send([]queue.Message{{ID: "m1", SessionID: "user-1", ContentType: "application/json", Subject: "s", Body: []byte("b1"), ApplicationProperties: props},
		{ID: "m2", Body: []byte("b2")}})
	for range DefaultMaxDeliveryCount {
		c.t = c.t.Add(DefaultRedeliveryMax)
		for _, m := range []*Message{q.receive(), q.receive()} {
			if m == nil {
				t.Fatal("nothing to receive")
			}
			q.settle(m.SequenceNumber, false, "handler answered 500: invocation failed: unavailable: pbx down")
		}
	}
	if len(q.DeadLetters()) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(q.DeadLetters()))
	}
	_, err := q.Replay("m1")
	var dup *DuplicateWindowError
	if !errors.As(err, &dup) || len(q.DeadLetters()) != 2 {
		t.Fatalf("replay inside the duplicate window = %v, dead letters %d; want refused and kept", err, len(q.DeadLetters()))
	}
	c.t = c.t.Add(q.DuplicateWindow)
	seq, err := q.Replay("m1")
	if err != nil {
		t.Fatal(err)
	}
	m := q.receive()
	if m == nil || m.SequenceNumber != seq || m.DeliveryCount != 1 || string(m.Body) != "b1" || m.SessionID != "user-1" ||
		m.ContentType != "application/json" || m.Subject != "s" || !maps.Equal(m.ApplicationProperties, props) || m.DeadLetterReason != "" {
		t.Fatalf("replayed = %+v", m)
	}
	if _, err := q.Replay("m1"); !errors.Is(err, ErrNoDeadLetter) {
		t.Errorf("second replay = %v, want ErrNoDeadLetter", err)
	}
	if err := q.Purge("m2"); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.DeadLetter != 0 || s.Active != 1 {
		t.Errorf("stats = %+v, want the replayed message only", s)
	}
}

func TestQueueScheduledAndSessions(t *testing.T) {
	t.Parallel()
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	q := NewQueue("q", true, c.now)
	later := c.t.Add(time.Minute)
	q.Send([]queue.Message{
		{ID: "s1-first", SessionID: "user-1"},
		{ID: "s1-second", SessionID: "user-1"},
		{ID: "s2", SessionID: "user-2", ScheduledEnqueueTime: &later},
		{ID: "s3", SessionID: "user-3"},
	})
	first := q.receive()
	if first.ID != "s1-first" {
		t.Fatalf("got %s", first.ID)
	}
	// user-1 is locked by its first message; s2 is scheduled for later; so s3 comes next.
	if m := q.receive(); m == nil || m.ID != "s3" {
		t.Fatalf("got %+v, want s3", m)
	}
	if m := q.receive(); m != nil {
		t.Fatalf("got %s while session user-1 is locked and s2 scheduled", m.ID)
	}
	q.settle(first.SequenceNumber, true, "")
	if m := q.receive(); m == nil || m.ID != "s1-second" {
		t.Fatalf("got %+v, want s1-second after the session was released", m)
	}
	c.t = later
	if m := q.receive(); m == nil || m.ID != "s2" {
		t.Fatalf("got %+v, want s2 once its time came", m)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		from time.Time
		want time.Time
	}{
		{"0 */10 * * * *", time.Date(2026, 11, 22, 10, 3, 0, 0, time.UTC), time.Date(2026, 11, 22, 10, 10, 0, 0, time.UTC)},
		{"0 5 * * * *", time.Date(2026, 11, 22, 10, 6, 0, 0, time.UTC), time.Date(2026, 11, 22, 11, 5, 0, 0, time.UTC)},
		{"0 30 2 * * *", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 2, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(tt.from); !got.Equal(tt.want) {
			t.Errorf("%s from %v = %v, want %v", tt.spec, tt.from, got, tt.want)
		}
	}
	if _, err := ParseSchedule("*/10 * * * *"); err == nil {
		t.Error("a five-field expression must be rejected: NCRONTAB has six")
	}
}

func TestMatchTemplateAndAuth(t *testing.T) {
	t.Parallel()
	if p, ok := matchTemplate("tenants/{id}/users/{user:guid}", "Tenants/t1/users/u2"); !ok || p["id"] != "t1" || p["user"] != "u2" {
		t.Errorf("matchTemplate = %v %v", p, ok)
	}
	if _, ok := matchTemplate("graph/notifications", "graph/lifecycle"); ok {
		t.Error("different routes matched")
	}
	// ASP.NET's catch-all: the rest of the path with its slashes, or nothing.
	for path, want := range map[string]string{"portal": "", "portal/": "", "portal/t/abc/users": "t/abc/users", "Portal/x": "x"} {
		if p, ok := matchTemplate("portal/{*path}", path); !ok || p["path"] != want {
			t.Errorf("matchTemplate(portal/{*path}, %q) = %v %v, want %q", path, p, ok, want)
		}
	}
	if _, ok := matchTemplate("portal/{*path}", "portals/x"); ok {
		t.Error("catch-all matched another prefix")
	}
	h := &Host{opts: Options{FunctionKey: "fk", MasterKey: "mk"}}
	req := func(key string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/x?code="+key, nil)
		return r
	}
	tests := []struct {
		level, key string
		want       bool
	}{
		{"anonymous", "", true}, {"function", "fk", true}, {"function", "mk", true}, {"function", "nope", false},
		{"function", "", false}, {"admin", "fk", false}, {"admin", "mk", true},
	}
	for _, tt := range tests {
		if got := h.authorized(tt.level, req(tt.key)); got != tt.want {
			t.Errorf("authorized(%s, %q) = %v, want %v", tt.level, tt.key, got, tt.want)
		}
	}
	if (&Host{}).authorized("function", req("")) {
		t.Error("with no keys configured, function level must not be open")
	}
}
