package crm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
)

// CRMIDProperty is the single-value extended property every Outlook contact the sync writes carries:
// the Salesforce Contact's id. A contact found with it is the one we wrote (matched before creating, so
// a lost ledger never makes a duplicate); the GUID is ConnectHub's own property set.
const CRMIDProperty = "String {0c7e2b4a-93d1-4f5e-8a6b-1d2c3e4f5a6b} Name ConnectHubSalesforceContactId"

// sfContactFields are what the sync reads of a Salesforce Contact: the mapped fields (contactFields),
// its owner and its own last modification.
const sfContactSelect = "Id, OwnerId, LastModifiedDate, FirstName, LastName, Email, Title, Phone, MobilePhone, Department, " +
	"MailingStreet, MailingCity, MailingState, MailingPostalCode, MailingCountry"

var mappedFields = []string{"FirstName", "LastName", "Email", "Title", "Phone", "MobilePhone", "Department",
	"MailingStreet", "MailingCity", "MailingState", "MailingPostalCode", "MailingCountry"}

// sfContact is a Salesforce Contact or Event in memory during a run.
type sfContact struct {
	id       string
	modified time.Time
	fields   map[string]any     // the mapped fields, as contactFields (or eventFields) gives them ("" for null)
	event    graph.MailboxEvent // an Event as Outlook would hold it (events only)
}

// crmSide is what Salesforce changed for the user since the last run.
type crmSide struct {
	changed map[string]sfContact // by Salesforce id: live Contacts the user owns
	deleted map[string]bool      // Salesforce ids deleted
	// updatedTo and deletedTo are the next windows' starts (latestDateCovered); zero: keep the old.
	updatedTo, deletedTo time.Time
	full                 bool
}

// replicationMargin keeps a window's start clear of the edge Salesforce refuses (30 or 15 days back):
// a start that old is read as a full resync instead.
const replicationMargin = time.Hour

// readCRM reads the user's Contact changes in Salesforce: the getDeleted and getUpdated windows from
// where the last run's latestDateCovered left them, and the changed records the user owns. A first run,
// a window older than Salesforce keeps, or deletions purged after our last sync (earliestDateAvailable
// later than our start) make it a full resync: every Contact the user owns, and the ledger's links
// whose Salesforce record is gone counted as deleted.
func (r *run) readCRM(ctx context.Context, st SyncState) (*crmSide, error) {
	side := &crmSide{changed: map[string]sfContact{}, deleted: map[string]bool{}}
	now := r.now.UTC()
	side.full = st.CRMUpdatedTo.IsZero() || st.CRMDeletedTo.IsZero() ||
		st.CRMUpdatedTo.Before(now.Add(-salesforce.UpdatedWindow+replicationMargin)) ||
		st.CRMDeletedTo.Before(now.Add(-salesforce.DeletedWindow+replicationMargin))
	// Salesforce drops the seconds: a window within the current minute is empty (and refused). The two
	// windows move on separately (a narrowed one lags), so each is asked only when it is open.
	open := func(from time.Time) bool { return from.Truncate(time.Minute).Before(now.Truncate(time.Minute)) }
	if !side.full && open(st.CRMDeletedTo) {
		var del salesforce.Deleted
		var h http.Header
		err := narrowing(st.CRMDeletedTo, now, func(end time.Time) (err error) {
			del, h, err = r.s.o.Salesforce.Deleted(ctx, r.tenant, r.cred, r.object, st.CRMDeletedTo, end)
			return err
		})
		if err := r.callFailed(err); err != nil {
			return nil, fmt.Errorf("%ss deleted in salesforce: %w", r.typ, err)
		}
		if err := r.limit(h); err != nil {
			return nil, err
		}
		if del.EarliestDateAvailable.After(st.CRMDeletedTo) {
			side.full = true // deletions since our last sync may be purged: only a full resync finds them
		} else {
			for _, d := range del.Records {
				side.deleted[strings.ToLower(d.ID)] = true
			}
			side.deletedTo = del.LatestDateCovered
		}
	}
	if side.full {
		return side, r.readAllCRM(ctx, side)
	}
	if !open(st.CRMUpdatedTo) {
		return side, r.fetchContacts(ctx, r.refused(side), side)
	}
	var up salesforce.Updated
	var h http.Header
	err := narrowing(st.CRMUpdatedTo, now, func(end time.Time) (err error) {
		up, h, err = r.s.o.Salesforce.Updated(ctx, r.tenant, r.cred, r.object, st.CRMUpdatedTo, end)
		return err
	})
	if err := r.callFailed(err); err != nil {
		return nil, fmt.Errorf("%ss updated in salesforce: %w", r.typ, err)
	}
	if err := r.limit(h); err != nil {
		return nil, err
	}
	side.updatedTo = up.LatestDateCovered
	return side, r.fetchContacts(ctx, append(up.IDs, r.refused(side)...), side)
}

