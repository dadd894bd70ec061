package store

import "time"

// TableServiceUsers holds the delegated service users of each tenant (presence subscriptions are
// delegated-only: one subscription of at most 650 users per service user). Their tokens live in Key
// Vault, never here.
const TableServiceUsers = "serviceusers"

// Service user states.
const (
	ServiceUserActive    = "active"
	ServiceUserReconsent = "reconsent" // the refresh failed: an admin must connect the account again
)

// ServiceUser is a connected service user (table serviceusers, RowKey = Entra object id).
type ServiceUser struct {
	ID                string // key: Entra object id of the account
	UserPrincipalName string // sealed: shown to admins so they know which account to reconnect
	State             string // active or reconsent
	ConnectedAt       time.Time
	LastRefreshAt     time.Time // last successful token refresh
	LastError         string    // our code for the last failure, never the identity platform's message
	UpdatedAt         time.Time
}

func (s *ServiceUser) rowKey() (string, error)   { return simpleKey("service user id", s.ID) }
func (s *ServiceUser) setRowKey(rk string) error { s.ID = rk; return nil }
func (s *ServiceUser) encode(e *encoder) {
	e.sealed("UserPrincipalName", s.UserPrincipalName)
	e.str("State", s.State)
	e.time("ConnectedAt", s.ConnectedAt)
	e.time("LastRefreshAt", s.LastRefreshAt)
	e.str("LastError", s.LastError)
	e.time("UpdatedAt", s.UpdatedAt)
}
func (s *ServiceUser) decode(d *decoder) {
	s.UserPrincipalName = d.sealed("UserPrincipalName")
	s.State = d.str("State")
	s.ConnectedAt = d.time("ConnectedAt")
	s.LastRefreshAt = d.time("LastRefreshAt")
	s.LastError = d.str("LastError")
	s.UpdatedAt = d.time("UpdatedAt")
}
