// Package azfunctest invokes HTTP functions the way the Functions host does: it builds the host's
// invocation envelope, posts it to an azfunc.Server and decodes the function's output, so route tests
// exercise the real runtime instead of calling handlers directly.
package azfunctest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// Call is one HTTP request as the host hands it to a function.
type Call struct {
	Function     string
	Method       string // default GET
	Params       map[string]string
	Query        map[string]string
	Headers      map[string][]string
	Body         string
	InvocationID string // X-Azure-Functions-InvocationId; empty sends none
	MaxBody      int64  // the server's body cap; default 1 MiB
}

// Response is the function's HTTP output.
type Response struct {
	Status  int
	Body    string
	Headers map[string]string
}

// Invoke runs c through a server of routes (binding "req", output "res", as every function.json here).
// invokeDeadline is the deadline of an Invoke call.
const invokeDeadline = 10 * time.Second

func Invoke(t testing.TB, routes []azfunc.Route, c Call) Response {
	t.Helper()
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Headers == nil {
		c.Headers = map[string][]string{}
	}
	if c.MaxBody == 0 {
		c.MaxBody = 1 << 20
	}
	env, err := json.Marshal(map[string]any{"Data": map[string]any{"req": map[string]any{
		"Url": "http://127.0.0.1/api/x", "Method": c.Method, "Query": c.Query, "Headers": c.Headers,
		"Params": c.Params, "Body": c.Body,
	}}, "Metadata": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	// The invocation deadline is not what these calls test: on a loaded two-core CI machine an
	// invocation of several Azurite writes has taken over a second (TestIncidentFunctions' RecordIncident
	// answered 500 once at the old 1 s), so it is generous; the deadline itself is tested in azfunc.
	s := azfunc.NewServer(routes, invokeDeadline, c.MaxBody, slog.New(slog.NewTextHandler(io.Discard, nil)))
	req := httptest.NewRequest(http.MethodPost, "/"+c.Function, strings.NewReader(string(env)))
	if c.InvocationID != "" {
		req.Header.Set("X-Azure-Functions-InvocationId", c.InvocationID)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: envelope status %d: %s", c.Function, rec.Code, rec.Body)
	}
	var res struct {
		Outputs map[string]struct {
			StatusCode string            `json:"statusCode"`
			Body       string            `json:"body"`
			Headers    map[string]string `json:"headers"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	o := res.Outputs["res"]
	var code int
	if _, err := fmt.Sscan(o.StatusCode, &code); err != nil {
		t.Fatalf("%s: statusCode %q", c.Function, o.StatusCode)
	}
	return Response{Status: code, Body: o.Body, Headers: o.Headers}
}
