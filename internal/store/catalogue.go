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

// catalogue lists every table; tables.NewCatalogue orders them for a tenant's deletion.
var catalogue = tables.MustCatalogue(jobs.Tables, audit.Tables, []tables.Spec{
	tables.SpecOf[User](TableUsers, "tenants", RetainTenantData),
	tables.SpecOf[Presence](TablePresence, "presence", RetainTenantData),
	tables.SpecOf[Subscription](TableSubscriptions, "presence", RetainTenantData),
	tables.SpecOf[LedgerEntry](TableLedger, "presence", RetainTenantData),
	tables.SpecOf[SyncError](TableSyncErrors, "presence", RetainTenantData),
	tables.SpecOf[Booking](TableBookings, "bookings", RetainTenantData),
	tables.SpecOf[License](TableLicenses, "tenants", RetainLicenseData),
	tables.SpecOf[BillingSnapshot](TableBilling, "tenants", RetainBillingData),
	tables.SpecOf[Authorisation](TableAuthorisations, "access", RetainTenantData),
	tables.SpecOf[Incident](TableIncidents, "privacy", RetainTenantData),
	tables.SpecOf[ServiceUser](TableServiceUsers, "presence", RetainTenantData),
	tables.SpecOf[Tenant](TableTenants, "tenants", RetainRegistry),
	tables.SpecOf[DeletionReceipt](TableDeletionReceipts, "retention", RetainReceipts),
})

// Catalogue returns every table, in deletion order.
func Catalogue() []TableSpec { return append([]TableSpec(nil), catalogue...) }

// TablesOf lists the tables of one retention class, in deletion order.
func TablesOf(class RetentionClass) []string { return catalogue.Of(class) }

// TenantTables lists the per-tenant tables (all but the deletion receipts), in the order
// DeleteTenantRows empties them: the tenant row last, so a crash midway leaves it to drive a retry.
func TenantTables() []string { return catalogue.TenantTables() }
