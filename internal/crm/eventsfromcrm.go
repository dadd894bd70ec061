package crm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
)

// CRMEventIDProperty is the single-value extended property every Outlook event the sync writes
// carries: the Salesforce Event's id (as CRMIDProperty for contacts, in the same property set).
const CRMEventIDProperty = "String {0c7e2b4a-93d1-4f5e-8a6b-1d2c3e4f5a6b} Name ConnectHubSalesforceEventId"

// sfEventSelect is what the sync reads of a Salesforce Event: the mapped fields, its owner and its own
// last modification.
const sfEventSelect = "Id, OwnerId, LastModifiedDate, Subject, StartDateTime, EndDateTime, IsAllDayEvent, ActivityDate, " +
	"DurationInMinutes, Location, Description, ShowAs, IsPrivate"

// sfToMailboxEvent is a Salesforce Event as Outlook would hold it (the inverse of eventFields): an
// all-day Event runs from its ActivityDate for DurationInMinutes (a day when there is none, as
// Salesforce defaults it), a timed one from StartDateTime to EndDateTime (or for DurationInMinutes).
func sfToMailboxEvent(rec map[string]any) graph.MailboxEvent {
	s := func(k string) string { v, _ := rec[k].(string); return v }
	e := graph.MailboxEvent{Subject: s("Subject"), Location: s("Location"), Body: s("Description"), ShowAs: "busy", Sensitivity: "normal"}
	switch s("ShowAs") {
	case "Free":
		e.ShowAs = "free"
	case "OutOfOffice":
		e.ShowAs = "oof"
	}
	if p, _ := rec["IsPrivate"].(bool); p {
		e.Sensitivity = "private"
	}
	minutes, hasMinutes := rec["DurationInMinutes"].(float64)
	if allDay, _ := rec["IsAllDayEvent"].(bool); allDay {
		e.IsAllDay = true
		d, _ := time.Parse(time.DateOnly, s("ActivityDate"))
		days := 1
		if hasMinutes && minutes > 0 {
			days = max(1, int((time.Duration(minutes)*time.Minute+23*time.Hour)/(24*time.Hour)))
		}
		e.Start, e.End = d.UTC(), d.UTC().AddDate(0, 0, days)
		return e
	}
	e.Start, e.End = salesforce.ParseTime(s("StartDateTime")), salesforce.ParseTime(s("EndDateTime"))
	if e.End.IsZero() && hasMinutes {
		e.End = e.Start.Add(time.Duration(minutes) * time.Minute)
	}
	return e
}

// eventWrite is the Outlook event for a Salesforce Event.
func (r *run) eventWrite(c sfContact) graph.EventWrite {
	e := c.event
	h := sha256.Sum256([]byte(string(r.tenant) + "\x00" + r.user + "\x00" + strings.ToLower(c.id)))
	return graph.EventWrite{Subject: e.Subject, Body: e.Body, Location: e.Location, Start: e.Start, End: e.End, IsAllDay: e.IsAllDay,
		ShowAs: e.ShowAs, Sensitivity: e.Sensitivity, TransactionID: hex.EncodeToString(h[:16]),
		Properties: map[string]string{CRMEventIDProperty: c.id}}
}

