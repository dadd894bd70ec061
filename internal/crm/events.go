package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
)

// EventMailbox is what the event sync reads and writes of a mailbox, app-only (Calendars.ReadWrite;
// Calendars.Read for to-crm alone).
type EventMailbox interface {
	EventsDelta(ctx context.Context, mailbox string, start, end time.Time, deltaLink string, fn func(graph.EventChange) error) (string, error)
	GetEvent(ctx context.Context, mailbox, id string) (graph.MailboxEvent, error)
	CreateEvent(ctx context.Context, mailbox string, w graph.EventWrite) (graph.MailboxEvent, error)
	UpdateEvent(ctx context.Context, mailbox, id string, w graph.EventWrite) (graph.MailboxEvent, error)
	DeleteEvent(ctx context.Context, mailbox, id string) error
	FindEvents(ctx context.Context, mailbox, prop, value string) ([]graph.MailboxEvent, error)
	EventsWithProperty(ctx context.Context, mailbox string, start, end time.Time, prop string, fn func(graph.MailboxEvent, string) error) error
}

var _ EventMailbox = (*graph.Client)(nil)

// The sync window of events: calendarView delta only works over a window, and Graph fixes it in the
// delta link (next-capabilities §1.4). The window runs from EventsBack before the start of the current
// UTC day to EventsAhead after it; when the day changes, the next run starts a new window with a full
// enumeration (the ledger makes the replay a no-op for what did not change). Events that leave the
// window are not deleted anywhere: they are no longer followed.
const (
	EventsBack  = 14 * 24 * time.Hour
	EventsAhead = 28 * 24 * time.Hour
)

// eventWindow is the window for now.
func eventWindow(now time.Time) (start, end time.Time) {
	day := now.UTC().Truncate(24 * time.Hour)
	return day.Add(-EventsBack), day.Add(EventsAhead)
}

// syncEvents runs each direction of events the mapping turns on: the mailbox's calendarView delta
// (and the records that failed before) to Salesforce, and the Event getUpdated/getDeleted windows to
// the mailbox (reconcileEvents), each conflict decided before either side is written, as for contacts.
// The rules (docs/architecture.md, "Event sync rules"):
//   - calendarView delta returns instances: single events, and the occurrences and exceptions of
//     series, never a series master; each instance becomes one Salesforce Event of its own
//     (IsRecurrence false), so a weekly series within the window is as many Events as it has
//     occurrences there. Salesforce's own recurrence is never written;
//   - an @removed item is either a deletion or an event that moved out of the window (Graph does not
//     say which): the event is read again, and only one that is gone (or cancelled) is deleted in
//     Salesforce; a moved one is updated there;
//   - a cancelled meeting is deleted in Salesforce, as Outlook's attendee copy is just a placeholder;
//   - before an Event is created, an unlinked Salesforce Event of the same owner with the same subject,
//     start and end is linked instead (turning the sync on never duplicates what is there); the newer
//     side wins on such a link, as for contacts.
func (s *Syncer) syncEvents(ctx context.Context, tenant core.TenantID, m UserMapping, cred salesforce.Credential, st *SyncState) (Report, error) {
	toCRM, fromCRM := m.Events.ToCRM(), m.Events.FromCRM()
	if !toCRM && !fromCRM {
		return Report{}, nil
	}
	mb, err := s.o.Mailboxes.For(ctx, tenant)
	if err != nil {
		return Report{}, fmt.Errorf("graph client: %w", err)
	}
	userID := m.UserID
	r := s.newRun(tenant, m, cred, RecordEvent)
	start, end := eventWindow(r.now)
	changes := map[string]graph.EventChange{}
	next := ""
	if toCRM {
		link := st.DeltaLink
		if !st.WindowStart.Equal(start) || !st.WindowEnd.Equal(end) {
			link = "" // a new day: a new window, enumerated in full
		}
		collect := func(c graph.EventChange) error { changes[c.ID] = c; return nil } // a replayed item replaces itself
		next, err = mb.EventsDelta(ctx, userID, start, end, link, collect)
		if errors.Is(err, graph.ErrDeltaExpired) {
			clear(changes)
			next, err = mb.EventsDelta(ctx, userID, start, end, "", collect)
		}
		if err != nil {
			return Report{}, fmt.Errorf("events delta: %w", err)
		}
	}
	if err := r.load(ctx); err != nil {
		return Report{}, err
	}
	if toCRM {
		// A removal is read again: gone, or only out of the window. Records that failed before come
		// again even if the delta does not bring them.
		var reread []string
		for id, ch := range changes {
			if ch.Removed {
				reread = append(reread, id)
			}
		}
		for id := range r.errs {
			if _, ok := changes[id]; !ok {
				reread = append(reread, id)
			}
		}
		sort.Strings(reread)
		for _, id := range reread {
			if _, linked := r.ledger[id]; !linked && changes[id].Removed {
				continue // never synced: nothing to delete or move
			}
			e, err := mb.GetEvent(ctx, userID, id)
			switch {
			case errors.Is(err, graph.ErrNotFound):
				changes[id] = graph.EventChange{MailboxEvent: graph.MailboxEvent{ID: id}, Removed: true, RemovedReason: "deleted"}
			case err != nil:
				return Report{}, fmt.Errorf("get event: %w", err)
			default:
				changes[id] = graph.EventChange{MailboxEvent: e}
			}
		}
	}
	var side *crmSide
	if fromCRM {
		if side, err = r.readCRM(ctx, *st); err == nil {
			r.rep.FullResync = side.full
			err = r.reconcileEvents(ctx, mb, side, changes, toCRM, start, end)
		}
	}
	if err == nil && toCRM {
		err = r.applyEvents(ctx, changes)
	}
	if err != nil {
		return r.rep, err
	}
	if next != "" {
		st.DeltaLink, st.WindowStart, st.WindowEnd = next, start, end
	}
	if side != nil && !side.updatedTo.IsZero() {
		st.CRMUpdatedTo = side.updatedTo
	}
	if side != nil && !side.deletedTo.IsZero() {
		st.CRMDeletedTo = side.deletedTo
	}
	return r.rep, nil
}