// refused lists the Salesforce Contacts Outlook refused before that the windows did not bring: they
// are read again until they go through (or leave with S7).
func (r *run) refused(side *crmSide) []string {
	var ids []string
	for id, e := range r.crmErrs {
		if _, ok := side.changed[id]; !ok && !side.deleted[id] {
			ids = append(ids, e.SourceID)
		}
	}
	sort.Strings(ids)
	return ids
}

// narrowing calls window with end, halving the window while Salesforce answers EXCEEDED_ID_LIMIT
// (more than 600,000 ids: "choose start and end dates that are closer together"); the run then covers
// the part that fits, and the next starts from its latestDateCovered. A window of a minute or two that
// is still too large is an error (every call counts against the daily allocation).
func narrowing(start, end time.Time, window func(end time.Time) error) error {
	for {
		err := window(end)
		var ae *salesforce.APIError
		if !errors.As(err, &ae) || ae.ErrorCode != "EXCEEDED_ID_LIMIT" || end.Sub(start) < 2*time.Minute {
			return err
		}
		end = start.Add(end.Sub(start) / 2)
	}
}

// idsPerQuery bounds the ids of one SOQL IN list: 100 quoted 18-character ids keep the URL near 2,500
// characters, far below the 16,384 Salesforce takes in a request line and the 100,000 of a statement.
const idsPerQuery = 100

// fetchContacts reads the records with these ids that the user owns (deleted ones are not returned).
func (r *run) fetchContacts(ctx context.Context, ids []string, side *crmSide) error {
	for start := 0; start < len(ids); start += idsPerQuery {
		chunk := ids[start:min(start+idsPerQuery, len(ids))]
		quoted := make([]string, 0, len(chunk))
		for _, id := range chunk {
			if salesforce.ValidID(id) {
				quoted = append(quoted, salesforce.Quote(id))
			}
		}
		if len(quoted) == 0 {
			continue
		}
		soql := "SELECT " + r.sfSelect() + " FROM " + r.object + " WHERE OwnerId = " + salesforce.Quote(r.owner) +
			" AND Id IN (" + strings.Join(quoted, ",") + ")"
		if err := r.queryContacts(ctx, soql, side); err != nil {
			return err
		}
	}
	return nil
}

// clockOverlap is how far before our own minute the windows after a full read start. Salesforce stamps
// changes with its clock, which may run behind ours (it accepts our assertions up to 3 minutes ahead):
// starting at our minute would skip, for good, a change made just after the read but stamped before
// our now. Changes read twice are recognised by the ledger's dates and digests.
const clockOverlap = 5 * time.Minute

// readAllCRM reads every Contact the user owns, and counts as deleted the ledger's live links whose
// Salesforce record no longer exists. The next windows start clockOverlap before the current minute.
func (r *run) readAllCRM(ctx context.Context, side *crmSide) error {
	side.updatedTo = r.now.UTC().Truncate(time.Minute).Add(-clockOverlap)
	side.deletedTo = side.updatedTo
	soql := "SELECT " + r.sfSelect() + " FROM " + r.object + " WHERE OwnerId = " + salesforce.Quote(r.owner) + r.fullReadFilter()
	if err := r.queryContacts(ctx, soql, side); err != nil {
		return err
	}
	var missing []string
	for _, l := range r.ledger {
		if l.TargetID != "" && l.DeletedAt.IsZero() {
			if _, ok := side.changed[strings.ToLower(l.TargetID)]; !ok && salesforce.ValidID(l.TargetID) {
				missing = append(missing, l.TargetID)
			}
		}
	}
	sort.Strings(missing)
	live := map[string]bool{}
	for start := 0; start < len(missing); start += idsPerQuery {
		chunk := missing[start:min(start+idsPerQuery, len(missing))]
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = salesforce.Quote(id)
		}
		// Records another user owns now are still there; only those the query does not return are gone.
		h, err := r.s.o.Salesforce.Query(ctx, r.tenant, r.cred, "SELECT Id FROM "+r.object+" WHERE Id IN ("+strings.Join(quoted, ",")+")",
			func(raw json.RawMessage) error {
				var rec struct {
					ID string `json:"Id"`
				}
				if err := json.Unmarshal(raw, &rec); err != nil {
					return err
				}
				live[strings.ToLower(rec.ID)] = true
				return nil
			})
		if err := r.callFailed(err); err != nil {
			return fmt.Errorf("check salesforce %ss: %w", r.typ, err)
		}
		if err := r.limit(h); err != nil {
			return err
		}
	}
	for _, id := range missing {
		if !live[strings.ToLower(id)] {
			side.deleted[strings.ToLower(id)] = true
		}
	}
	return nil
}

