package tables

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/connecthub/connecthub/internal/core"
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
	open      func(*DB) Untyped
}

// SpecOf declares table name of entity E, owned by module, on the given retention clock.
func SpecOf[E any, P entityPtr[E]](name, module string, class RetentionClass) Spec {
	s := Spec{Name: name, Module: module, Retention: class, Entity: reflect.TypeFor[E]().Name(),
		Fields: FieldsOf[E, P](), newEntity: func() Entity { return P(new(E)) },
		open: func(db *DB) Untyped { return untyped[E, P]{New[E, P](db, name)} }}
	declared.Store(name, s)
	return s
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

// declared remembers every table a linked package has declared, for tests that need the tables of the
// modules they link without importing every module (internal/dev/storetest creates them; a module's
// own tests run its jobs on them). Production code reads the catalogue internal/app assembles, never
// this.
var declared sync.Map // name → Spec

// Declared is the catalogue of every table declared by the packages linked into this binary (tests).
func Declared() Catalogue {
	var specs []Spec
	declared.Range(func(_, v any) bool {
		specs = append(specs, v.(Spec))
		return true
	})
	slices.SortFunc(specs, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	return MustCatalogue(specs)
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

// Partitions is the catalogue's per-tenant tables on a DB: what a tenant's deletion works through,
// by table name. It refuses any other name, so the operator's deletion receipts can never be emptied
// with a tenant.
type Partitions struct {
	db    *DB
	names []string
}

// Partitions returns the catalogue's per-tenant tables on db.
func (c Catalogue) Partitions(db *DB) *Partitions {
	return &Partitions{db: db, names: c.TenantTables()}
}

func (p *Partitions) check(what string, names []string) error {
	for _, n := range names {
		if !slices.Contains(p.names, n) {
			return fmt.Errorf("%s: %q is not a per-tenant table", what, n)
		}
	}
	return nil
}

// Delete deletes the tenant's partition in each named table (every per-tenant table when none are
// named); see DB.DeleteTenantRows.
func (p *Partitions) Delete(ctx context.Context, tenant core.TenantID, names ...string) (map[string]int, error) {
	if len(names) == 0 {
		names = p.names
	}
	if err := p.check("delete tenant rows", names); err != nil {
		return nil, err
	}
	return p.db.DeleteTenantRows(ctx, tenant, names)
}

// DeleteUpTo deletes at most max of the tenant's rows in one table; see DB.DeleteTenantRowsUpTo.
func (p *Partitions) DeleteUpTo(ctx context.Context, tenant core.TenantID, name string, max int) (int, bool, error) {
	if err := p.check("delete tenant rows", []string{name}); err != nil {
		return 0, false, err
	}
	return p.db.DeleteTenantRowsUpTo(ctx, tenant, name, max)
}

// Count counts the tenant's rows in each named table (every per-tenant table when none are named).
func (p *Partitions) Count(ctx context.Context, tenant core.TenantID, names ...string) (map[string]int, error) {
	if len(names) == 0 {
		names = p.names
	}
	if err := p.check("count tenant rows", names); err != nil {
		return nil, err
	}
	return p.db.CountTenantRows(ctx, tenant, names)
}

// DeleteKeys deletes the given rows of the tenant in one table (rows already gone are skipped).
func (p *Partitions) DeleteKeys(ctx context.Context, tenant core.TenantID, name string, rks []string) (int, error) {
	if err := p.check("delete tenant rows", []string{name}); err != nil {
		return 0, err
	}
	return p.db.table(name).DeleteBatch(ctx, tenant, rks)
}
