package crm_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// newEventFixture maps Ada's events (and not her contacts) in direction dir, on one clock for the
// syncer, the fake org and the fake mailbox's events.
func newEventFixture(t testing.TB, dir crm.Direction) (*syncFixture, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	f := newSyncFixtureWith(t, crm.DirectionOff, clk)
	f.graph.EventClock = clk.Now
	if _, err := f.svc.SetUserMapping(ctx, admin, f.tenant, f.ada, crm.MappingInput{Events: dir}); err != nil {
		t.Fatal(err)
	}
	return f, clk
}

func (f *syncFixture) putEvent(e graphtest.CalEvent) string {
	if e.ID == "" {
		e.ID = "AAMkAGE" + strings.ReplaceAll(strings.ToLower(e.Subject), " ", "") + "="
	}
	f.graph.PutEvent(string(f.tenant), f.ada, e)
	return e.ID
}

// bySubject lists Salesforce's live Events with this subject.
func (f *syncFixture) bySubject(subject string) []map[string]any {
	var out []map[string]any
	for _, e := range f.sf.Records("Event") {
		if e["Subject"] == subject {
			out = append(out, e)
		}
	}
	return out
}

func (f *syncFixture) eventWrites(since int) (creates, updates, deletes int) {
	for _, w := range f.sf.Writes()[since:] {
		if w.Object != "Event" {
			continue
		}
		switch w.Op {
		case "create":
			creates++
		case "update":
			updates++
		case "delete":
			deletes++
		}
	}
	return
}