func (r *run) queryContacts(ctx context.Context, soql string, side *crmSide) error {
	h, err := r.s.o.Salesforce.Query(ctx, r.tenant, r.cred, soql, func(raw json.RawMessage) error {
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil {
			return err
		}
		c := r.sfRecord(rec)
		c.id, _ = rec["Id"].(string)
		m, _ := rec["LastModifiedDate"].(string)
		c.modified = salesforce.ParseTime(m)
		if salesforce.ValidID(c.id) {
			side.changed[strings.ToLower(c.id)] = c
		}
		return nil
	})
	if err := r.callFailed(err); err != nil {
		return fmt.Errorf("read salesforce %ss: %w", r.typ, err)
	}
	return r.limit(h)
}

// fullReadFilter narrows a full read of Events to those that can overlap the sync window: an Event
// lasts at most 14 days, so its ActivityDate (the start's date, timed or all-day) is at most 14 days
// before the window's start. Contacts are read whole.
func (r *run) fullReadFilter() string {
	if r.typ != RecordEvent {
		return ""
	}
	start, end := eventWindow(r.now)
	return " AND ActivityDate >= " + start.AddDate(0, 0, -14).Format(time.DateOnly) + " AND ActivityDate < " + end.Format(time.DateOnly)
}

// sfSelect is what the run reads of a Salesforce record of its object.
func (r *run) sfSelect() string {
	if r.typ == RecordEvent {
		return sfEventSelect
	}
	return sfContactSelect
}

// sfRecord maps a queried record's fields as the other direction maps the mailbox's, so that a digest
// of either side compares.
func (r *run) sfRecord(rec map[string]any) sfContact {
	if r.typ == RecordEvent {
		e := sfToMailboxEvent(rec)
		return sfContact{fields: eventFields(e), event: e}
	}
	c := sfContact{fields: make(map[string]any, len(mappedFields))}
	for _, f := range mappedFields {
		v, _ := rec[f].(string)
		c.fields[f] = v
	}
	return c
}

// outlookWrite is the Outlook contact for a Salesforce Contact's fields. The mailbox's other e-mail
// addresses are kept after the one Salesforce holds; Outlook's other business phones are not (only the
// first maps to Phone).
func outlookWrite(c sfContact, others []string) graph.ContactWrite {
	s := func(k string) string { v, _ := c.fields[k].(string); return v }
	var emails []string
	if e := s("Email"); e != "" {
		emails = append(emails, e)
	}
	emails = append(emails, others...)
	return graph.ContactWrite{GivenName: s("FirstName"), Surname: s("LastName"), Emails: emails, JobTitle: s("Title"),
		Department: s("Department"), BusinessPhone: s("Phone"), MobilePhone: s("MobilePhone"),
		Business: graph.Address{Street: s("MailingStreet"), City: s("MailingCity"), State: s("MailingState"),
			PostalCode: s("MailingPostalCode"), CountryOrRegion: s("MailingCountry")},
		Properties: map[string]string{CRMIDProperty: c.id}}
}

