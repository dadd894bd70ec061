package app

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// In Azure the tables are created by infra/bicep/main.bicep, not by the code: a table the code uses but
// the template does not create would fail at the first write in production only.
func TestBicepCreatesEveryTable(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../infra/bicep/main.bicep")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)param tableNames array = \[(.*?)\]`).FindSubmatch(src)
	if block == nil {
		t.Fatal("main.bicep has no `param tableNames array = [...]`")
	}
	var inBicep []string
	for _, m := range regexp.MustCompile(`'([a-z0-9]+)'`).FindAllSubmatch(block[1], -1) {
		inBicep = append(inBicep, string(m[1]))
	}
	want := catalogue.Names()
	slices.Sort(inBicep)
	slices.Sort(want)
	if !slices.Equal(inBicep, want) {
		t.Errorf("main.bicep tableNames = %v, the store uses %v", inBicep, want)
	}
}
