package presence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The tables presence sync owns.
const (
	TablePresence   = "presence"
	TableLedger     = "ledger"
	TableSyncErrors = "syncerrors"
	TableStatus     = "presencestatus"
)

// Tables are the tables the presence module owns (its service users' table is serviceuser.Tables).
var Tables = []tables.Spec{
	tables.SpecOf[Presence](TablePresence, "presence", tables.RetainTenantData),
	tables.SpecOf[LedgerEntry](TableLedger, "presence", tables.RetainTenantData),
	tables.SpecOf[SyncError](TableSyncErrors, "presence", tables.RetainTenantData),
	tables.SpecOf[StatusSnapshot](TableStatus, "presence", tables.RetainTenantData),
}

// Data is the presence module's tables and the rules it keeps on them.
type Data struct {
	Presence   *tables.Table[Presence, *Presence]
	Ledger     *LedgerTable
	SyncErrors *SyncErrorTable
	// SyncErrorRetention: Sweep deletes sync errors first recorded longer ago (S7 in the inventory).
	SyncErrorRetention time.Duration
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{
		Presence:   tables.New[Presence](db, TablePresence),
		Ledger:     &LedgerTable{tables.New[LedgerEntry](db, TableLedger)},
		SyncErrors: &SyncErrorTable{tables.New[SyncError](db, TableSyncErrors)},
	}
}

// Erase deletes what presence sync holds about one user: the presence row, the user's ledger resource
// and sync errors. Rows already gone are not an error; it answers how many rows went.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n := tables.Erasure{TablePresence: {}, TableLedger: {}, TableSyncErrors: {}}
	switch err := d.Presence.Delete(ctx, tenant, userID); {
	case err == nil:
		n.Add(TablePresence, 1, 0)
	case !errors.Is(err, tables.ErrNotFound):
		return n, fmt.Errorf("delete presence: %w", err)
	}
	m, err := d.Ledger.DeleteResource(ctx, tenant, userID)
	n.Add(TableLedger, m, 0)
	if err != nil {
		return n, fmt.Errorf("delete ledger: %w", err)
	}
	m, err = d.SyncErrors.DeletePrefix(ctx, tenant, userID+tables.KeySep)
	n.Add(TableSyncErrors, m, 0)
	if err != nil {
		return n, fmt.Errorf("delete sync errors: %w", err)
	}
	return n, nil
}

// ActiveUsers counts the licensed users whose presence changed since from: users with synchronised
// activity, for the tenants module's usage snapshot.
func (d *Data) ActiveUsers(ctx context.Context, tenant core.TenantID, licensed map[string]bool, from time.Time) (int, error) {
	n := 0
	for p, err := range d.Presence.All(ctx, tenant, &tables.ListOptions{Select: []string{"ChangedAt"}}) {
		if err != nil {
			return 0, fmt.Errorf("list presence: %w", err)
		}
		if licensed[p.UserID] && !p.ChangedAt.Before(from) {
			n++
		}
	}
	return n, nil
}

// UsersWithData lists the users presence sync holds rows about: presence rows, and ledger resources
// named by a user's object id (other resources are shared, not a user's).
func (d *Data) UsersWithData(ctx context.Context, tenant core.TenantID) ([]string, error) {
	var out []string
	for p, err := range d.Presence.All(ctx, tenant, &tables.ListOptions{Select: []string{"ChangedAt"}}) {
		if err != nil {
			return nil, fmt.Errorf("list presence: %w", err)
		}
		out = append(out, p.UserID)
	}
	resources, err := d.Ledger.Resources(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("list ledger resources: %w", err)
	}
	for _, res := range resources {
		if _, err := core.ParseObjectID(res); err == nil {
			out = append(out, res)
		}
	}
	return out, nil
}

// Sweep deletes the tenant's sync errors first recorded more than SyncErrorRetention ago.
func (d *Data) Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error) {
	if d.SyncErrorRetention <= 0 {
		return nil, errors.New("presence sweep: no sync error retention configured")
	}
	n, err := d.SyncErrors.DeleteFirstFailedBefore(ctx, t.ID, now.Add(-d.SyncErrorRetention))
	if err != nil {
		err = fmt.Errorf("prune sync errors: %w", err)
	}
	return map[string]int{TableSyncErrors: n}, err
}

