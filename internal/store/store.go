package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Sealer and Options are the table engine's (internal/platform/tables).
type (
	Sealer  = tables.Sealer
	Options = tables.Options
)

// Logical table names. Per-tenant tables have PartitionKey = tenant id.
const (
	TableTenants        = "tenants"
	TableUsers          = "users"
	TablePresence       = "presence"
	TableSubscriptions  = "subscriptions"
	TableLedger         = "ledger"
	TableSyncErrors     = "syncerrors"
	TableBookings       = "bookings"
	TableLicenses       = "licenses"
	TableBilling        = "billing"
	TableAuthorisations = "authorisations"
	TableIncidents      = "incidents"
)

// Store gives typed access to every table. Each field scopes by tenant.
type Store struct {
	db *tables.DB

	Tenants        *TenantRegistry
	Users          *tables.Table[User, *User]
	Presence       *tables.Table[Presence, *Presence]
	Subscriptions  *tables.Table[Subscription, *Subscription]
	Ledger         *LedgerTable
	SyncErrors     *SyncErrorTable
	Bookings       *BookingTable
	Licenses       *tables.Table[License, *License]
	Billing        *tables.Table[BillingSnapshot, *BillingSnapshot]
	Audit          *audit.Log
	Authorisations *tables.Table[Authorisation, *Authorisation]
	Incidents      *tables.Table[Incident, *Incident]
	Jobs           *jobs.Leases
	ServiceUsers   *tables.Table[ServiceUser, *ServiceUser]
}

// OperatorPartition is a reserved, well-formed tenant id that no customer tenant has (the nil GUID):
// operator-wide rows such as the lease of a job that spans every tenant live under it. Onboarding
// refuses it.
const OperatorPartition = core.ReservedTenant

// NewFromConnectionString connects with a storage connection string (shared key; Azurite locally).
func NewFromConnectionString(conn string, o Options) (*Store, error) {
	db, err := tables.OpenConnectionString(conn, o)
	if err != nil {
		return nil, err
	}
	return newStore(db), nil
}

// NewWithCredential connects to an account URL (https://<account>.table.core.windows.net) with an Entra
// token credential — a managed identity in Azure.
func NewWithCredential(accountURL string, cred azcore.TokenCredential, o Options) (*Store, error) {
	db, err := tables.OpenCredential(accountURL, cred, o)
	if err != nil {
		return nil, err
	}
	return newStore(db), nil
}

// Open gives typed access to the tables of db.
func Open(db *tables.DB) *Store { return newStore(db) }

// DB is the table engine the store sits on (modules that own their tables take it).
func (s *Store) DB() *tables.DB { return s.db }

func newStore(db *tables.DB) *Store {
	s := &Store{db: db}
	s.Tenants = &TenantRegistry{t: tables.New[Tenant](db, TableTenants)}
	s.Users = tables.New[User](db, TableUsers)
	s.Presence = tables.New[Presence](db, TablePresence)
	s.Subscriptions = tables.New[Subscription](db, TableSubscriptions)
	s.Ledger = &LedgerTable{tables.New[LedgerEntry](db, TableLedger)}
	s.SyncErrors = &SyncErrorTable{tables.New[SyncError](db, TableSyncErrors)}
	s.Bookings = &BookingTable{tables.New[Booking](db, TableBookings)}
	s.Licenses = tables.New[License](db, TableLicenses)
	s.Billing = tables.New[BillingSnapshot](db, TableBilling)
	s.Audit = audit.OpenLog(db)
	s.Authorisations = tables.New[Authorisation](db, TableAuthorisations)
	s.Incidents = tables.New[Incident](db, TableIncidents)
	s.Jobs = jobs.OpenLeases(db)
	s.ServiceUsers = tables.New[ServiceUser](db, TableServiceUsers)
	return s
}

// CreateTables creates every table that does not exist yet (make run, tests; Bicep does it in Azure).
func (s *Store) CreateTables(ctx context.Context) error {
	return s.db.CreateTables(ctx, catalogue.Names())
}

// DropTables deletes every table of this store's prefix (test cleanup). It refuses without a prefix so
// that it can never drop production tables.
func (s *Store) DropTables(ctx context.Context) error {
	return s.db.DropTables(ctx, catalogue.Names())
}

// perTenant refuses a name that is not one of the catalogue's per-tenant tables.
func perTenant(what string, names []string) error {
	tenantTables := catalogue.TenantTables()
	for _, n := range names {
		if !slices.Contains(tenantTables, n) {
			return fmt.Errorf("%s: %q is not a per-tenant table", what, n)
		}
	}
	return nil
}

// DeleteTenantRows deletes the tenant's partition in each named table (all of TenantTables when none
// are named) and returns the number of rows deleted per table. It carries on past a failing table and
// returns every failure joined, so a retry only has the remainder to do.
func (s *Store) DeleteTenantRows(ctx context.Context, tenant core.TenantID, names ...string) (map[string]int, error) {
	if len(names) == 0 {
		names = TenantTables()
	}
	if err := perTenant("delete tenant rows", names); err != nil {
		return nil, err
	}
	return s.db.DeleteTenantRows(ctx, tenant, names)
}

// DeleteTenantRowsUpTo deletes at most max (1..1000) of the tenant's rows in one per-tenant table and
// reports how many, and whether rows may remain. The retention job deletes in these steps so that it can
// stop within its time budget and checkpoint.
func (s *Store) DeleteTenantRowsUpTo(ctx context.Context, tenant core.TenantID, table string, max int) (int, bool, error) {
	if err := perTenant("delete tenant rows", []string{table}); err != nil {
		return 0, false, err
	}
	return s.db.DeleteTenantRowsUpTo(ctx, tenant, table, max)
}

// CountTenantRows counts the tenant's rows in each named per-tenant table (all of TenantTables when none
// are named), reading only row keys: the census a deletion receipt reports.
func (s *Store) CountTenantRows(ctx context.Context, tenant core.TenantID, names ...string) (map[string]int, error) {
	if len(names) == 0 {
		names = TenantTables()
	}
	if err := perTenant("count tenant rows", names); err != nil {
		return nil, err
	}
	return s.db.CountTenantRows(ctx, tenant, names)
}
