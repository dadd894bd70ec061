package serviceuser

import (
	"time"

	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Tables are the tables the service-user part of presence sync owns.
var Tables = []tables.Spec{tables.SpecOf[ServiceUser](TableServiceUsers, "presence", tables.RetainTenantData)}

// OpenTable returns the service users table of db.
func OpenTable(db *tables.DB) *tables.Table[ServiceUser, *ServiceUser] {
	return tables.New[ServiceUser](db, TableServiceUsers)
}

// TableServiceUsers holds the delegated service users of each tenant (presence subscriptions are
// delegated-only: one subscription of at most 650 users per service user). Their tokens live in Key
// Vault, never here.
const TableServiceUsers = "serviceusers"

// Service user states.
const (
	Active    = "active"
	Reconsent = "reconsent" // the refresh failed: an admin must connect the account again
)

// ServiceUser is a connected service user (table serviceusers, RowKey = Entra object id).
type ServiceUser struct {
	ID                string `table:"key,personal"` // Entra object id of the account
	UserPrincipalName string `table:"sealed"`       // shown to admins so they know which account to reconnect
	State             string // active or reconsent
	ConnectedAt       time.Time
	LastRefreshAt     time.Time // last successful token refresh
	LastError         string    // our code for the last failure, never the identity platform's message
	UpdatedAt         time.Time
}

func (s *ServiceUser) RowKey() (string, error)   { return tables.SimpleKey("service user id", s.ID) }
func (s *ServiceUser) SetRowKey(rk string) error { s.ID = rk; return nil }
