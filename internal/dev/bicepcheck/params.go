package bicepcheck

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	tree_sitter "github.com/tree-sitter/go-tree-sitter"
)

// paramFile checks a .bicepparam against the template it uses, which the Bicep CLI would do at build
// time: every value names a declared parameter, a literal value is inside the parameter's @allowed
// list, and every parameter without a default gets a value. Region-like values must be EU regions.
func (c *checker) paramFile() {
	values := map[string]*tree_sitter.Node{}
	var names []string
	var using *tree_sitter.Node
	for _, n := range named(c.f.root) {
		switch n.Kind() {
		case "using_statement":
			using = n
		case "variable_declaration":
			kids := named(n)
			if len(kids) < 2 || !c.f.wasParam(n) {
				continue
			}
			name := c.f.text(kids[0])
			values[name] = kids[1]
			names = append(names, name)
			low := strings.ToLower(name)
			if strings.Contains(low, "region") || strings.Contains(low, "location") {
				c.euValue(name, kids[1])
			}
		}
	}
	if using == nil {
		c.report(c.f.root, RuleParams, "parameters file has no using statement")
		return
	}
	var target *tree_sitter.Node
	for _, k := range named(using) {
		if k.Kind() == "string" {
			target = k
		}
	}
	ref, ok := c.f.stringLiteral(target)
	if !ok || strings.Contains(ref, ":") {
		return // registry templates cannot be read offline; modules() already checked the pin
	}
	tplPath := filepath.Join(filepath.Dir(c.f.path), filepath.FromSlash(ref))
	src, err := os.ReadFile(tplPath)
	if err != nil {
		return // modules() reports a missing file
	}
	tpl, err := parse(tplPath, src)
	if err != nil {
		c.report(using, RuleParams, "cannot parse %s: %v", ref, err)
		return
	}
	defer tpl.close()

	sort.Strings(names)
	for _, name := range names {
		v := values[name]
		p, ok := tpl.params[name]
		if !ok {
			c.report(v.Parent(), RuleParams, "%s is not a parameter of %s", name, ref)
			continue
		}
		if lit, ok := c.f.stringLiteral(v); ok && p.allowedSet && p.allowedOK && !contains(p.allowed, lit) {
			c.report(v, RuleParams, "%s = %q is not in the @allowed list of %s", name, lit, ref)
		}
	}
	var required []string
	for name, p := range tpl.params {
		if _, set := values[name]; !set && !p.hasDefault {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	for _, name := range required {
		c.report(using, RuleParams, "%s has no default in %s and no value here", name, ref)
	}
}

// euValue requires a region-like parameter value to be an EU region literal or an array of them.
func (c *checker) euValue(name string, v *tree_sitter.Node) {
	items := []*tree_sitter.Node{v}
	if v.Kind() == "array" {
		items = named(v)
	}
	for _, it := range items {
		lit, ok := c.f.stringLiteral(it)
		if !ok {
			continue // an expression: the template's @allowed list decides at deployment
		}
		if !euRegions[strings.ToLower(lit)] {
			c.report(it, RuleEULocation, "%s holds %q, which is not an EU region", name, lit)
		}
	}
}

// wasParam tells a `param` line of a parameters file (rewritten to `var   `) from a real `var`.
func (f *file) wasParam(n *tree_sitter.Node) bool {
	start := n.StartByte()
	return f.isParam && int(start)+5 <= len(f.orig) && string(f.orig[start:start+5]) == "param"
}
