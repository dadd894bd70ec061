// Package crm is the mailbox ↔ CRM sync (issue 17): a tenant's Salesforce org, connected with the OAuth
// 2.0 JWT bearer flow, and contacts (sync.go, fromcrm.go) and calendar events (events.go,
// eventsfromcrm.go) synchronised both ways, keeping only ids, dates and digests (ledger.go).
//
// The connection: per tenant, the connected app's consumer key, the integration
// user, the login or sandbox host and the private key whose certificate is uploaded to the app. The
// whole credential is sealed with the tenant key into the secret store (name secrets.CRMCredentialName,
// so retention and crypto-shredding take it with the tenant); the crmconnections row keeps what an admin
// is shown (consumer key, host, the username sealed, who set it and when, the last test's outcome) so
// reading the connection needs no secret. Every change is audited like the connector functions.
package crm

import (
	"context"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableConnections holds each tenant's CRM connection (one row per provider).
const TableConnections = "crmconnections"

// TableUsers holds each licensed user's mapping to a Salesforce user and the directions of sync.
const TableUsers = "crmusers"

// Tables are the tables the crm module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Connection](TableConnections, "crm", tables.RetainTenantData),
	tables.SpecOf[UserMapping](TableUsers, "crm", tables.RetainTenantData),
	tables.SpecOf[LedgerEntry](TableLedger, "crm", tables.RetainTenantData),
	tables.SpecOf[SyncError](TableSyncErrors, "crm", tables.RetainTenantData),
	tables.SpecOf[SyncState](TableSyncState, "crm", tables.RetainTenantData),
}

// Data is the module's tables.
type Data struct {
	Connections *tables.Table[Connection, *Connection]
	Users       *tables.Table[UserMapping, *UserMapping]
	Ledger      *tables.Table[LedgerEntry, *LedgerEntry]
	SyncErrors  *tables.Table[SyncError, *SyncError]
	SyncState   *tables.Table[SyncState, *SyncState]
	// SyncErrorRetention: Sweep deletes sync errors first recorded longer ago.
	SyncErrorRetention time.Duration
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Connections: tables.New[Connection](db, TableConnections), Users: tables.New[UserMapping](db, TableUsers),
		Ledger: tables.New[LedgerEntry](db, TableLedger), SyncErrors: tables.New[SyncError](db, TableSyncErrors),
		SyncState: tables.New[SyncState](db, TableSyncState)}
}

// ProviderSalesforce is the only CRM so far; the row key leaves room for others.
const ProviderSalesforce = "salesforce"

// Connection is what an admin sees of a tenant's CRM connection (table crmconnections, row key the
// provider). The private key is not here: it is only in the sealed credential.
type Connection struct {
	Provider     string `table:"key"`
	ConsumerKey  string // the connected app's consumer key: an app id, not a secret (the key is)
	Host         string // login.salesforce.com or test.salesforce.com
	Username     string `table:"sealed"` // the integration user's Salesforce username (e-mail form): may name a person
	ConfiguredAt time.Time
	ConfiguredBy string `table:"personal"` // actor id (Entra object id or "function-key") who last set it
	TestedAt     time.Time
	TestCode     string // "" when the last test passed; else the failure's stable code
}

func (c *Connection) RowKey() (string, error)   { return tables.SimpleKey("provider", c.Provider) }
func (c *Connection) SetRowKey(rk string) error { c.Provider = rk; return nil }

// Export lists the connections the person last configured, and the person's own mapping with the
// mappings they set.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	out, err := d.Connections.ExportWhere(ctx, tenant, func(c *Connection) bool { return c.ConfiguredBy == userID })
	if err != nil {
		return nil, err
	}
	users, err := d.Users.ExportWhere(ctx, tenant, func(m *UserMapping) bool { return m.UserID == userID || m.SetBy == userID })
	if err != nil {
		return nil, err
	}
	sync, err := d.exportUser(ctx, tenant, userID)
	return append(append(out, users...), sync...), err
}

// Erase takes the person's id out of the connections and mappings they configured (those stay: they
// are the tenant's, and the audit trail keeps who set them by digest) and deletes the person's own
// mapping, which stops their sync.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n, err := d.Connections.EraseWhere(ctx, tenant, nil, func(c *Connection) bool {
		if c.ConfiguredBy != userID {
			return false
		}
		c.ConfiguredBy = ""
		return true
	})
	if err != nil {
		return n, err
	}
	m, err := d.Users.EraseWhere(ctx, tenant, func(m *UserMapping) bool { return m.UserID == userID }, func(m *UserMapping) bool {
		if m.SetBy != userID {
			return false
		}
		m.SetBy = ""
		return true
	})
	for k, v := range m {
		n[k] = v
	}
	if err != nil {
		return n, err
	}
	return n, d.eraseUser(ctx, tenant, userID, n)
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string {
	return []string{TableConnections, TableUsers, TableLedger, TableSyncErrors, TableSyncState}
}
