package azfunc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// Trigger kinds as written in function.json.
const (
	HTTPTrigger       = "httpTrigger"
	ServiceBusTrigger = "serviceBusTrigger"
	TimerTrigger      = "timerTrigger"
)

// Route binds one function folder to its handler. Binding is the trigger's binding name and Out the http
// output binding name; both must equal the names in functions/<Name>/function.json (a test checks).
type Route struct {
	Name    string
	Trigger string
	Binding string
	Out     string
	// decode turns the envelope into what invoke needs; it runs before the deadline starts so a
	// malformed envelope is answered 400 at once.
	decode func(envelope []byte) (any, error)
	invoke func(ctx context.Context, decoded any) (*InvokeResponse, error)
}

func decodeEnvelope(envelope []byte) (any, error) {
	var req InvokeRequest
	if err := json.Unmarshal(envelope, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// HTTPRoute adapts a typed HTTP handler. Its envelope is decoded in one pass into a typed struct (the
// body of a 50-item notification POST is ~170 KB, and every extra JSON pass over it costs ~0.5 ms on the
// webhook's hot path); hosts that send an unusual shape fall back to the tolerant decoder.
func HTTPRoute(name, binding, out string, h func(context.Context, *HTTPRequest) HTTPResponse) Route {
	return Route{Name: name, Trigger: HTTPTrigger, Binding: binding, Out: out,
		decode: func(envelope []byte) (any, error) { return decodeHTTPEnvelope(envelope, binding) },
		invoke: func(ctx context.Context, decoded any) (*InvokeResponse, error) {
			res := h(ctx, decoded.(*HTTPRequest))
			return &InvokeResponse{Outputs: map[string]any{out: res}, Logs: []string{}}, nil
		}}
}

// CallHTTP runs an HTTP route's handler in-process, without an envelope: the Service Manager portal calls
// the admin functions this way, so a page shows and does exactly what the function answers. It reports
// false for a route that is not an HTTP trigger.
func (r Route) CallHTTP(ctx context.Context, req *HTTPRequest) (HTTPResponse, bool) {
	if r.Trigger != HTTPTrigger || r.invoke == nil {
		return HTTPResponse{}, false
	}
	out, err := r.invoke(ctx, req)
	if err != nil || out == nil {
		return Plain(http.StatusInternalServerError, "internal error"), true
	}
	res, ok := out.Outputs[r.Out].(HTTPResponse)
	return res, ok
}

// QueueRoute adapts a Service Bus handler. An error fails the invocation, so the host abandons the
// message: Service Bus redelivers it and dead-letters it after the queue's MaxDeliveryCount.
func QueueRoute(name, binding string, h func(context.Context, *queue.Delivery) error) Route {
	return Route{Name: name, Trigger: ServiceBusTrigger, Binding: binding, decode: decodeEnvelope,
		invoke: func(ctx context.Context, decoded any) (*InvokeResponse, error) {
			m, err := DecodeServiceBus(decoded.(*InvokeRequest), binding)
			if err != nil {
				return nil, err
			}
			if err := h(ctx, m); err != nil {
				return nil, &deliveryError{messageID: m.MessageID, deliveryCount: m.DeliveryCount, err: err}
			}
			return &InvokeResponse{Outputs: map[string]any{}, Logs: []string{}}, nil
		}}
}

// deliveryError is a failed queue invocation with the ids of its message, so the failure log can be
// joined with the host's line when the message is dead-lettered.
type deliveryError struct {
	messageID     string
	deliveryCount int
	err           error
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

// maxLoggedID bounds a message id in our logs (Service Bus allows 128 characters).
const maxLoggedID = 128

// FailureLog is the line a failed invocation returns in the host's Logs: the error's code and public
// message, never its cause. The host logs it with the invocation, and devhost puts it into a dead
// letter's DeadLetterErrorDescription, so an operator sees why without the handler's own log.
func FailureLog(err error) string {
	return fmt.Sprintf("invocation failed: %s: %s", apperr.CodeOf(err), apperr.PublicMessage(err))
}

// TimerRoute adapts a timer handler. Jobs collect their per-item failures and return them joined; the
// invocation then fails so that the failure is visible in the host's logs and metrics.
func TimerRoute(name, binding string, h func(context.Context, *TimerInfo) error) Route {
	return Route{Name: name, Trigger: TimerTrigger, Binding: binding, decode: decodeEnvelope,
		invoke: func(ctx context.Context, decoded any) (*InvokeResponse, error) {
			t, err := DecodeTimer(decoded.(*InvokeRequest), binding)
			if err != nil {
				return nil, err
			}
			if err := h(ctx, t); err != nil {
				return nil, err
			}
			return &InvokeResponse{Outputs: map[string]any{}, Logs: []string{}}, nil
		}}
}

// maxEnvelopeBytes bounds what we read from the host: the largest HTTP body we accept, base64-inflated,
// plus headers and metadata, fits comfortably.
func maxEnvelopeBytes(maxBody int64) int64 { return maxBody*2 + 256<<10 }

// readEnvelope is io.ReadAll into a buffer of the announced length, when that is within limit: a 50-item
// notification POST arrives as a ~180 KB envelope, which grown from 512 bytes is copied a dozen times.
// The length is a hint only; the reader enforces the limit.
func readEnvelope(r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 || size > limit {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// Server is the custom handler's HTTP server.
type Server struct {
	routes  map[string]Route
	timeout time.Duration
	maxBody int64
	log     *slog.Logger
	// WorkerID is FUNCTIONS_CUSTOMHANDLER_WORKER_ID, answered on GET / in WorkerIDHeader.
	WorkerID string
}

// WorkerIDHeader carries the worker id on the answer to GET /. The real host ignores it.
const WorkerIDHeader = "X-ConnectHub-Worker-Id"

// NewServer builds the handler. timeout is the per-invocation deadline; maxBody the HTTP body cap.
func NewServer(routes []Route, timeout time.Duration, maxBody int64, log *slog.Logger) *Server {
	s := &Server{routes: make(map[string]Route, len(routes)), timeout: timeout, maxBody: maxBody, log: log}
	for _, r := range routes {
		s.routes[r.Name] = r
	}
	return s
}

// Routes lists the route table (for the twin test and for tools).
func (s *Server) Routes() []Route {
	out := make([]Route, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r)
	}
	return out
}

// ServeHTTP answers the readiness probe on / and invocations on /{FunctionName}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(r.URL.Path, "/")
	if name == "" {
		// The host polls / until any answer. devhost also checks the worker id: a port it chose free can
		// be taken by another process before this one binds it, and that process answers / too.
		if s.WorkerID != "" {
			w.Header().Set(WorkerIDHeader, s.WorkerID)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	route, ok := s.routes[name]
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "no such function", http.StatusNotFound)
		return
	}
	invocationID := r.Header.Get("X-Azure-Functions-InvocationId")
	log := s.log.With("function", name, "invocation_id", invocationID)

	body, err := readEnvelope(http.MaxBytesReader(w, r.Body, maxEnvelopeBytes(s.maxBody)), r.ContentLength, maxEnvelopeBytes(s.maxBody))
	if err != nil {
		log.Warn("invocation envelope rejected", "error", err)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) && route.Trigger == HTTPTrigger {
			// The caller must see 413, not the host's 500 for a failed invocation.
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(InvokeResponse{Logs: []string{},
				Outputs: map[string]any{route.Out: Plain(http.StatusRequestEntityTooLarge, "body too large")}})
			return
		}
		http.Error(w, "envelope too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	// body is this invocation's alone and never reused: an HTTP route's request Body is unquoted over it.
	req, err := route.decode(body)
	if err != nil {
		log.Warn("invocation envelope not decodable", "error", err)
		http.Error(w, "envelope is not a valid invocation", http.StatusBadRequest)
		return
	}

	ctx, cancel := context.WithTimeout(WithLogger(core.WithInvocation(r.Context(), name, invocationID), log), s.timeout)
	defer cancel()
	type result struct {
		res *InvokeResponse
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		res, err := route.invoke(ctx, req)
		done <- result{res, err}
	}()
	// The handler is one process for every function: an invocation that ignores its context must not
	// hold the host's request beyond the deadline, so we stop waiting and fail it.
	var out result
	select {
	case out = <-done:
	case <-ctx.Done():
		out = result{err: fmt.Errorf("invocation deadline: %w", ctx.Err())}
	}
	elapsed := time.Since(start)
	if out.err != nil {
		attrs := []any{"code", apperr.CodeOf(out.err).String(), "error", out.err, "ms", elapsed.Milliseconds()}
		var de *deliveryError
		if errors.As(out.err, &de) {
			id := de.messageID
			if len(id) > maxLoggedID {
				id = id[:maxLoggedID]
			}
			attrs = append(attrs, "message_id", id, "delivery_count", de.deliveryCount)
		}
		log.Error("invocation failed", attrs...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(InvokeResponse{Outputs: map[string]any{}, Logs: []string{FailureLog(out.err)}})
		return
	}
	log.Debug("invocation done", "ms", elapsed.Milliseconds())
	if out.res.Logs == nil {
		out.res.Logs = []string{}
	}
	if out.res.Outputs == nil {
		out.res.Outputs = map[string]any{}
	}
	for k, v := range out.res.Outputs {
		if r, ok := v.(HTTPResponse); ok {
			out.res.Outputs[k] = r.wire()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out.res); err != nil {
		log.Error("write response", "error", err)
	}
}

// Serve listens on 127.0.0.1:port (0 = any free port, reported through ready) until ctx ends, then shuts
// down gracefully so in-flight invocations finish.
func (s *Server) Serve(ctx context.Context, port int, ready func(addr string)) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.timeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type loggerKey struct{}

// InvocationID is the host's id of the current invocation (X-Azure-Functions-InvocationId): audit
// entries carry it so they can be joined with the function's logs.
func InvocationID(ctx context.Context) string {
	_, id := core.InvocationOf(ctx)
	return id
}

// WithLogger carries an enriched logger in the context.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the context's logger, or the default one.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
