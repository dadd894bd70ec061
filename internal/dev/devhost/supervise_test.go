package devhost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// A port chosen free can be bound by another process before the child binds it, and that process
// answers / too: the probe waits for the answer with the worker id the child was started with. (In a
// full test run a stranger answered, devhost published a handler that was not listening yet, and a
// test's write to the secret store raced the child's start-up.)
func TestProbeWaitsForItsOwnWorker(t *testing.T) {
	t.Parallel()
	var answers, keptAlive atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.Close { // a kept connection to a stranger could carry later requests to it
			keptAlive.Add(1)
		}
		if answers.Add(1) > 3 { // the stranger has gone and the child has bound the port
			w.Header().Set(azfunc.WorkerIDHeader, "worker-1")
		}
	}))
	defer srv.Close()
	h := &Host{client: srv.Client()}
	var exitErr error
	if err := h.probe(context.Background(), srv.URL, "worker-1", make(chan struct{}), &exitErr); err != nil {
		t.Fatal(err)
	}
	if n := answers.Load(); n != 4 {
		t.Fatalf("the probe accepted answer %d, want the 4th (three from a stranger, then the worker's)", n)
	}
	if n := keptAlive.Load(); n != 0 {
		t.Fatalf("%d probes asked to keep the connection, want none", n)
	}

	// A stranger that stays: the child cannot bind the port and exits, and the probe says so, as a port
	// taken (supervise then tries another port, even on the first start).
	done := make(chan struct{})
	var once sync.Once
	stranger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(azfunc.WorkerIDHeader, "worker-of-another-devhost")
		once.Do(func() {
			exitErr = errors.New("listen: address already in use")
			close(done)
		})
	}))
	defer stranger.Close()
	err := h.probe(context.Background(), stranger.URL, "worker-2", done, &exitErr)
	if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("probe = %v, want the port taken and the child's exit", err)
	}

	// A child that exits with nobody else on its port is a failed start, not a taken port.
	quiet := make(chan struct{})
	exitErr = errors.New("exit status 1")
	close(quiet)
	if err := h.probe(context.Background(), "http://127.0.0.1:1", "worker-3", quiet, &exitErr); err == nil || errors.Is(err, errPortTaken) {
		t.Fatalf("probe = %v, want a failed start", err)
	}
}
