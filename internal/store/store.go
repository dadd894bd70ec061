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
)

// Sealer encrypts personal fields under the tenant's data key, binding table, tenant and row key as
// associated data (implemented by internal/tenantkey).
type Sealer interface {
	Seal(ctx context.Context, tenant TenantID, table, rowKey string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenant TenantID, table, rowKey string, sealed []byte) ([]byte, error)
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
	Receipts       *ReceiptLog

	// deleters delete one tenant's partition, by logical table name (every per-tenant table).
	deleters map[string]func(context.Context, TenantID) (int, error)
}

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
	s.Receipts = &ReceiptLog{t: newTable[DeletionReceipt](s, TableDeletionReceipts)}
	s.deleters = map[string]func(context.Context, TenantID) (int, error){
		TableTenants:        s.Tenants.t.DeletePartition,
		TableUsers:          s.Users.DeletePartition,
		TablePresence:       s.Presence.DeletePartition,
		TableSubscriptions:  s.Subscriptions.DeletePartition,
		TableLedger:         s.Ledger.DeletePartition,
		TableSyncErrors:     s.SyncErrors.DeletePartition,
		TableBookings:       s.Bookings.DeletePartition,
		TableLicenses:       s.Licenses.DeletePartition,
		TableBilling:        s.Billing.DeletePartition,
		TableAudit:          s.Audit.t.DeletePartition,
		TableAuthorisations: s.Authorisations.DeletePartition,
		TableIncidents:      s.Incidents.DeletePartition,
		TableJobs:           s.Jobs.DeletePartition,
	}
	return s, nil
}

// TenantTables lists the per-tenant tables (all but the deletion receipts), in the order
// DeleteTenantRows empties them: the tenant row last, so a crash midway leaves it to drive a retry.
func TenantTables() []string {
	return []string{TableUsers, TablePresence, TableSubscriptions, TableLedger, TableSyncErrors, TableBookings,
		TableLicenses, TableBilling, TableAudit, TableAuthorisations, TableIncidents, TableJobs, TableTenants}
}

func allTables() []string { return append(TenantTables(), TableDeletionReceipts) }

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
func (s *Store) DeleteTenantRows(ctx context.Context, tenant TenantID, tables ...string) (map[string]int, error) {
	if err := tenant.valid(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		tables = TenantTables()
	}
	counts := make(map[string]int, len(tables))
	var errs []error
	for _, name := range tables {
		del, ok := s.deleters[name]
		if !ok {
			errs = append(errs, fmt.Errorf("delete tenant rows: %q is not a per-tenant table", name))
			continue
		}
		n, err := del(ctx, tenant)
		counts[name] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("delete tenant rows in %s: %w", name, err))
		}
	}
	return counts, errors.Join(errs...)
}
