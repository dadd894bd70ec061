package app

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/connecthub/connecthub/"

// shared are the folders under internal/ that every module may import: the kernel, the platform
// adapters, the wiring, the development tools, and — until each module declares its own tables — the
// table store that still holds every module's entities.
var shared = []string{"core", "platform", "app", "dev"}

// crossModuleImports lists "from → to" for every import of one capability module (a folder directly
// under internal/ that is not shared) by another. imports maps a package's path below internal/ to the
// import paths of its non-test files.
func crossModuleImports(imports map[string][]string) []string {
	var out []string
	for pkg, imps := range imports {
		from, _, _ := strings.Cut(pkg, "/")
		if slices.Contains(shared, from) {
			continue
		}
		for _, imp := range imps {
			rel, ok := strings.CutPrefix(imp, module+"internal/")
			if !ok {
				continue
			}
			to, _, _ := strings.Cut(rel, "/")
			if to != from && !slices.Contains(shared, to) {
				out = append(out, pkg+" → "+rel)
			}
		}
	}
	slices.Sort(out)
	return out
}

// devImports lists product packages (everything under internal/ but dev/) that import development-only
// code (internal/dev): devhost, Azurite, fakes and test fixtures must never link into the handler.
func devImports(imports map[string][]string) []string {
	var out []string
	for pkg, imps := range imports {
		if pkg == "dev" || strings.HasPrefix(pkg, "dev/") {
			continue
		}
		for _, imp := range imps {
			if rel, ok := strings.CutPrefix(imp, module+"internal/"); ok && (rel == "dev" || strings.HasPrefix(rel, "dev/")) {
				out = append(out, pkg+" → "+rel)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestDevImportsRule(t *testing.T) {
	got := devImports(map[string][]string{
		"store":          {module + "internal/core"},
		"presence":       {module + "internal/dev/devhost"},
		"dev/e2e":        {module + "internal/dev/storetest", module + "internal/presence"},
		"platform/queue": {"context"},
	})
	if want := []string{"presence → dev/devhost"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCrossModuleImportsRule(t *testing.T) {
	tests := []struct {
		name    string
		imports map[string][]string
		want    []string
	}{
		{"a module on the kernel and the platform", map[string][]string{
			"presence": {module + "internal/core", module + "internal/platform/queue", "context"},
		}, nil},
		{"inside one module", map[string][]string{
			"presence/setup": {module + "internal/presence/connector", module + "internal/presence"},
		}, nil},
		{"one module importing another", map[string][]string{
			"retention":        {module + "internal/tenants"},
			"tenants/graphish": {module + "internal/retention"},
		}, []string{"retention → tenants", "tenants/graphish → retention"}},
		{"the wiring may import every module", map[string][]string{
			"app": {module + "internal/presence", module + "internal/tenants"},
		}, nil},
	}
	for _, tt := range tests {
		if got := crossModuleImports(tt.imports); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestModulesDoNotImportEachOther: capabilities meet only through interfaces the consumer declares,
// wired in internal/app.
func TestModulesDoNotImportEachOther(t *testing.T) {
	imports := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))[len("../"):]
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			imports[pkg] = append(imports[pkg], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("read only %d packages under internal/", len(imports))
	}
	for _, v := range crossModuleImports(imports) {
		t.Errorf("module imports another module: %s", v)
	}
	for _, v := range devImports(imports) {
		t.Errorf("product code imports development-only code: %s", v)
	}
}