// The mailbox → Salesforce direction for events, run after run: a timed event, an all-day event and
// the occurrences of a series in the window are created once each (as single Salesforce Events owned
// by Ada, with our client id), an event outside the window is not; a run with nothing new writes
// nothing; an edit is written; a deleted series is deleted once and comes back neither from a replay
// nor from a full resync; an event moved out of the window (which Graph reports as @removed) is
// updated, not deleted; a new day starts a new window without writing anything; and nothing at rest
// names an event.
func TestEventSyncToSalesforce(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionToCRM)
	f.graph.CalendarPageSize = 2
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	review := f.putEvent(graphtest.CalEvent{Subject: "Quarterly review", Start: day, End: day.Add(time.Hour), Location: "Harbour room",
		Body: "Budget lines", Sensitivity: "private", ShowAs: "oof", Attendees: []string{"grace@navy.example"}})
	f.putEvent(graphtest.CalEvent{Subject: "Offsite day", IsAllDay: true, Start: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC)})
	standup := f.putEvent(graphtest.CalEvent{Subject: "Standup", Start: day.AddDate(0, 0, 3), End: day.AddDate(0, 0, 3).Add(15 * time.Minute),
		EveryDays: 1, Count: 3})
	f.putEvent(graphtest.CalEvent{Subject: "Far future", Start: day.AddDate(0, 6, 0), End: day.AddDate(0, 6, 0).Add(time.Hour)})
	clk.Advance(time.Minute)

	rep := f.sync(t)
	if rep.Created != 5 || rep.Failed != 0 {
		t.Fatalf("first run: %+v", rep)
	}
	r := f.bySubject("Quarterly review")
	if len(r) != 1 || r[0]["StartDateTime"] != "2026-12-04T09:00:00.000+0000" || r[0]["EndDateTime"] != "2026-12-04T10:00:00.000+0000" ||
		r[0]["IsPrivate"] != true || r[0]["Location"] != "Harbour room" || r[0]["Description"] != "Budget lines" ||
		r[0]["ShowAs"] != "OutOfOffice" || r[0]["OwnerId"] != f.owner || r[0]["IsAllDayEvent"] != false {
		t.Fatalf("review in Salesforce: %v", r)
	}
	if o := f.bySubject("Offsite day"); len(o) != 1 || o[0]["IsAllDayEvent"] != true || o[0]["ActivityDate"] != "2026-12-08" ||
		fmt.Sprint(o[0]["DurationInMinutes"]) != "1440" || o[0]["StartDateTime"] != nil {
		t.Fatalf("all-day event in Salesforce: %v", o)
	}
	if n := len(f.bySubject("Standup")); n != 3 {
		t.Fatalf("series: %d Events, want one per occurrence (3)", n)
	}
	if n := len(f.bySubject("Far future")); n != 0 {
		t.Fatal("an event outside the window was synced")
	}
	for _, w := range f.sf.Writes() {
		if w.Client == "" {
			t.Fatalf("a write without our client id: %+v", w)
		}
	}

	writes := len(f.sf.Writes())
	if rep := f.sync(t); rep.Created+rep.Updated+rep.Deleted != 0 || len(f.sf.Writes()) != writes {
		t.Fatalf("a run with nothing new wrote: %+v", rep)
	}

	clk.Advance(time.Minute)
	f.putEvent(graphtest.CalEvent{ID: review, Subject: "Quarterly review (moved)", Start: day.Add(time.Hour), End: day.Add(2 * time.Hour),
		Location: "Harbour room", Body: "Budget lines", Sensitivity: "private", ShowAs: "oof"})
	f.graph.DeleteEvent(string(f.tenant), f.ada, standup)
	rep = f.sync(t)
	if c, u, d := f.eventWrites(writes); c != 0 || u != 1 || d != 3 || rep.Updated != 1 || rep.Deleted != 3 {
		t.Fatalf("edit and delete: %d creates, %d updates, %d deletes; %+v", c, u, d, rep)
	}
	if r := f.bySubject("Quarterly review (moved)"); len(r) != 1 || r[0]["StartDateTime"] != "2026-12-04T10:00:00.000+0000" {
		t.Fatalf("edited review: %v", r)
	}

	// Neither a replay nor a full resync (the delta link expired) brings the series back.
	writes = len(f.sf.Writes())
	f.graph.ExpireEventDeltaLinks(string(f.tenant), f.ada)
	f.sync(t)
	if len(f.sf.Writes()) != writes || len(f.bySubject("Standup")) != 0 {
		t.Fatalf("resync wrote %d records", len(f.sf.Writes())-writes)
	}

	// Moved beyond the window: Graph says @removed; the event is there, so Salesforce gets the new time.
	clk.Advance(time.Minute)
	far := day.AddDate(0, 3, 0)
	f.putEvent(graphtest.CalEvent{ID: review, Subject: "Quarterly review (moved)", Start: far, End: far.Add(time.Hour),
		Location: "Harbour room", Body: "Budget lines", Sensitivity: "private", ShowAs: "oof"})
	rep = f.sync(t)
	if r := f.bySubject("Quarterly review (moved)"); len(r) != 1 || r[0]["StartDateTime"] != "2027-03-04T09:00:00.000+0000" || rep.Deleted != 0 {
		t.Fatalf("moved out of the window: %v, %+v", r, rep)
	}

	// A new day: a new window, enumerated in full, writes nothing.
	writes = len(f.sf.Writes())
	first := func() int {
		n := 0
		for _, q := range f.graph.Requests() {
			if strings.Contains(q.Path, "/calendarView/delta") && q.Method == http.MethodGet && q.Query.Get("startDateTime") != "" {
				n++
			}
		}
		return n
	}
	before := first()
	clk.Advance(24 * time.Hour)
	f.sync(t)
	if first() != before+1 || len(f.sf.Writes()) != writes {
		t.Fatalf("new window: %d new enumerations, %d writes", first()-before, len(f.sf.Writes())-writes)
	}

	for _, name := range []string{crm.TableLedger, crm.TableSyncState, crm.TableSyncErrors} {
		raw := f.rawRows(t, name)
		for _, w := range []string{"Quarterly", "Harbour", "Budget", "Offsite", "Standup", "navy.example"} {
			if strings.Contains(raw, w) {
				t.Errorf("%s holds %q at rest", name, w)
			}
		}
	}
}

