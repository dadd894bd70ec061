package tables

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sync"
)

// The catalogue is the one list of tables, assembled from the tables each module declares. Retention
// (what a deletion empties, in which order, on which clock), the data inventory test, the Bicep table
// test, table creation and the personal-data coverage test all read it, so a table is added in its
// module only (plus its row in docs/data-inventory.md, which the inventory test demands).

// RetentionClass says which of the promised clocks deletes a table's rows (docs/data-inventory.md).
type RetentionClass string

// The retention classes, in the order a tenant's deletion empties them.
const (
	// RetainTenantData rows go with the tenant: 24 h after cancellation, 7 days after suspension.
	RetainTenantData RetentionClass = "tenant-data"
	// RetainLicenseData rows go 30 days after cancellation.
	RetainLicenseData RetentionClass = "license-data"
	// RetainBillingData rows go 90 days after cancellation.
	RetainBillingData RetentionClass = "billing-data"
	// RetainRegistry is the tenant's own row: deleted last, after the deletion receipt is written.
	RetainRegistry RetentionClass = "registry"
	// RetainReceipts are the operator's proof of deletion: no personal data, kept after the tenant.
	RetainReceipts RetentionClass = "receipts"
)

var classOrder = []RetentionClass{RetainTenantData, RetainLicenseData, RetainBillingData, RetainRegistry, RetainReceipts}

// Spec is one table as its module declares it.
type Spec struct {
	Name string
	// Module is the capability that owns the table's rows: writes them and answers for them in a
	// person's export and erasure.
	Module    string
	Retention RetentionClass
	// Entity is the Go type of the rows; Fields its fields as their tags declare them.
	Entity string
	Fields []Field

	newEntity func() Entity
}

// SpecOf declares table name of entity E, owned by module, on the given retention clock.
func SpecOf[E any, P entityPtr[E]](name, module string, class RetentionClass) Spec {
	declared.Store(name, true)
	return Spec{Name: name, Module: module, Retention: class, Entity: reflect.TypeFor[E]().Name(),
		Fields: FieldsOf[E, P](), newEntity: func() Entity { return P(new(E)) }}
}

// NewEntity returns a zero row of the table's type (for tests that walk the catalogue).
func (s Spec) NewEntity() Entity { return s.newEntity() }

// Personal lists the fields that identify or describe a person (sealed ones included).
func (s Spec) Personal() []string {
	var out []string
	for _, f := range s.Fields {
		if f.Personal {
			out = append(out, f.Name)
		}
	}
	return out
}

// declared remembers every table name a linked package has declared, for the test helper that creates
// them (internal/dev/storetest) without importing every module. Production code reads the catalogue
// that internal/app assembles, never this.
var declared sync.Map

// DeclaredNames lists every table name declared by the packages linked into this binary.
func DeclaredNames() []string {
	var out []string
	declared.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// Catalogue is every table of every module, in the order a tenant's deletion empties them: the
// retention classes in order (the registry row last, so a crash midway leaves it to drive the retry;
// the receipts never), and within a class in the order the modules were listed.
type Catalogue []Spec

// Table names: lower-case letters and digits, starting with a letter (Table Storage allows 3–63
// alphanumerics; a test prefix of up to 30 goes in front).
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{2,32}$`)

// NewCatalogue orders the specs and refuses a duplicate name, a bad name, an unknown class or a
// missing owner — at start, not when retention first runs.
func NewCatalogue(specs ...[]Spec) (Catalogue, error) {
	var all Catalogue
	seen := map[string]bool{}
	for _, group := range specs {
		for _, s := range group {
			switch {
			case !nameRE.MatchString(s.Name):
				return nil, fmt.Errorf("catalogue: table name %q: lower-case letters and digits, 3–33", s.Name)
			case seen[s.Name]:
				return nil, fmt.Errorf("catalogue: table %s is declared twice", s.Name)
			case s.Module == "" || s.newEntity == nil:
				return nil, fmt.Errorf("catalogue: table %s has no owning module or no entity (declare it with SpecOf)", s.Name)
			case !slices.Contains(classOrder, s.Retention):
				return nil, fmt.Errorf("catalogue: table %s has unknown retention class %q", s.Name, s.Retention)
			}
			seen[s.Name] = true
			all = append(all, s)
		}
	}
	slices.SortStableFunc(all, func(a, b Spec) int {
		return slices.Index(classOrder, a.Retention) - slices.Index(classOrder, b.Retention)
	})
	return all, nil
}

// MustCatalogue is NewCatalogue for package-level declarations.
func MustCatalogue(specs ...[]Spec) Catalogue {
	c, err := NewCatalogue(specs...)
	if err != nil {
		panic(err)
	}
	return c
}

// Names lists every table.
func (c Catalogue) Names() []string {
	out := make([]string, len(c))
	for i, s := range c {
		out[i] = s.Name
	}
	return out
}

// Of lists the tables of one retention class, in deletion order.
func (c Catalogue) Of(class RetentionClass) []string {
	var out []string
	for _, s := range c {
		if s.Retention == class {
			out = append(out, s.Name)
		}
	}
	return out
}

// TenantTables lists the per-tenant tables (all but the deletion receipts), in deletion order.
func (c Catalogue) TenantTables() []string {
	var out []string
	for _, s := range c {
		if s.Retention != RetainReceipts {
			out = append(out, s.Name)
		}
	}
	return out
}

// Lookup returns the spec of one table.
func (c Catalogue) Lookup(name string) (Spec, bool) {
	for _, s := range c {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}
