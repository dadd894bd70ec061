package bicepcheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// places renders findings as "line:col rule" so a case states exactly what it expects, no more.
func places(fs []Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%d %s", f.Line, f.Column, f.Rule))
	}
	return out
}

func checkFile(t *testing.T, path string) []Finding {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	found, err := CheckSource(path, src)
	if err != nil {
		t.Fatalf("CheckSource(%s): %v", path, err)
	}
	return found
}

// The real templates are the first client of the checker: they must pass, and they must be there.
func TestProjectTemplatesPass(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..", "infra", "bicep")
	found, files, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s", f)
	}
	for _, want := range []string{"main.bicep", "northeurope.bicepparam", "westeurope.bicepparam"} {
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("missing %s: %v", want, err)
		}
	}
	if files < 10 {
		t.Errorf("checked %d files under %s, want the main template, both parameter files and the modules", files, root)
	}
}

func TestRuleBreaches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"syntax error in a template", "syntax.bicep", []string{"6:9 syntax"}},
		{"syntax error in a parameters file keeps its column", "syntax.bicepparam", []string{"4:16 syntax"}},
		{"non-EU location literal", "location_literal.bicep", []string{"3:13 eu-location"}},
		{"location from a parameter without @allowed", "location_unconstrained_param.bicep", []string{"6:13 eu-location"}},
		{"module location through a variable to a non-EU @allowed", "location_allowed_non_eu.bicep", []string{"12:22 eu-location"}},
		{"listKeys", "list_keys.bicep", []string{"5:21 no-keys"}},
		{"connection string with an account key", "connection_string.bicep", []string{"6:51 no-keys"}},
		{"SAS authorization rule", "authorization_rule.bicep", []string{"4:21 no-keys"}},
		{"shared key access on", "shared_key.bicep", []string{"9:27 shared-key-access"}},
		{"TLS below 1.2", "min_tls.bicep", []string{"10:24 min-tls"}},
		{"Service Bus local auth not disabled", "local_auth.bicep", []string{"1:1 local-auth"}},
		{"Key Vault purge protection off", "purge_protection.bicep", []string{"11:28 purge-protection"}},
		{"resource without API version", "api_version.bicep", []string{"1:15 api-version"}},
		{"registry module on latest", "module_latest.bicep", []string{"1:16 module-pinned"}},
		{"local module that does not exist", "module_missing.bicep", []string{"1:16 module-pinned"}},
		{"parameters file against its template", "params.bicepparam", []string{"1:1 params", "3:16 eu-location", "3:16 params", "4:1 params"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			found := checkFile(t, filepath.Join("testdata", "bad", tt.file))
			if got := places(found); !slices.Equal(got, tt.want) {
				t.Errorf("findings = %q, want %q\n%v", got, tt.want, found)
			}
		})
	}
}

func TestAcceptedShapes(t *testing.T) {
	t.Parallel()
	found := checkFile(t, filepath.Join("testdata", "good", "allowed.bicep"))
	for _, f := range found {
		t.Errorf("unexpected finding: %s", f)
	}
}

func TestFindingString(t *testing.T) {
	t.Parallel()
	found := checkFile(t, filepath.Join("testdata", "bad", "location_literal.bicep"))
	if len(found) != 1 {
		t.Fatalf("got %d findings, want 1", len(found))
	}
	got := found[0].String()
	want := `testdata/bad/location_literal.bicep:3:13: eu-location: location is "eastus", which is not an EU region`
	if got != filepath.FromSlash(want) {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestRewriteParamFileKeepsWidth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"leading param", "param a = 1\n", "var   a = 1\n"},
		{"indented param", "  param a = 1", "  var   a = 1"},
		{"var untouched", "var a = 1\n", "var a = 1\n"},
		{"param inside a line untouched", "// param a\nx = 'param '\n", "// param a\nx = 'param '\n"},
		{"parameter prefix untouched", "parameters = 1\n", "parameters = 1\n"},
		{"crlf lines", "param a = 1\r\nparam b = 2\r\n", "var   a = 1\r\nvar   b = 2\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := rewriteParamFile([]byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("rewriteParamFile(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) != len(tt.in) {
				t.Errorf("length changed: %d -> %d", len(tt.in), len(got))
			}
		})
	}
}

func TestValidAPIVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"2023-05-01", true},
		{"2023-01-01-preview", true},
		{"2021-05-01-preview", true},
		{"2020-01-01-privatepreview", true},
		{"latest", false},
		{"2023-5-01", false},
		{"20230501", false},
		{"2023-05-01preview", false},
		{"2023-05-01-nightly", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validAPIVersion(tt.in); got != tt.want {
			t.Errorf("validAPIVersion(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPinnedReferences(t *testing.T) {
	t.Parallel()
	c := &checker{f: &file{path: filepath.Join("testdata", "bad", "x.bicep")}}
	tests := []struct {
		ref       string
		extension bool
		ok        bool
	}{
		{"./child.bicep", false, true},
		{"./nothing.bicep", false, false},
		{"br/public:avm/res/storage/storage-account:0.9.1", false, true},
		{"br:contoso.azurecr.io/bicep/app:1.2.3", false, true},
		{"br:contoso.azurecr.io/bicep/app@sha256:abcd", false, true},
		{"br:contoso.azurecr.io/bicep/app:latest", false, false},
		{"br:contoso.azurecr.io/bicep/app", false, false},
		{"ts:00000000-0000-0000-0000-000000000000/rg/spec:1.0", false, true},
		{"ts/corp:spec", false, false},
		{"https://example.org/main.json", false, false},
		{"az@1.0.0", true, true},
		{"az", true, false},
	}
	for _, tt := range tests {
		why := c.pinned(tt.ref, tt.extension)
		if (why == "") != tt.ok {
			t.Errorf("pinned(%q) = %q, want ok=%v", tt.ref, why, tt.ok)
		}
	}
}

// Every rule has a case above; this keeps it that way when a rule is added.
func TestEveryRuleHasABadCase(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	found, _, err := Check(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		seen[f.Rule] = true
	}
	for _, rule := range []string{RuleSyntax, RuleEULocation, RuleNoKeys, RuleSharedKeyAccess, RuleMinTLS, RuleLocalAuth, RulePurgeProtection, RuleAPIVersion, RuleModulePinned, RuleParams} {
		if !seen[rule] {
			t.Errorf("no bad example triggers rule %s", rule)
		}
	}
}

func FuzzCheckSource(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "bad"), filepath.Join("testdata", "good")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			src, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(strings.HasSuffix(e.Name(), ".bicepparam"), src)
		}
	}
	f.Fuzz(func(t *testing.T, isParam bool, src []byte) {
		name := filepath.Join("testdata", "fuzz.bicep")
		if isParam {
			name += "param"
		}
		found, err := CheckSource(name, src)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(src, []byte("\n")) + 1
		for _, fd := range found {
			if fd.Line < 1 || fd.Line > lines || fd.Column < 1 {
				t.Fatalf("finding outside the file: %s", fd)
			}
		}
	})
}

func BenchmarkCheckProjectTemplates(b *testing.B) {
	root := filepath.Join("..", "..", "..", "infra", "bicep")
	for b.Loop() {
		if _, _, err := Check(root); err != nil {
			b.Fatal(err)
		}
	}
}
