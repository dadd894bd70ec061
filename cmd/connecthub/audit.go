package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// errChainBroken makes `audit verify` exit 1 after it has printed what is broken.
var errChainBroken = errors.New("the audit chain is broken")

// verifyAudit checks one tenant's audit hash chain and prints its head, so the operator can record it
// and later see that nothing was cut off the end.
func (c *cli) verifyAudit(ctx context.Context, args []string) error {
	fs, tf := newTablesFlags(c, "audit verify", "audit verify --tenant T [--settings F | --tables-url URL]",
		"Checks the tenant's audit trail: every entry in sequence, linked to the one before, unaltered.\n"+
			"Prints the chain's head (sequence number and hash): record it to detect a cut-off end later.")
	tenantFlag := fs.String("tenant", "", "the tenant id (GUID)")
	if err := parse(fs, args); err != nil {
		return err
	}
	tenant, err := core.ParseTenantID(*tenantFlag)
	if err != nil {
		return usagef("--tenant: %v", err)
	}
	db, where, err := tf.open()
	if err != nil {
		return err
	}
	r, err := audit.OpenLog(db).Verify(ctx, tenant)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "audit trail of tenant %s in %s: %d entries, %d with an erased person\n", tenant, where, r.Entries, r.Erased)
	if r.Entries > 0 {
		fmt.Fprintf(c.stdout, "head: #%d %s\n", r.HeadSeq, r.HeadHash)
	}
	if r.Intact() {
		fmt.Fprintln(c.stdout, "intact")
		return nil
	}
	for _, p := range r.Problems {
		fmt.Fprintln(c.stdout, "BROKEN:", p)
	}
	return errChainBroken
}

// tablesFlags pick the table storage: the local settings' Azurite, or an account URL with az login.
type tablesFlags struct {
	sf        *storeFlags // --settings
	tablesURL string
}

func newTablesFlags(c *cli, name, synopsis, about string) (*flag.FlagSet, *tablesFlags) {
	fs, sf := c.newLocalFlags(name, synopsis, about, "local settings file naming the local Azurite")
	t := &tablesFlags{sf: sf}
	fs.StringVar(&t.tablesURL, "tables-url", "", "table storage account URL (https://<account>.table.core.windows.net); uses az login")
	return fs, t
}

func (t *tablesFlags) open() (*tables.DB, string, error) {
	if t.tablesURL != "" {
		u, err := url.Parse(t.tablesURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, "", usagef("--tables-url: want https://<account>.table.core.windows.net, got %q", t.tablesURL)
		}
		cred, err := secrets.NewCredential("")
		if err != nil {
			return nil, "", err
		}
		db, err := tables.OpenCredential(t.tablesURL, cred, tables.Options{})
		return db, t.tablesURL, err
	}
	if _, err := os.Stat(t.sf.settings); err != nil {
		return nil, "", usagef("no table storage: %s not found here; give --settings FILE or --tables-url URL", t.sf.settings)
	}
	settings, err := devhost.ReadLocalSettings(t.sf.settings)
	if err != nil {
		return nil, "", err
	}
	conn := settings.Values[config.KeyTablesConnectionString]
	if conn == "" {
		return nil, "", fmt.Errorf("%s: %s is not set", t.sf.settings, config.KeyTablesConnectionString)
	}
	db, err := tables.OpenConnectionString(conn, tables.Options{})
	return db, "local Azurite (" + t.sf.settings + ")", err
}