// An event Salesforce refuses (longer than its 14 days) waits in the sync errors under its subject,
// sealed, shows in the health with what to do, and leaves when the event is fixed in Outlook.
func TestEventSyncFailingRecord(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionToCRM)
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	id := f.putEvent(graphtest.CalEvent{Subject: "Sabbatical planning", Start: day, End: day.AddDate(0, 0, 15)})
	clk.Advance(time.Minute)
	rep := f.sync(t)
	errs := f.syncErrors(t)
	if rep.Failed != 1 || len(errs) != 1 || errs[0].Type != crm.RecordEvent || errs[0].DisplayName != "Sabbatical planning" ||
		errs[0].Code != "FIELD_INTEGRITY_EXCEPTION" {
		t.Fatalf("failure: %+v, %+v", rep, errs)
	}
	if raw := f.rawRows(t, crm.TableSyncErrors); strings.Contains(raw, "Sabbatical") {
		t.Fatalf("the subject is not sealed: %s", raw)
	}
	h, err := f.svc.SyncHealth(ctx, f.tenant)
	if err != nil || h.FailingRecords != 1 || len(h.Users) != 1 || h.Users[0].Events != crm.DirectionToCRM ||
		h.Users[0].Failing[0].DisplayName != "Sabbatical planning" || h.Users[0].Failing[0].Action == "" {
		t.Fatalf("health: %+v, %v", h, err)
	}
	// The failed record is read again every run, even without a change; fixed, it goes through.
	if rep := f.sync(t); rep.Failed != 1 || f.syncErrors(t)[0].Attempts != 2 {
		t.Fatalf("second run: %+v", rep)
	}
	clk.Advance(time.Minute)
	f.putEvent(graphtest.CalEvent{ID: id, Subject: "Sabbatical planning", Start: day, End: day.AddDate(0, 0, 2)})
	if rep := f.sync(t); rep.Created != 1 || rep.Failed != 0 || len(f.syncErrors(t)) != 0 || len(f.bySubject("Sabbatical planning")) != 1 {
		t.Fatalf("fixed: %+v, %v", rep, f.syncErrors(t))
	}
}

// Turning the sync on never duplicates a meeting Salesforce already has: a new mailbox event with the
// subject, start and end of an unlinked Event Ada owns is linked to it, the newer side winning (here
// the mailbox's, so its location is written); an event with the same subject at another time, or one
// Salesforce holds for another owner, is created.
func TestEventSyncMatchesExisting(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionToCRM)
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	existing := f.sf.PutEvent(map[string]any{"Subject": "Board meeting", "StartDateTime": "2026-12-04T09:00:00.000+0000",
		"EndDateTime": "2026-12-04T10:00:00.000+0000", "IsAllDayEvent": false, "OwnerId": f.owner, "Location": "Old room"})
	f.sf.PutEvent(map[string]any{"Subject": "Board meeting", "StartDateTime": "2026-12-05T09:00:00.000+0000",
		"EndDateTime": "2026-12-05T10:00:00.000+0000", "IsAllDayEvent": false, "OwnerId": "005000000000000AAA"})
	clk.Advance(time.Minute)
	f.putEvent(graphtest.CalEvent{ID: "AAMkAGEboard1=", Subject: "Board meeting", Start: day, End: day.Add(time.Hour), Location: "New room"})
	f.putEvent(graphtest.CalEvent{ID: "AAMkAGEboard2=", Subject: "Board meeting", Start: day.AddDate(0, 0, 1), End: day.AddDate(0, 0, 1).Add(time.Hour)})
	clk.Advance(time.Minute)
	rep := f.sync(t)
	if rep.Linked != 1 || rep.Created != 1 {
		t.Fatalf("report: %+v", rep)
	}
	got, ok := f.sf.Record(existing)
	if !ok || got["Location"] != "New room" {
		t.Fatalf("linked event: %v", got)
	}
	if n := len(f.bySubject("Board meeting")); n != 3 {
		t.Fatalf("%d Board meetings, want 3 (the linked one, another owner's, the new one)", n)
	}
	if rep := f.sync(t); rep.Created+rep.Updated != 0 {
		t.Fatalf("second run: %+v", rep)
	}
}