// reconcileEvents brings Salesforce's Event changes to the mailbox, deciding each conflict with the
// mailbox's changes of the same run, by the contacts' rules (reconcile): a deletion on either side wins
// and is never undone; an edit whose mapped fields digest to the ledger's is our own write coming back;
// edits on both sides: the later modification time of the records' own wins whole. A Salesforce Event
// with no link is matched before anything is created: the Outlook event that carries its id in
// CRMEventIDProperty, then an unlinked mailbox event of this run with the same subject, start and end.
// Unlinked Events outside the sync window [start, end) are left alone: the window is what the sync
// follows in both directions.
func (r *run) reconcileEvents(ctx context.Context, mb Mailbox, side *crmSide, changes map[string]graph.EventChange, toCRM bool, start, end time.Time) error {
	byTarget := map[string]LedgerEntry{}
	for _, l := range r.ledger {
		if l.TargetID != "" {
			byTarget[strings.ToLower(l.TargetID)] = l
		}
	}
	var done []LedgerEntry
	var failed []SyncError
	var cleared []string
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
			cleared = append(cleared, e.SourceID)
		}
		led, ok := byTarget[id]
		if !ok || !led.DeletedAt.IsZero() {
			continue
		}
		if ch, ok := changes[led.SourceID]; !ok || !ch.Removed {
			if err := mb.DeleteEvent(ctx, r.user, led.SourceID); err != nil && !errors.Is(err, graph.ErrNotFound) {
				return errors.Join(fmt.Errorf("delete event: %w", err), flush())
			}
			r.rep.MailboxDeleted++
		}
		delete(changes, led.SourceID)
		led.DeletedAt, led.SyncedAt = r.now, r.now
		done = append(done, led)
	}
	// The mailbox's unlinked events of this run by subject and times, for the first run's matching.
	unlinked := map[string][]graph.MailboxEvent{}
	for id, ch := range changes {
		if _, linked := r.ledger[id]; !linked && !ch.Removed && !ch.IsCancelled {
			k := eventKey(eventFields(ch.MailboxEvent))
			unlinked[k] = append(unlinked[k], ch.MailboxEvent)
		}
	}
	ids := make([]string, 0, len(side.changed))
	unknown := 0
	for id, c := range side.changed {
		ids = append(ids, id)
		if _, ok := byTarget[id]; !ok && c.event.End.After(start) && c.event.Start.Before(end) {
			unknown++
		}
	}
	sort.Strings(ids)
	var index map[string][]graph.MailboxEvent
	if unknown > lookupsPerRun {
		// Many to match (a first run): one listing of the window instead of a lookup each.
		index = map[string][]graph.MailboxEvent{}
		err := mb.EventsWithProperty(ctx, r.user, start, end, CRMEventIDProperty, func(e graph.MailboxEvent, v string) error {
			index[strings.ToLower(v)] = append(index[strings.ToLower(v)], e)
			return nil
		})
		if err != nil {
			return errors.Join(fmt.Errorf("list events: %w", err), flush())
		}
	}
	for _, id := range ids {
		c := side.changed[id]
		led, known := byTarget[id]
		if known && !led.DeletedAt.IsZero() {
			continue // deleted once: never again
		}
		if !known && (!c.event.End.After(start) || !c.event.Start.Before(end)) {
			continue // outside the window, and never synced: not followed
		}
		var err error
		if known {
			err = r.eventToMailbox(ctx, mb, c, led, changes, toCRM, &done)
		} else {
			err = r.matchOrCreateEvent(ctx, mb, c, changes, unlinked, index, toCRM, &done)
		}
		if code, refused := outlookRefused(err); refused {
			failed = append(failed, r.crmEventFailure(c, code))
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

// crmEventFailure is the crmsyncerrors row of a Salesforce Event Outlook refused, named by its subject.
func (r *run) crmEventFailure(c sfContact, code string) SyncError {
	return r.crmRefusal(c.id, RecordCRMEvent, c.event.Subject, code)
}

// eventToMailbox writes a linked Salesforce Event's change over its Outlook event, unless it is an
// echo, or the mailbox's own change of the same run is newer or a deletion.
func (r *run) eventToMailbox(ctx context.Context, mb Mailbox, c sfContact, led LedgerEntry, changes map[string]graph.EventChange,
	toCRM bool, done *[]LedgerEntry) error {
	digest := r.digest(led.SourceID, c.fields)
	if digest == led.Digest {
		r.rep.Echoes++
		return nil
	}
	if ch, changed := changes[led.SourceID]; changed {
		if ch.Removed || ch.IsCancelled {
			return nil // the mailbox's deletion wins; the mailbox pass deletes the Salesforce record
		}
		mine := ch.ChangeKey == led.SourceChangeKey || r.digest(led.SourceID, eventFields(ch.MailboxEvent)) == led.Digest
		if !mine {
			r.rep.Conflicts++
			if toCRM && ch.LastModified.After(c.modified) {
				return nil // the mailbox's edit is newer: the mailbox pass writes it over Salesforce's
			}
		}
	}
	w, err := mb.UpdateEvent(ctx, r.user, led.SourceID, r.eventWrite(c))
	if errors.Is(err, graph.ErrNotFound) {
		if !toCRM { // nobody else will see the deletion: record it, so the event is never created again
			led.DeletedAt, led.SyncedAt = r.now, r.now
			*done = append(*done, led)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("update event: %w", err)
	}
	delete(changes, led.SourceID) // what the delta brought is older than what was just written
	r.rep.MailboxUpdated++
	r.linkedEvent(done, led, w, c, digest)
	return nil
}

// matchOrCreateEvent links a Salesforce Event to the Outlook event that carries its id (looked up, or
// in index when the run listed the window), or to an unlinked one of this run with its subject and
// times, else creates one (with a transactionId, so a retried create makes no second event).
func (r *run) matchOrCreateEvent(ctx context.Context, mb Mailbox, c sfContact, changes map[string]graph.EventChange,
	unlinked, index map[string][]graph.MailboxEvent, toCRM bool, done *[]LedgerEntry) error {
	free := func(found []graph.MailboxEvent) (graph.MailboxEvent, bool) {
		for _, f := range found {
			if l, ok := r.ledger[f.ID]; !ok || l.TargetID == "" {
				return f, true
			}
		}
		return graph.MailboxEvent{}, false
	}
	var found []graph.MailboxEvent
	var err error
	if index != nil {
		found = index[strings.ToLower(c.id)]
	} else if found, err = mb.FindEvents(ctx, r.user, CRMEventIDProperty, c.id); err != nil {
		return fmt.Errorf("find event by crm id: %w", err)
	}
	match, ok := free(found)
	by := MatchedByCRMID
	if !ok && c.event.Subject != "" {
		match, ok = free(unlinked[eventKey(c.fields)])
		by = MatchedBySubjectTime
	}
	if !ok {
		w, err := mb.CreateEvent(ctx, r.user, r.eventWrite(c))
		if err != nil {
			return fmt.Errorf("create event: %w", err)
		}
		r.rep.MailboxCreated++
		r.linkedEvent(done, LedgerEntry{MatchedBy: MatchedFromCRM}, w, c, r.digest(w.ID, c.fields))
		return nil
	}
	r.rep.MailboxLinked++
	if toCRM && match.LastModified.After(c.modified) {
		// The mailbox's copy is newer: link without a digest, and let the mailbox pass write it.
		led := LedgerEntry{UserID: r.user, Type: r.typ, SourceID: match.ID, TargetID: c.id, TargetModified: c.modified,
			MatchedBy: by, SyncedAt: r.now}
		*done = append(*done, led)
		r.ledger[led.SourceID] = led
		changes[match.ID] = graph.EventChange{MailboxEvent: match}
		r.targets[strings.ToLower(c.id)] = true
		return nil
	}
	w, err := mb.UpdateEvent(ctx, r.user, match.ID, r.eventWrite(c))
	if err != nil {
		return fmt.Errorf("update event: %w", err)
	}
	delete(changes, match.ID)
	r.rep.MailboxUpdated++
	r.linkedEvent(done, LedgerEntry{MatchedBy: by}, w, c, r.digest(w.ID, c.fields))
	return nil
}

// linkedEvent records that Outlook event w now holds Salesforce Event c's fields.
func (r *run) linkedEvent(done *[]LedgerEntry, led LedgerEntry, w graph.MailboxEvent, c sfContact, digest string) {
	led.UserID, led.Type, led.SourceID, led.TargetID = r.user, r.typ, w.ID, c.id
	led.SourceChangeKey, led.SourceModified, led.TargetModified = w.ChangeKey, w.LastModified, c.modified
	led.Digest, led.SyncedAt = digest, r.now
	*done = append(*done, led)
	r.ledger[led.SourceID] = led
	r.targets[strings.ToLower(c.id)] = true
}
