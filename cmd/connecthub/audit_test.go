package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The operator's check of a tenant's audit trail, against the Azurite the local settings name.
func TestAuditVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := storetest.ConnectionString(t)
	settings := filepath.Join(t.TempDir(), "local.settings.json")
	b, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Values": map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom", "CONNECTHUB_TABLES_CONNECTION_STRING": conn}})
	if err := os.WriteFile(settings, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The command reads the production table names, as the handler writes them.
	db, err := tables.OpenConnectionString(conn, tables.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureTables(ctx, []string{audit.TableAudit}); err != nil {
		t.Fatal(err)
	}
	tenant := storetest.NewTenantID(t)
	log := audit.OpenLog(db)
	var entries []audit.Entry
	for range 3 {
		e, err := log.Append(ctx, tenant, audit.Entry{ActorID: "system", Action: "tenant.read", Outcome: "success"})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	run := func() (string, error) {
		var out, errOut bytes.Buffer
		err := realMain(ctx, []string{"audit", "verify", "--tenant", string(tenant), "--settings", settings}, nil, &out, &errOut)
		return out.String(), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "3 entries") || !strings.Contains(out, "head: #3 ") || !strings.HasSuffix(out, "intact\n") {
		t.Fatalf("intact chain: %v\n%s", err, out)
	}
	raw := tables.New[audit.Entry](db, audit.TableAudit)
	// Cutting off the newest entry leaves a whole, shorter chain: the printed head is what shows it.
	if err := raw.Delete(ctx, tenant, entries[2].ID); err != nil {
		t.Fatal(err)
	}
	if out, err := run(); err != nil || !strings.Contains(out, "head: #2 ") {
		t.Errorf("after cutting the head: %v\n%s", err, out)
	}
	// A deleted entry inside the chain is named.
	if err := raw.Delete(ctx, tenant, entries[0].ID); err != nil {
		t.Fatal(err)
	}
	out, err = run()
	if !errors.Is(err, errChainBroken) || !strings.Contains(out, "BROKEN: entries #1..#1 are missing") {
		t.Errorf("after deleting the first entry: %v\n%s", err, out)
	}
	var out2, errOut bytes.Buffer
	if err := realMain(ctx, []string{"audit", "verify", "--tenant", "nope", "--settings", settings}, nil, &out2, &errOut); !errors.As(err, new(usageError)) {
		t.Errorf("bad tenant: %v", err)
	}
}
