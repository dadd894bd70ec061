package devhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// Limits are the trigger listener's protections, as Kestrel under the Functions host applies them. The
// defaults and their sources:
//   - MaxRequestBody 100 MB: Azure Functions HTTP trigger limits, "the HTTP request length is limited to
//     100 MB (104,857,600 bytes)" (learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits;
//     FUNCTIONS_REQUEST_BODY_SIZE_LIMIT); above it 413. The handler applies its own, much smaller cap.
//   - HeaderTimeout 30 s: Kestrel's RequestHeadersTimeout default; the connection is closed.
//   - IdleTimeout 130 s: Kestrel's KeepAliveTimeout default. (Azure's front-end load balancer cuts a
//     request after 230 s whatever the app does; functionTimeout does not extend that.)
//   - RequestTimeout 60 s: time allowed to send the body of an HTTP trigger, then 408. Kestrel's rule is a
//     minimum data rate (MinRequestBodyDataRate, 240 bytes/s after a 5 s grace) answered with 408; one
//     deadline is the simpler stand-in and well inside the 230 s above.
//
// (learn.microsoft.com/aspnet/core/fundamentals/servers/kestrel/options lists the Kestrel defaults.)
type Limits struct {
	MaxRequestBody int64
	HeaderTimeout  time.Duration
	IdleTimeout    time.Duration
	RequestTimeout time.Duration
}

// DefaultLimits are the values above.
var DefaultLimits = Limits{MaxRequestBody: 100 << 20, HeaderTimeout: 30 * time.Second, IdleTimeout: 130 * time.Second,
	RequestTimeout: 60 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.MaxRequestBody <= 0 {
		l.MaxRequestBody = DefaultLimits.MaxRequestBody
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultLimits.HeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultLimits.IdleTimeout
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultLimits.RequestTimeout
	}
	return l
}

// Options configure a Host.
type Options struct {
	AppRoot     string            // folder with host.json and functions/
	HandlerPath string            // handler executable; default: host.json's defaultExecutablePath under AppRoot
	Addr        string            // listen address for triggers, e.g. 127.0.0.1:7071 (":0" style allowed)
	Settings    map[string]string // local.settings.json Values: the child's environment
	// AppCertificate reads the app's client certificate, which the development issuer checks sign-in
	// client assertions against as Entra ID checks the certificate uploaded to the app registration
	// (cmd/devhost reads it from the local secret file; nil: sign-in is refused, AADSTS700027).
	AppCertificate func() (*x509.Certificate, error)
	FunctionKey    string // key for authLevel "function"
	MasterKey      string // key for authLevel "admin" and /admin endpoints
	// Limits of the trigger listener; zero fields take DefaultLimits (tests shorten them).
	Limits Limits
	// Queues tunes every queue; zero fields keep the Service Bus defaults (tests shorten them).
	Queues QueueSettings
	// NoSchedules disables the timer schedules (tests fire timers on demand instead).
	NoSchedules bool
	Log         *slog.Logger
	// Output receives the handler's stdout and stderr (default: devhost's own stderr).
	Output io.Writer
}

// Host is a running development host.
type Host struct {
	opts     Options
	app      *App
	log      *slog.Logger
	queues   map[string]*Queue
	client   *http.Client
	handler  string // base URL of the child
	token    string // devhost queue endpoint token
	queueURL string

	mainSrv, sideSrv *http.Server
	mainAddr         string
	cron             *cron.Cron
	cancel           context.CancelFunc
	wg               sync.WaitGroup

	childMu sync.Mutex
	child   *exec.Cmd
	// childDone is closed when child has exited. Only the goroutine started with the child calls
	// Wait: a second Wait on the same Cmd blocks forever once output goes through a pipe.
	childDone chan struct{}
	// published is closed while handler is set; unpublish replaces it, so waiters block until the
	// next handler answers.
	published chan struct{}

	timerMu  sync.Mutex
	timerRun map[string]bool
	timerLst map[string]time.Time

	// dev is the development token issuer (devissuer.go).
	dev *devIssuer
}