func eventSource(e graph.MailboxEvent) source {
	return source{ID: e.ID, ChangeKey: e.ChangeKey, LastModified: e.LastModified, Name: truncate(e.Subject, 255)}
}

// applyEvents sorts the changes into creates, updates and deletes against the ledger, links new events
// to the Salesforce Events they match, and writes the rest (the contacts' write and record).
func (r *run) applyEvents(ctx context.Context, changes map[string]graph.EventChange) error {
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
		if ch.Removed || ch.IsCancelled {
			live := known && led.DeletedAt.IsZero() && led.TargetID != ""
			switch {
			case live:
				deletes = append(deletes, pending{c: eventSource(ch.MailboxEvent), target: led.TargetID})
			case known && led.DeletedAt.IsZero():
				led.DeletedAt = r.now
				done = append(done, led)
			}
			if _, failed := r.errs[id]; failed && !live {
				cleared = append(cleared, id) // nothing left to sync
			}
			continue
		}
		if known && !led.DeletedAt.IsZero() {
			r.rep.Unchanged++ // deleted once, never created again from the same mailbox item
			continue
		}
		fields := eventFields(ch.MailboxEvent)
		p := pending{c: eventSource(ch.MailboxEvent), fields: fields, digest: r.digest(id, fields)}
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
	creates, matched, err := r.matchEvents(ctx, creates)
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

// eventKey is how a new mailbox event and a Salesforce Event are recognised as the same meeting: the
// subject (case-insensitive) and the times as eventFields writes them. It lives in memory only.
func eventKey(fields map[string]any) string {
	subject, _ := fields["Subject"].(string)
	if allDay, _ := fields["IsAllDayEvent"].(bool); allDay {
		return fmt.Sprintf("%s\x00day\x00%v\x00%v", strings.ToLower(subject), fields["ActivityDate"], fields["DurationInMinutes"])
	}
	s, _ := fields["StartDateTime"].(string)
	e, _ := fields["EndDateTime"].(string)
	return fmt.Sprintf("%s\x00at\x00%s\x00%s", strings.ToLower(subject), s, e)
}

// matchEvents looks the new events up among the owner's Salesforce Events by subject, and links each
// to one with the same start and end that no other item claims, instead of creating it. The newer side
// wins, as for contacts: a mailbox event modified after the Salesforce Event is written over it. An
// event without a subject is never matched (too weak a key). It returns what is left to create and
// what to update.
func (r *run) matchEvents(ctx context.Context, creates []pending) (left, updates []pending, err error) {
	bySubject := map[string]bool{}
	var subjects []string
	for _, p := range creates {
		sub, _ := p.fields["Subject"].(string)
		if sub == "" || bySubject[strings.ToLower(sub)] {
			continue
		}
		bySubject[strings.ToLower(sub)] = true
		subjects = append(subjects, sub)
	}
	type found struct {
		id       string
		modified time.Time
	}
	existing := map[string][]found{}
	// Fifty subjects of up to 255 characters keep the query well below SOQL's 100,000 characters.
	for start := 0; start < len(subjects); start += 50 {
		chunk := subjects[start:min(start+50, len(subjects))]
		quoted := make([]string, len(chunk))
		for i, sub := range chunk {
			quoted[i] = salesforce.Quote(sub)
		}
		soql := "SELECT Id, Subject, StartDateTime, EndDateTime, IsAllDayEvent, ActivityDate, DurationInMinutes, LastModifiedDate FROM Event WHERE OwnerId = " +
			salesforce.Quote(r.owner) + " AND Subject IN (" + strings.Join(quoted, ",") + ")"
		h, err := r.s.o.Salesforce.Query(ctx, r.tenant, r.cred, soql, func(raw json.RawMessage) error {
			var rec struct {
				ID       string   `json:"Id"`
				Subject  string   `json:"Subject"`
				Start    string   `json:"StartDateTime"`
				End      string   `json:"EndDateTime"`
				AllDay   bool     `json:"IsAllDayEvent"`
				Date     string   `json:"ActivityDate"`
				Minutes  *float64 `json:"DurationInMinutes"`
				Modified string   `json:"LastModifiedDate"`
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			f := map[string]any{"Subject": rec.Subject}
			if rec.AllDay {
				f["IsAllDayEvent"], f["ActivityDate"] = true, rec.Date
				if rec.Minutes != nil {
					f["DurationInMinutes"] = int(*rec.Minutes)
				}
			} else {
				f["StartDateTime"], f["EndDateTime"] = sfDateTime(rec.Start), sfDateTime(rec.End)
			}
			k := eventKey(f)
			existing[k] = append(existing[k], found{id: rec.ID, modified: salesforce.ParseTime(rec.Modified)})
			return nil
		})
		if err := r.callFailed(err); err != nil {
			return nil, nil, fmt.Errorf("match events: %w", err)
		}
		if err := r.limit(h); err != nil {
			return nil, nil, err
		}
	}
	var links []LedgerEntry
	var cleared []string
	for _, p := range creates {
		cands := existing[eventKey(p.fields)]
		sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
		var match *found
		if sub, _ := p.fields["Subject"].(string); sub != "" {
			for i := range cands {
				if !r.targets[strings.ToLower(cands[i].id)] {
					match = &cands[i]
					break
				}
			}
		}
		if match == nil {
			left = append(left, p)
			continue
		}
		r.targets[strings.ToLower(match.id)] = true
		r.rep.Linked++
		if p.c.LastModified.After(match.modified) {
			p.target = match.id
			updates = append(updates, p)
			continue
		}
		links = append(links, LedgerEntry{UserID: r.user, Type: r.typ, SourceID: p.c.ID, TargetID: match.id,
			SourceChangeKey: p.c.ChangeKey, SourceModified: p.c.LastModified, TargetModified: match.modified,
			MatchedBy: MatchedBySubjectTime, SyncedAt: r.now})
		if _, failed := r.errs[p.c.ID]; failed {
			cleared = append(cleared, p.c.ID)
		}
	}
	return left, updates, r.record(ctx, links, cleared, nil)
}

// sfDateTime writes a time as eventFields does (RFC 3339, UTC, whole seconds); "" stays "".
func sfDateTime(v string) string {
	t := salesforce.ParseTime(v)
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// Salesforce's ShowAs picklist (Object reference, Event): Busy, Free, OutOfOffice. Graph's tentative,
// workingElsewhere and unknown have no value of their own and are written as Busy.
func showAs(graphShowAs string) string {
	switch graphShowAs {
	case "free":
		return "Free"
	case "oof":
		return "OutOfOffice"
	}
	return "Busy"
}

// eventFields maps an Outlook event instance to Salesforce Event fields (next-capabilities §3.7), each
// cut to the field's length (Object reference, Event: Subject and Location 255, Description 32,000).
// A timed event writes StartDateTime, EndDateTime and the matching DurationInMinutes (Salesforce takes
// both when they agree, and a change from all-day needs the duration replaced); an all-day event writes
// ActivityDate (the start's date) and a whole number of days in DurationInMinutes, as Salesforce keeps
// all-day events. IsPrivate is set for Outlook's private sensitivity only.
func eventFields(e graph.MailboxEvent) map[string]any {
	f := map[string]any{
		"Subject":     truncate(e.Subject, 255),
		"Location":    truncate(e.Location, 255),
		"Description": truncate(strings.TrimSpace(e.Body), 32000),
		"ShowAs":      showAs(e.ShowAs),
		"IsPrivate":   e.Sensitivity == "private",
	}
	start, end := e.Start.UTC().Truncate(time.Second), e.End.UTC().Truncate(time.Second)
	if e.IsAllDay {
		days := int(end.Sub(start).Round(24*time.Hour) / (24 * time.Hour))
		f["IsAllDayEvent"], f["ActivityDate"], f["DurationInMinutes"] = true, start.Format(time.DateOnly), max(days, 1)*1440
		return f
	}
	f["IsAllDayEvent"] = false
	f["StartDateTime"], f["EndDateTime"] = start.Format(time.RFC3339), end.Format(time.RFC3339)
	f["DurationInMinutes"] = int(end.Sub(start) / time.Minute)
	return f
}
