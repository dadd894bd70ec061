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
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET / = %d, want 200", rec.Code)
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