// New loads the app; Start runs it.
func New(opts Options) (*Host, error) {
	app, err := LoadApp(opts.AppRoot)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	opts.Limits = opts.Limits.withDefaults()
	if opts.HandlerPath == "" {
		opts.HandlerPath = filepath.Join(opts.AppRoot, app.Host.CustomHandler.Description.DefaultExecutablePath)
	}
	h := &Host{opts: opts, app: app, log: opts.Log, queues: map[string]*Queue{},
		// A 50-item notification POST is invoked as a ~60-180 KB envelope: a 64 KB write buffer sends it
		// in a few write calls rather than through the default 4 KB one.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second,
			WriteBufferSize: 64 << 10}},
		timerRun: map[string]bool{}, timerLst: map[string]time.Time{}}
	if h.dev, err = newDevIssuer(opts.Settings["CONNECTHUB_APP_ID"], opts.MasterKey); err != nil {
		return nil, err
	}
	h.dev.clientCert = opts.AppCertificate
	for _, f := range app.Functions {
		// The real host's per-function switch: app setting AzureWebJobs.<Name>.Disabled=true.
		if v := opts.Settings["AzureWebJobs."+f.Name+".Disabled"]; strings.EqualFold(v, "true") || v == "1" {
			f.Disabled = true
		}
		if t := f.Trigger(); t.Type == "serviceBusTrigger" {
			if t.QueueName == "" {
				return nil, fmt.Errorf("%s: serviceBusTrigger without queueName", f.Name)
			}
			if _, ok := h.queues[t.QueueName]; !ok {
				q := NewQueue(t.QueueName, t.IsSessionsEnabled, nil)
				opts.Queues.apply(q)
				h.queues[t.QueueName] = q
			}
		}
	}
	return h, nil
}

// App returns the loaded function app.
func (h *Host) App() *App { return h.app }

// Queue returns the named queue (nil if no function listens on it).
func (h *Host) Queue(name string) *Queue { return h.queues[name] }

// URL is the base URL of the trigger listener, e.g. http://127.0.0.1:7071.
func (h *Host) URL() string { return "http://" + h.mainAddr }

// QueueEndpoint returns the loopback URL and token the handler's queue sender uses.
func (h *Host) QueueEndpoint() (string, string) { return h.queueURL, h.token }

// Start launches the handler, waits until it answers, and starts serving triggers.
func (h *Host) Start(ctx context.Context) error {
	ctx, h.cancel = context.WithCancel(ctx)
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	h.token = hex.EncodeToString(tok)

	side, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen queue endpoint: %w", err)
	}
	h.queueURL = "http://" + side.Addr().String() + "/queues"
	h.sideSrv = &http.Server{Handler: http.HandlerFunc(h.serveQueueEndpoint), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.sideSrv.Serve(side) }()

	// The main address is bound before the handler starts (the handler is told the development
	// issuer's URL on it) but served only once the handler is ready; early connections wait in the
	// listen backlog.
	main, err := net.Listen("tcp", h.opts.Addr)
	if err != nil {
		h.Stop()
		return fmt.Errorf("listen %s: %w", h.opts.Addr, err)
	}
	h.mainAddr = main.Addr().String()

	h.published = make(chan struct{})
	first := make(chan error, 1)
	h.wg.Add(1)
	go h.supervise(ctx, first)
	if err := <-first; err != nil {
		_ = main.Close()
		h.Stop()
		return err
	}
	h.mainSrv = &http.Server{Handler: http.HandlerFunc(h.serveMain), ReadHeaderTimeout: h.opts.Limits.HeaderTimeout,
		IdleTimeout: h.opts.Limits.IdleTimeout}
	go func() { _ = h.mainSrv.Serve(main) }()

	conc := h.app.Host.Extensions.ServiceBus.MaxConcurrentCalls
	if conc <= 0 {
		conc = 16
	}
	for _, f := range h.app.Functions {
		if f.Disabled {
			continue
		}
		if t := f.Trigger(); t.Type == "serviceBusTrigger" {
			for range conc {
				h.wg.Add(1)
				go h.pump(ctx, f, h.queues[t.QueueName])
			}
		}
	}
	if err := h.startTimers(ctx); err != nil {
		h.Stop()
		return err
	}
	h.log.Info("devhost ready", "url", h.URL(), "functions", len(h.app.Functions))
	return nil
}

