package app

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The handler creates its tables at start from the catalogue; the templates create none. A table list
// in Bicep would be a second list to keep in step, and adding a table would touch the infrastructure.
func TestBicepLeavesTheTablesToTheHandler(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../infra/bicep/*.bicep")
	if err != nil {
		t.Fatal(err)
	}
	mods, _ := filepath.Glob("../../infra/bicep/modules/*.bicep")
	files = append(files, mods...)
	if len(files) < 2 {
		t.Fatalf("found %d Bicep files", len(files))
	}
	tableResource := regexp.MustCompile(`resource \w+ '(Microsoft\.Storage/storageAccounts/tableServices/)?tables(@[^']*)?'`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if loc := tableResource.FindIndex(src); loc != nil {
			t.Errorf("%s declares a table (%q): tables come from the catalogue, created by the handler", f, src[loc[0]:loc[1]])
		}
	}
}

// At start the handler makes every catalogue table exist, whatever exists already.
func TestStartCreatesEveryCatalogueTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := storetest.UniquePrefix()
	db, err := tables.OpenConnectionString(storetest.ConnectionString(t), tables.Options{TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.DropTables(context.Background(), catalogue.Names()) })
	// One table exists already (an earlier start, another instance): no error, no duplicate.
	if err := db.CreateTables(ctx, catalogue.Names()[:1]); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.EnsureTables(ctx, catalogue.Names()); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	pager := svc.NewListTablesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range page.Tables {
			if name := *tb.Name; len(name) > len(prefix) && name[:len(prefix)] == prefix {
				got = append(got, name[len(prefix):])
			}
		}
	}
	want := catalogue.Names()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tables after start = %v, want the catalogue's %v", got, want)
	}
}
