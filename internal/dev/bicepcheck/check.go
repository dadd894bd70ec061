// Package bicepcheck validates the project's Bicep templates offline: no Bicep CLI is available where the
// tests run, so every .bicep and .bicepparam file is parsed with the tree-sitter Bicep grammar, syntax
// errors are reported with file:line:col, and the syntax tree is walked for the project's platform
// rules (EU locations, no keys, identity-only access, TLS floor, purge protection, pinned versions).
package bicepcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	tree_sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/connecthub/connecthub/internal/platform/config"
)

// Rule identifiers, as printed in findings.
const (
	RuleSyntax          = "syntax"
	RuleEULocation      = "eu-location"
	RuleNoKeys          = "no-keys"
	RuleSharedKeyAccess = "shared-key-access"
	RuleMinTLS          = "min-tls"
	RuleLocalAuth       = "local-auth"
	RulePurgeProtection = "purge-protection"
	RuleAPIVersion      = "api-version"
	RuleModulePinned    = "module-pinned"
	RuleParams          = "params"
)

// Finding is one breach of a rule at a place in a file. Line and Column are 1-based; Column counts bytes.
type Finding struct {
	Path    string
	Line    int
	Column  int
	Rule    string
	Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", f.Path, f.Line, f.Column, f.Rule, f.Message)
}

// Check parses every .bicep and .bicepparam file under the given files or directories and returns
// all findings, sorted by place. It also returns how many files it read, so a caller can tell an
// empty tree from a clean one.
func Check(paths ...string) ([]Finding, int, error) {
	var files []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && isBicep(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("walk %s: %w", p, err)
		}
	}
	sort.Strings(files)
	var all []Finding
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, fmt.Errorf("read bicep file: %w", err)
		}
		found, err := CheckSource(path, src)
		if err != nil {
			return nil, 0, err
		}
		all = append(all, found...)
	}
	return all, len(files), nil
}

func isBicep(path string) bool {
	return strings.HasSuffix(path, ".bicep") || strings.HasSuffix(path, ".bicepparam")
}

// CheckSource checks one file's text. path decides the dialect (.bicepparam or .bicep) and anchors
// relative module paths, which must exist on disk.
func CheckSource(path string, src []byte) ([]Finding, error) {
	f, err := parse(path, src)
	if err != nil {
		return nil, err
	}
	defer f.close()

	c := &checker{f: f}
	c.syntax()
	// A tree with errors has guessed shapes; rule findings on it would mislead more than help.
	if len(c.out) == 0 {
		c.locations()
		c.noKeys()
		c.resourceRules()
		c.modules()
		if f.isParam {
			c.paramFile()
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Line != c.out[j].Line {
			return c.out[i].Line < c.out[j].Line
		}
		return c.out[i].Column < c.out[j].Column
	})
	return c.out, nil
}

type checker struct {
	f   *file
	out []Finding
}

func (c *checker) report(n *tree_sitter.Node, rule, format string, args ...any) {
	p := n.StartPosition()
	c.out = append(c.out, Finding{
		Path: c.f.path, Line: int(p.Row) + 1, Column: int(p.Column) + 1,
		Rule: rule, Message: fmt.Sprintf(format, args...),
	})
}

func (c *checker) syntax() {
	walk(c.f.root, func(n *tree_sitter.Node) bool {
		switch {
		case n.IsError():
			// Quote the file as written, not the rewritten parameters text.
			c.report(n, RuleSyntax, "syntax error near %q", snippet(string(c.f.orig[n.StartByte():n.EndByte()])))
			return false
		case n.IsMissing():
			c.report(n, RuleSyntax, "missing %s", n.Kind())
			return false
		}
		return n.HasError()
	})
}

