package devhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// Restart backoff of the handler. The real host restarts a custom handler that exits; restarting at once
// and forever turns a handler that crashes on start into a busy loop, so the delay doubles up to
// restartMax and starts again from restartMin once a handler stayed up for restartStable.
const (
	restartMin    = 100 * time.Millisecond
	restartMax    = 10 * time.Second
	restartStable = time.Minute
	// startTimeout bounds how long a started handler may take to answer on / before it is killed and
	// started again (the real host gives a custom handler 60 s; ours starts in well under a second).
	startTimeout = 30 * time.Second
)

// errPortTaken says a started handler exited after something else had answered on its port: most likely
// another process took the port between devhost choosing it and the handler binding it.
var errPortTaken = errors.New("the handler's port was taken by another process")

// errNoHandler says no handler is published: none started yet, or the last one exited and its
// successor does not answer yet.
var errNoHandler = errors.New("no handler is ready")

// notDeliveredError is an invocation that never reached a handler: none was ready, or the connection to
// it could not even be opened. The handler saw nothing, so a queue delivery is released without counting
// an attempt, and an HTTP trigger answers 503.
type notDeliveredError struct{ err error }

func (e *notDeliveredError) Error() string { return "handler not reachable: " + e.err.Error() }
func (e *notDeliveredError) Unwrap() error { return e.err }

// handlerDownError is a request that was sent but got no answer because the handler went away (killed
// mid-request). The handler may have done part of the work, so a queue delivery counts as an attempt;
// an HTTP trigger answers 503 because the worker, not the request, failed.
type handlerDownError struct{ err error }

func (e *handlerDownError) Error() string { return "handler went away: " + e.err.Error() }
func (e *handlerDownError) Unwrap() error { return e.err }

