package store

import (
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The retention classes and the table spec are the table engine's (internal/platform/tables).
type (
	RetentionClass = tables.RetentionClass
	TableSpec      = tables.Spec
)

const (
	RetainTenantData  = tables.RetainTenantData
	RetainLicenseData = tables.RetainLicenseData
	RetainBillingData = tables.RetainBillingData
	RetainRegistry    = tables.RetainRegistry
	RetainReceipts    = tables.RetainReceipts
)

// Tables are the tables still declared here, until they move to their modules.
var Tables = []tables.Spec{
	tables.SpecOf[User](TableUsers, "tenants", RetainTenantData),
	tables.SpecOf[Subscription](TableSubscriptions, "presence", RetainTenantData),
	tables.SpecOf[Tenant](TableTenants, "tenants", RetainRegistry),
}

// catalogue is the store's tables and those of the platform parts it serves (jobs, audit), in
// deletion order; internal/app assembles the catalogue of every module.
var catalogue = tables.MustCatalogue(Tables, jobs.Tables, audit.Tables)