// reconcile brings Salesforce's changes to the mailbox, deciding each conflict with the mailbox's
// changes of the same run (changes, which it edits: a mailbox change that lost, or that is older than
// what was just written over it, is dropped; a linked contact whose mailbox copy is newer is added).
// The rules (docs/architecture.md, "Contact sync rules"):
//   - a deletion on either side wins over an edit on the other, and a record deleted once is never
//     created again (the ledger's tombstone);
//   - an edit whose mapped fields digest to what the ledger holds is an echo of our own write (or
//     changes nothing mapped) and is dropped: Salesforce's windows do not say which client made a change
//     (only Change Data Capture's changeOrigin does), so the ledger is how our own writes are told;
//   - edits on both sides since the last sync: the record with the later modification time of its own
//     (Outlook's lastModifiedDateTime, Salesforce's LastModifiedDate) wins whole;
//   - a Salesforce Contact with no link is matched before anything is created: the Outlook contact that
//     carries its id in CRMIDProperty, then one with its e-mail address that is not linked yet.
func (r *run) reconcile(ctx context.Context, mb Mailbox, side *crmSide, changes map[string]graph.ContactChange, toCRM bool) error {
	byTarget := map[string]LedgerEntry{}
	for _, l := range r.ledger {
		if l.TargetID != "" {
			byTarget[strings.ToLower(l.TargetID)] = l
		}
	}
	var done []LedgerEntry
	var failed []SyncError
	var cleared []string // Salesforce ids whose refusal is over
	flush := func() error {
		err := r.saveMailboxWrites(ctx, done, failed, cleared)
		done, failed, cleared = nil, nil, nil
		return err
	}
	deleted := make([]string, 0, len(side.deleted))
	for id := range side.deleted {
		deleted = append(deleted, id)
	}
	sort.Strings(deleted)
	for _, id := range deleted {
		if e, was := r.crmErrs[id]; was {
			cleared = append(cleared, e.SourceID) // gone from Salesforce: nothing left to bring in
		}
		led, ok := byTarget[id]
		if !ok || !led.DeletedAt.IsZero() {
			continue
		}
		if ch, ok := changes[led.SourceID]; !ok || !ch.Removed {
			err := mb.DeleteContact(ctx, r.user, graph.DefaultContactFolder, led.SourceID)
			if err != nil && !errors.Is(err, graph.ErrNotFound) {
				return errors.Join(fmt.Errorf("delete contact: %w", err), flush())
			}
			r.rep.MailboxDeleted++
		}
		delete(changes, led.SourceID) // deleted on both sides now: nothing left for the mailbox pass
		led.DeletedAt, led.SyncedAt = r.now, r.now
		done = append(done, led)
	}
	ids := make([]string, 0, len(side.changed))
	unknown := 0
	for id := range side.changed {
		ids = append(ids, id)
		if _, ok := byTarget[id]; !ok {
			unknown++
		}
	}
	sort.Strings(ids)
	if unknown > lookupsPerRun {
		if err := r.indexMailbox(ctx, mb); err != nil {
			return errors.Join(err, flush())
		}
	}
	for _, id := range ids {
		c := side.changed[id]
		led, known := byTarget[id]
		if known && !led.DeletedAt.IsZero() {
			continue // deleted once: never again
		}
		var err error
		if known {
			err = r.toMailbox(ctx, mb, c, led, changes, toCRM, &done)
		} else {
			err = r.matchOrCreate(ctx, mb, c, changes, toCRM, &done)
		}
		if code, refused := outlookRefused(err); refused {
			failed = append(failed, r.crmFailure(c, code))
			continue
		}
		if err != nil {
			return errors.Join(err, flush())
		}
		if _, was := r.crmErrs[id]; was {
			cleared = append(cleared, r.crmErrs[id].SourceID)
		}
	}
	return flush()
}

// outlookRefused reports whether Graph refused one record for what it holds (400, 413, 422: a value
// Outlook does not take), as opposed to the mailbox or the service (401, 403, 404, 429, 5xx), which
// stops the run. The code names the refusal for crmsyncerrors.
func outlookRefused(err error) (string, bool) {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return "", false
	}
	switch ge.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return CodeOutlookRefusedPrefix + cmp.Or(ge.Code, strconv.Itoa(ge.Status)), true
	}
	return "", false
}

// crmFailure is the crmsyncerrors row of a Salesforce Contact Outlook refused, named as Salesforce
// names it.
func (r *run) crmFailure(c sfContact, code string) SyncError {
	first, _ := c.fields["FirstName"].(string)
	last, _ := c.fields["LastName"].(string)
	return r.crmRefusal(c.id, RecordCRMContact, strings.TrimSpace(first+" "+last), code)
}

