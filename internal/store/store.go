package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
)

// Sealer encrypts personal fields under the tenant's data key, binding table, tenant and row key as
// associated data (implemented by internal/platform/tenantkey).
type Sealer interface {
	Seal(ctx context.Context, tenant core.TenantID, table, rowKey string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenant core.TenantID, table, rowKey string, sealed []byte) ([]byte, error)
}

// Options configure a Store.
type Options struct {
	// TablePrefix is put before every table name ("" in production). Tests use a unique prefix so that
	// parallel tests and packages never see each other's rows. Letters and digits, starting with a letter.
	TablePrefix string
	// Sealer seals personal fields. Without one, writing or reading a sealed field fails.
	Sealer Sealer
	// ClientOptions go to aztables (transport, retry, logging policy).
	ClientOptions *aztables.ClientOptions
	// Now is the clock for leases and generated ids (tests); nil means time.Now.
	Now func() time.Time
}

// Logical table names. Per-tenant tables have PartitionKey = tenant id.
const (
	TableTenants        = "tenants"
	TableUsers          = "users"
	TablePresence       = "presence"
	TableSubscriptions  = "subscriptions"
	TableLedger         = "ledger"
	TableSyncErrors     = "syncerrors"
	TableBookings       = "bookings"
	TableLicenses       = "licenses"
	TableBilling        = "billing"
	TableAudit          = "audit"
	TableAuthorisations = "authorisations"
	TableIncidents      = "incidents"
	TableJobs           = "jobs"
	// TableDeletionReceipts is the operator's proof of deletion; it holds no personal data and outlives
	// the tenant's other rows.
	TableDeletionReceipts = "deletionreceipts"
)

// Store gives typed access to every table. Each field scopes by tenant.
type Store struct {
	svc    *aztables.ServiceClient
	prefix string
	sealer Sealer
	now    func() time.Time

	Tenants        *TenantRegistry
	Users          *Table[User, *User]
	Presence       *Table[Presence, *Presence]
	Subscriptions  *Table[Subscription, *Subscription]
	Ledger         *LedgerTable
	SyncErrors     *SyncErrorTable
	Bookings       *BookingTable
	Licenses       *Table[License, *License]
	Billing        *Table[BillingSnapshot, *BillingSnapshot]
	Audit          *AuditLog
	Authorisations *Table[Authorisation, *Authorisation]
	Incidents      *Table[Incident, *Incident]
	Jobs           *JobTable
	ServiceUsers   *Table[ServiceUser, *ServiceUser]
	Receipts       *ReceiptLog

	// partitions reach one tenant's partition of each per-tenant table, by logical table name.
	partitions map[string]partition
}

// partition is what every per-tenant table offers for bulk work on one tenant's rows.
type partition interface {
	DeletePartition(ctx context.Context, tenant core.TenantID) (int, error)
	DeletePartitionUpTo(ctx context.Context, tenant core.TenantID, max int) (int, bool, error)
	CountPartition(ctx context.Context, tenant core.TenantID) (int, error)
}

// OperatorPartition is a reserved, well-formed tenant id that no customer tenant has (the nil GUID):
// operator-wide rows such as the lease of a job that spans every tenant live under it. Onboarding
// refuses it.
const OperatorPartition = core.ReservedTenant

var prefixRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]{0,29})?$`)

// NewFromConnectionString connects with a storage connection string (shared key; Azurite locally).
func NewFromConnectionString(conn string, o Options) (*Store, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(conn, o.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("create table client: %w", err)
	}
	return newStore(svc, o)
}

// NewWithCredential connects to an account URL (https://<account>.table.core.windows.net) with an Entra
// token credential — a managed identity in Azure.
func NewWithCredential(accountURL string, cred azcore.TokenCredential, o Options) (*Store, error) {
	svc, err := aztables.NewServiceClient(accountURL, cred, o.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("create table client: %w", err)
	}
	return newStore(svc, o)
}

func newStore(svc *aztables.ServiceClient, o Options) (*Store, error) {
	if !prefixRE.MatchString(o.TablePrefix) {
		return nil, errors.New("table prefix: letters and digits only, starting with a letter, at most 30")
	}
	s := &Store{svc: svc, prefix: o.TablePrefix, sealer: o.Sealer, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.Tenants = &TenantRegistry{t: newTable[Tenant](s, TableTenants)}
	s.Users = newTable[User](s, TableUsers)
	s.Presence = newTable[Presence](s, TablePresence)
	s.Subscriptions = newTable[Subscription](s, TableSubscriptions)
	s.Ledger = &LedgerTable{newTable[LedgerEntry](s, TableLedger)}
	s.SyncErrors = &SyncErrorTable{newTable[SyncError](s, TableSyncErrors)}
	s.Bookings = &BookingTable{newTable[Booking](s, TableBookings)}
	s.Licenses = newTable[License](s, TableLicenses)
	s.Billing = newTable[BillingSnapshot](s, TableBilling)
	s.Audit = &AuditLog{t: newTable[AuditEntry](s, TableAudit)}
	s.Authorisations = newTable[Authorisation](s, TableAuthorisations)
	s.Incidents = newTable[Incident](s, TableIncidents)
	s.Jobs = &JobTable{newTable[Job](s, TableJobs)}
	s.ServiceUsers = newTable[ServiceUser](s, TableServiceUsers)
	s.Receipts = &ReceiptLog{t: newTable[DeletionReceipt](s, TableDeletionReceipts)}
	s.partitions = map[string]partition{
		TableTenants:        s.Tenants.t,
		TableUsers:          s.Users,
		TablePresence:       s.Presence,
		TableSubscriptions:  s.Subscriptions,
		TableLedger:         s.Ledger,
		TableSyncErrors:     s.SyncErrors,
		TableBookings:       s.Bookings,
		TableLicenses:       s.Licenses,
		TableBilling:        s.Billing,
		TableAudit:          s.Audit.t,
		TableAuthorisations: s.Authorisations,
		TableIncidents:      s.Incidents,
		TableJobs:           s.Jobs,
		TableServiceUsers:   s.ServiceUsers,
	}
	return s, nil
}

// CreateTables creates every table that does not exist yet (make run, tests; Bicep does it in Azure).
func (s *Store) CreateTables(ctx context.Context) error {
	for _, name := range allTables() {
		_, err := s.svc.CreateTable(ctx, s.prefix+name, nil)
		var re *azcore.ResponseError
		if err != nil && !(errors.As(err, &re) && re.StatusCode == http.StatusConflict) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}
	return nil
}

// DropTables deletes every table of this store's prefix (test cleanup). It refuses without a prefix so
// that it can never drop production tables.
func (s *Store) DropTables(ctx context.Context) error {
	if s.prefix == "" {
		return errors.New("drop tables: refusing without a table prefix")
	}
	var errs []error
	for _, name := range allTables() {
		_, err := s.svc.DeleteTable(ctx, s.prefix+name, nil)
		var re *azcore.ResponseError
		if err != nil && !(errors.As(err, &re) && re.StatusCode == http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("drop table %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// DeleteTenantRows deletes the tenant's partition in each named table (all of TenantTables when none
// are named) and returns the number of rows deleted per table. It carries on past a failing table and
// returns every failure joined, so a retry only has the remainder to do.
func (s *Store) DeleteTenantRows(ctx context.Context, tenant core.TenantID, tables ...string) (map[string]int, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		tables = TenantTables()
	}
	counts := make(map[string]int, len(tables))
	var errs []error
	for _, name := range tables {
		p, ok := s.partitions[name]
		if !ok {
			errs = append(errs, fmt.Errorf("delete tenant rows: %q is not a per-tenant table", name))
			continue
		}
		n, err := p.DeletePartition(ctx, tenant)
		counts[name] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("delete tenant rows in %s: %w", name, err))
		}
	}
	return counts, errors.Join(errs...)
}

// DeleteTenantRowsUpTo deletes at most max (1..1000) of the tenant's rows in one per-tenant table and
// reports how many, and whether rows may remain. The retention job deletes in these steps so that it can
// stop within its time budget and checkpoint.
func (s *Store) DeleteTenantRowsUpTo(ctx context.Context, tenant core.TenantID, table string, max int) (int, bool, error) {
	p, ok := s.partitions[table]
	if !ok {
		return 0, false, fmt.Errorf("delete tenant rows: %q is not a per-tenant table", table)
	}
	n, more, err := p.DeletePartitionUpTo(ctx, tenant, max)
	if err != nil {
		return n, more, fmt.Errorf("delete tenant rows in %s: %w", table, err)
	}
	return n, more, nil
}

// CountTenantRows counts the tenant's rows in each named per-tenant table (all of TenantTables when none
// are named), reading only row keys: the census a deletion receipt reports.
func (s *Store) CountTenantRows(ctx context.Context, tenant core.TenantID, tables ...string) (map[string]int, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		tables = TenantTables()
	}
	counts := make(map[string]int, len(tables))
	for _, name := range tables {
		p, ok := s.partitions[name]
		if !ok {
			return counts, fmt.Errorf("count tenant rows: %q is not a per-tenant table", name)
		}
		n, err := p.CountPartition(ctx, tenant)
		if err != nil {
			return counts, fmt.Errorf("count tenant rows in %s: %w", name, err)
		}
		counts[name] = n
	}
	return counts, nil
}