// Events follow the mapping's direction: with events off nothing reads the calendar, and with
// contacts on and events off only contacts sync.
func TestEventSyncFollowsMapping(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionOff)
	if _, err := f.svc.SetUserMapping(ctx, admin, f.tenant, f.ada, crm.MappingInput{Contacts: crm.DirectionToCRM}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	f.putEvent(graphtest.CalEvent{Subject: "Private matter", Start: day, End: day.Add(time.Hour)})
	f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper"})
	clk.Advance(time.Minute)
	rep := f.sync(t)
	if rep.Created != 1 || len(f.sf.Records("Event")) != 0 {
		t.Fatalf("events off: %+v, %v", rep, f.sf.Records("Event"))
	}
	if n := f.graph.Count(http.MethodGet, "/users/"+f.ada+"/calendarView/delta"); n != 0 {
		t.Fatalf("the calendar was read %d times with events off", n)
	}
}

// mailboxEvents lists Ada's Outlook events with this subject.
func (f *syncFixture) mailboxEvents(subject string) []graphtest.CalEvent {
	var out []graphtest.CalEvent
	for _, e := range f.graph.Events(string(f.tenant), f.ada) {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

// Both directions for events, run after run: Salesforce Events Ada owns in the window come to her
// calendar once (with the Salesforce id in the extended property), mailbox events go to Salesforce
// once, a meeting both sides already have is linked, not duplicated; our own writes coming back are
// echoes; an edit on either side reaches the other; edits on both sides go to the later writer; a
// deletion on either side goes through once and the event never comes back.
func TestEventSyncBothWays(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionBoth)
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	at := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }
	lunch := f.sf.PutEvent(map[string]any{"Subject": "Client lunch", "StartDateTime": at(day.Add(3 * time.Hour)),
		"EndDateTime": at(day.Add(4 * time.Hour)), "IsAllDayEvent": false, "OwnerId": f.owner, "Location": "Bistro", "ShowAs": "Busy"})
	fair := f.sf.PutEvent(map[string]any{"Subject": "Trade fair", "IsAllDayEvent": true, "ActivityDate": "2026-12-10",
		"DurationInMinutes": float64(2880), "OwnerId": f.owner, "ShowAs": "OutOfOffice"})
	f.sf.PutEvent(map[string]any{"Subject": "Someone else's", "StartDateTime": at(day), "EndDateTime": at(day.Add(time.Hour)),
		"IsAllDayEvent": false, "OwnerId": "005000000000000AAA"})
	f.sf.PutEvent(map[string]any{"Subject": "Next summer", "StartDateTime": at(day.AddDate(0, 7, 0)), "EndDateTime": at(day.AddDate(0, 7, 0).Add(time.Hour)),
		"IsAllDayEvent": false, "OwnerId": f.owner})
	f.sf.PutEvent(map[string]any{"Subject": "Design review", "StartDateTime": at(day.AddDate(0, 0, 1)), "EndDateTime": at(day.AddDate(0, 0, 1).Add(time.Hour)),
		"IsAllDayEvent": false, "OwnerId": f.owner})
	clk.Advance(time.Minute)
	kickoff := f.putEvent(graphtest.CalEvent{Subject: "Kickoff", Start: day, End: day.Add(time.Hour)})
	f.putEvent(graphtest.CalEvent{Subject: "Design review", Start: day.AddDate(0, 0, 1), End: day.AddDate(0, 0, 1).Add(time.Hour)})
	clk.Advance(2 * time.Minute)

	rep := f.sync(t)
	if rep.MailboxCreated != 2 || rep.Created != 1 || rep.MailboxLinked+rep.Linked != 1 || rep.Failed != 0 {
		t.Fatalf("first run: %+v", rep)
	}
	l := f.mailboxEvents("Client lunch")
	if len(l) != 1 || l[0].Location != "Bistro" || !l[0].Start.Equal(day.Add(3*time.Hour)) || l[0].Properties[crm.CRMEventIDProperty] != lunch {
		t.Fatalf("lunch in Outlook: %+v", l)
	}
	if fa := f.mailboxEvents("Trade fair"); len(fa) != 1 || !fa[0].IsAllDay || !fa[0].Start.Equal(time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)) ||
		!fa[0].End.Equal(time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC)) || fa[0].ShowAs != "oof" {
		t.Fatalf("all-day fair in Outlook: %+v", fa)
	}
	if len(f.mailboxEvents("Someone else's")) != 0 || len(f.mailboxEvents("Next summer")) != 0 {
		t.Fatal("another owner's Event, or one outside the window, reached the mailbox")
	}
	if len(f.mailboxEvents("Design review")) != 1 || len(f.bySubject("Design review")) != 1 || len(f.bySubject("Kickoff")) != 1 {
		t.Fatal("a meeting on both sides was duplicated, or the mailbox's did not reach Salesforce")
	}

	// Our own writes come back through both sides' change feeds: nothing is written again.
	quiet := func(what string) {
		t.Helper()
		writes, posts, patches := len(f.sf.Writes()), f.graph.Count(http.MethodPost, "/users/"+f.ada+"/events"), f.graph.Count(http.MethodPatch, "/users/"+f.ada+"/events")
		clk.Advance(2 * time.Minute)
		rep := f.sync(t)
		if len(f.sf.Writes()) != writes || f.graph.Count(http.MethodPost, "/users/"+f.ada+"/events") != posts ||
			f.graph.Count(http.MethodPatch, "/users/"+f.ada+"/events") != patches {
			t.Fatalf("%s: a quiet run wrote: %+v", what, rep)
		}
	}
	quiet("after the first run")

	// An edit on each side reaches the other.
	f.sf.PutEvent(map[string]any{"Id": lunch, "Location": "Harbour cafe"})
	f.putEvent(graphtest.CalEvent{ID: kickoff, Subject: "Kickoff (v2)", Start: day, End: day.Add(time.Hour)})
	clk.Advance(2 * time.Minute)
	rep = f.sync(t)
	if l := f.mailboxEvents("Client lunch"); len(l) != 1 || l[0].Location != "Harbour cafe" || len(f.bySubject("Kickoff (v2)")) != 1 ||
		rep.MailboxUpdated != 1 || rep.Updated != 1 {
		t.Fatalf("edits: %+v, %+v", l, rep)
	}
	quiet("after the edits")

	// Both sides edit the fair: the mailbox's edit is later, so it wins whole.
	f.sf.PutEvent(map[string]any{"Id": fair, "Location": "Hall A"})
	clk.Advance(time.Minute)
	mine := f.mailboxEvents("Trade fair")[0]
	mine.Subject, mine.Location = "Trade fair (stand 12)", "Hall B"
	f.graph.PutEvent(string(f.tenant), f.ada, mine)
	clk.Advance(2 * time.Minute)
	rep = f.sync(t)
	if got, _ := f.sf.Record(fair); got["Subject"] != "Trade fair (stand 12)" || got["Location"] != "Hall B" || rep.Conflicts != 1 {
		t.Fatalf("last writer: %v, %+v", got, rep)
	}
	if fa := f.mailboxEvents("Trade fair (stand 12)"); len(fa) != 1 || fa[0].Location != "Hall B" {
		t.Fatalf("the mailbox's newer edit was overwritten: %+v", fa)
	}
	quiet("after the conflict")

	// Deletions go through once each way and never come back.
	f.sf.DeleteRecord(lunch)
	f.graph.DeleteEvent(string(f.tenant), f.ada, kickoff)
	clk.Advance(2 * time.Minute)
	rep = f.sync(t)
	if len(f.mailboxEvents("Client lunch")) != 0 || len(f.bySubject("Kickoff (v2)")) != 0 || rep.MailboxDeleted != 1 || rep.Deleted != 1 {
		t.Fatalf("deletions: %+v", rep)
	}
	f.graph.ExpireEventDeltaLinks(string(f.tenant), f.ada)
	quiet("after the deletions and a resync")
	if len(f.mailboxEvents("Client lunch")) != 0 || len(f.bySubject("Kickoff (v2)")) != 0 {
		t.Fatal("a deleted event came back")
	}

	for _, name := range []string{crm.TableLedger, crm.TableSyncState, crm.TableSyncErrors} {
		raw := f.rawRows(t, name)
		for _, w := range []string{"lunch", "Bistro", "Harbour", "Trade", "Hall", "Kickoff", "Design"} {
			if strings.Contains(raw, w) {
				t.Errorf("%s holds %q at rest", name, w)
			}
		}
	}
}

