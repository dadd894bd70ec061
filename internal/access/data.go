// Package access is who may do what for a tenant: the principals a token names, the permissions and
// roles (built in, or defined by the tenant's admins), the authorisations granted on a tenant,
// operators' requests for time-bound access, and the one decision function every admin call goes
// through (Authorizer.Allow).
package access

import (
	"context"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The module's tables, each partitioned by the tenant they are about.
const (
	TableAuthorisations = "authorisations" // the tenant's grants
	TableRoles          = "roles"          // the tenant's custom roles
	TableAccessRequests = "accessrequests" // operators' requests for time-bound access to the tenant
)

// Tables are the tables the access module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Authorisation](TableAuthorisations, "access", tables.RetainTenantData),
	tables.SpecOf[CustomRole](TableRoles, "access", tables.RetainTenantData),
	tables.SpecOf[AccessRequest](TableAccessRequests, "access", tables.RetainTenantData),
}

// Data is the module's tables.
type Data struct {
	Authorisations *tables.Table[Authorisation, *Authorisation]
	Roles          *tables.Table[CustomRole, *CustomRole]
	Requests       *tables.Table[AccessRequest, *AccessRequest]
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{
		Authorisations: tables.New[Authorisation](db, TableAuthorisations),
		Roles:          tables.New[CustomRole](db, TableRoles),
		Requests:       tables.New[AccessRequest](db, TableAccessRequests),
	}
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

// Export lists the person's grants, the grants the person made as an admin, the custom roles they last
// defined and the access requests they made or decided.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	grants, err := d.Authorisations.ExportWhere(ctx, tenant, func(a *Authorisation) bool {
		return a.PrincipalID == userID || a.GrantedBy == userID
	})
	if err != nil {
		return nil, err
	}
	roles, err := d.Roles.ExportWhere(ctx, tenant, func(c *CustomRole) bool { return c.UpdatedBy == userID })
	if err != nil {
		return nil, err
	}
	requests, err := d.Requests.ExportWhere(ctx, tenant, func(r *AccessRequest) bool {
		return r.OperatorID == userID || r.DecidedBy == userID
	})
	return append(append(grants, roles...), requests...), err
}

// Erase revokes the person's grants, deletes the access requests they made, and takes the person's id
// out of the grants, roles and decisions they made (the audit trail keeps who did what, by digest).
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n, err := d.Authorisations.EraseWhere(ctx, tenant,
		func(a *Authorisation) bool { return a.PrincipalID == userID },
		func(a *Authorisation) bool { return scrub(&a.GrantedBy, userID) })
	if err != nil {
		return n, err
	}
	m, err := d.Roles.EraseWhere(ctx, tenant, nil,
		func(c *CustomRole) bool { return scrub(&c.UpdatedBy, userID) })
	n.Merge(m)
	if err != nil {
		return n, err
	}
	m, err = d.Requests.EraseWhere(ctx, tenant,
		func(r *AccessRequest) bool { return r.OperatorID == userID },
		func(r *AccessRequest) bool { return scrub(&r.DecidedBy, userID) })
	n.Merge(m)
	return n, err
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
func (d *Data) Answers() []string {
	return []string{TableAuthorisations, TableRoles, TableAccessRequests}
}
