package registry

import "github.com/connecthub/connecthub/internal/platform/tables"

// Hooks for the external tests: they reach below the typed API only to prove what it cannot do by
// itself (what is at rest, what a raw filter returns).

var OdataFilter = tables.Filter

// RowKeyOf returns the row key an entity is stored under.
func RowKeyOf[E any, P interface {
	*E
	tables.Entity
}](e E) (string, error) {
	return P(&e).RowKey()
}

// TenantTable exposes the registry's table for the generic isolation tests.
func (r *TenantRegistry) TenantTable() *tables.Table[Tenant, *Tenant] { return r.t }