// crmRefusal is the crmsyncerrors row of a Salesforce record Outlook refused (type typ), named as the
// user knows it, counting one more attempt.
func (r *run) crmRefusal(id, typ, name, code string) SyncError {
	e := r.crmErrs[strings.ToLower(id)]
	if e.Attempts == 0 {
		e.FirstFailedAt = r.now
	}
	e.UserID, e.Type, e.SourceID = r.user, typ, id
	e.DisplayName, e.Code, e.Fields = truncate(name, 255), code, ""
	e.Attempts++
	e.LastFailedAt = r.now
	r.rep.Failed++
	return e
}

// toMailbox writes a linked Salesforce Contact's change over its Outlook contact, unless it is an echo
// or the mailbox's own change of the same run is newer or a deletion.
func (r *run) toMailbox(ctx context.Context, mb Mailbox, c sfContact, led LedgerEntry, changes map[string]graph.ContactChange,
	toCRM bool, done *[]LedgerEntry) error {
	digest := r.digest(led.SourceID, c.fields)
	if digest == led.Digest {
		r.rep.Echoes++
		return nil
	}
	ch, changed := changes[led.SourceID]
	if changed && ch.Removed {
		return nil // the mailbox's deletion wins; the mailbox pass deletes the Salesforce record
	}
	var others []string
	if changed {
		mine := ch.ChangeKey == led.SourceChangeKey || r.digest(led.SourceID, contactFields(ch.Contact)) == led.Digest
		if !mine && toCRM && ch.LastModified.After(c.modified) {
			r.rep.Conflicts++
			return nil // the mailbox's edit is newer: the mailbox pass writes it over Salesforce's
		}
		if !mine {
			r.rep.Conflicts++
		}
		others = otherEmails(ch.Contact)
	} else {
		cur, err := mb.GetContact(ctx, r.user, graph.DefaultContactFolder, led.SourceID)
		if errors.Is(err, graph.ErrNotFound) {
			r.goneFromMailbox(done, led, toCRM)
			return nil
		}
		if err != nil {
			return fmt.Errorf("get contact: %w", err)
		}
		others = otherEmails(cur)
	}
	w, err := mb.UpdateContact(ctx, r.user, graph.DefaultContactFolder, led.SourceID, outlookWrite(c, others))
	if errors.Is(err, graph.ErrNotFound) {
		r.goneFromMailbox(done, led, toCRM)
		return nil
	}
	if err != nil {
		return fmt.Errorf("update contact: %w", err)
	}
	delete(changes, led.SourceID) // what the delta brought is older than what was just written
	r.rep.MailboxUpdated++
	r.linked(done, led, w, c, digest)
	return nil
}

// goneFromMailbox handles a linked Outlook contact that is no longer there. When mailbox changes go to
// Salesforce, the next delta brings the deletion and the mailbox pass deletes the Salesforce record;
// when they do not, the deletion is recorded here, so the contact is never created again in Outlook.
func (r *run) goneFromMailbox(done *[]LedgerEntry, led LedgerEntry, toCRM bool) {
	if toCRM {
		return
	}
	led.DeletedAt, led.SyncedAt = r.now, r.now
	*done = append(*done, led)
}

