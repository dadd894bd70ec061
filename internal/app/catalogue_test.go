package app

import (
	"slices"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/retention"
	"github.com/connecthub/connecthub/internal/tenants"
)

func TestCatalogue(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, spec := range catalogue {
		if seen[spec.Name] {
			t.Errorf("table %s is in the catalogue twice", spec.Name)
		}
		seen[spec.Name] = true
		if spec.Module == "" || spec.Retention == "" || spec.NewEntity() == nil {
			t.Errorf("table %s lacks its module, retention class or entity", spec.Name)
		}
	}
	tenantTables := catalogue.TenantTables()
	if last := tenantTables[len(tenantTables)-1]; last != registry.TableTenants {
		t.Errorf("a tenant's deletion empties %s last, want the registry (%s) last", last, registry.TableTenants)
	}
	if slices.Contains(tenantTables, retention.TableDeletionReceipts) {
		t.Error("the deletion receipts must outlive the tenant's deletion")
	}
	for _, tt := range []struct {
		class tables.RetentionClass
		want  []string
	}{
		{tables.RetainLicenseData, []string{tenants.TableLicenses}},
		{tables.RetainBillingData, []string{tenants.TableBilling}},
		{tables.RetainRegistry, []string{registry.TableTenants}},
		{tables.RetainReceipts, []string{retention.TableDeletionReceipts}},
	} {
		if got := catalogue.Of(tt.class); !slices.Equal(got, tt.want) {
			t.Errorf("catalogue.Of(%s) = %v, want %v", tt.class, got, tt.want)
		}
	}
	if got, all := len(catalogue.Of(tables.RetainTenantData))+4, len(catalogue); got != all {
		t.Errorf("retention classes cover %d of %d tables", got, all)
	}
}
