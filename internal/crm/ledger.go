package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// The sync's tables: what it keeps of the records it moves is ids, dates, change keys and a digest
// (crmledger), the names of records that failed until they sync (crmsyncerrors, sealed), and where each
// user's delta query stands (crmsyncstate).
const (
	TableLedger     = "crmledger"
	TableSyncErrors = "crmsyncerrors"
	TableSyncState  = "crmsyncstate"
)

// The ledger's record types: Outlook contacts, and Outlook calendar event instances (a single event, or
// one occurrence or exception of a series, as calendarView returns them).
const (
	RecordContact = "contact"
	RecordEvent   = "event"
)

// RecordCRMContact is the type of a crmsyncerrors row for a Salesforce Contact that Outlook refused:
// its SourceID is the Salesforce id (it has no Outlook item yet), so it never mixes with the rows of
// mailbox contacts, which the mailbox pass reads again by Outlook id.
const RecordCRMContact = "crm-contact"

// RecordCRMEvent is the crmsyncerrors type of a Salesforce Event Outlook refused, as RecordCRMContact.
const RecordCRMEvent = "crm-event"

// LedgerEntry is one record synced for a user (row key user | type | encoded source id): the mailbox's id
// of it and Salesforce's, both sides' last-modified dates or change key, and a digest of the fields as
// last written, to skip writes that change nothing. Never a name, address, subject or body.
type LedgerEntry struct {
	UserID          string `table:"key,personal"` // Entra object id of the mailbox's user
	Type            string `table:"key"`          // "contact" or "event"
	SourceID        string `table:"key"`          // the Outlook item id (row key: base64url)
	TargetID        string // the Salesforce record id; "" while it is being created
	SourceChangeKey string // Outlook's changeKey as last synced
	SourceModified  time.Time
	TargetModified  time.Time // when we last wrote the Salesforce record, or its LastModifiedDate when read from Salesforce
	Digest          string    // keyed SHA-256 of the mapped fields as last written (hex, 16 bytes)
	MatchedBy       string    // "created" (in Salesforce), "from-crm" (in Outlook), "email" or "crm-id" when existing records were linked
	SyncedAt        time.Time
	DeletedAt       time.Time // set once the deletion went through: the record is never created again from this id
}

func ledgerKey(userID, typ, sourceID string) (string, error) {
	if err := tables.ValidateKeyPart("user id", userID); err != nil {
		return "", err
	}
	if err := tables.ValidateKeyPart("record type", typ); err != nil {
		return "", err
	}
	enc, err := tables.EncodeForeignID("source id", sourceID)
	if err != nil {
		return "", err
	}
	return tables.JoinKey(userID, typ, enc), nil
}

func splitLedgerKey(rk string) (userID, typ, sourceID string, err error) {
	parts, err := tables.SplitKey("ledger key", rk, 3)
	if err != nil {
		return "", "", "", err
	}
	id, err := tables.DecodeForeignID("source id", parts[2])
	return parts[0], parts[1], id, err
}

func (l *LedgerEntry) RowKey() (string, error) { return ledgerKey(l.UserID, l.Type, l.SourceID) }
func (l *LedgerEntry) SetRowKey(rk string) (err error) {
	l.UserID, l.Type, l.SourceID, err = splitLedgerKey(rk)
	return err
}

// SyncError is a record that failed to sync (row key as the ledger's). Its display name is kept, sealed,
// only so the user and the admin can tell which record it is; the row goes when the record syncs, when
// the user is erased, or with the tenant.
type SyncError struct {
	UserID        string `table:"key,personal"`
	Type          string `table:"key"`
	SourceID      string `table:"key"`
	DisplayName   string `table:"sealed"` // the record's name as the mailbox shows it
	Code          string // Salesforce's statusCode (REQUIRED_FIELD_MISSING, …) or ours; never the message
	Fields        string // the fields Salesforce named, comma-separated (API names)
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}

func (e *SyncError) RowKey() (string, error) { return ledgerKey(e.UserID, e.Type, e.SourceID) }
func (e *SyncError) SetRowKey(rk string) (err error) {
	e.UserID, e.Type, e.SourceID, err = splitLedgerKey(rk)
	return err
}

// SyncState is where one user's sync of one stream stands (row key user | stream, the stream e.g.
// "contact.contacts": record type and folder).
type SyncState struct {
	UserID        string `table:"key,personal"`
	Stream        string `table:"key"`
	DeltaLink     string // Graph's @odata.deltaLink: the mailbox's object id and an opaque token
	LastRunAt     time.Time
	LastSuccessAt time.Time
	LastCode      string // "" after a clean run; else what stopped it or the first record failure's code
	Synced        int    // records written in the last run
	Failed        int    // records that failed in the last run
	// CRMUpdatedTo and CRMDeletedTo are where the next getUpdated and getDeleted windows of the user's
	// Contacts start: the latestDateCovered Salesforce last answered (zero: a full resync is due).
	CRMUpdatedTo time.Time
	CRMDeletedTo time.Time
	// FailedRuns counts the runs in a row that did not end clean (an error, or records refused); a clean
	// run sets it to 0. NotifiedAt is when the user and the admin were told of the streak (zero: not
	// yet), so the notice goes once per streak.
	FailedRuns int
	NotifiedAt time.Time
	// WindowStart and WindowEnd are the calendarView window the event stream's DeltaLink is fixed to
	// (Graph bakes it into the link); a new day starts a new window (events.go).
	WindowStart time.Time
	WindowEnd   time.Time
}

func (s *SyncState) RowKey() (string, error) {
	if err := tables.ValidateKeyPart("user id", s.UserID); err != nil {
		return "", err
	}
	if err := tables.ValidateKeyPart("stream", s.Stream); err != nil {
		return "", err
	}
	return tables.JoinKey(s.UserID, s.Stream), nil
}

func (s *SyncState) SetRowKey(rk string) error {
	parts, err := tables.SplitKey("sync state key", rk, 2)
	if err != nil {
		return err
	}
	s.UserID, s.Stream = parts[0], parts[1]
	return nil
}

// eraseUser deletes what the sync holds of one user: ledger, errors and state.
func (d *Data) eraseUser(ctx context.Context, tenant core.TenantID, userID string, n tables.Erasure) error {
	if err := tables.ValidateKeyPart("user id", userID); err != nil {
		return nil // not an id any row could be keyed by
	}
	prefix := userID + tables.KeySep
	for _, t := range []struct {
		name string
		del  func(context.Context, core.TenantID, string) (int, error)
	}{
		{TableLedger, d.Ledger.DeletePrefix},
		{TableSyncErrors, d.SyncErrors.DeletePrefix},
		{TableSyncState, d.SyncState.DeletePrefix},
	} {
		m, err := t.del(ctx, tenant, prefix)
		n.Add(t.name, m, 0)
		if err != nil {
			return fmt.Errorf("erase %s: %w", t.name, err)
		}
	}
	return nil
}

// exportUser lists the user's ledger, errors and state.
func (d *Data) exportUser(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	l, err := d.Ledger.ExportWhere(ctx, tenant, func(e *LedgerEntry) bool { return e.UserID == userID })
	if err != nil {
		return nil, err
	}
	e, err := d.SyncErrors.ExportWhere(ctx, tenant, func(e *SyncError) bool { return e.UserID == userID })
	if err != nil {
		return nil, err
	}
	s, err := d.SyncState.ExportWhere(ctx, tenant, func(e *SyncState) bool { return e.UserID == userID })
	return append(append(l, e...), s...), err
}