// Presence is a user's current presence only (table presence); each change overwrites it.
type Presence struct {
	UserID       string    `table:"key,personal"`
	Availability string    `table:"personal"` // Graph availability, e.g. "Busy"
	Activity     string    `table:"personal"` // Graph activity, e.g. "InACall"
	Source       string    // "teams" or "pbx": which side reported it
	PBXState     string    `table:"personal"` // state last pushed to the PBX, to skip duplicate pushes
	Sequence     string    // Graph's sequenceNumber of this state, to drop out-of-order notifications
	ChangedAt    time.Time `table:"personal"` // when the state changed
}

func (p *Presence) RowKey() (string, error)   { return tables.SimpleKey("user id", p.UserID) }
func (p *Presence) SetRowKey(rk string) error { p.UserID = rk; return nil }

// LedgerEntry records that a record of a resource was processed: only its id and last-modified date
// (table ledger), for idempotency and change detection.
type LedgerEntry struct {
	Resource     string `table:"key,personal"` // row key part 1: a short resource name, e.g. "contacts" (no | / \ # ? ')
	RecordID     string `table:"key,personal"` // row key part 2: the record's id at its source, stored encoded
	LastModified time.Time
}

// LedgerKey is the row key of (resource, recordID), for Get/Delete.
func LedgerKey(resource, recordID string) (string, error) {
	return (&LedgerEntry{Resource: resource, RecordID: recordID}).RowKey()
}

func (l *LedgerEntry) RowKey() (string, error) { return resourceRecordKey(l.Resource, l.RecordID) }
func (l *LedgerEntry) SetRowKey(rk string) (err error) {
	l.Resource, l.RecordID, err = splitResourceRecordKey(rk)
	return err
}

func resourceRecordKey(resource, recordID string) (string, error) {
	if err := tables.ValidateKeyPart("resource", resource); err != nil {
		return "", err
	}
	id, err := tables.EncodeForeignID("record id", recordID)
	if err != nil {
		return "", err
	}
	return tables.JoinKey(resource, id), nil
}

func splitResourceRecordKey(rk string) (resource, recordID string, err error) {
	parts, err := tables.SplitKey("resource/record key", rk, 2)
	if err != nil {
		return "", "", err
	}
	id, err := tables.DecodeForeignID("record id", parts[1])
	return parts[0], id, err
}

// SyncError remembers a record that failed to sync (table syncerrors). Its name is kept only
// temporarily, for the error notification, and sealed.
type SyncError struct {
	Resource      string `table:"key,personal"` // row key part 1
	RecordID      string `table:"key,personal"` // row key part 2, stored encoded
	RecordName    string `table:"sealed"`
	ErrorCode     string // our code for the failure, never the remote message
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}

// SyncErrorKey is the row key of (resource, recordID).
func SyncErrorKey(resource, recordID string) (string, error) {
	return resourceRecordKey(resource, recordID)
}

func (s *SyncError) RowKey() (string, error) { return resourceRecordKey(s.Resource, s.RecordID) }
func (s *SyncError) SetRowKey(rk string) (err error) {
	s.Resource, s.RecordID, err = splitResourceRecordKey(rk)
	return err
}

// LedgerTable is the sync ledger: per tenant and resource, record ids and last-modified dates.
type LedgerTable struct {
	*tables.Table[LedgerEntry, *LedgerEntry]
}

// ListResource pages over the ledger of one resource.
func (l *LedgerTable) ListResource(ctx context.Context, tenant core.TenantID, resource string, opts *tables.ListOptions) (tables.Page[LedgerEntry], error) {
	if err := tables.ValidateKeyPart("resource", resource); err != nil {
		return tables.Page[LedgerEntry]{}, err
	}
	return l.ListPrefix(ctx, tenant, resource+tables.KeySep, opts)
}

