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
