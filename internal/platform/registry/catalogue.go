package registry

import "github.com/connecthub/connecthub/internal/platform/tables"

// Tables are the registry's tables. The tenant's row goes last when a tenant is deleted (its own
// retention class), so that a deletion that dies midway is driven to the end by the next run.
var Tables = []tables.Spec{
	tables.SpecOf[User](TableUsers, "platform/registry", tables.RetainTenantData),
	tables.SpecOf[Subscription](TableSubscriptions, "platform/registry", tables.RetainTenantData),
	tables.SpecOf[Tenant](TableTenants, "platform/registry", tables.RetainRegistry),
}
