package handlers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/docs"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// openAPI is the part of docs/openapi.json the route check reads. The document is JSON, not YAML, so
// reading it needs no new dependency.
type openAPI struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
	Comps   struct {
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Parameters      map[string]json.RawMessage `json:"parameters"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string                       `json:"operationId"`
	Security    *[]map[string][]string       `json:"security"`
	Responses   map[string]json.RawMessage   `json:"responses"`
	Parameters  []map[string]json.RawMessage `json:"parameters"`
}

type httpFunction struct {
	name, method, path, authLevel string
}

// httpFunctions reads every HTTP trigger of functions/*/function.json: what the host serves.
func httpFunctions(t *testing.T) []httpFunction {
	t.Helper()
	files, err := filepath.Glob("../functions/*/function.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no function.json: %v", err)
	}
	var out []httpFunction
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Bindings []struct {
				Type, Direction, AuthLevel, Route string
				Methods                           []string
			} `json:"bindings"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, b := range f.Bindings {
			if b.Type != azfunc.HTTPTrigger {
				continue
			}
			if len(b.Methods) == 0 {
				t.Errorf("%s: an HTTP trigger without methods answers every method; list them", p)
			}
			for _, m := range b.Methods {
				out = append(out, httpFunction{name: filepath.Base(filepath.Dir(p)), method: strings.ToLower(m),
					path: "/api/" + strings.ReplaceAll(b.Route, "{*", "{"), authLevel: b.AuthLevel})
			}
		}
	}
	return out
}

// docs/openapi.json describes exactly the HTTP functions the route table serves: every route has its
// path and method (with the function's name as operationId and the right security), and the document
// names no path or method that nothing serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	var doc openAPI
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if _, ok := doc.Comps.SecuritySchemes["bearer"]; !ok {
		t.Error("security scheme bearer missing")
	}

	routes := map[string]bool{}
	for _, r := range routeTable(t, &App{}) {
		if r.Trigger == azfunc.HTTPTrigger {
			routes[r.Name] = true
		}
	}
	served := map[string]bool{}
	for _, f := range httpFunctions(t) {
		if !routes[f.name] {
			continue // TestRoutesMatchFunctionFolders reports a folder without a route
		}
		delete(routes, f.name)
		served[f.method+" "+f.path] = true
		op, ok := doc.Paths[f.path][f.method]
		if !ok {
			t.Errorf("%s (%s %s) is not in docs/openapi.json", f.name, strings.ToUpper(f.method), f.path)
			continue
		}
		if op.OperationID != f.name {
			t.Errorf("%s %s: operationId %q, want the function's name %s", f.method, f.path, op.OperationID, f.name)
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses documented", f.name)
		}
		// No HTTP function takes the host's function key any more: the admin functions check a bearer
		// token themselves, the public ones take none.
		if f.authLevel != "anonymous" {
			t.Errorf("%s: authLevel %s; tenant data must never be reachable with a function key", f.name, f.authLevel)
		}
		bearer := op.Security != nil && len(*op.Security) == 1 && (*op.Security)[0]["bearer"] != nil
		if bearer == publicFunctions[f.name] {
			t.Errorf("%s: the document says bearer = %v, but the function is public = %v", f.name, bearer, publicFunctions[f.name])
		}
		for _, seg := range strings.Split(f.path, "/") {
			if strings.HasPrefix(seg, "{") && !documentsParam(doc, op, strings.Trim(seg, "{}")) {
				t.Errorf("%s: path parameter %s is not documented", f.name, seg)
			}
		}
	}
	var missing []string
	for name := range routes {
		missing = append(missing, name)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("HTTP routes without a function.json HTTP trigger: %v", missing)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[method+" "+path] {
				t.Errorf("docs/openapi.json documents %s %s, which no HTTP function serves", strings.ToUpper(method), path)
			}
		}
	}
}

// documentsParam reports whether op lists the path parameter, inline or by reference.
func documentsParam(doc openAPI, op openAPIOperation, name string) bool {
	for _, p := range op.Parameters {
		if r, ok := p["$ref"]; ok {
			var ref string
			_ = json.Unmarshal(r, &ref)
			p = nil
			if err := json.Unmarshal(doc.Comps.Parameters[strings.TrimPrefix(ref, "#/components/parameters/")], &p); err != nil {
				continue
			}
		}
		var n, in string
		_ = json.Unmarshal(p["name"], &n)
		_ = json.Unmarshal(p["in"], &in)
		if n == name && in == "path" {
			return true
		}
	}
	return false
}