// Stop ends everything: timers, pumps, listeners, then the handler (SIGTERM, then SIGKILL).
func (h *Host) Stop() {
	if h.cancel != nil {
		h.cancel()
	}
	if h.cron != nil {
		<-h.cron.Stop().Done()
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h.mainSrv != nil {
		_ = h.mainSrv.Shutdown(shut)
	}
	if h.sideSrv != nil {
		_ = h.sideSrv.Shutdown(shut)
	}
	h.wg.Wait()
	h.childMu.Lock()
	c, done := h.child, h.childDone
	h.child = nil
	h.childMu.Unlock()
	if c != nil && c.Process != nil {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
}

// invoke posts an envelope to /{FunctionName} with the host's headers and the function timeout.
func (h *Host) invoke(ctx context.Context, f *Function, envelope []byte) (*invokeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, h.app.FunctionTimeout)
	defer cancel()
	base := h.currentHandler()
	if base == "" {
		return nil, &notDeliveredError{errNoHandler}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+f.Name, bytes.NewReader(envelope))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1045.0-devhost")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1045.0-devhost")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, classifyTransport(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s response: %w", f.Name, err)
	}
	var res invokeResult
	jsonErr := json.Unmarshal(raw, &res)
	for _, l := range res.Logs {
		h.log.Info("function log", "function", f.Name, "line", l)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &handlerFailedError{status: resp.StatusCode, logs: res.Logs}
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("invoke %s: response is not json: %w", f.Name, jsonErr)
	}
	return &res, nil
}

// handlerFailedError is an invocation the handler answered with a failure. Its text is what a dead letter's
// description says: the status and the handler's Logs (azfunc.FailureLog: the error code and public
// message), bounded.
type handlerFailedError struct {
	status int
	logs   []string
}

// maxDescription bounds a dead letter's description (Service Bus caps DeadLetterErrorDescription at
// 4,096 characters; ours stays well under and bounds what is logged).
const maxDescription = 1024