// A Salesforce Event Outlook refuses waits in the sync errors under its subject (type crm-event) and
// is read again the next run, without a new change in Salesforce, until it goes through.
func TestEventSyncOutlookRefusesAnEvent(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionFromCRM)
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	id := f.sf.PutEvent(map[string]any{"Subject": "Supplier visit", "StartDateTime": day.Format("2006-01-02T15:04:05.000+0000"),
		"EndDateTime": day.Add(time.Hour).Format("2006-01-02T15:04:05.000+0000"), "IsAllDayEvent": false, "OwnerId": f.owner})
	clk.Advance(2 * time.Minute)
	f.graph.Fail(http.MethodPost, "/users/"+f.ada+"/events", graphtest.Failure{Status: http.StatusBadRequest, Code: "ErrorPropertyValidationError"})
	rep := f.sync(t)
	errs := f.syncErrors(t)
	if rep.Failed != 1 || len(errs) != 1 || errs[0].Type != crm.RecordCRMEvent || errs[0].SourceID != id ||
		errs[0].DisplayName != "Supplier visit" || errs[0].Code != "outlook_ErrorPropertyValidationError" {
		t.Fatalf("refused: %+v, %+v", rep, errs)
	}
	if raw := f.rawRows(t, crm.TableSyncErrors); strings.Contains(raw, "Supplier") {
		t.Fatalf("the subject is not sealed: %s", raw)
	}
	clk.Advance(2 * time.Minute)
	if rep := f.sync(t); rep.MailboxCreated != 1 || len(f.syncErrors(t)) != 0 || len(f.mailboxEvents("Supplier visit")) != 1 {
		t.Fatalf("retried: %+v, %v", rep, f.syncErrors(t))
	}
}

