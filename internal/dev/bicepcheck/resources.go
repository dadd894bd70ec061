package bicepcheck

import (
	"strings"

	tree_sitter "github.com/tree-sitter/go-tree-sitter"
)

// resource is one `resource` declaration, nested ones included, with its type resolved against its
// parents so that rules can match on the full ARM type.
type resource struct {
	decl       *tree_sitter.Node
	typeNode   *tree_sitter.Node
	fullType   string // e.g. Microsoft.Storage/storageAccounts/tableServices, "" when not a literal
	apiVersion string // own or inherited from the parent
	ownVersion bool   // the type string carries its own @version
	existing   bool
	body       *tree_sitter.Node // the object literal, nil when the body is not one
}

func (f *file) resources() []resource {
	var out []resource
	var visit func(n *tree_sitter.Node, parent *resource)
	visit = func(n *tree_sitter.Node, parent *resource) {
		if n.Kind() == "resource_declaration" {
			r := f.readResource(n, parent)
			out = append(out, r)
			if r.body != nil {
				for _, p := range named(r.body) {
					for _, c := range named(p) {
						if c.Kind() == "resource_declaration" {
							visit(c, &r)
						}
					}
				}
			}
			return
		}
		for _, c := range named(n) {
			visit(c, parent)
		}
	}
	for _, n := range named(f.root) {
		visit(n, nil)
	}
	return out
}

func (f *file) readResource(n *tree_sitter.Node, parent *resource) resource {
	r := resource{decl: n, existing: hasAnonChild(n, "existing")}
	kids := named(n)
	if len(kids) < 2 {
		return r
	}
	r.typeNode = kids[1]
	typ, ok := f.stringLiteral(r.typeNode)
	if ok {
		name, version, hasVersion := strings.Cut(typ, "@")
		r.ownVersion = hasVersion
		r.apiVersion = version
		switch {
		case parent == nil:
			r.fullType = name
		case parent.fullType != "" && !strings.Contains(name, "/"):
			// A nested child names only its own segment and may inherit the parent's version.
			r.fullType = parent.fullType + "/" + name
			if !hasVersion {
				r.apiVersion = parent.apiVersion
			}
		default:
			r.fullType = name
		}
	}
	r.body = declarationBody(n)
	return r
}

// declarationBody finds the object literal of a resource or module, through `if (...)` and `[for ...]`.
func declarationBody(n *tree_sitter.Node) *tree_sitter.Node {
	kids := named(n)
	if len(kids) == 0 {
		return nil
	}
	b := kids[len(kids)-1]
	if b.Kind() == "for_statement" {
		b = b.ChildByFieldName("body")
	}
	if b != nil && b.Kind() == "if_statement" {
		var obj *tree_sitter.Node
		for _, c := range named(b) {
			if c.Kind() == "object" {
				obj = c
			}
		}
		b = obj
	}
	if b == nil || b.Kind() != "object" {
		return nil
	}
	return b
}
