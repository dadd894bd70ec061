package bicepcheck

import (
	"bytes"
	"fmt"
	"strings"

	tree_sitter_bicep "github.com/tree-sitter-grammars/tree-sitter-bicep/bindings/go"
	tree_sitter "github.com/tree-sitter/go-tree-sitter"
)

var bicepLanguage = tree_sitter.NewLanguage(tree_sitter_bicep.Language())

// file is one parsed Bicep or Bicep parameters file: the source the tree points into, the tree, and the
// top-level declarations the rules resolve identifiers against.
type file struct {
	path    string
	isParam bool
	src     []byte // what was parsed: for .bicepparam, the rewritten text
	orig    []byte
	tree    *tree_sitter.Tree
	root    *tree_sitter.Node

	params map[string]*paramDecl
	vars   map[string]*tree_sitter.Node // name -> value expression
}

type paramDecl struct {
	name       string
	node       *tree_sitter.Node
	allowed    []string // literal values of @allowed, nil when absent
	allowedSet bool     // @allowed present
	allowedOK  bool     // every @allowed entry is a string literal
	hasDefault bool
}

// rewriteParamFile makes a .bicepparam parseable by the Bicep grammar, which has no `param name = value`
// form: each leading `param ` becomes `var   `, the same width, so every line:col still points at the
// original text. A line inside a ”' string that starts with "param " is rewritten too; that only
// changes string content, which no rule reads for parameters files.
func rewriteParamFile(src []byte) []byte {
	out := bytes.Clone(src)
	lineStart := 0
	for lineStart < len(out) {
		i := lineStart
		for i < len(out) && (out[i] == ' ' || out[i] == '\t') {
			i++
		}
		if bytes.HasPrefix(out[i:], []byte("param ")) {
			copy(out[i:], "var   ")
		}
		next := bytes.IndexByte(out[lineStart:], '\n')
		if next < 0 {
			break
		}
		lineStart += next + 1
	}
	return out
}

func parse(path string, src []byte) (*file, error) {
	isParam := strings.HasSuffix(path, ".bicepparam")
	text := src
	if isParam {
		text = rewriteParamFile(src)
	}
	p := tree_sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(bicepLanguage); err != nil {
		return nil, fmt.Errorf("set bicep language: %w", err)
	}
	tree := p.Parse(text, nil)
	if tree == nil {
		return nil, fmt.Errorf("parse %s: parser returned no tree", path)
	}
	f := &file{
		path: path, isParam: isParam, src: text, orig: src, tree: tree, root: tree.RootNode(),
		params: map[string]*paramDecl{}, vars: map[string]*tree_sitter.Node{},
	}
	f.indexDeclarations()
	return f, nil
}

func (f *file) close() { f.tree.Close() }

// indexDeclarations records parameters (with their @allowed lists) and variables. Decorators are
// separate statements in this grammar, so they attach to the declaration that follows them.
func (f *file) indexDeclarations() {
	var pending *tree_sitter.Node
	for _, n := range named(f.root) {
		switch n.Kind() {
		case "decorators":
			pending = n
			continue
		case "parameter_declaration":
			d := &paramDecl{name: f.text(named(n)[0]), node: n}
			d.hasDefault = hasAnonChild(n, "=")
			if pending != nil {
				f.readAllowed(pending, d)
			}
			f.params[d.name] = d
		case "variable_declaration":
			if kids := named(n); len(kids) >= 2 {
				f.vars[f.text(kids[0])] = kids[1]
			}
		}
		pending = nil
	}
}

func (f *file) readAllowed(decorators *tree_sitter.Node, d *paramDecl) {
	for _, dec := range named(decorators) {
		kids := named(dec)
		if len(kids) == 0 || kids[0].Kind() != "call_expression" || f.callName(kids[0]) != "allowed" {
			continue
		}
		d.allowedSet = true
		d.allowedOK = true
		args := named(kids[0].ChildByFieldName("arguments"))
		if len(args) != 1 || args[0].Kind() != "array" {
			d.allowedOK = false
			return
		}
		for _, item := range named(args[0]) {
			v, ok := f.stringLiteral(item)
			if !ok {
				d.allowedOK = false
				continue
			}
			d.allowed = append(d.allowed, v)
		}
	}
}

