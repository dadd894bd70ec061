package presence

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
	// The PBX → Teams direction: the tenant's webhook subscription at the PBX, and which extension is
	// which user (for the events, which name only the extension).
	TablePBXSubscriptions = "pbxsubscriptions"
	TablePBXExtensions    = "pbxextensions"
)

// Tables are the tables the presence module owns (its service users' table is serviceuser.Tables).
var Tables = []tables.Spec{
	tables.SpecOf[Presence](TablePresence, "presence", tables.RetainTenantData),
	tables.SpecOf[LedgerEntry](TableLedger, "presence", tables.RetainTenantData),
	tables.SpecOf[SyncError](TableSyncErrors, "presence", tables.RetainTenantData),
	tables.SpecOf[StatusSnapshot](TableStatus, "presence", tables.RetainTenantData),
	tables.SpecOf[PBXSubscription](TablePBXSubscriptions, "presence", tables.RetainTenantData),
	tables.SpecOf[PBXExtension](TablePBXExtensions, "presence", tables.RetainTenantData),
}

// Data is the presence module's tables and the rules it keeps on them.
type Data struct {
	Presence   *tables.Table[Presence, *Presence]
	Ledger     *LedgerTable
	SyncErrors *SyncErrorTable
	// PBXSubscriptions and PBXExtensions serve the PBX → Teams direction (package presence/pbx).
	PBXSubscriptions *tables.Table[PBXSubscription, *PBXSubscription]
	PBXExtensions    *PBXExtensionTable
	// SyncErrorRetention: Sweep deletes sync errors first recorded longer ago (S7 in the inventory).
	SyncErrorRetention time.Duration
}

// OpenData returns the module's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{
		Presence:   tables.New[Presence](db, TablePresence),
		Ledger:     &LedgerTable{tables.New[LedgerEntry](db, TableLedger)},
		SyncErrors: &SyncErrorTable{tables.New[SyncError](db, TableSyncErrors)},

		PBXSubscriptions: tables.New[PBXSubscription](db, TablePBXSubscriptions),
		PBXExtensions:    &PBXExtensionTable{tables.New[PBXExtension](db, TablePBXExtensions)},
	}
}

// Erase deletes what presence sync holds about one user: the presence row, the user's ledger resource
// and sync errors. Rows already gone are not an error; it answers how many rows went.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n := tables.Erasure{TablePresence: {}, TableLedger: {}, TableSyncErrors: {}, TablePBXExtensions: {}}
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
	m, err = d.PBXExtensions.DeleteUser(ctx, tenant, userID)
	n.Add(TablePBXExtensions, m, 0)
	if err != nil {
		return n, fmt.Errorf("delete pbx extensions: %w", err)
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

// UsersWithData lists the users presence sync holds rows about: presence rows, ledger resources named
// by a user's object id (other resources are shared, not a user's) and PBX extension rows.
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
	for x, err := range d.PBXExtensions.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list pbx extensions: %w", err)
		}
		out = append(out, x.UserID)
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

	// The PBX → Teams direction keeps its side in the same row, so that each direction sees what the
	// other wrote and drops the echo of it (package presence/pbx; Applier.apply).
	PBXSequence int64 // RingCentral's sequence of the last PBX event applied, to drop older ones
	PBXCall     bool  `table:"personal"` // the PBX last reported a call in progress
	PBXDND      bool  `table:"personal"` // the PBX last reported do-not-disturb
	// TeamsSession is "Availability/Activity" of our setPresence session, "" when we hold none;
	// TeamsSessionUntil is when Graph ends it unless refreshed.
	TeamsSession      string    `table:"personal"`
	TeamsSessionUntil time.Time `table:"personal"`
	// TeamsSessionPrev is the session's value before its last change (set or clear) at TeamsSessionAt:
	// a notification of it arriving within the echo window is our own write coming back, late.
	TeamsSessionPrev string    `table:"personal"`
	TeamsSessionAt   time.Time `table:"personal"`
	// TeamsSessionPending is the session being set at TeamsSessionPendingAt, recorded before the
	// setPresence call: Graph may report the session's presence (the echo) before that call answers,
	// so before TeamsSession says it.
	TeamsSessionPending   string    `table:"personal"`
	TeamsSessionPendingAt time.Time `table:"personal"`
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
	for x, err := range d.PBXExtensions.OfUser(ctx, tenant, userID) {
		if err != nil {
			return nil, fmt.Errorf("list pbx extensions: %w", err)
		}
		rec, err := d.PBXExtensions.Record(x)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string {
	return []string{TablePresence, TableLedger, TableSyncErrors, TablePBXExtensions}
}

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

// PBXSubscription is a tenant's webhook subscription at its PBX (table pbxsubscriptions; RowKey = the
// connector kind). The verification token RingCentral repeats on every delivery is random and kept only
// as its SHA-256, compared in constant time.
type PBXSubscription struct {
	Kind                  string `table:"key"` // connector kind, e.g. "ringcentral"
	SubscriptionID        string
	VerificationTokenHash []byte
	Extensions            int       // how many extensions the filters cover
	FilterHash            []byte    // SHA-256 of the sorted event filters, to renew with new ones when they change
	ExpiresAt             time.Time // as the PBX answered
	Status                string    // the PBX's status at the last check (Active, Blacklisted)
	LastError             string    // our code for the last failure of the lifecycle, "" after a success
	CreatedAt             time.Time
	RenewedAt             time.Time
	Recreated             int // times the subscription was recreated after the PBX blacklisted it
}

func (s *PBXSubscription) RowKey() (string, error)   { return tables.SimpleKey("pbx kind", s.Kind) }
func (s *PBXSubscription) SetRowKey(rk string) error { s.Kind = rk; return nil }

// PBXExtension maps a PBX extension to the licensed user it belongs to (table pbxextensions; RowKey =
// extension id), written when the subscription's filters are computed.
type PBXExtension struct {
	ExtensionID string `table:"key,personal"`
	UserID      string `table:"personal"`
	UpdatedAt   time.Time
}

func (x *PBXExtension) RowKey() (string, error) {
	return tables.SimpleKey("extension id", x.ExtensionID)
}
func (x *PBXExtension) SetRowKey(rk string) error { x.ExtensionID = rk; return nil }

// PBXExtensionTable is the extension → user map.
type PBXExtensionTable struct {
	*tables.Table[PBXExtension, *PBXExtension]
}

// OfUser iterates over the rows of one user (a filtered scan of the tenant's partition: erasure and
// export only).
func (t *PBXExtensionTable) OfUser(ctx context.Context, tenant core.TenantID, userID string) iter.Seq2[PBXExtension, error] {
	return func(yield func(PBXExtension, error) bool) {
		if err := tables.CheckTenant(tenant); err != nil {
			yield(PBXExtension{}, err)
			return
		}
		for x, err := range t.All(ctx, tenant, nil) {
			if err != nil {
				yield(PBXExtension{}, err)
				return
			}
			if strings.EqualFold(x.UserID, userID) && !yield(x, nil) {
				return
			}
		}
	}
}

// DeleteUser deletes the rows of one user.
func (t *PBXExtensionTable) DeleteUser(ctx context.Context, tenant core.TenantID, userID string) (int, error) {
	var ids []string
	for x, err := range t.OfUser(ctx, tenant, userID) {
		if err != nil {
			return 0, err
		}
		ids = append(ids, x.ExtensionID)
	}
	n := 0
	for _, id := range ids {
		switch err := t.Delete(ctx, tenant, id); {
		case err == nil:
			n++
		case !errors.Is(err, tables.ErrNotFound):
			return n, err
		}
	}
	return n, nil
}
