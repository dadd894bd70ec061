package registry

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Logical table names. Per-tenant tables have PartitionKey = tenant id.
const (
	TableTenants       = "tenants"
	TableUsers         = "users"
	TableSubscriptions = "subscriptions"
)

// Registry gives typed access to the registry's tables. Each scopes by tenant.
type Registry struct {
	db *tables.DB

	Tenants       *TenantRegistry
	Users         *tables.Table[User, *User]
	Subscriptions *tables.Table[Subscription, *Subscription]
}

// OperatorPartition is a reserved, well-formed tenant id that no customer tenant has (the nil GUID):
// operator-wide rows such as the lease of a job that spans every tenant live under it. Onboarding
// refuses it.
const OperatorPartition = core.ReservedTenant

// NewFromConnectionString connects with a storage connection string (shared key; Azurite locally).
func NewFromConnectionString(conn string, o tables.Options) (*Registry, error) {
	db, err := tables.OpenConnectionString(conn, o)
	if err != nil {
		return nil, err
	}
	return newRegistry(db), nil
}

// NewWithCredential connects to an account URL (https://<account>.table.core.windows.net) with an Entra
// token credential — a managed identity in Azure.
func NewWithCredential(accountURL string, cred azcore.TokenCredential, o tables.Options) (*Registry, error) {
	db, err := tables.OpenCredential(accountURL, cred, o)
	if err != nil {
		return nil, err
	}
	return newRegistry(db), nil
}

// Open gives typed access to the tables of db.
func Open(db *tables.DB) *Registry { return newRegistry(db) }

// DB is the table engine the registry sits on (modules open their own tables on it).
func (s *Registry) DB() *tables.DB { return s.db }

func newRegistry(db *tables.DB) *Registry {
	s := &Registry{db: db}
	s.Tenants = &TenantRegistry{t: tables.New[Tenant](db, TableTenants)}
	s.Users = tables.New[User](db, TableUsers)
	s.Subscriptions = tables.New[Subscription](db, TableSubscriptions)
	return s
}