func (f *file) text(n *tree_sitter.Node) string {
	if n == nil {
		return ""
	}
	return n.Utf8Text(f.src)
}

// stringLiteral returns the value of a string without interpolation.
func (f *file) stringLiteral(n *tree_sitter.Node) (string, bool) {
	if n == nil || n.Kind() != "string" {
		return "", false
	}
	var b strings.Builder
	for i := uint(0); i < n.NamedChildCount(); i++ {
		c := n.NamedChild(i)
		switch c.Kind() {
		case "string_content":
			b.WriteString(f.text(c))
		case "escape_sequence":
			b.WriteString(unescape(f.text(c)))
		default: // interpolation: the value is only known at deployment
			return "", false
		}
	}
	return b.String(), true
}

func unescape(esc string) string {
	switch esc {
	case `\n`:
		return "\n"
	case `\r`:
		return "\r"
	case `\t`:
		return "\t"
	case `\$`:
		return "$"
	}
	return strings.TrimPrefix(esc, `\`)
}

func (f *file) boolLiteral(n *tree_sitter.Node) (bool, bool) {
	if n == nil || n.Kind() != "boolean" {
		return false, false
	}
	return f.text(n) == "true", true
}

// callName is the function name of a call: `listKeys(...)`, `sa.listKeys()`, `sys.allowed(...)`.
func (f *file) callName(call *tree_sitter.Node) string {
	fn := call.ChildByFieldName("function")
	if fn == nil {
		return ""
	}
	switch fn.Kind() {
	case "identifier":
		return f.text(fn)
	case "member_expression":
		return f.text(fn.ChildByFieldName("property"))
	}
	return ""
}

// named returns the named children of n without comments, which the grammar lets appear anywhere.
func named(n *tree_sitter.Node) []*tree_sitter.Node {
	if n == nil {
		return nil
	}
	var out []*tree_sitter.Node
	for i := uint(0); i < n.NamedChildCount(); i++ {
		c := n.NamedChild(i)
		if k := c.Kind(); k != "comment" && k != "diagnostic_comment" {
			out = append(out, c)
		}
	}
	return out
}

func hasAnonChild(n *tree_sitter.Node, kind string) bool {
	for i := uint(0); i < n.ChildCount(); i++ {
		c := n.Child(i)
		if !c.IsNamed() && c.Kind() == kind {
			return true
		}
	}
	return false
}

// propertyKey is the name of an object property, whatever form the key takes.
func (f *file) propertyKey(prop *tree_sitter.Node) (string, bool) {
	kids := named(prop)
	if len(kids) == 0 {
		return "", false
	}
	k := kids[0]
	switch k.Kind() {
	case "identifier":
		return f.text(k), true
	case "string":
		return f.stringLiteral(k)
	case "compatible_identifier":
		return strings.TrimSuffix(f.text(k), "?"), true
	}
	return "", false
}

// lookup follows a property path through nested object literals. ARM property names are
// case-insensitive, so the keys are too. It reports the value node of the last key.
func (f *file) lookup(obj *tree_sitter.Node, path ...string) *tree_sitter.Node {
	cur := obj
	for _, key := range path {
		if cur == nil || cur.Kind() != "object" {
			return nil
		}
		var next *tree_sitter.Node
		for _, p := range named(cur) {
			if p.Kind() != "object_property" {
				continue
			}
			kids := named(p)
			if len(kids) < 2 {
				continue
			}
			if name, ok := f.propertyKey(p); ok && strings.EqualFold(name, key) {
				next = kids[len(kids)-1]
			}
		}
		cur = next
	}
	return cur
}

// walk visits every node depth-first; visit returns false to skip a node's children.
func walk(n *tree_sitter.Node, visit func(*tree_sitter.Node) bool) {
	if n == nil || !visit(n) {
		return
	}
	for i := uint(0); i < n.ChildCount(); i++ {
		walk(n.Child(i), visit)
	}
}
