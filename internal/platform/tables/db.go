package tables

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
)

// ErrNoKey: a Sealer has no data key for the tenant — never created, or destroyed (crypto-shredding).
// It lives here so that code above the table engine can tell it apart without knowing the key store.
var ErrNoKey = errors.New("tenant has no data key")

// Sealer encrypts personal fields under the tenant's data key, binding table, tenant and row key as
// associated data (implemented by internal/platform/tenantkey).
type Sealer interface {
	Seal(ctx context.Context, tenant core.TenantID, table, rowKey string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenant core.TenantID, table, rowKey string, sealed []byte) ([]byte, error)
}

// Options configure a DB.
type Options struct {
	// TablePrefix is put before every table name ("" in production). Tests use a unique prefix so that
	// parallel tests and packages never see each other's rows. Letters and digits, starting with a letter.
	TablePrefix string
	// Sealer seals personal fields. Without one, writing or reading a sealed field fails.
	Sealer Sealer
	// ClientOptions go to aztables (transport, retry, logging policy).
	ClientOptions *aztables.ClientOptions
	// Now is the clock for generated ids (tests); nil means time.Now.
	Now func() time.Time
}

// DB is one storage account's tables. Modules take their typed tables from it with New; the key-only
// work on a tenant's partition (retention) goes through it by table name.
type DB struct {
	svc    *aztables.ServiceClient
	prefix string
	sealer Sealer
	now    func() time.Time

	mu     sync.Mutex
	tables map[string]*raw
}

var prefixRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]{0,29})?$`)

// OpenConnectionString connects with a storage connection string (shared key; Azurite locally).
func OpenConnectionString(conn string, o Options) (*DB, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(conn, o.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("create table client: %w", err)
	}
	return open(svc, o)
}

// OpenCredential connects to an account URL (https://<account>.table.core.windows.net) with an Entra
// token credential — a managed identity in Azure.
func OpenCredential(accountURL string, cred azcore.TokenCredential, o Options) (*DB, error) {
	svc, err := aztables.NewServiceClient(accountURL, cred, o.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("create table client: %w", err)
	}
	return open(svc, o)
}

func open(svc *aztables.ServiceClient, o Options) (*DB, error) {
	if !prefixRE.MatchString(o.TablePrefix) {
		return nil, errors.New("table prefix: letters and digits only, starting with a letter, at most 30")
	}
	db := &DB{svc: svc, prefix: o.TablePrefix, sealer: o.Sealer, now: o.Now, tables: map[string]*raw{}}
	if db.now == nil {
		db.now = time.Now
	}
	return db, nil
}

// Now is the DB's clock (generated ids).
func (db *DB) Now() time.Time { return db.now() }

// table returns the one raw view of a table, so that every typed view shares its watchers.
func (db *DB) table(name string) *raw {
	db.mu.Lock()
	defer db.mu.Unlock()
	t, ok := db.tables[name]
	if !ok {
		t = &raw{db: db, name: name, client: db.svc.NewClient(db.prefix + name)}
		db.tables[name] = t
	}
	return t
}

// EnsureTables creates the named tables that do not exist yet, with one query for the existing names
// and a create per missing table (another instance creating it at the same time is no error). The
// handler calls it at start with the catalogue, locally and in Azure, so a module's new table needs
// no template change: the managed identity's Storage Table Data Contributor role includes
// Microsoft.Storage/storageAccounts/tableServices/tables/write ("Create tables").
func (db *DB) EnsureTables(ctx context.Context, names []string) error {
	existing := map[string]bool{}
	pager := db.svc.NewListTablesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list tables: %w", err)
		}
		for _, t := range page.Tables {
			if t.Name != nil {
				existing[*t.Name] = true
			}
		}
	}
	var missing []string
	for _, n := range names {
		if !existing[db.prefix+n] {
			missing = append(missing, n)
		}
	}
	return db.CreateTables(ctx, missing)
}

// CreateTables creates every named table that does not exist yet (tests, EnsureTables).
func (db *DB) CreateTables(ctx context.Context, names []string) error {
	for _, name := range names {
		_, err := db.svc.CreateTable(ctx, db.prefix+name, nil)
		var re *azcore.ResponseError
		if err != nil && !(errors.As(err, &re) && re.StatusCode == http.StatusConflict) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}
	return nil
}

// DropTables deletes the named tables of this DB's prefix (test cleanup). It refuses without a prefix
// so that it can never drop production tables.
func (db *DB) DropTables(ctx context.Context, names []string) error {
	if db.prefix == "" {
		return errors.New("drop tables: refusing without a table prefix")
	}
	var errs []error
	for _, name := range names {
		_, err := db.svc.DeleteTable(ctx, db.prefix+name, nil)
		var re *azcore.ResponseError
		if err != nil && !(errors.As(err, &re) && re.StatusCode == http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("drop table %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// DeleteTenantRows deletes the tenant's partition in each named table and returns the number of rows
// deleted per table. It carries on past a failing table and returns every failure joined, so a retry
// only has the remainder to do.
func (db *DB) DeleteTenantRows(ctx context.Context, tenant core.TenantID, names []string) (map[string]int, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(names))
	var errs []error
	for _, name := range names {
		n, err := db.table(name).DeletePartition(ctx, tenant)
		counts[name] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("delete tenant rows in %s: %w", name, err))
		}
	}
	return counts, errors.Join(errs...)
}

// DeleteTenantRowsUpTo deletes at most max (1..1000) of the tenant's rows in one table and reports how
// many, and whether rows may remain. The retention job deletes in these steps so that it can stop
// within its time budget and checkpoint.
func (db *DB) DeleteTenantRowsUpTo(ctx context.Context, tenant core.TenantID, name string, max int) (int, bool, error) {
	n, more, err := db.table(name).DeletePartitionUpTo(ctx, tenant, max)
	if err != nil {
		return n, more, fmt.Errorf("delete tenant rows in %s: %w", name, err)
	}
	return n, more, nil
}

// CountTenantRows counts the tenant's rows in each named table, reading only row keys: the census a
// deletion receipt reports.
func (db *DB) CountTenantRows(ctx context.Context, tenant core.TenantID, names []string) (map[string]int, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(names))
	for _, name := range names {
		n, err := db.table(name).CountPartition(ctx, tenant)
		if err != nil {
			return counts, fmt.Errorf("count tenant rows in %s: %w", name, err)
		}
		counts[name] = n
	}
	return counts, nil
}

// OperatorQuery runs a cross-partition query (filter "" is the whole table), taking each row's tenant
// from its PartitionKey. Only operator paths (jobs that span every tenant) call it.
func OperatorQuery[E any, P entityPtr[E]](ctx context.Context, t *Table[E, P], filter string, opts *ListOptions) (Page[E], error) {
	raw, next, err := t.listPage(ctx, filter, opts)
	if err != nil {
		return Page[E]{}, err
	}
	page := Page[E]{Items: make([]E, 0, len(raw)), Next: next}
	for _, b := range raw {
		pk, _, _, err := parseEntity(b)
		if err != nil {
			return Page[E]{}, err
		}
		tenant, err := core.ParseTenantID(pk)
		if err != nil {
			return Page[E]{}, fmt.Errorf("%s: %w", t.name, err)
		}
		e, err := t.unmarshal(ctx, tenant, b)
		if err != nil {
			return Page[E]{}, err
		}
		page.Items = append(page.Items, e)
	}
	return page, nil
}

// Pages iterates over every item of a paged list, page by page; it stops at the first error.
func Pages[E any](page func(*ListOptions) (Page[E], error), opts *ListOptions) iter.Seq2[E, error] {
	return func(yield func(E, error) bool) {
		o := ListOptions{}
		if opts != nil {
			o = *opts
		}
		for {
			p, err := page(&o)
			if err != nil {
				var zero E
				yield(zero, err)
				return
			}
			for _, e := range p.Items {
				if !yield(e, nil) {
					return
				}
			}
			if p.Next == "" {
				return
			}
			o.Token = p.Next
		}
	}
}