// matchOrCreate links a Salesforce Contact to the Outlook contact that carries its id or its e-mail
// address, else creates one.
func (r *run) matchOrCreate(ctx context.Context, mb Mailbox, c sfContact, changes map[string]graph.ContactChange, toCRM bool,
	done *[]LedgerEntry) error {
	free := func(found []graph.Contact) (graph.Contact, bool) {
		for _, f := range found {
			if l, ok := r.ledger[f.ID]; !ok || l.TargetID == "" {
				return f, true
			}
		}
		return graph.Contact{}, false
	}
	var found []graph.Contact
	var err error
	if r.outlook != nil {
		found = r.outlook.byCRM[strings.ToLower(c.id)]
	} else if found, err = mb.FindContacts(ctx, r.user, graph.DefaultContactFolder, CRMIDProperty, c.id, ""); err != nil {
		return fmt.Errorf("find contact by crm id: %w", err)
	}
	match, ok := free(found)
	by := MatchedByCRMID
	if email, _ := c.fields["Email"].(string); !ok && email != "" {
		if r.outlook != nil {
			found = r.outlook.byEmail[strings.ToLower(email)]
		} else if found, err = mb.FindContacts(ctx, r.user, graph.DefaultContactFolder, CRMIDProperty, "", email); err != nil {
			return fmt.Errorf("find contact by e-mail: %w", err)
		}
		match, ok = free(found)
		by = MatchedByEmail
	}
	if !ok {
		w, err := mb.CreateContact(ctx, r.user, graph.DefaultContactFolder, withDisplayName(outlookWrite(c, nil)))
		if err != nil {
			return fmt.Errorf("create contact: %w", err)
		}
		r.rep.MailboxCreated++
		r.linked(done, LedgerEntry{MatchedBy: MatchedFromCRM}, w, c, r.digest(w.ID, c.fields))
		return nil
	}
	r.rep.MailboxLinked++
	if toCRM && match.LastModified.After(c.modified) {
		// The mailbox's copy is newer: link without a digest, and let the mailbox pass write it.
		led := LedgerEntry{UserID: r.user, Type: RecordContact, SourceID: match.ID, TargetID: c.id, TargetModified: c.modified,
			MatchedBy: by, SyncedAt: r.now}
		*done = append(*done, led)
		r.ledger[led.SourceID] = led // taken: no other Salesforce Contact of this run links it
		changes[match.ID] = graph.ContactChange{Contact: match}
		r.targets[strings.ToLower(c.id)] = true
		return nil
	}
	w, err := mb.UpdateContact(ctx, r.user, graph.DefaultContactFolder, match.ID, outlookWrite(c, otherEmails(match)))
	if err != nil {
		return fmt.Errorf("update contact: %w", err)
	}
	delete(changes, match.ID)
	r.rep.MailboxUpdated++
	r.linked(done, LedgerEntry{MatchedBy: by}, w, c, r.digest(w.ID, c.fields))
	return nil
}

// linked records that Outlook contact w now holds Salesforce Contact c's fields.
func (r *run) linked(done *[]LedgerEntry, led LedgerEntry, w graph.Contact, c sfContact, digest string) {
	led.UserID, led.Type, led.SourceID, led.TargetID = r.user, RecordContact, w.ID, c.id
	led.SourceChangeKey, led.SourceModified, led.TargetModified = w.ChangeKey, w.LastModified, c.modified
	led.Digest, led.SyncedAt = digest, r.now
	*done = append(*done, led)
	r.ledger[led.SourceID] = led // taken: no other Salesforce Contact of this run links it
	r.targets[strings.ToLower(c.id)] = true
}

// lookupsPerRun is how many Salesforce Contacts without a link a run matches with two Graph lookups
// each; above it the folder is listed once instead (a first run over thousands of Contacts would
// otherwise spend Outlook's 10,000 requests per 10 minutes per mailbox on lookups).
const lookupsPerRun = 25

// outlookIndex is the mailbox's contacts by the Salesforce id they carry and by each address, in
// memory for one run.
type outlookIndex struct {
	byCRM, byEmail map[string][]graph.Contact
	crmIDOf        map[string]string // Outlook id → the Salesforce id it carries
}

