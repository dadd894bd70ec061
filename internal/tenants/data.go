package tenants

import (
	"context"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The tables licensing owns.
const (
	TableLicenses = "licenses"
	TableBilling  = "billing"
)

// Tables are the tables the tenants module owns.
var Tables = []tables.Spec{
	tables.SpecOf[Assignment](TableLicenses, "tenants", tables.RetainLicenseData),
	tables.SpecOf[BillingSnapshot](TableBilling, "tenants", tables.RetainBillingData),
}

// Data is the tenants module's tables.
type Data struct {
	Licenses *tables.Table[Assignment, *Assignment]
	Billing  *tables.Table[BillingSnapshot, *BillingSnapshot]
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Licenses: tables.New[Assignment](db, TableLicenses), Billing: tables.New[BillingSnapshot](db, TableBilling)}
}

// EndedContractRows lists the row keys of the licenses or billing rows that belong to a contract which
// ended at cutoff (licenses assigned, days billed, up to it): the retention job deletes them 30 and 90
// days after the end, and keeps a returning customer's younger rows.
func (d *Data) EndedContractRows(ctx context.Context, tenant core.TenantID, table string, cutoff time.Time) ([]string, error) {
	var keys []string
	switch table {
	case TableLicenses:
		for l, err := range d.Licenses.All(ctx, tenant, &tables.ListOptions{Select: []string{"AssignedAt"}}) {
			if err != nil {
				return nil, fmt.Errorf("list licenses: %w", err)
			}
			if !l.AssignedAt.After(cutoff) {
				k, err := LicenseKey(l.Product, l.UserID)
				if err != nil {
					return nil, err
				}
				keys = append(keys, k)
			}
		}
	case TableBilling:
		for b, err := range d.Billing.All(ctx, tenant, &tables.ListOptions{Select: []string{"TakenAt"}}) {
			if err != nil {
				return nil, fmt.Errorf("list billing: %w", err)
			}
			if !b.Day.After(cutoff) {
				k, err := BillingKey(b.Day, b.Product)
				if err != nil {
					return nil, err
				}
				keys = append(keys, k)
			}
		}
	default:
		return nil, fmt.Errorf("ended contract rows: %s is not a tenants table", table)
	}
	return keys, nil
}

// Assignment is one product license assigned to one user (table licenses).
type Assignment struct {
	Product    string `table:"key"`          // row key part 1, e.g. "presence"
	UserID     string `table:"key,personal"` // row key part 2
	AssignedAt time.Time
	AssignedBy string `table:"personal"` // object id of the admin who assigned it
}

// LicenseKey is the row key of (product, userID).
func LicenseKey(product, userID string) (string, error) {
	return (&Assignment{Product: product, UserID: userID}).RowKey()
}

func (l *Assignment) RowKey() (string, error) {
	if err := tables.ValidateKeyPart("product", l.Product); err != nil {
		return "", err
	}
	if err := tables.ValidateKeyPart("user id", l.UserID); err != nil {
		return "", err
	}
	return tables.JoinKey(l.Product, l.UserID), nil
}
func (l *Assignment) SetRowKey(rk string) error {
	parts, err := tables.SplitKey("license key", rk, 2)
	if err != nil {
		return err
	}
	l.Product, l.UserID = parts[0], parts[1]
	return nil
}

const billingDayLayout = "2006-01-02"

// BillingSnapshot is the daily usage count of one product (table billing), with the figures of the
// billing period it belongs to so far: the latest row of a period is that period's bill.
type BillingSnapshot struct {
	Day             time.Time `table:"key"` // row key part 1 (UTC date)
	Product         string    `table:"key"` // row key part 2
	Purchased       int
	Assigned        int
	Active          int // users with at least one synchronised event that day
	PeriodStart     time.Time
	PeriodPurchased int // peaks from PeriodStart up to and including Day
	PeriodAssigned  int
	PeriodActive    int
	TakenAt         time.Time
}

// BillingKey is the row key of (day, product).
func BillingKey(day time.Time, product string) (string, error) {
	return (&BillingSnapshot{Day: day, Product: product}).RowKey()
}

func (b *BillingSnapshot) RowKey() (string, error) {
	if b.Day.IsZero() {
		return "", &tables.KeyError{What: "billing day", Reason: "empty"}
	}
	if err := tables.ValidateKeyPart("product", b.Product); err != nil {
		return "", err
	}
	return tables.JoinKey(b.Day.UTC().Format(billingDayLayout), b.Product), nil
}
func (b *BillingSnapshot) SetRowKey(rk string) error {
	parts, err := tables.SplitKey("billing key", rk, 2)
	if err != nil {
		return err
	}
	day, err := time.Parse(billingDayLayout, parts[0])
	if err != nil {
		return &tables.KeyError{What: "billing day", Reason: "not a date"}
	}
	b.Day, b.Product = day, parts[1]
	return nil
}

// Export lists the person's licenses, and the licenses the person assigned as an admin.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return d.Licenses.ExportWhere(ctx, tenant, func(l *Assignment) bool { return l.UserID == userID || l.AssignedBy == userID })
}

// Erase deletes the person's licenses and takes the person's id out of the licenses they assigned
// (the audit trail keeps who assigned what). Billing rows hold counts only.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	return d.Licenses.EraseWhere(ctx, tenant,
		func(l *Assignment) bool { return l.UserID == userID },
		func(l *Assignment) bool {
			if l.AssignedBy != userID {
				return false
			}
			l.AssignedBy = ""
			return true
		})
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableLicenses, TableBilling} }
