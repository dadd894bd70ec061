// Package crm is the mailbox ↔ CRM sync (issue 17): a tenant's Salesforce org, connected with the OAuth
// 2.0 JWT bearer flow, and — in later slices — contacts and meetings synchronised both ways, keeping
// only ids and dates.
//
// This first slice is the connection: per tenant, the connected app's consumer key, the integration
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

// Tables are the tables the crm module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Connection](TableConnections, "crm", tables.RetainTenantData),
}

// Data is the module's tables.
type Data struct {
	Connections *tables.Table[Connection, *Connection]
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Connections: tables.New[Connection](db, TableConnections)}
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

// Export lists the connections the person last configured.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return d.Connections.ExportWhere(ctx, tenant, func(c *Connection) bool { return c.ConfiguredBy == userID })
}

// Erase takes the person's id out of the connections they configured; the connection stays (it is the
// tenant's, and the audit trail keeps who set it by digest).
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	return d.Connections.EraseWhere(ctx, tenant, nil, func(c *Connection) bool {
		if c.ConfiguredBy != userID {
			return false
		}
		c.ConfiguredBy = ""
		return true
	})
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableConnections} }
