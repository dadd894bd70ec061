package serviceuser

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
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

// Data is the service users' table and the secret store that holds their tokens, for a person's
// export and erasure.
type Data struct {
	Table   *tables.Table[ServiceUser, *ServiceUser]
	Secrets secrets.Store
}

// OpenData returns the table on db with the tokens' secret store.
func OpenData(db *tables.DB, sec secrets.Store) *Data {
	return &Data{Table: OpenTable(db), Secrets: sec}
}

// Export lists the person's service-user row (never the tokens: they are credentials, not data about
// the person, and they stay in Key Vault).
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	su, err := d.Table.Get(ctx, tenant, userID)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read service user: %w", err)
	}
	rec, err := d.Table.Record(su)
	if err != nil {
		return nil, err
	}
	return []tables.Record{rec}, nil
}

// Erase disconnects the person as a service user: the token cache in Key Vault first (so nothing can
// act as the person any more), then the row. The presence manager replaces the subscriptions made
// through the account at its next run.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	name, err := secrets.ServiceUserTokenName(tenant, userID)
	if err != nil {
		return nil, err
	}
	if err := d.Secrets.Delete(ctx, name); err != nil {
		return nil, fmt.Errorf("delete service user token: %w", err)
	}
	switch err := d.Table.Delete(ctx, tenant, userID); {
	case err == nil:
		return tables.Erasure{TableServiceUsers: {Deleted: 1}}, nil
	case errors.Is(err, tables.ErrNotFound):
		return tables.Erasure{TableServiceUsers: {}}, nil
	default:
		return nil, fmt.Errorf("delete service user: %w", err)
	}
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableServiceUsers} }