func snippet(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// euRegions is the handler's own list, so the templates and the running app refuse the same regions.
var euRegions = config.EURegions

// isLocationKey tells the property names that place a resource, a replica or an endpoint in a region
// (location, endpointLocation, locationName) or pass one on to a module (primaryLocation, activeRegion).
func isLocationKey(key string) bool {
	k := strings.ToLower(key)
	return strings.HasSuffix(k, "location") || k == "locationname" || strings.HasSuffix(k, "region")
}

// locations proves every location-like property is an EU region: a literal, a parameter whose
// @allowed list holds only EU regions, a variable that resolves to one of those, or a ternary of them.
// "global" is accepted for the few resources that have no region (Traffic Manager, policy).
func (c *checker) locations() {
	walk(c.f.root, func(n *tree_sitter.Node) bool {
		if n.Kind() != "object_property" {
			return true
		}
		key, ok := c.f.propertyKey(n)
		kids := named(n)
		if ok && isLocationKey(key) && len(kids) >= 2 {
			if why := c.euProof(kids[len(kids)-1], 0); why != "" {
				c.report(kids[len(kids)-1], RuleEULocation, "%s %s", key, why)
			}
		}
		return true
	})
}

// euProof returns "" when n is provably an EU region, else the reason it is not.
func (c *checker) euProof(n *tree_sitter.Node, depth int) string {
	if depth > 16 {
		return "is defined in a cycle"
	}
	switch n.Kind() {
	case "string":
		v, ok := c.f.stringLiteral(n)
		switch {
		case !ok:
			return "is an interpolated string; use an EU region literal or an @allowed parameter"
		case euRegions[strings.ToLower(v)], strings.EqualFold(v, "global"):
			return ""
		}
		return fmt.Sprintf("is %q, which is not an EU region", v)
	case "identifier":
		name := c.f.text(n)
		if p, ok := c.f.params[name]; ok {
			return c.allowedEU(p)
		}
		if v, ok := c.f.vars[name]; ok {
			return c.euProof(v, depth+1)
		}
		return fmt.Sprintf("uses %s, which is neither a parameter nor a variable of this file", name)
	case "ternary_expression":
		for _, field := range []string{"consequence", "alternative"} {
			if why := c.euProof(n.ChildByFieldName(field), depth+1); why != "" {
				return why
			}
		}
		return ""
	case "parenthesized_expression":
		if kids := named(n); len(kids) == 1 {
			return c.euProof(kids[0], depth+1)
		}
	}
	return fmt.Sprintf("is %q, which cannot be proven to be an EU region; use a literal or an @allowed parameter", snippet(c.f.text(n)))
}

func (c *checker) allowedEU(p *paramDecl) string {
	if !p.allowedSet || !p.allowedOK || len(p.allowed) == 0 {
		return fmt.Sprintf("uses parameter %s, which is not constrained by @allowed to EU regions", p.name)
	}
	for _, v := range p.allowed {
		if !euRegions[strings.ToLower(v)] {
			return fmt.Sprintf("uses parameter %s, whose @allowed list includes %q, which is not an EU region", p.name, v)
		}
	}
	return ""
}

// keyFunctions are ARM functions that hand a template a key, a SAS or a connection string.
var keyFunctions = map[string]bool{
	"listkeys": true, "listconnectionstrings": true, "listaccountsas": true, "listservicesas": true,
	"listsecrets": true, "listcredentials": true, "listadminkeys": true, "listquerykeys": true,
}

// keyMarkers appear only in connection strings that carry a key or a signature.
var keyMarkers = []string{"accountkey=", "sharedaccesskey=", "sharedaccesskeyname=", "sharedaccesssignature=", "defaultendpointsprotocol="}

func (c *checker) noKeys() {
	walk(c.f.root, func(n *tree_sitter.Node) bool {
		switch n.Kind() {
		case "call_expression":
			if name := c.f.callName(n); keyFunctions[strings.ToLower(name)] {
				c.report(n, RuleNoKeys, "%s() hands out keys; use managed identity and RBAC", name)
			}
		case "string_content":
			low := strings.ToLower(c.f.text(n))
			for _, m := range keyMarkers {
				if strings.Contains(low, m) {
					c.report(n, RuleNoKeys, "string looks like a connection string with a key (%s); use identity-based settings", strings.TrimSuffix(m, "="))
					break
				}
			}
		}
		return true
	})
	for _, r := range c.f.resources() {
		if strings.HasSuffix(strings.ToLower(r.fullType), "/authorizationrules") {
			c.report(r.typeNode, RuleNoKeys, "%s creates SAS keys; grant RBAC roles instead", r.fullType)
		}
	}
}

// requirement is one property a resource type must set, as a literal, to an accepted value.
type requirement struct {
	rule   string
	typ    string // full ARM type, case-insensitive
	path   []string
	accept []string // accepted literal values ("true"/"false" for booleans)
	why    string
}

var requirements = []requirement{
	{RuleSharedKeyAccess, "Microsoft.Storage/storageAccounts", []string{"properties", "allowSharedKeyAccess"}, []string{"false"}, "storage must refuse shared keys; identities only"},

	{RuleMinTLS, "Microsoft.Storage/storageAccounts", []string{"properties", "minimumTlsVersion"}, []string{"TLS1_2", "TLS1_3"}, "TLS 1.2 is the floor"},
	{RuleMinTLS, "Microsoft.ServiceBus/namespaces", []string{"properties", "minimumTlsVersion"}, []string{"1.2", "1.3"}, "TLS 1.2 is the floor"},
	{RuleMinTLS, "Microsoft.EventHub/namespaces", []string{"properties", "minimumTlsVersion"}, []string{"1.2", "1.3"}, "TLS 1.2 is the floor"},
	{RuleMinTLS, "Microsoft.Web/sites", []string{"properties", "siteConfig", "minTlsVersion"}, []string{"1.2", "1.3"}, "TLS 1.2 is the floor"},
	{RuleMinTLS, "Microsoft.Cache/redis", []string{"properties", "minimumTlsVersion"}, []string{"1.2", "1.3"}, "TLS 1.2 is the floor"},

	{RuleLocalAuth, "Microsoft.ServiceBus/namespaces", []string{"properties", "disableLocalAuth"}, []string{"true"}, "SAS access must be off"},
	{RuleLocalAuth, "Microsoft.EventHub/namespaces", []string{"properties", "disableLocalAuth"}, []string{"true"}, "SAS access must be off"},
	{RuleLocalAuth, "Microsoft.Insights/components", []string{"properties", "DisableLocalAuth"}, []string{"true"}, "instrumentation-key ingestion must be off"},
	{RuleLocalAuth, "Microsoft.OperationalInsights/workspaces", []string{"properties", "features", "disableLocalAuth"}, []string{"true"}, "shared-key ingestion must be off"},
	{RuleLocalAuth, "Microsoft.AppConfiguration/configurationStores", []string{"properties", "disableLocalAuth"}, []string{"true"}, "access keys must be off"},
	{RuleLocalAuth, "Microsoft.CognitiveServices/accounts", []string{"properties", "disableLocalAuth"}, []string{"true"}, "access keys must be off"},
	{RuleLocalAuth, "Microsoft.DocumentDB/databaseAccounts", []string{"properties", "disableLocalAuth"}, []string{"true"}, "account keys must be off"},
	{RuleLocalAuth, "Microsoft.Web/sites/basicPublishingCredentialsPolicies", []string{"properties", "allow"}, []string{"false"}, "FTP and SCM basic auth must be off"},

	{RulePurgeProtection, "Microsoft.KeyVault/vaults", []string{"properties", "enablePurgeProtection"}, []string{"true"}, "deleted keys and secrets must not be purgeable early"},
	{RulePurgeProtection, "Microsoft.KeyVault/managedHSMs", []string{"properties", "enablePurgeProtection"}, []string{"true"}, "deleted keys must not be purgeable early"},
}

// validAPIVersion accepts an ARM API version: a yyyy-mm-dd date with an optional pre-release suffix.
func validAPIVersion(v string) bool {
	if len(v) < 10 {
		return false
	}
	date, suffix := v[:10], strings.TrimPrefix(v[10:], "-")
	if len(v) > 10 && v[10] != '-' {
		return false
	}
	for i, ch := range date {
		switch {
		case i == 4 || i == 7:
			if ch != '-' {
				return false
			}
		case ch < '0' || ch > '9':
			return false
		}
	}
	switch suffix {
	case "", "preview", "privatepreview", "beta", "alpha":
		return true
	}
	return false
}

func (c *checker) resourceRules() {
	for _, r := range c.f.resources() {
		c.apiVersion(r)
		if r.existing || r.fullType == "" {
			continue
		}
		for _, req := range requirements {
			if !strings.EqualFold(req.typ, r.fullType) {
				continue
			}
			at := r.decl
			if r.body == nil {
				c.report(at, req.rule, "%s body is not an object literal, so %s cannot be checked", r.fullType, strings.Join(req.path, "."))
				continue
			}
			v := c.f.lookup(r.body, req.path...)
			if v == nil {
				c.report(at, req.rule, "%s must set %s to %s (%s)", r.fullType, strings.Join(req.path, "."), strings.Join(req.accept, " or "), req.why)
				continue
			}
			got, ok := c.literal(v)
			if !ok || !contains(req.accept, got) {
				c.report(v, req.rule, "%s %s is %s, want %s (%s)", r.fullType, strings.Join(req.path, "."), snippet(c.f.text(v)), strings.Join(req.accept, " or "), req.why)
			}
		}
	}
}

func (c *checker) literal(n *tree_sitter.Node) (string, bool) {
	if b, ok := c.f.boolLiteral(n); ok {
		if b {
			return "true", true
		}
		return "false", true
	}
	return c.f.stringLiteral(n)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func (c *checker) apiVersion(r resource) {
	if r.typeNode == nil {
		return
	}
	typ, ok := c.f.stringLiteral(r.typeNode)
	switch {
	case !ok:
		c.report(r.typeNode, RuleAPIVersion, "resource type must be a literal string with a pinned API version")
	case r.ownVersion && !validAPIVersion(r.apiVersion):
		c.report(r.typeNode, RuleAPIVersion, "%q has API version %q, want yyyy-mm-dd[-preview]", typ, r.apiVersion)
	case !r.ownVersion && (r.fullType == typ || r.apiVersion == ""):
		// Only a nested child may inherit its parent's version.
		c.report(r.typeNode, RuleAPIVersion, "%q has no API version; pin one with @yyyy-mm-dd", typ)
	}
}

// modules checks that every module, import and `using` target is pinned: a local file that exists,
// a registry module with a tag other than latest (or a digest), or a template spec with a version.
func (c *checker) modules() {
	walk(c.f.root, func(n *tree_sitter.Node) bool {
		var target *tree_sitter.Node
		switch n.Kind() {
		case "module_declaration", "using_statement", "import_functionality", "import_statement", "import_with_statement":
			for _, k := range named(n) {
				if k.Kind() == "string" {
					target = k
					break
				}
			}
		default:
			return true
		}
		if target == nil {
			return false
		}
		ref, ok := c.f.stringLiteral(target)
		if !ok {
			c.report(target, RuleModulePinned, "module path must be a literal")
			return false
		}
		if why := c.pinned(ref, n.Kind() == "import_statement" || n.Kind() == "import_with_statement"); why != "" {
			c.report(target, RuleModulePinned, "%q %s", ref, why)
		}
		return false
	})
}

func (c *checker) pinned(ref string, extension bool) string {
	switch {
	case extension:
		// `import 'az@1.0.0'` / `provider 'microsoftGraph@1.0.0'`: an extension, pinned by its version.
		if _, v, ok := strings.Cut(ref, "@"); !ok || v == "" {
			return "must name a version"
		}
		return ""
	case strings.HasPrefix(ref, "br:"), strings.HasPrefix(ref, "br/"):
		if strings.Contains(ref, "@sha256:") {
			return ""
		}
		i := strings.LastIndexByte(ref, ':')
		tag := ref[i+1:]
		if i <= 3 || strings.Contains(tag, "/") || tag == "" {
			return "has no tag; pin a version"
		}
		if strings.EqualFold(tag, "latest") {
			return "uses the moving tag latest; pin a version"
		}
		return ""
	case strings.HasPrefix(ref, "ts:"), strings.HasPrefix(ref, "ts/"):
		parts := strings.Split(ref, ":")
		if len(parts) < 3 || parts[len(parts)-1] == "" {
			return "has no template spec version"
		}
		return ""
	case strings.Contains(ref, "://"):
		return "is a URL; modules must be local files or pinned registry references"
	}
	local := filepath.Join(filepath.Dir(c.f.path), filepath.FromSlash(ref))
	if _, err := os.Stat(local); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "does not exist"
		}
		return "cannot be read"
	}
	return ""
}
