package crm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Mailbox is what the sync reads and writes of a mailbox, app-only (Contacts.ReadWrite, and
// Calendars.Read for events to Salesforce).
type Mailbox interface {
	EventMailbox
	ContactsDelta(ctx context.Context, mailbox, folder, deltaLink string, fn func(graph.ContactChange) error) (string, error)
	GetContact(ctx context.Context, mailbox, folder, id string) (graph.Contact, error)
	CreateContact(ctx context.Context, mailbox, folder string, w graph.ContactWrite) (graph.Contact, error)
	UpdateContact(ctx context.Context, mailbox, folder, id string, w graph.ContactWrite) (graph.Contact, error)
	DeleteContact(ctx context.Context, mailbox, folder, id string) error
	FindContacts(ctx context.Context, mailbox, folder, prop, value, address string) ([]graph.Contact, error)
	ListContacts(ctx context.Context, mailbox, folder, prop string, fn func(graph.Contact) error) error
	ContactProperty(ctx context.Context, mailbox, folder, id, prop string) (string, error)
}

var _ Mailbox = (*graph.Client)(nil)

// Mailboxes gives the tenant's app-only Graph client.
type Mailboxes interface {
	For(ctx context.Context, tenant core.TenantID) (Mailbox, error)
}

// Records is what the sync needs of the Salesforce client.
type Records interface {
	Query(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, soql string, fn func(json.RawMessage) error) (http.Header, error)
	Save(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, object string, update bool, recs []map[string]any) ([]salesforce.Result, http.Header, error)
	Delete(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, ids []string) ([]salesforce.Result, http.Header, error)
	Updated(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, object string, start, end time.Time) (salesforce.Updated, http.Header, error)
	Deleted(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, object string, start, end time.Time) (salesforce.Deleted, http.Header, error)
}

var _ Records = (*salesforce.Client)(nil)

// SyncOptions configure a Syncer.
type SyncOptions struct {
	Store      *registry.Registry
	Data       *Data
	Secrets    secrets.Store
	Sealer     tables.Sealer
	Salesforce Records
	Mailboxes  Mailboxes
	// Reserve is the share of the org's daily API allocation the sync leaves to the org's own use: it
	// stops a run once Sforce-Limit-Info shows less than this left (default 0.1). Salesforce sends no
	// Retry-After, so the only way not to exhaust the allocation is to stop early.
	Reserve float64
	// Notifier tells the user and the admin when a user's sync has failed NotifyAfter runs in a row; nil:
	// nobody is told (the health API still shows it).
	Notifier Notifier
	Now      func() time.Time
	Log      *slog.Logger
}

// Syncer moves a mapped user's mailbox contacts to Salesforce.
type Syncer struct{ o SyncOptions }

// NewSyncer returns a syncer.
func NewSyncer(o SyncOptions) (*Syncer, error) {
	if o.Store == nil || o.Data == nil || o.Secrets == nil || o.Sealer == nil || o.Salesforce == nil || o.Mailboxes == nil {
		return nil, errors.New("crm sync: store, data, secrets, sealer, salesforce and mailboxes are required")
	}
	if o.Reserve <= 0 || o.Reserve >= 1 {
		o.Reserve = 0.1
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Syncer{o: o}, nil
}

// ErrDailyLimit stops a run: the org's daily API allocation is (nearly) used up. The rest of the
// tenant's users wait for the next run; other tenants are not affected.
var ErrDailyLimit = apperr.New(apperr.Unavailable, "the Salesforce org's daily API allocation is nearly used up", nil)

// Report is what one run did for one user: Created … Failed in Salesforce, Mailbox* in Outlook.
type Report struct {
	Skipped   string // why nothing ran: "not-mapped", "sync-off", "unlicensed", "restricted"
	Created   int
	Linked    int // existing Salesforce contacts matched by e-mail instead of created
	Updated   int
	Deleted   int
	Unchanged int
	Failed    int

	MailboxCreated int
	MailboxLinked  int // existing Outlook contacts matched (CRM id property, then e-mail) instead of created
	MailboxUpdated int
	MailboxDeleted int
	Echoes         int // Salesforce changes that were our own writes (or changed nothing mapped)
	Conflicts      int // records changed on both sides since the last sync, decided by last writer
	FullResync     bool
}

// contactStream names the delta query of the default Contacts folder in crmsyncstate, eventStream the
// calendarView delta of the default calendar.
const (
	contactStream = "contact." + graph.DefaultContactFolder
	eventStream   = "event.calendarView"
)

// Codes kept in crmsyncstate.LastCode.
const (
	CodeRecordsFailed     = "records_failed"
	CodeDailyLimit        = "salesforce_daily_limit"
	CodeCredentialMissing = "crm_credential_missing"
	CodeMailboxDenied     = "mailbox_access_denied" // Graph answered 403 for the user's mailbox
	CodeSyncFailed        = "sync_failed"           // Graph, Salesforce or storage failed; tried again next run
	// CodeOutlookRefusedPrefix starts the code of a Salesforce Contact Outlook refused
	// (crmsyncerrors.Code), followed by Graph's error code.
	CodeOutlookRefusedPrefix = "outlook_"
)

// SyncUser runs one user's sync, each record type and direction the mapping turns on: contacts
// (syncContacts), then events (syncEvents). Each type keeps its own stream in crmsyncstate (delta link,
// windows, the run's outcome); the report adds both up. A run that stops on contacts (the org's daily
// allocation, the mailbox refused) does not go on with events.
//
// Contacts, mailbox → Salesforce: the folder's delta since the last run (and the records that failed
// before, read again), each change matched against the ledger, new contacts matched by e-mail in
// Salesforce before any is created, writes in collections of up to 200, the outcome of each record
// kept in the ledger or crmsyncerrors. The delta link advances only when the run got through every
// change; a run cut short is done again, and the ledger makes that a no-op for what already went
// through.
//
// Contacts, Salesforce → mailbox: the getDeleted and getUpdated windows of Contact from where the last
// run left them (readCRM), the user's changed Contacts written to the default Contacts folder
// (reconcile), each conflict with the mailbox's changes of the same run decided before either side is
// written. The windows advance only when every change was written.
func (s *Syncer) SyncUser(ctx context.Context, tenant core.TenantID, userID string) (Report, error) {
	m, err := s.o.Data.Users.Get(ctx, tenant, userID)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return Report{Skipped: "not-mapped"}, nil
	case err != nil:
		return Report{}, fmt.Errorf("read mapping: %w", err)
	case !m.Contacts.ToCRM() && !m.Contacts.FromCRM() && !m.Events.ToCRM() && !m.Events.FromCRM():
		return Report{Skipped: "sync-off"}, nil
	}
	u, err := s.o.Store.Users.Get(ctx, tenant, userID)
	switch {
	case errors.Is(err, tables.ErrNotFound) || err == nil && !u.Licensed:
		return Report{Skipped: "unlicensed"}, nil
	case err != nil:
		return Report{}, fmt.Errorf("read user: %w", err)
	case u.ProcessingRestricted:
		return Report{Skipped: "restricted"}, nil
	}
	var total Report
	if m.Contacts != DirectionOff {
		rep, err := s.syncStream(ctx, tenant, m, contactStream, s.syncContacts)
		total.add(rep)
		if err != nil {
			return total, err
		}
	}
	if m.Events != DirectionOff {
		rep, err := s.syncStream(ctx, tenant, m, eventStream, s.syncEvents)
		total.add(rep)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// add sums another stream's report into r.
func (r *Report) add(o Report) {
	r.Created += o.Created
	r.Linked += o.Linked
	r.Updated += o.Updated
	r.Deleted += o.Deleted
	r.Unchanged += o.Unchanged
	r.Failed += o.Failed
	r.MailboxCreated += o.MailboxCreated
	r.MailboxLinked += o.MailboxLinked
	r.MailboxUpdated += o.MailboxUpdated
	r.MailboxDeleted += o.MailboxDeleted
	r.Echoes += o.Echoes
	r.Conflicts += o.Conflicts
	r.FullResync = r.FullResync || o.FullResync
}

// streamSync runs one record type's sync for a user and moves st on when it got through.
type streamSync func(ctx context.Context, tenant core.TenantID, m UserMapping, cred salesforce.Credential, st *SyncState) (Report, error)

// syncStream reads the stream's state and the credential, runs sync, and records the outcome.
func (s *Syncer) syncStream(ctx context.Context, tenant core.TenantID, m UserMapping, stream string, sync streamSync) (Report, error) {
	userID := m.UserID
	st, err := s.o.Data.SyncState.Get(ctx, tenant, tables.JoinKey(userID, stream))
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		return Report{}, fmt.Errorf("read sync state: %w", err)
	}
	st.UserID, st.Stream = userID, stream
	var cred salesforce.Credential
	if err := loadCredential(ctx, s.o.Secrets, s.o.Sealer, tenant, &cred); err != nil {
		if errors.Is(err, errNoCredential) {
			s.saveState(ctx, tenant, st, false, Report{}, CodeCredentialMissing)
			return Report{}, apperr.New(apperr.Conflict, "the CRM credential is missing; PUT the connection again", nil)
		}
		return Report{}, err
	}
	rep, err := sync(ctx, tenant, m, cred, &st)
	code := ""
	var ge *graph.Error
	switch {
	case errors.Is(err, ErrDailyLimit):
		code = CodeDailyLimit
	case errors.As(err, &ge) && ge.Status == http.StatusForbidden:
		code = CodeMailboxDenied
	case err != nil:
		code = CodeSyncFailed
	case rep.Failed > 0:
		code = CodeRecordsFailed
	}
	s.saveState(ctx, tenant, st, err == nil, rep, code)
	s.o.Log.InfoContext(ctx, "crm "+strings.SplitN(stream, ".", 2)[0]+"s synced", "created", rep.Created, "linked", rep.Linked, "updated", rep.Updated,
		"deleted", rep.Deleted, "unchanged", rep.Unchanged, "failed", rep.Failed,
		"mailbox_created", rep.MailboxCreated, "mailbox_linked", rep.MailboxLinked, "mailbox_updated", rep.MailboxUpdated,
		"mailbox_deleted", rep.MailboxDeleted, "echoes", rep.Echoes, "conflicts", rep.Conflicts, "full_resync", rep.FullResync,
		"code", code)
	return rep, err
}

// syncContacts runs both directions the mapping turns on and, when it got through everything, moves
// st's delta link and windows on; otherwise the same changes come again next run.
func (s *Syncer) syncContacts(ctx context.Context, tenant core.TenantID, m UserMapping, cred salesforce.Credential, st *SyncState) (Report, error) {
	mb, err := s.o.Mailboxes.For(ctx, tenant)
	if err != nil {
		return Report{}, fmt.Errorf("graph client: %w", err)
	}
	userID := m.UserID
	changes := map[string]graph.ContactChange{}
	link := ""
	if m.Contacts.ToCRM() {
		collect := func(c graph.ContactChange) error { changes[c.ID] = c; return nil } // a replayed item replaces itself
		link, err = mb.ContactsDelta(ctx, userID, graph.DefaultContactFolder, st.DeltaLink, collect)
		if errors.Is(err, graph.ErrDeltaExpired) {
			// Start over: the ledger matches what was synced, so a full enumeration writes only what changed.
			clear(changes)
			link, err = mb.ContactsDelta(ctx, userID, graph.DefaultContactFolder, "", collect)
		}
		if err != nil {
			return Report{}, fmt.Errorf("contacts delta: %w", err)
		}
	}
	r := s.newRun(tenant, m, cred, RecordContact)
	if err := r.load(ctx); err != nil {
		return Report{}, err
	}
	// Records that failed before come again even if the delta does not bring them.
	for id := range r.errs {
		if _, ok := changes[id]; ok || !m.Contacts.ToCRM() {
			continue
		}
		c, err := mb.GetContact(ctx, userID, graph.DefaultContactFolder, id)
		switch {
		case errors.Is(err, graph.ErrNotFound):
			changes[id] = graph.ContactChange{Contact: graph.Contact{ID: id}, Removed: true, RemovedReason: "deleted"}
		case err != nil:
			return Report{}, fmt.Errorf("get contact: %w", err)
		default:
			changes[id] = graph.ContactChange{Contact: c}
		}
	}
	var side *crmSide
	if m.Contacts.FromCRM() {
		if side, err = r.readCRM(ctx, *st); err == nil {
			r.rep.FullResync = side.full
			err = r.reconcile(ctx, mb, side, changes, m.Contacts.ToCRM())
		}
	}
	if err == nil && m.Contacts.ToCRM() {
		err = r.apply(ctx, mb, changes)
	}
	if err != nil {
		return r.rep, err
	}
	if link != "" {
		st.DeltaLink = link
	}
	if side != nil && !side.updatedTo.IsZero() {
		st.CRMUpdatedTo = side.updatedTo
	}
	if side != nil && !side.deletedTo.IsZero() {
		st.CRMDeletedTo = side.deletedTo
	}
	return r.rep, nil
}

// saveState records the run (ok: it got through, so it counts as a success) and counts the runs in a
// row that did not end clean (ok with no code); at NotifyAfter of them the user and the admin are told,
// once a streak. A failed write is logged: the next run redoes the same changes, which the ledger makes
// harmless.
func (s *Syncer) saveState(ctx context.Context, tenant core.TenantID, st SyncState, ok bool, rep Report, code string) {
	now := s.o.Now()
	if ok {
		st.LastSuccessAt = now
	}
	st.LastRunAt, st.LastCode = now, code
	st.Synced = rep.Created + rep.Linked + rep.Updated + rep.Deleted + rep.MailboxCreated + rep.MailboxLinked + rep.MailboxUpdated + rep.MailboxDeleted
	st.Failed = rep.Failed
	if ok && code == "" {
		st.FailedRuns, st.NotifiedAt = 0, time.Time{}
	} else {
		st.FailedRuns++
	}
	if st.FailedRuns >= NotifyAfter && st.NotifiedAt.IsZero() && s.o.Notifier != nil {
		if err := s.notify(ctx, tenant, st); err != nil {
			s.o.Log.WarnContext(ctx, "crm sync failure notice not sent", "error", err) // tried again next run
		} else {
			st.NotifiedAt = now
		}
	}
	if _, err := s.o.Data.SyncState.Upsert(ctx, tenant, st); err != nil {
		s.o.Log.WarnContext(ctx, "crm sync state not saved", "error", err)
	}
}

// run is one user's sync of one record type in memory.
type run struct {
	s      *Syncer
	tenant core.TenantID
	user   string
	owner  string
	cred   salesforce.Credential
	now    time.Time
	typ    string // the ledger's record type: RecordContact or RecordEvent
	object string // the Salesforce object: Contact or Event
	crmTyp string // the crmsyncerrors type of Salesforce records Outlook refused: RecordCRMContact, RecordCRMEvent
	ledger map[string]LedgerEntry
	errs   map[string]SyncError
	rep    Report
	// targets are the Salesforce ids the user's ledger already links, so two mailbox contacts never
	// claim one Salesforce contact.
	targets map[string]bool
	// crmErrs are the Salesforce Contacts Outlook refused before, by lower-case Salesforce id: read
	// again every run until they go through.
	crmErrs map[string]SyncError
	// outlook indexes the mailbox's contacts when many Salesforce Contacts need a match (a full
	// resync): one paged list instead of two lookups each; nil: look each up.
	outlook *outlookIndex
}

func (s *Syncer) newRun(tenant core.TenantID, m UserMapping, cred salesforce.Credential, typ string) *run {
	r := &run{s: s, tenant: tenant, user: m.UserID, owner: m.SalesforceUserID, cred: cred, now: s.o.Now(), typ: typ}
	switch typ {
	case RecordEvent:
		r.object, r.crmTyp = "Event", RecordCRMEvent
	default:
		r.object, r.crmTyp = "Contact", RecordCRMContact
	}
	return r
}

func (r *run) load(ctx context.Context) error {
	r.ledger, r.errs, r.targets = map[string]LedgerEntry{}, map[string]SyncError{}, map[string]bool{}
	prefix := tables.JoinKey(r.user, r.typ) + tables.KeySep
	for tok := ""; ; {
		p, err := r.s.o.Data.Ledger.ListPrefix(ctx, r.tenant, prefix, &tables.ListOptions{Token: tok})
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		for _, e := range p.Items {
			r.ledger[e.SourceID] = e
			if e.TargetID != "" && e.DeletedAt.IsZero() {
				r.targets[strings.ToLower(e.TargetID)] = true
			}
		}
		if tok = p.Next; tok == "" {
			break
		}
	}
	for tok := ""; ; {
		p, err := r.s.o.Data.SyncErrors.ListPrefix(ctx, r.tenant, prefix, &tables.ListOptions{Token: tok})
		if err != nil {
			return fmt.Errorf("read sync errors: %w", err)
		}
		for _, e := range p.Items {
			r.errs[e.SourceID] = e
		}
		if tok = p.Next; tok == "" {
			break
		}
	}
	r.crmErrs = map[string]SyncError{}
	for tok := ""; ; {
		p, err := r.s.o.Data.SyncErrors.ListPrefix(ctx, r.tenant, tables.JoinKey(r.user, r.crmTyp)+tables.KeySep, &tables.ListOptions{Token: tok})
		if err != nil {
			return fmt.Errorf("read sync errors: %w", err)
		}
		for _, e := range p.Items {
			r.crmErrs[strings.ToLower(e.SourceID)] = e
		}
		if tok = p.Next; tok == "" {
			return nil
		}
	}
}

// pending is one record on its way to Salesforce, in memory only.
type pending struct {
	c      source
	fields map[string]any
	digest string
	target string // Salesforce id for an update or delete
}

// source is what the writes need of a mailbox item: its id, version, own modification time and, for a
// failure, the name its user knows it by.
type source struct {
	ID           string
	ChangeKey    string
	LastModified time.Time
	Name         string
}

func contactSource(c graph.Contact) source {
	return source{ID: c.ID, ChangeKey: c.ChangeKey, LastModified: c.LastModified, Name: displayName(c)}
}

func (r *run) apply(ctx context.Context, mb Mailbox, changes map[string]graph.ContactChange) error {
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	sort.Strings(ids) // a stable order: runs that are cut short cut at the same place
	var creates, updates, deletes []pending
	var done []LedgerEntry
	var cleared []string
	for _, id := range ids {
		ch := changes[id]
		led, known := r.ledger[id]
		if ch.Removed {
			switch {
			case known && led.DeletedAt.IsZero() && led.TargetID != "":
				deletes = append(deletes, pending{c: contactSource(ch.Contact), target: led.TargetID})
			case known && led.DeletedAt.IsZero():
				led.DeletedAt = r.now
				done = append(done, led)
			}
			if _, failed := r.errs[id]; failed && !(known && led.DeletedAt.IsZero() && led.TargetID != "") {
				cleared = append(cleared, id) // nothing left to sync
			}
			continue
		}
		if known && !led.DeletedAt.IsZero() {
			// Deleted once, never created again from the same mailbox item.
			r.rep.Unchanged++
			continue
		}
		fields := contactFields(ch.Contact)
		p := pending{c: contactSource(ch.Contact), fields: fields, digest: r.digest(id, fields)}
		switch {
		case known && led.TargetID != "" && (led.SourceChangeKey == ch.ChangeKey || led.Digest == p.digest):
			r.rep.Unchanged++
			if led.SourceChangeKey != ch.ChangeKey {
				led.SourceChangeKey, led.SourceModified = ch.ChangeKey, ch.LastModified
				done = append(done, led)
			}
			if _, failed := r.errs[id]; failed {
				cleared = append(cleared, id)
			}
		case known && led.TargetID != "":
			p.target = led.TargetID
			updates = append(updates, p)
		default:
			creates = append(creates, p)
		}
	}
	if err := r.record(ctx, done, cleared, nil); err != nil {
		return err
	}
	creates, byID, err := r.matchByCRMID(ctx, mb, creates)
	if err != nil {
		return err
	}
	creates, matched, err := r.match(ctx, creates)
	matched = append(byID, matched...)
	if err != nil {
		return err
	}
	updates = append(updates, matched...)
	if err := r.write(ctx, "create", creates); err != nil {
		return err
	}
	if err := r.write(ctx, "update", updates); err != nil {
		return err
	}
	return r.write(ctx, "delete", deletes)
}

// match looks up the new contacts' e-mail addresses among the org's Contacts: one that exists is
// linked instead of created, so turning the sync on never duplicates what Salesforce already has.
// The newer side wins: when the mailbox's copy was modified after Salesforce's, it is written over it;
// else the link is made and nothing is written. It returns what is left to create and what to update.
func (r *run) match(ctx context.Context, creates []pending) (left, updates []pending, err error) {
	byEmail := map[string][]int{}
	var emails []string
	for i, p := range creates {
		e, _ := p.fields["Email"].(string)
		if e == "" {
			continue
		}
		k := strings.ToLower(e)
		if byEmail[k] == nil {
			emails = append(emails, e)
		}
		byEmail[k] = append(byEmail[k], i)
	}
	type found struct {
		id       string
		modified time.Time
	}
	existing := map[string][]found{}
	// SOQL statements are limited to 100,000 characters (SOQL reference, "SOQL Limits"), and the query
	// goes in the URL: 50 addresses a query stays far below both.
	for start := 0; start < len(emails); start += 50 {
		chunk := emails[start:min(start+50, len(emails))]
		quoted := make([]string, len(chunk))
		for i, e := range chunk {
			quoted[i] = salesforce.Quote(e)
		}
		soql := "SELECT Id, Email, LastModifiedDate FROM Contact WHERE Email IN (" + strings.Join(quoted, ",") + ")"
		h, err := r.s.o.Salesforce.Query(ctx, r.tenant, r.cred, soql, func(raw json.RawMessage) error {
			var rec struct {
				ID       string `json:"Id"`
				Email    string `json:"Email"`
				Modified string `json:"LastModifiedDate"`
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			t, _ := time.Parse("2006-01-02T15:04:05.000-0700", rec.Modified)
			k := strings.ToLower(rec.Email)
			existing[k] = append(existing[k], found{id: rec.ID, modified: t})
			return nil
		})
		if err := r.callFailed(err); err != nil {
			return nil, nil, fmt.Errorf("match contacts: %w", err)
		}
		if err := r.limit(h); err != nil {
			return nil, nil, err
		}
	}
	var links []LedgerEntry
	taken := make([]bool, len(creates))
	for k, idx := range byEmail {
		cands := existing[k]
		sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
		for _, i := range idx {
			for _, f := range cands {
				if r.targets[strings.ToLower(f.id)] {
					continue
				}
				r.targets[strings.ToLower(f.id)] = true
				taken[i] = true
				p := creates[i]
				r.rep.Linked++
				if p.c.LastModified.After(f.modified) {
					p.target = f.id
					updates = append(updates, p)
				} else {
					links = append(links, LedgerEntry{UserID: r.user, Type: r.typ, SourceID: p.c.ID, TargetID: f.id,
						SourceChangeKey: p.c.ChangeKey, SourceModified: p.c.LastModified, TargetModified: f.modified,
						MatchedBy: MatchedByEmail, SyncedAt: r.now})
				}
				break
			}
		}
	}
	for i, p := range creates {
		if !taken[i] {
			left = append(left, p)
		}
	}
	var cleared []string
	for _, l := range links {
		if _, failed := r.errs[l.SourceID]; failed {
			cleared = append(cleared, l.SourceID)
		}
	}
	return left, updates, r.record(ctx, links, cleared, nil)
}

// write sends one kind of change in collections of up to 200 and records each record's outcome.
func (r *run) write(ctx context.Context, op string, ps []pending) error {
	for start := 0; start < len(ps); start += salesforce.MaxCollection {
		chunk := ps[start:min(start+salesforce.MaxCollection, len(ps))]
		var res []salesforce.Result
		var h http.Header
		var err error
		switch op {
		case "delete":
			ids := make([]string, len(chunk))
			for i, p := range chunk {
				ids[i] = p.target
			}
			res, h, err = r.s.o.Salesforce.Delete(ctx, r.tenant, r.cred, ids)
		default:
			recs := make([]map[string]any, len(chunk))
			for i, p := range chunk {
				rec := make(map[string]any, len(p.fields)+1)
				for k, v := range p.fields {
					if v == "" {
						if op == "create" {
							continue
						}
						v = nil // clears the field in Salesforce
					}
					rec[k] = v
				}
				if op == "create" {
					rec["OwnerId"] = r.owner
				} else {
					rec["id"] = p.target
				}
				recs[i] = rec
			}
			res, h, err = r.s.o.Salesforce.Save(ctx, r.tenant, r.cred, r.object, op == "update", recs)
		}
		if err := r.callFailed(err); err != nil {
			return fmt.Errorf("%s %ss: %w", op, r.typ, err)
		}
		var done []LedgerEntry
		var cleared []string
		var failed []SyncError
		for i, p := range chunk {
			id := p.c.ID
			led := r.ledger[id]
			led.UserID, led.Type, led.SourceID = r.user, r.typ, id
			gone := !res[i].OK && (res[i].Code == "ENTITY_IS_DELETED" || res[i].Code == "INVALID_CROSS_REFERENCE_KEY")
			switch {
			case op == "delete" && (res[i].OK || gone):
				led.DeletedAt, led.SyncedAt = r.now, r.now
				r.rep.Deleted++
			case op == "update" && gone:
				// Deleted in Salesforce meanwhile: that deletion stands; the mailbox item is not written again.
				led.DeletedAt, led.SyncedAt = r.now, r.now
				r.rep.Deleted++
			case res[i].OK:
				if op == "create" {
					led.TargetID, led.MatchedBy = res[i].ID, MatchedCreated
					r.rep.Created++
				} else if led.MatchedBy == "" {
					led.TargetID, led.MatchedBy = p.target, MatchedByEmail
				} else {
					r.rep.Updated++
				}
				led.SourceChangeKey, led.SourceModified, led.TargetModified = p.c.ChangeKey, p.c.LastModified, r.now
				led.Digest, led.SyncedAt = p.digest, r.now
			default:
				r.rep.Failed++
				e := r.errs[id]
				if e.Attempts == 0 {
					e.FirstFailedAt = r.now
				}
				e.UserID, e.Type, e.SourceID = r.user, r.typ, id
				e.DisplayName, e.Code, e.Fields = p.c.Name, res[i].Code, strings.Join(res[i].Fields, ",")
				e.Attempts++
				e.LastFailedAt = r.now
				failed = append(failed, e)
				continue
			}
			done = append(done, led)
			if _, was := r.errs[id]; was {
				cleared = append(cleared, id)
			}
		}
		if err := r.record(ctx, done, cleared, failed); err != nil {
			return err
		}
		if err := r.limit(h); err != nil {
			return err
		}
	}
	return nil
}

// callFailed turns a refused call into ErrDailyLimit when Salesforce says the allocation is used up.
func (r *run) callFailed(err error) error {
	var ae *salesforce.APIError
	if errors.As(err, &ae) && ae.ErrorCode == "REQUEST_LIMIT_EXCEEDED" {
		return ErrDailyLimit
	}
	return err
}

// limit stops the run once the org has less than the reserve of its daily allocation left.
func (r *run) limit(h http.Header) error {
	u, ok := salesforce.ParseLimitInfo(h)
	if ok && float64(u.Max-u.Used) < r.s.o.Reserve*float64(u.Max) {
		return ErrDailyLimit
	}
	return nil
}

// record writes ledger rows, removes the sync errors of records that went through and writes those of
// records that failed.
func (r *run) record(ctx context.Context, done []LedgerEntry, cleared []string, failed []SyncError) error {
	if len(done) > 0 {
		if err := r.s.o.Data.Ledger.UpsertBatch(ctx, r.tenant, done); err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
		for _, l := range done {
			r.ledger[l.SourceID] = l
			if l.TargetID != "" && l.DeletedAt.IsZero() {
				r.targets[strings.ToLower(l.TargetID)] = true
			}
		}
	}
	if len(failed) > 0 {
		if err := r.s.o.Data.SyncErrors.UpsertBatch(ctx, r.tenant, failed); err != nil {
			return fmt.Errorf("write sync errors: %w", err)
		}
		for _, e := range failed {
			r.errs[e.SourceID] = e
		}
	}
	if len(cleared) > 0 {
		rks := make([]string, 0, len(cleared))
		for _, id := range cleared {
			rk, err := ledgerKey(r.user, r.typ, id)
			if err != nil {
				return err
			}
			rks = append(rks, rk)
			delete(r.errs, id)
		}
		if _, err := r.s.o.Data.SyncErrors.DeleteBatch(ctx, r.tenant, rks); err != nil {
			return fmt.Errorf("clear sync errors: %w", err)
		}
	}
	return nil
}

// digest is a salted SHA-256 of the mapped fields (tenant, user and item id are the salt), so equal
// contents of two records or two tenants never share a digest; only whether a write would change
// anything is read from it.
func (r *run) digest(sourceID string, fields map[string]any) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	h.Write([]byte(string(r.tenant) + "\x00" + r.user + "\x00" + sourceID))
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s\x01%v", k, fields[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// displayName is how a failed record is named to its user: the name Outlook shows, else the parts.
func displayName(c graph.Contact) string {
	if c.DisplayName != "" {
		return truncate(c.DisplayName, 255)
	}
	return truncate(strings.TrimSpace(c.GivenName+" "+c.Surname), 255)
}

// contactFields maps an Outlook contact to Salesforce Contact fields (next-capabilities §3.7), each cut
// to the field's length in Salesforce (Object reference, Contact) so that a long value is shortened
// rather than refused with STRING_TOO_LONG. Company has no Contact field (it is the Account's name, a
// lookup) and is not written.
func contactFields(c graph.Contact) map[string]any {
	email := ""
	if len(c.Emails) > 0 {
		email = c.Emails[0]
	}
	return map[string]any{
		"FirstName":         truncate(c.GivenName, 40),
		"LastName":          truncate(c.Surname, 80),
		"Email":             truncate(email, 80),
		"Title":             truncate(c.JobTitle, 128),
		"Phone":             truncate(c.BusinessPhone, 40),
		"MobilePhone":       truncate(c.MobilePhone, 40),
		"Department":        truncate(c.Department, 80),
		"MailingStreet":     truncate(c.Business.Street, 255),
		"MailingCity":       truncate(c.Business.City, 40),
		"MailingState":      truncate(c.Business.State, 80),
		"MailingPostalCode": truncate(c.Business.PostalCode, 20),
		"MailingCountry":    truncate(c.Business.CountryOrRegion, 80),
	}
}

// truncate cuts s to at most n characters, on a character boundary.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