func (e *handlerFailedError) Error() string {
	s := fmt.Sprintf("handler answered %d", e.status)
	if len(e.logs) > 0 {
		s += ": " + strings.Join(e.logs, "; ")
	}
	return truncate(s, maxDescription)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// serveMain serves /api/<route>, the admin endpoints and the development token issuer.
func (h *Host) serveMain(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, devIssuerPrefix) {
		h.dev.serve(w, r, "http://"+r.Host)
		return
	}
	if name, ok := strings.CutPrefix(r.URL.Path, "/admin/functions/"); ok {
		h.serveAdminInvoke(w, r, name)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/admin/queues/") {
		h.serveDeadLetters(w, r)
		return
	}
	if r.URL.Path == "/admin/host/status" {
		if !keyMatches(presentedKey(r), h.opts.MasterKey) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"state": "Running", "queues": h.queueStats()})
		return
	}
	prefix := "/"
	if h.app.RoutePrefix != "" {
		prefix = "/" + h.app.RoutePrefix + "/"
	}
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, params := h.matchRoute(r.Method, path)
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if !h.authorized(f.Trigger().AuthLevel, r) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, status := h.readTriggerBody(w, r)
	if status != 0 {
		return
	}
	env, err := httpEnvelope(f, r, body, params)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	res, err := h.invoke(r.Context(), f, env)
	var notDelivered *notDeliveredError
	var down *handlerDownError
	if errors.As(err, &notDelivered) || errors.As(err, &down) {
		// The worker is down, not the request wrong: 503 with Retry-After, as the real host answers
		// while it is not running, so callers that retry (Graph does, for up to 4 h) lose nothing.
		h.log.Warn("http invocation failed: no handler", "function", f.Name, "error", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "function host is not running", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		h.log.Error("http invocation failed", "function", f.Name, "error", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	out := f.HTTPOut()
	raw := res.Outputs[out]
	if out == "$return" {
		raw = res.ReturnValue
	}
	var ho httpOutput
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &ho); err != nil {
			h.log.Error("http output not an object", "function", f.Name)
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
	}
	for k, v := range ho.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(ho.status())
	_, _ = w.Write(ho.body())
}

// readTriggerBody reads an HTTP trigger's body within the limits; on failure it has answered and returns
// the status (413 over MaxRequestBody, 408 when the client is too slow, 400 when the body breaks off).
func (h *Host) readTriggerBody(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	lim := h.opts.Limits
	fail := func(status int, msg string) ([]byte, int) {
		// The rest of the body is unread: the connection cannot carry another request.
		w.Header().Set("Connection", "close")
		http.Error(w, msg, status)
		return nil, status
	}
	if r.ContentLength > lim.MaxRequestBody {
		return fail(http.StatusRequestEntityTooLarge, "request body too large")
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(lim.RequestTimeout))
	body, err := readAll(http.MaxBytesReader(w, r.Body, lim.MaxRequestBody), r.ContentLength)
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case err == nil:
		return body, 0
	case errors.As(err, &tooLarge):
		return fail(http.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &netErr) && netErr.Timeout():
		return fail(http.StatusRequestTimeout, "request body not received in time")
	default:
		return fail(http.StatusBadRequest, "request body unreadable")
	}
}

// readAll is io.ReadAll into a buffer of the announced length (a 50-item Graph POST is ~170 KB; grown
// from 512 bytes it would be copied a dozen times). size is a hint only: the reader enforces the limit.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > 8<<20 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

func (h *Host) matchRoute(method, path string) (*Function, map[string]string) {
	for _, f := range h.app.Functions {
		t := f.Trigger()
		if f.Disabled || t.Type != "httpTrigger" {
			continue
		}
		route := t.Route
		if route == "" {
			route = f.Name
		}
		params, ok := matchTemplate(route, path)
		if !ok {
			continue
		}
		if len(t.Methods) > 0 && !containsFold(t.Methods, method) {
			continue
		}
		return f, params
	}
	return nil, nil
}

