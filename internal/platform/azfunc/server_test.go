package azfunc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func post(t *testing.T, s http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

func httpOut(t *testing.T, rec *httptest.ResponseRecorder) (int, string) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("envelope status %d: %s", rec.Code, rec.Body)
	}
	var res struct {
		Outputs map[string]struct {
			StatusCode string `json:"statusCode"`
			Body       string `json:"body"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	o := res.Outputs["res"]
	var code int
	if _, err := fmt.Sscan(o.StatusCode, &code); err != nil {
		t.Fatalf("statusCode %q", o.StatusCode)
	}
	return code, o.Body
}

// okHTTP and okQueue stand in for a function: the runtime's behaviour does not depend on what they do.
func okHTTP(context.Context, *HTTPRequest) HTTPResponse {
	return HTTPResponse{StatusCode: http.StatusAccepted}
}

func okQueue(context.Context, *queue.Delivery) error { return nil }

func TestServerReadiness(t *testing.T) {
	t.Parallel()
	s := NewServer([]Route{HTTPRoute("Health", "req", "res", okHTTP)}, time.Second, 1<<20, quietLog())
	s.WorkerID = "w-1"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rec.Header().Get(WorkerIDHeader) != "w-1" {
		t.Errorf("GET / = %d with worker id %q, want 200 with w-1 (devhost's probe knows its child by it)", rec.Code, rec.Header().Get(WorkerIDHeader))
	}
	if rec := post(t, s, "/NoSuchFunction", `{}`); rec.Code != http.StatusNotFound {
		t.Errorf("unknown function = %d, want 404", rec.Code)
	}
	if rec := post(t, s, "/Health", `not json`); rec.Code != http.StatusBadRequest {
		t.Errorf("bad envelope = %d, want 400", rec.Code)
	}
}

func TestInvocationDeadline(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	stuck := QueueRoute("Stuck", "message", func(context.Context, *queue.Delivery) error {
		<-block // ignores its context on purpose
		return nil
	})
	s := NewServer([]Route{stuck}, 50*time.Millisecond, 1<<20, quietLog())
	rec := post(t, s, "/Stuck", `{"Data":{"message":"\"x\""},"Metadata":{}}`)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("stuck invocation = %d, want 500 (fails so the message is redelivered)", rec.Code)
	}
}

func TestQueueFailureAndPanicFailInvocation(t *testing.T) {
	t.Parallel()
	routes := []Route{
		QueueRoute("Fails", "message", func(context.Context, *queue.Delivery) error { return errors.New("boom") }),
		QueueRoute("Panics", "message", func(context.Context, *queue.Delivery) error { panic("bug") }),
		QueueRoute("Works", "message", func(_ context.Context, d *queue.Delivery) error {
			if string(d.Body) != "x" {
				return errors.New("wrong body")
			}
			return nil
		}),
	}
	s := NewServer(routes, time.Second, 1<<20, quietLog())
	for name, want := range map[string]int{"Fails": 500, "Panics": 500, "Works": 200} {
		if rec := post(t, s, "/"+name, `{"Data":{"message":"\"x\""},"Metadata":{}}`); rec.Code != want {
			t.Errorf("%s = %d, want %d", name, rec.Code, want)
		}
	}
}

// TestFailureLogCarriesCodeAndPublicMessage: the failed invocation's Logs line (what the host and devhost
// see) names the code and the public message, never the cause; the handler's own log line names the
// message id.
func TestFailureLogCarriesCodeAndPublicMessage(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	routes := []Route{
		QueueRoute("Down", "message", func(context.Context, *queue.Delivery) error {
			return apperr.New(apperr.Unavailable, "pbx unavailable", errors.New("dial 10.0.0.7: secret detail"))
		}),
		QueueRoute("Bug", "message", func(context.Context, *queue.Delivery) error { return errors.New("nil map in tenant 42") }),
	}
	s := NewServer(routes, time.Second, 1<<20, slog.New(slog.NewJSONHandler(&logs, nil)))
	tests := []struct{ name, want string }{
		{"Down", "invocation failed: unavailable: pbx unavailable"},
		{"Bug", "invocation failed: internal: internal error"},
	}
	for _, tt := range tests {
		rec := post(t, s, "/"+tt.name, `{"Data":{"message":"\"x\""},"Metadata":{"MessageId":"\"m-1\"","DeliveryCount":"3"}}`)
		var res InvokeResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusInternalServerError || len(res.Logs) != 1 || res.Logs[0] != tt.want {
			t.Errorf("%s = %d %q, want 500 [%q]", tt.name, rec.Code, res.Logs, tt.want)
		}
		if strings.Contains(strings.Join(res.Logs, ""), "secret detail") || strings.Contains(strings.Join(res.Logs, ""), "tenant 42") {
			t.Errorf("%s: the cause leaked into Logs: %q", tt.name, res.Logs)
		}
	}
	if !strings.Contains(logs.String(), `"message_id":"m-1"`) || !strings.Contains(logs.String(), `"delivery_count":3`) {
		t.Errorf("handler failure log lacks the message id and delivery count: %s", logs.String())
	}
}

func TestOversizedEnvelope(t *testing.T) {
	t.Parallel()
	routes := []Route{HTTPRoute("GraphWebhook", "req", "res", okHTTP), QueueRoute("ProcessNotification", "message", okQueue)}
	s := NewServer(routes, time.Second, 1024, quietLog())
	big := bytes.Repeat([]byte("x"), int(maxEnvelopeBytes(1024))+1)
	// An HTTP function answers 413 through its http output, so the caller sees 413.
	if code, _ := httpOut(t, post(t, s, "/GraphWebhook", string(big))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized http envelope = %d, want 413", code)
	}
	// A queue function fails the invocation instead.
	if rec := post(t, s, "/ProcessNotification", string(big)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized queue envelope = %d, want 413", rec.Code)
	}
}

// SIGTERM (context cancelled) lets an invocation in flight finish and answer before the server stops.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	slow := QueueRoute("Slow", "message", func(context.Context, *queue.Delivery) error {
		close(started)
		<-release
		return nil
	})
	s := NewServer([]Route{slow}, 5*time.Second, 1<<20, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, 0, func(a string) { addrc <- a }) }()
	addr := <-addrc

	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/Slow", "application/json", strings.NewReader(`{"Data":{"message":"\"x\""},"Metadata":{}}`))
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-started
	cancel() // SIGTERM
	select {
	case err := <-served:
		t.Fatalf("server stopped with an invocation in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if code := <-answered; code != http.StatusOK {
		t.Errorf("in-flight invocation = %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("server still answers after shutdown")
	}
}
