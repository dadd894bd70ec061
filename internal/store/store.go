package store

import (
	"context"

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
	TableTenants       = "tenants"
	TableUsers         = "users"
	TableSubscriptions = "subscriptions"
)

// Store gives typed access to every table. Each field scopes by tenant.
type Store struct {
	db *tables.DB

	Tenants       *TenantRegistry
	Users         *tables.Table[User, *User]
	Subscriptions *tables.Table[Subscription, *Subscription]
	Audit         *audit.Log
	Jobs          *jobs.Leases
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
	s.Subscriptions = tables.New[Subscription](db, TableSubscriptions)
	s.Audit = audit.OpenLog(db)
	s.Jobs = jobs.OpenLeases(db)
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