// A run with many Salesforce Events to match lists the window once instead of a lookup each, and
// still links the events that carry their Salesforce id (here: the ledger was lost) without
// duplicating them.
func TestEventSyncManyToMatchListsTheWindow(t *testing.T) {
	f, clk := newEventFixture(t, crm.DirectionFromCRM)
	f.graph.PutUser(string(f.tenant), graphtest.User{ID: f.ada})
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for i := range 30 {
		s := day.Add(time.Duration(i) * time.Hour)
		f.sf.PutEvent(map[string]any{"Subject": fmt.Sprintf("Call %d", i), "StartDateTime": s.Format("2006-01-02T15:04:05.000+0000"),
			"EndDateTime": s.Add(30 * time.Minute).Format("2006-01-02T15:04:05.000+0000"), "IsAllDayEvent": false, "OwnerId": f.owner})
	}
	clk.Advance(2 * time.Minute)
	if rep := f.sync(t); rep.MailboxCreated != 30 {
		t.Fatalf("first run: %+v", rep)
	}
	if _, err := f.data.Ledger.DeletePrefix(ctx, f.tenant, f.ada+"|"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.data.SyncState.DeletePrefix(ctx, f.tenant, f.ada+"|"); err != nil {
		t.Fatal(err)
	}
	finds := f.graph.Count(http.MethodGet, "/users/"+f.ada+"/events")
	clk.Advance(2 * time.Minute)
	rep := f.sync(t)
	if rep.MailboxLinked != 30 || rep.MailboxCreated != 0 || len(f.graph.Events(string(f.tenant), f.ada)) != 30 {
		t.Fatalf("after the ledger was lost: %+v", rep)
	}
	if n := f.graph.Count(http.MethodGet, "/users/"+f.ada+"/events") - finds; n != 0 {
		t.Fatalf("%d lookups, want one listing instead", n)
	}
}
