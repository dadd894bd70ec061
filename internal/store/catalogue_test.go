package store

import (
	"slices"
	"testing"
)

func TestCatalogue(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, spec := range Catalogue() {
		if seen[spec.Name] {
			t.Errorf("table %s is in the catalogue twice", spec.Name)
		}
		seen[spec.Name] = true
		if spec.Module == "" || spec.Retention == "" || spec.NewEntity() == nil {
			t.Errorf("table %s lacks its module, retention class or entity", spec.Name)
		}
	}
	tenantTables := TenantTables()
	if last := tenantTables[len(tenantTables)-1]; last != TableTenants {
		t.Errorf("a tenant's deletion empties %s last, want the registry (%s) last", last, TableTenants)
	}
	if slices.Contains(tenantTables, TableDeletionReceipts) {
		t.Error("the deletion receipts must outlive the tenant's deletion")
	}
	for _, tt := range []struct {
		class RetentionClass
		want  []string
	}{
		{RetainLicenseData, []string{TableLicenses}},
		{RetainBillingData, []string{TableBilling}},
		{RetainRegistry, []string{TableTenants}},
		{RetainReceipts, []string{TableDeletionReceipts}},
	} {
		if got := TablesOf(tt.class); !slices.Equal(got, tt.want) {
			t.Errorf("TablesOf(%s) = %v, want %v", tt.class, got, tt.want)
		}
	}
	if got, all := len(TablesOf(RetainTenantData))+4, len(Catalogue()); got != all {
		t.Errorf("retention classes cover %d of %d tables", got, all)
	}
}
