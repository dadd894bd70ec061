package tables

import (
	"slices"
	"strings"
	"testing"
)

type otherRecord struct {
	ID string `table:"key"`
}

func (r *otherRecord) RowKey() (string, error)   { return SimpleKey("id", r.ID) }
func (r *otherRecord) SetRowKey(rk string) error { r.ID = rk; return nil }

func TestCatalogueOrdersByRetentionClass(t *testing.T) {
	t.Parallel()
	c, err := NewCatalogue(
		[]Spec{SpecOf[otherRecord]("registry", "a", RetainRegistry), SpecOf[testRecord]("records", "a", RetainTenantData)},
		[]Spec{SpecOf[otherRecord]("receipts", "b", RetainReceipts), SpecOf[otherRecord]("bills", "b", RetainBillingData),
			SpecOf[otherRecord]("more", "b", RetainTenantData)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Names(), []string{"records", "more", "bills", "registry", "receipts"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v (tenant data in module order, the registry last, receipts apart)", got, want)
	}
	if got := c.TenantTables(); slices.Contains(got, "receipts") || got[len(got)-1] != "registry" {
		t.Errorf("tenant tables = %v", got)
	}
	if got := c.Of(RetainTenantData); !slices.Equal(got, []string{"records", "more"}) {
		t.Errorf("tenant data = %v", got)
	}
}

func TestCatalogueRefusesAtStart(t *testing.T) {
	t.Parallel()
	ok := SpecOf[otherRecord]("things", "a", RetainTenantData)
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"duplicate", ok, "declared twice"},
		{"no module", SpecOf[otherRecord]("orphans", "", RetainTenantData), "no owning module"},
		{"unknown class", SpecOf[otherRecord]("forever", "a", "forever"), "unknown retention class"},
		{"bad name", SpecOf[otherRecord]("Bad-Name", "a", RetainTenantData), "table name"},
		{"hand-made spec", Spec{Name: "handmade", Module: "a", Retention: RetainTenantData}, "no owning module"},
	}
	for _, tc := range tests {
		if _, err := NewCatalogue([]Spec{ok}, []Spec{tc.spec}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
