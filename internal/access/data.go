// Package access is who may do what for a tenant: the authorisations a tenant admin grants to
// principals. Until the admin API's identity and RBAC land (issue 12) it holds its table and its
// answers for a person's export and erasure.
package access

import (
	"context"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableAuthorisations holds the tenant's grants.
const TableAuthorisations = "authorisations"

// Tables are the tables the access module owns.
var Tables = []tables.Spec{tables.SpecOf[Authorisation](TableAuthorisations, "access", tables.RetainTenantData)}

// Data is the module's table.
type Data struct {
	Authorisations *tables.Table[Authorisation, *Authorisation]
}

// OpenData returns the module's table on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Authorisations: tables.New[Authorisation](db, TableAuthorisations)}
}

// Authorisation grants a role to a principal within the tenant (table authorisations, in the partition
// of the tenant it grants on). Revoking deletes the row; the audit trail keeps the history of grants
// and revocations.
type Authorisation struct {
	PrincipalID     string `table:"key,personal"` // row key part 1: object id of the user or app
	Role            string `table:"key"`          // row key part 2: a built-in role name, e.g. "Helpdesk"
	PrincipalKind   string // user, app
	PrincipalTenant string // the principal's own tenant: this tenant, or the operator tenant for staff
	Scope           string // the part of the tenant it covers ("" the whole tenant, "connector", "users")
	GrantedAt       time.Time
	GrantedBy       string    `table:"personal"` // object id of the granting admin or approving officer
	ExpiresAt       time.Time // zero: until revoked; operator grants always end (at most 8 h)
	Justification   string    `table:"sealed"` // why (operator grants): free text that may name people
}

// AuthorisationKey is the row key of (principalID, role).
func AuthorisationKey(principalID, role string) (string, error) {
	return (&Authorisation{PrincipalID: principalID, Role: role}).RowKey()
}

func (a *Authorisation) RowKey() (string, error) {
	if err := tables.ValidateKeyPart("principal id", a.PrincipalID); err != nil {
		return "", err
	}
	if err := tables.ValidateKeyPart("role", a.Role); err != nil {
		return "", err
	}
	return tables.JoinKey(a.PrincipalID, a.Role), nil
}
func (a *Authorisation) SetRowKey(rk string) error {
	parts, err := tables.SplitKey("authorisation key", rk, 2)
	if err != nil {
		return err
	}
	a.PrincipalID, a.Role = parts[0], parts[1]
	return nil
}

// Export lists the person's grants, and the grants the person made as an admin.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return d.Authorisations.ExportWhere(ctx, tenant, func(a *Authorisation) bool {
		return a.PrincipalID == userID || a.GrantedBy == userID
	})
}

// Erase revokes the person's grants and takes the person's id out of the grants they made (the audit
// trail keeps who granted what).
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (int, error) {
	return d.Authorisations.EraseWhere(ctx, tenant,
		func(a *Authorisation) bool { return a.PrincipalID == userID },
		func(a *Authorisation) bool { return scrub(&a.GrantedBy, userID) })
}

// scrub blanks *field if it holds id, and says whether it did.
func scrub(field *string, id string) bool {
	if *field != id {
		return false
	}
	*field = ""
	return true
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableAuthorisations} }