// classifyTransport sorts an error of the HTTP client calling the handler.
func classifyTransport(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &notDeliveredError{err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return &handlerDownError{err}
}

// currentHandler returns the published handler's base URL, or "" while none is ready.
func (h *Host) currentHandler() string {
	h.childMu.Lock()
	defer h.childMu.Unlock()
	return h.handler
}

// waitHandler blocks until a handler is published (or ctx ends) and returns its base URL. The queue
// pumps wait here, so no message is taken from a queue while no handler could process it: like the real
// host, which stops its listeners while its worker restarts.
func (h *Host) waitHandler(ctx context.Context) (string, error) {
	for {
		h.childMu.Lock()
		url, ready := h.handler, h.published
		h.childMu.Unlock()
		if url != "" {
			return url, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-ready:
		}
	}
}

// publish makes url the handler every invocation goes to; unpublish withdraws it when the handler exits.
func (h *Host) publish(url string) {
	h.childMu.Lock()
	defer h.childMu.Unlock()
	h.handler = url
	close(h.published)
}

func (h *Host) unpublish() {
	h.childMu.Lock()
	if h.handler != "" {
		h.handler = ""
		h.published = make(chan struct{})
	}
	h.childMu.Unlock()
	// Kept-alive connections point at the dead process; the next handler listens on another port.
	if t, ok := h.client.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// supervise runs the handler for the life of ctx: it starts it, publishes it only once it answers on /
// (a handler that has not bound its port yet would refuse every connection), and when it exits
// withdraws it at once and starts another after a growing delay. The outcome of the first start is
// sent on first: Start fails if the handler never comes up.
func (h *Host) supervise(ctx context.Context, first chan<- error) {
	defer h.wg.Done()
	delay := restartMin
	takenPorts := 0
	for ctx.Err() == nil {
		url, worker, done, exitErr, err := h.spawn()
		if err == nil {
			err = h.probe(ctx, url, worker, done, exitErr)
		}
		if ctx.Err() != nil {
			return // Stop ends the child
		}
		if err != nil {
			// A first start fails Start (a wrong setting should stop `make run` at once), unless another
			// process held the port: then a new port is tried, a few times.
			if first != nil && (!errors.Is(err, errPortTaken) || takenPorts >= 3) {
				first <- err
				return
			}
			if errors.Is(err, errPortTaken) {
				takenPorts++
			}
			h.log.Error("handler restart failed", "error", err, "retry_in", delay.String())
			h.killChild(done)
		} else {
			h.publish(url)
			if first != nil {
				first <- nil
				first = nil
			}
			up := time.Now()
			select {
			case <-ctx.Done():
				return
			case <-done:
			}
			h.unpublish()
			if time.Since(up) >= restartStable {
				delay = restartMin
			}
			h.log.Error("handler exited; restarting", "error", *exitErr, "retry_in", delay.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, restartMax)
	}
}

// spawn starts a handler process on a free port. done is closed once it has exited; *exitErr is its
// exit status from then on.
func (h *Host) spawn() (url, worker string, done chan struct{}, exitErr *error, err error) {
	port, err := freePort()
	if err != nil {
		return "", "", nil, nil, err
	}
	worker = uuid.NewString()
	cmd := exec.Command(h.opts.HandlerPath, h.app.Host.CustomHandler.Description.Arguments...)
	cmd.Dir = h.opts.AppRoot
	env := os.Environ()
	for k, v := range h.opts.Settings {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+worker,
		"FUNCTIONS_APP_ROOT_PATH="+h.opts.AppRoot,
		"CONNECTHUB_DEVHOST_QUEUE_URL="+h.queueURL,
		"CONNECTHUB_DEVHOST_QUEUE_TOKEN="+h.token,
	)
	// The admin API trusts devhost's development token issuer unless the settings name another (the
	// handler refuses it outside local mode).
	if h.opts.Settings["CONNECTHUB_ADMIN_OPENID_CONFIGURATION_URL"] == "" {
		env = append(env, "CONNECTHUB_ADMIN_OPENID_CONFIGURATION_URL=http://"+h.mainAddr+DevIssuerConfigPath)
	}
	// The portal signs people in at the development issuer too (its authorize and token endpoints).
	if h.opts.Settings["CONNECTHUB_PORTAL_AUTHORITY"] == "" {
		env = append(env, "CONNECTHUB_PORTAL_AUTHORITY=http://"+h.mainAddr+devIssuerPrefix)
	}
	cmd.Env = env
	out := h.opts.Output
	if out == nil {
		out = os.Stderr
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", "", nil, nil, fmt.Errorf("start handler %s: %w", h.opts.HandlerPath, err)
	}
	done = make(chan struct{})
	exitErr = new(error)
	h.childMu.Lock()
	h.child, h.childDone = cmd, done
	h.childMu.Unlock()
	// Only this goroutine calls Wait: a second Wait on the same Cmd blocks forever once output goes
	// through a pipe.
	go func() {
		*exitErr = cmd.Wait()
		close(done)
	}()
	return fmt.Sprintf("http://127.0.0.1:%d", port), worker, done, exitErr, nil
}

// probe polls the handler's / until it answers (any status: the real host's readiness check), the
// process exits, or startTimeout passes. The answer must carry the worker id the child was started with:
// the port was free when chosen, but until the child binds it another process may take it, and a
// probe answered by that process published a handler that was not there (invocations refused, and a
// test's writes racing the child's start-up).
func (h *Host) probe(ctx context.Context, url, worker string, done <-chan struct{}, exitErr *error) error {
	deadline := time.Now().Add(startTimeout)
	answered := false // by something without the worker id
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, url+"/", nil)
		// Not kept alive: a connection to a stranger on the port must not stay in the pool that
		// invocations of the handler, once it answers, are sent through.
		req.Close = true
		resp, err := h.client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get(azfunc.WorkerIDHeader) == worker {
				return nil
			}
			answered = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			if answered {
				return fmt.Errorf("%w: handler exited before it was ready: %v", errPortTaken, *exitErr)
			}
			return fmt.Errorf("handler exited before it was ready: %v", *exitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if answered {
		return fmt.Errorf("the port given to the handler answered on / without its worker id within %s (a handler must answer with %s: FUNCTIONS_CUSTOMHANDLER_WORKER_ID)", startTimeout, azfunc.WorkerIDHeader)
	}
	return fmt.Errorf("handler did not answer on / within %s", startTimeout)
}

// killChild ends a handler that never became ready, so its successor does not compete with it.
func (h *Host) killChild(done <-chan struct{}) {
	h.childMu.Lock()
	c := h.child
	h.childMu.Unlock()
	if c != nil && c.Process != nil && done != nil {
		_ = c.Process.Kill()
		<-done
	}
}

// HandlerPID is the process id of the running handler (0 while none runs): the soak harness samples its
// memory.
func (h *Host) HandlerPID() int {
	h.childMu.Lock()
	defer h.childMu.Unlock()
	if h.child == nil || h.child.Process == nil {
		return 0
	}
	return h.child.Process.Pid
}

// KillHandler kills the running handler with SIGKILL, as a crash or an out-of-memory kill would; the
// supervisor starts the next one. Fault tests use it.
func (h *Host) KillHandler() error {
	h.childMu.Lock()
	c := h.child
	h.childMu.Unlock()
	if c == nil || c.Process == nil {
		return errors.New("no handler is running")
	}
	return c.Process.Kill()
}

// HandlerURL is the published handler's base URL ("" while none is ready): benchmarks post invocation
// envelopes straight to it, to measure the handler without devhost's HTTP front.
func (h *Host) HandlerURL() string { return h.currentHandler() }

// HTTPInvocation is the invocation envelope devhost sends the handler when r (with body) reaches the
// HTTP function name: what a benchmark posts to HandlerURL()+"/"+name.
func (h *Host) HTTPInvocation(name string, r *http.Request, body []byte, params map[string]string) ([]byte, error) {
	f := h.app.Function(name)
	if f == nil {
		return nil, fmt.Errorf("no function %s", name)
	}
	return httpEnvelope(f, r, body, params)
}