// DeleteResource deletes the ledger of one resource (e.g. of a user who lost the license).
func (l *LedgerTable) DeleteResource(ctx context.Context, tenant core.TenantID, resource string) (int, error) {
	if err := tables.ValidateKeyPart("resource", resource); err != nil {
		return 0, err
	}
	return l.DeletePrefix(ctx, tenant, resource+tables.KeySep)
}

// Resources lists the distinct resources of the tenant's ledger in key order. It skips from one resource
// to the next (a query for the first row at or after each resource's upper bound), so it reads one row
// per resource rather than every record.
func (l *LedgerTable) Resources(ctx context.Context, tenant core.TenantID) ([]string, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return nil, err
	}
	var out []string
	from := ""
	for {
		filter := tables.Filter("PartitionKey eq ? and RowKey ge ?", tenant, from)
		rks, next, err := l.KeysTop(ctx, filter, "", 1)
		// An empty page may still carry a continuation (the service stopped at a partition boundary).
		for err == nil && len(rks) == 0 && next != "" {
			rks, next, err = l.KeysTop(ctx, filter, next, 1)
		}
		if err != nil {
			return out, err
		}
		if len(rks) == 0 {
			return out, nil
		}
		resource, _, ok := strings.Cut(rks[0], tables.KeySep)
		if !ok {
			return out, &tables.KeyError{What: "ledger key", Reason: "no resource part"}
		}
		out = append(out, resource)
		from = tables.PrefixUpperBound(resource + tables.KeySep)
	}
}

// SyncErrorTable holds records that failed to sync, temporarily.
type SyncErrorTable struct {
	*tables.Table[SyncError, *SyncError]
}

// DeleteFirstFailedBefore deletes the tenant's sync errors first recorded before cutoff (retention: 7 d).
func (s *SyncErrorTable) DeleteFirstFailedBefore(ctx context.Context, tenant core.TenantID, cutoff time.Time) (int, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return 0, err
	}
	return s.DeleteWhere(ctx, tenant, tables.Filter("PartitionKey eq ? and FirstFailedAt lt ?", tenant, cutoff))
}

// Export lists what presence sync holds about one person: the presence row, the ledger resource named
// by the person and the sync errors of the person's records.
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	var out []tables.Record
	p, err := d.Presence.Get(ctx, tenant, userID)
	switch {
	case err == nil:
		rec, err := d.Presence.Record(p)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	case !errors.Is(err, tables.ErrNotFound):
		return nil, fmt.Errorf("read presence: %w", err)
	}
	for l, err := range tables.Pages(func(o *tables.ListOptions) (tables.Page[LedgerEntry], error) {
		return d.Ledger.ListResource(ctx, tenant, userID, o)
	}, nil) {
		if err != nil {
			return nil, fmt.Errorf("list ledger: %w", err)
		}
		rec, err := d.Ledger.Record(l)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	for e, err := range tables.Pages(func(o *tables.ListOptions) (tables.Page[SyncError], error) {
		return d.SyncErrors.ListPrefix(ctx, tenant, userID+tables.KeySep, o)
	}, nil) {
		if err != nil {
			return nil, fmt.Errorf("list sync errors: %w", err)
		}
		rec, err := d.SyncErrors.Record(e)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TablePresence, TableLedger, TableSyncErrors} }

// StatusSnapshot is how many users a tenant's presence sync must cover, as counted when the tenant was
// last reconciled (table presencestatus, one row per tenant). Counting means reading every user row (100
// pages for 100,000 users), too slow for an admin's page; with the count, the rest of the status follows
// from the service users, which are few (Manager.Status).
type StatusSnapshot struct {
	Licensed int       // licensed users not restricted: those presence sync covers
	Errors   int       // failures of the run that counted
	TakenAt  time.Time // when they were counted
}

const statusRowKey = "status"

func (s *StatusSnapshot) RowKey() (string, error) { return statusRowKey, nil }
func (s *StatusSnapshot) SetRowKey(rk string) error {
	if rk != statusRowKey {
		return &tables.KeyError{What: "presence status row key", Reason: "unexpected"}
	}
	return nil
}
