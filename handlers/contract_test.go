package handlers

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/connecthub/connecthub/docs"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/azfunc/azfunctest"
)

// The contract is docs/openapi.json read by kin-openapi: the document itself must be valid OpenAPI 3.1
// with valid examples, and every route test's exchange is checked against it (invoke).
var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	paths  map[string]string // function name → route path ("/api/tenants/{tenantId}")
	err    error
}

const contractServer = "http://localhost:7071"

func loadContract(t testing.TB) {
	t.Helper()
	contract.once.Do(func() {
		// The consent and sign-in pages answer HTML: kin-openapi checks their content type and keeps the
		// body as text.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.FileBodyDecoder)
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(docs.OpenAPI)
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
			contract.err = err
			return
		}
		contract.doc = doc
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	if contract.err != nil {
		t.Fatalf("docs/openapi.json: %v", contract.err)
	}
}

// The document is valid OpenAPI 3.1 and its examples match their schemas.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	loadContract(t)
	if !contract.doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", contract.doc.OpenAPI)
	}
}

// invoke runs c through the real runtime (azfunctest) and checks the exchange against the document:
// the response always (status documented, headers and body matching the schema); the request too when
// the function accepted it (tests send invalid requests on purpose and expect them refused).
func invoke(t *testing.T, routes []azfunc.Route, c azfunctest.Call) azfunctest.Response {
	t.Helper()
	if _, ok := c.Headers["Authorization"]; !ok && !publicFunctions[c.Function] {
		c.Headers = maps.Clone(c.Headers)
		if c.Headers == nil {
			c.Headers = map[string][]string{}
		}
		c.Headers["Authorization"] = []string{operatorToken} // the route tests' default caller
	}
	r := azfunctest.Invoke(t, routes, c)
	checkContract(t, c, r)
	return r
}

func checkContract(t *testing.T, c azfunctest.Call, r azfunctest.Response) {
	t.Helper()
	loadContract(t)
	path, ok := functionPath(t, c.Function)
	if !ok {
		return // a queue or timer function: not part of the HTTP contract
	}
	for k, v := range c.Params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	q := url.Values{}
	for k, v := range c.Query {
		q.Set(k, v)
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	target := contractServer + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req := httptest.NewRequest(method, target, strings.NewReader(c.Body))
	for k, vs := range c.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.Body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := contract.router.FindRoute(req)
	if err != nil && r.Status == http.StatusMethodNotAllowed {
		return // an undocumented method, refused as the document implies
	}
	if err != nil {
		t.Errorf("%s %s: not in docs/openapi.json: %v", method, path, err)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true,
		MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if r.Status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s was accepted (%d) but the document refuses the request: %v", method, path, r.Status, err)
		}
	}
	header := http.Header{}
	for k, v := range r.Headers {
		header.Set(k, v)
	}
	// Redirects and empty answers carry no body to check.
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.Status, Header: header,
		Body: io.NopCloser(bytes.NewReader([]byte(r.Body))), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s → %d does not match docs/openapi.json: %v\nbody: %.300s", method, path, r.Status, err, r.Body)
	}
}

var functionPaths = struct {
	once  sync.Once
	paths map[string]string
}{}

func functionPath(t *testing.T, name string) (string, bool) {
	functionPaths.once.Do(func() {
		functionPaths.paths = map[string]string{}
		for _, f := range httpFunctions(t) {
			functionPaths.paths[f.name] = f.path
		}
	})
	p, ok := functionPaths.paths[name]
	return p, ok
}