func (r *run) indexMailbox(ctx context.Context, mb Mailbox) error {
	idx := &outlookIndex{byCRM: map[string][]graph.Contact{}, byEmail: map[string][]graph.Contact{}, crmIDOf: map[string]string{}}
	err := mb.ListContacts(ctx, r.user, graph.DefaultContactFolder, CRMIDProperty, func(c graph.Contact) error {
		if id := c.Extended[CRMIDProperty]; id != "" {
			idx.byCRM[strings.ToLower(id)] = append(idx.byCRM[strings.ToLower(id)], c)
			idx.crmIDOf[c.ID] = id
		}
		for _, e := range c.Emails {
			idx.byEmail[strings.ToLower(e)] = append(idx.byEmail[strings.ToLower(e)], c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list contacts: %w", err)
	}
	r.outlook = idx
	return nil
}

func otherEmails(c graph.Contact) []string {
	if len(c.Emails) < 2 {
		return nil
	}
	return append([]string(nil), c.Emails[1:]...)
}

// withDisplayName names a new contact as Outlook would show it: given name and surname.
func withDisplayName(w graph.ContactWrite) graph.ContactWrite {
	w.DisplayName = strings.TrimSpace(w.GivenName + " " + w.Surname)
	return w
}

// matchByCRMID links new mailbox contacts that carry a Salesforce id in CRMIDProperty (written by the
// CRM → mailbox direction; their ledger row was lost, or the direction was changed since) to that
// Salesforce Contact when it still exists and no other item claims it, before any e-mail match: the
// address may have changed on either side. As with e-mail matches, the newer side wins (rule 4). It
// returns what is left to match and what to update.
func (r *run) matchByCRMID(ctx context.Context, mb Mailbox, creates []pending) (left, updates []pending, err error) {
	if len(creates) == 0 {
		return creates, nil, nil
	}
	if r.outlook == nil && len(creates) > lookupsPerRun {
		if err := r.indexMailbox(ctx, mb); err != nil {
			return nil, nil, err
		}
	}
	carried := map[int]string{}
	for i, p := range creates {
		var id string
		if r.outlook != nil {
			id = r.outlook.crmIDOf[p.c.ID]
		} else {
			v, err := mb.ContactProperty(ctx, r.user, graph.DefaultContactFolder, p.c.ID, CRMIDProperty)
			if errors.Is(err, graph.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("read contact's crm id: %w", err)
			}
			id = v
		}
		if salesforce.ValidID(id) && !r.targets[strings.ToLower(id)] {
			carried[i] = id
		}
	}
	if len(carried) == 0 {
		return creates, nil, nil
	}
	ids := make([]string, 0, len(carried))
	for _, id := range carried {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	live := map[string]time.Time{}
	for start := 0; start < len(ids); start += idsPerQuery {
		chunk := ids[start:min(start+idsPerQuery, len(ids))]
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = salesforce.Quote(id)
		}
		h, err := r.s.o.Salesforce.Query(ctx, r.tenant, r.cred, "SELECT Id, LastModifiedDate FROM Contact WHERE Id IN ("+strings.Join(quoted, ",")+")",
			func(raw json.RawMessage) error {
				var rec struct {
					ID       string `json:"Id"`
					Modified string `json:"LastModifiedDate"`
				}
				if err := json.Unmarshal(raw, &rec); err != nil {
					return err
				}
				live[strings.ToLower(rec.ID)] = salesforce.ParseTime(rec.Modified)
				return nil
			})
		if err := r.callFailed(err); err != nil {
			return nil, nil, fmt.Errorf("match contacts by crm id: %w", err)
		}
		if err := r.limit(h); err != nil {
			return nil, nil, err
		}
	}
	var links []LedgerEntry
	var cleared []string
	for i, p := range creates {
		id, ok := carried[i]
		modified, exists := live[strings.ToLower(id)]
		if !ok || !exists || r.targets[strings.ToLower(id)] {
			left = append(left, p)
			continue
		}
		r.targets[strings.ToLower(id)] = true
		r.rep.Linked++
		if p.c.LastModified.After(modified) {
			p.target = id
			updates = append(updates, p)
			continue
		}
		links = append(links, LedgerEntry{UserID: r.user, Type: r.typ, SourceID: p.c.ID, TargetID: id,
			SourceChangeKey: p.c.ChangeKey, SourceModified: p.c.LastModified, TargetModified: modified, MatchedBy: MatchedByCRMID, SyncedAt: r.now})
		if _, failed := r.errs[p.c.ID]; failed {
			cleared = append(cleared, p.c.ID)
		}
	}
	return left, updates, r.record(ctx, links, cleared, nil)
}

// saveMailboxWrites records a batch of Salesforce records written to the mailbox: their ledger entries,
// the records Outlook refused (kept by name, sealed), and the refusals that are over (cleared by
// Salesforce id). Contacts and events share it.
func (r *run) saveMailboxWrites(ctx context.Context, done []LedgerEntry, failed []SyncError, cleared []string) error {
	if err := r.record(ctx, done, nil, nil); err != nil {
		return err
	}
	if len(failed) > 0 {
		if err := r.s.o.Data.SyncErrors.UpsertBatch(ctx, r.tenant, failed); err != nil {
			return fmt.Errorf("write sync errors: %w", err)
		}
	}
	if len(cleared) == 0 {
		return nil
	}
	rks := make([]string, 0, len(cleared))
	for _, id := range cleared {
		rk, err := ledgerKey(r.user, r.crmTyp, id)
		if err != nil {
			return err
		}
		rks = append(rks, rk)
	}
	if _, err := r.s.o.Data.SyncErrors.DeleteBatch(ctx, r.tenant, rks); err != nil {
		return fmt.Errorf("clear sync errors: %w", err)
	}
	return nil
}
