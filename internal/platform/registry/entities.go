package registry

import (
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Every field below is listed in docs/data-inventory.md (a test enforces it). Property name = field name;
// the `table` tag says which fields are in the key, which are personal and which are sealed (tables.Field).

// TenantState is a tenant's lifecycle state.
type TenantState string

const (
	// TenantPending: onboarding started, admin consent not given yet.
	TenantPending   TenantState = "pending"
	TenantActive    TenantState = "active"
	TenantSuspended TenantState = "suspended"
	TenantCancelled TenantState = "cancelled"
	// TenantDeleting: the retention job has claimed the tenant; nothing may revive it.
	TenantDeleting TenantState = "deleting"
)

// tenantRowKey is the only row of a tenant's partition in the tenants table.
const tenantRowKey = "tenant"

// Tenant is the registry row of a customer tenant (table tenants).
type Tenant struct {
	ID                core.TenantID `table:"key"` // the PartitionKey
	State             TenantState
	ConsentedAt       time.Time
	SuspendedAt       time.Time
	CancelledAt       time.Time
	ServiceUserID     string `table:"personal"` // Entra object id of the delegated service user
	PBXKind           string // connector, e.g. "ringcentral"
	PBXSettings       string // the connector's non-secret settings as JSON (the secret half is in Key Vault)
	PBXConfiguredAt   time.Time
	PBXConfiguredBy   string `table:"personal"` // actor id (Entra object id or "function-key") who last set the connector
	PresenceMap       string // the tenant's overrides of the presence → PBX state mapping (presence.ParseMapping)
	BookingWindowDays int
	PurchasedLicenses int
	HomeRegion        string // EU region where the tenant's data lives
	ConsentStateHash  []byte // SHA-256 of the admin-consent state; kept once used (ConsentedAt set) to recognise a replay
	ConsentExpiresAt  time.Time
	ReactivatedAt     time.Time
	DeletionStartedAt time.Time // when the retention job claimed the tenant
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (t *Tenant) RowKey() (string, error)       { return tenantRowKey, nil }
func (t *Tenant) SetPartition(id core.TenantID) { t.ID = id }
func (t *Tenant) SetRowKey(rk string) error {
	if rk != tenantRowKey {
		return &tables.KeyError{What: "tenant row key", Reason: "unexpected"}
	}
	return nil
}

// User is a licensed user of the tenant (table users). Personal fields are sealed.
type User struct {
	ID                   string `table:"key,personal"` // Entra object id
	DisplayName          string `table:"sealed"`
	UserPrincipalName    string `table:"sealed"`
	Mail                 string `table:"sealed"`
	Phone                string `table:"sealed"`
	Department           string `table:"sealed"`
	JobTitle             string `table:"sealed"`
	PBXUserID            string `table:"personal"` // the user's id at the PBX, for the presence mapping
	Licensed             bool
	ProcessingRestricted bool // data subject restriction: no sync while set
	RestrictedAt         time.Time
	RestrictionReason    string `table:"sealed"` // why, as the admin gave it (free text)
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

func (u *User) RowKey() (string, error)   { return tables.SimpleKey("user id", u.ID) }
func (u *User) SetRowKey(rk string) error { u.ID = rk; return nil }

// SubscriptionKind says what a Graph subscription feeds.
type SubscriptionKind string

const (
	KindPresence SubscriptionKind = "presence"
	KindBooking  SubscriptionKind = "booking"
	KindCRM      SubscriptionKind = "crm" // a mapped user's contacts (the CRM sync)
)

// Subscription is a Graph change-notification subscription (table subscriptions), what the webhook reads.
type Subscription struct {
	ID                 string `table:"key"` // Graph subscription id
	Kind               SubscriptionKind
	Resource           string `table:"personal"` // Graph resource, e.g. /communications/presences?$filter=...
	ChangeType         string
	ExpiresAt          time.Time
	ClientStateHash    []byte // SHA-256 of the random clientState; see ClientStateMatches
	ServiceUserID      string `table:"personal"` // the delegated user the subscription was created through
	LastLifecycleEvent string // e.g. "reauthorizationRequired"
	LastLifecycleAt    time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

func (s *Subscription) RowKey() (string, error)   { return tables.SimpleKey("subscription id", s.ID) }
func (s *Subscription) SetRowKey(rk string) error { s.ID = rk; return nil }