// matchTemplate matches "a/{id}/b" against a path, case-insensitively like ASP.NET routing. A last
// segment "{*rest}" is ASP.NET's catch-all: it takes the rest of the path, slashes included, or nothing.
func matchTemplate(tmpl, path string) (map[string]string, bool) {
	ts := strings.Split(strings.Trim(tmpl, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	params := map[string]string{}
	if last := ts[len(ts)-1]; strings.HasPrefix(last, "{*") && strings.HasSuffix(last, "}") {
		ts = ts[:len(ts)-1]
		if len(ps) < len(ts) {
			return nil, false
		}
		rest := ps[len(ts):]
		if len(rest) == 1 && rest[0] == "" {
			rest = nil
		}
		params[strings.TrimSuffix(strings.SplitN(last[2:len(last)-1], ":", 2)[0], "?")] = strings.Join(rest, "/")
		ps = ps[:len(ts)]
	}
	if len(ts) != len(ps) {
		return nil, false
	}
	for i, seg := range ts {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.TrimSuffix(strings.SplitN(seg[1:len(seg)-1], ":", 2)[0], "?")
			params[name] = ps[i]
			continue
		}
		if !strings.EqualFold(seg, ps[i]) {
			return nil, false
		}
	}
	return params, true
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func presentedKey(r *http.Request) string {
	if k := r.Header.Get("x-functions-key"); k != "" {
		return k
	}
	return r.URL.Query().Get("code")
}

func keyMatches(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// authorized applies authLevel as the real host does: anonymous needs nothing, function accepts the
// function key or the master key, admin only the master key. No keys configured means nothing but
// anonymous gets in.
func (h *Host) authorized(level string, r *http.Request) bool {
	key := presentedKey(r)
	switch strings.ToLower(level) {
	case "anonymous":
		return true
	case "admin", "system":
		return keyMatches(key, h.opts.MasterKey)
	default: // "function" is the default level
		return keyMatches(key, h.opts.FunctionKey) || keyMatches(key, h.opts.MasterKey)
	}
}

// serveAdminInvoke is the real host's POST /admin/functions/{name} {"input": "..."}: it starts a
// non-HTTP function and answers 202 at once.
func (h *Host) serveAdminInvoke(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !keyMatches(presentedKey(r), h.opts.MasterKey) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f := h.app.Function(name)
	if f == nil {
		http.NotFound(w, r)
		return
	}
	var in struct {
		Input string `json:"input"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, "body must be {\"input\": \"...\"}", http.StatusBadRequest)
		return
	}
	switch t := f.Trigger(); t.Type {
	case "timerTrigger":
		go func() {
			if err := h.FireTimer(context.Background(), f.Name); err != nil {
				h.log.Error("timer invocation failed", "function", f.Name, "error", err)
			}
		}()
	case "serviceBusTrigger":
		h.queues[t.QueueName].Send([]queue.Message{{ID: uuid.NewString(), Body: []byte(in.Input)}})
	default:
		http.Error(w, "only non-HTTP functions can be invoked here", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// serveQueueEndpoint receives the handler's sends: POST /queues/{name}.
func (h *Host) serveQueueEndpoint(w http.ResponseWriter, r *http.Request) {
	if !queue.TokenMatches(r.Header.Get("Authorization"), h.token) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/queues/")
	q := h.queues[name]
	if !ok || q == nil {
		http.Error(w, "no such queue", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]any{"stats": q.Stats(), "deadLetters": q.DeadLetters()})
		return
	}
	msgs, err := decodeSend(r)
	if err != nil {
		http.Error(w, "bad send request", http.StatusBadRequest)
		return
	}
	for _, m := range msgs {
		if m.ID == "" || len(m.ID) > 128 || len(m.SessionID) > 128 {
			http.Error(w, "MessageId is required and at most 128 characters", http.StatusBadRequest)
			return
		}
	}
	acc, dup := q.Send(msgs)
	writeJSON(w, http.StatusOK, queue.SendResult{Accepted: acc, Duplicates: dup})
}

// maxSend bounds one send's body.
const maxSend = 64 << 20

// decodeSend reads a send's messages in one pass: queue.BatchContentType as DevhostSender posts it, or a
// queue.SendRequest as JSON.
func decodeSend(r *http.Request) ([]queue.Message, error) {
	if r.Header.Get("Content-Type") != queue.BatchContentType {
		var req queue.SendRequest
		err := json.NewDecoder(io.LimitReader(r.Body, maxSend)).Decode(&req)
		return req.Messages, err
	}
	body, err := readAll(io.LimitReader(r.Body, maxSend+1), r.ContentLength)
	if err != nil {
		return nil, err
	}
	if len(body) > maxSend {
		return nil, errors.New("send too large")
	}
	return queue.DecodeBatch(body)
}

func (h *Host) queueStats() map[string]Stats {
	out := map[string]Stats{}
	for n, q := range h.queues {
		out[n] = q.Stats()
	}
	return out
}

// pump delivers messages of q to f, one at a time per worker. It takes a message only while a handler is
// published; a delivery that could not reach the handler is released without counting an attempt.
func (h *Host) pump(ctx context.Context, f *Function, q *Queue) {
	defer h.wg.Done()
	for ctx.Err() == nil {
		if _, err := h.waitHandler(ctx); err != nil {
			return
		}
		m := q.receive()
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.notify:
			case <-time.After(q.nextWake()):
			}
			continue
		}
		q.wake() // let another worker look for the next message
		env, err := queueEnvelope(f, m)
		if err == nil {
			_, err = h.invoke(ctx, f, env)
		}
		var notDelivered *notDeliveredError
		if errors.As(err, &notDelivered) {
			// The handler never saw it (it died and its successor is not up yet): not an attempt.
			q.release(m.SequenceNumber)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond): // until the supervisor notices the exit
			}
			continue
		}
		if err != nil {
			h.log.Warn("queue invocation failed", "function", f.Name, "message_id", m.ID, "delivery_count", m.DeliveryCount, "error", err)
		}
		errText := ""
		if err != nil {
			errText = truncate(err.Error(), maxDescription)
		}
		if dl := q.settle(m.SequenceNumber, err == nil, errText); dl != nil {
			h.logDeadLetter(f, q, dl)
		}
	}
}

// logDeadLetter writes the one line an operator looks for when a message is dead-lettered: which message,
// which function and tenant, and the real reason. Values from the message are bounded; the body is never
// logged.
func (h *Host) logDeadLetter(f *Function, q *Queue, m *Message) {
	h.log.Error("message dead-lettered", "queue", q.Name, "function", f.Name, "message_id", truncate(m.ID, 128),
		"sequence_number", m.SequenceNumber, "tenant_id", truncate(m.ApplicationProperties[queue.PropTenant], 64),
		"delivery_count", m.DeliveryCount, "reason", m.DeadLetterReason, "description", m.DeadLetterError)
}

// startTimers schedules every timer function on its six-field NCRONTAB schedule.
func (h *Host) startTimers(ctx context.Context) error {
	h.cron = cron.New(cron.WithSeconds(), cron.WithLocation(time.UTC))
	for _, f := range h.app.Functions {
		t := f.Trigger()
		if f.Disabled || t.Type != "timerTrigger" {
			continue
		}
		if _, err := ParseSchedule(t.Schedule); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if h.opts.NoSchedules {
			continue
		}
		name := f.Name
		if _, err := h.cron.AddFunc(t.Schedule, func() {
			if err := h.FireTimer(ctx, name); err != nil {
				h.log.Error("timer invocation failed", "function", name, "error", err)
			}
		}); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if t.RunOnStartup {
			go func() { _ = h.FireTimer(ctx, name) }()
		}
	}
	h.cron.Start()
	return nil
}

// ParseSchedule parses a six-field NCRONTAB expression (seconds first) as the Functions host does.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow).Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("parse schedule %q: %w", spec, err)
	}
	return s, nil
}

// ErrTimerRunning is returned when a timer function is still running: like the real host's singleton
// lock, one timer never overlaps itself.
var ErrTimerRunning = errors.New("timer still running")

// FireTimer invokes a timer function now and waits for it.
func (h *Host) FireTimer(ctx context.Context, name string) error {
	f := h.app.Function(name)
	if f == nil || f.Trigger().Type != "timerTrigger" {
		return fmt.Errorf("no timer function %q", name)
	}
	h.timerMu.Lock()
	if h.timerRun[f.Name] {
		h.timerMu.Unlock()
		return ErrTimerRunning
	}
	h.timerRun[f.Name] = true
	last := h.timerLst[f.Name]
	h.timerMu.Unlock()
	defer func() {
		h.timerMu.Lock()
		h.timerRun[f.Name] = false
		h.timerLst[f.Name] = time.Now()
		h.timerMu.Unlock()
	}()
	sched, err := ParseSchedule(f.Trigger().Schedule)
	if err != nil {
		return err
	}
	now := time.Now()
	pastDue := !last.IsZero() && sched.Next(last).Before(now.Add(-time.Minute))
	env, err := timerEnvelope(f, last, sched.Next(now), pastDue)
	if err != nil {
		return err
	}
	_, err = h.invoke(ctx, f, env)
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
