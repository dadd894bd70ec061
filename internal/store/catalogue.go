package store

// The table catalogue is the one list of tables. Retention (what a deletion empties, in which order, on
// which clock), the data inventory test, the Bicep table test and table creation all read it, so a table
// is added in one place (plus its row in docs/data-inventory.md, which the inventory test demands).

// RetentionClass says which of the promised clocks deletes a table's rows (docs/data-inventory.md).
type RetentionClass string

// The retention classes.
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

// TableSpec is one table of the catalogue.
type TableSpec struct {
	Name string
	// Module is the capability that owns the table's rows (writes them, answers for them in a person's
	// export and erasure).
	Module    string
	Retention RetentionClass
	newEntity func() entity
}

// catalogue lists every table in the order a tenant's deletion empties them: the registry row last, so
// a crash midway leaves it to drive the retry; the receipts are never part of a tenant's deletion.
var catalogue = []TableSpec{
	{TableUsers, "tenants", RetainTenantData, func() entity { return &User{} }},
	{TablePresence, "presence", RetainTenantData, func() entity { return &Presence{} }},
	{TableSubscriptions, "presence", RetainTenantData, func() entity { return &Subscription{} }},
	{TableLedger, "presence", RetainTenantData, func() entity { return &LedgerEntry{} }},
	{TableSyncErrors, "presence", RetainTenantData, func() entity { return &SyncError{} }},
	{TableBookings, "bookings", RetainTenantData, func() entity { return &Booking{} }},
	{TableLicenses, "tenants", RetainLicenseData, func() entity { return &License{} }},
	{TableBilling, "tenants", RetainBillingData, func() entity { return &BillingSnapshot{} }},
	{TableAudit, "tenants", RetainTenantData, func() entity { return &AuditEntry{} }},
	{TableAuthorisations, "access", RetainTenantData, func() entity { return &Authorisation{} }},
	{TableIncidents, "privacy", RetainTenantData, func() entity { return &Incident{} }},
	{TableJobs, "platform/jobs", RetainTenantData, func() entity { return &Job{} }},
	{TableServiceUsers, "presence", RetainTenantData, func() entity { return &ServiceUser{} }},
	{TableTenants, "tenants", RetainRegistry, func() entity { return &Tenant{} }},
	{TableDeletionReceipts, "retention", RetainReceipts, func() entity { return &DeletionReceipt{} }},
}

// Catalogue returns every table, in deletion order.
func Catalogue() []TableSpec { return append([]TableSpec(nil), catalogue...) }

// TablesOf lists the tables of one retention class, in deletion order.
func TablesOf(class RetentionClass) []string {
	var out []string
	for _, t := range catalogue {
		if t.Retention == class {
			out = append(out, t.Name)
		}
	}
	return out
}

// TenantTables lists the per-tenant tables (all but the deletion receipts), in the order
// DeleteTenantRows empties them: the tenant row last, so a crash midway leaves it to drive a retry.
func TenantTables() []string {
	var out []string
	for _, t := range catalogue {
		if t.Retention != RetainReceipts {
			out = append(out, t.Name)
		}
	}
	return out
}

func allTables() []string {
	out := make([]string, len(catalogue))
	for i, t := range catalogue {
		out[i] = t.Name
	}
	return out
}
