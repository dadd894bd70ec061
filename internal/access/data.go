// Package access is who may do what for a tenant: the authorisations a tenant admin grants to
// principals. Until the admin API's identity and RBAC land (issue 12) it holds its table and its
// answers for a person's export and erasure.
package access

import (
	"context"
	"errors"
	"fmt"
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
	var out []tables.Record
	for a, err := range d.Authorisations.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list authorisations: %w", err)
		}
		if a.PrincipalID == userID || a.GrantedBy == userID {
			rec, err := d.Authorisations.Record(a)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Erase revokes the person's grants and takes the person's id out of the grants they made (the audit
// trail keeps who granted what).
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (int, error) {
	var mine, granted []string
	for a, err := range d.Authorisations.All(ctx, tenant, &tables.ListOptions{Select: []string{"GrantedBy"}}) {
		if err != nil {
			return 0, fmt.Errorf("list authorisations: %w", err)
		}
		rk, err := AuthorisationKey(a.PrincipalID, a.Role)
		if err != nil {
			return 0, err
		}
		switch {
		case a.PrincipalID == userID:
			mine = append(mine, rk)
		case a.GrantedBy == userID:
			granted = append(granted, rk)
		}
	}
	n, err := d.Authorisations.DeleteBatch(ctx, tenant, mine)
	if err != nil {
		return n, fmt.Errorf("delete authorisations: %w", err)
	}
	for _, rk := range granted {
		if _, err := d.Authorisations.Update(ctx, tenant, rk, func(a *Authorisation) error {
			a.GrantedBy = ""
			return nil
		}); err != nil && !errors.Is(err, tables.ErrNotFound) {
			return n, fmt.Errorf("update authorisation: %w", err)
		}
		n++
	}
	return n, nil
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableAuthorisations} }
