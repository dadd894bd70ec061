package graph_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// A mailbox's calendar comes through calendarView delta over a window, series expanded, times in UTC and
// the body as text; the delta link then brings changes, deletions, and an event moved out of the window
// as @removed (which GetEvent tells apart from a deletion), and an expired link says so.
func TestEventsDelta(t *testing.T) {
	e := newEnv(t)
	e.graph.CalendarPageSize = 2
	const mailbox = "11111111-0000-4000-8000-000000000002"
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e.graph.PutEvent(tenant, mailbox, graphtest.CalEvent{ID: "AAMkE1", Subject: "Review", Body: "notes", Location: "Oslo",
		Start: day, End: day.Add(time.Hour), Sensitivity: "private", ShowAs: "tentative"})
	e.graph.PutEvent(tenant, mailbox, graphtest.CalEvent{ID: "AAMkE2", Subject: "Standup", Start: day, End: day.Add(15 * time.Minute),
		EveryDays: 1, Count: 3})
	e.graph.PutEvent(tenant, mailbox, graphtest.CalEvent{ID: "AAMkE3", Subject: "Far", Start: day.AddDate(1, 0, 0), End: day.AddDate(1, 0, 0).Add(time.Hour)})
	c := e.appClient(t)
	got := map[string]graph.EventChange{}
	collect := func(ch graph.EventChange) error { got[ch.ID] = ch; return nil }
	link, err := c.EventsDelta(ctx, mailbox, day.AddDate(0, 0, -14), day.AddDate(0, 0, 28), "", collect)
	if err != nil || link == "" {
		t.Fatal(link, err)
	}
	if len(got) != 4 {
		t.Fatalf("enumeration: %d instances, want 4 (one single, three occurrences)", len(got))
	}
	r := got["AAMkE1"]
	if r.Subject != "Review" || r.Body != "notes" || r.Location != "Oslo" || !r.Start.Equal(day) || !r.End.Equal(day.Add(time.Hour)) ||
		r.Sensitivity != "private" || r.ShowAs != "tentative" || r.ChangeKey == "" || r.LastModified.IsZero() || r.Type != "singleInstance" {
		t.Errorf("review = %+v", r)
	}
	if o := got["AAMkE2_1"]; o.Type != "occurrence" || !o.Start.Equal(day.AddDate(0, 0, 1)) {
		t.Errorf("occurrence = %+v", o)
	}
	for _, q := range e.graph.Requests() {
		if strings.Contains(q.Path, "/calendarView/delta") && q.Query.Get("$select") != "" {
			t.Errorf("delta with $select: %v", q.Query)
		}
	}

	e.graph.PutEvent(tenant, mailbox, graphtest.CalEvent{ID: "AAMkE1", Subject: "Review moved", Start: day.AddDate(0, 2, 0), End: day.AddDate(0, 2, 0).Add(time.Hour)})
	e.graph.DeleteEvent(tenant, mailbox, "AAMkE2")
	clear(got)
	link2, err := c.EventsDelta(ctx, mailbox, time.Time{}, time.Time{}, link, collect)
	if err != nil || link2 == "" {
		t.Fatal(err)
	}
	if len(got) != 4 || !got["AAMkE1"].Removed || !got["AAMkE2_0"].Removed || got["AAMkE2_2"].RemovedReason != "deleted" {
		t.Errorf("changes = %+v", got)
	}
	moved, err := c.GetEvent(ctx, mailbox, "AAMkE1")
	if err != nil || moved.Subject != "Review moved" {
		t.Errorf("get moved = %+v, %v", moved, err)
	}
	if _, err := c.GetEvent(ctx, mailbox, "AAMkE2_0"); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("get deleted occurrence: %v", err)
	}
	e.graph.ExpireEventDeltaLinks(tenant, mailbox)
	if _, err := c.EventsDelta(ctx, mailbox, time.Time{}, time.Time{}, link2, collect); !errors.Is(err, graph.ErrDeltaExpired) {
		t.Errorf("expired link: %v", err)
	}
}

// Writes: a created event carries its extended property and is found by it; a retried POST with the
// same transactionId creates nothing; an update changes what it names; a delete is final.
func TestEventWrites(t *testing.T) {
	e := newEnv(t)
	const mailbox = "11111111-0000-4000-8000-000000000003"
	const prop = "String {0c7e2b4a-93d1-4f5e-8a6b-1d2c3e4f5a6b} Name X"
	c := e.appClient(t)
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	w := graph.EventWrite{Subject: "Call", Body: "agenda", Location: "Desk", Start: day, End: day.Add(time.Hour), ShowAs: "busy",
		Sensitivity: "private", TransactionID: "txn-1", Properties: map[string]string{prop: "00U000000000001AAA"}}
	a, err := c.CreateEvent(ctx, mailbox, w)
	if err != nil || a.ID == "" || a.Subject != "Call" || a.Body != "agenda" || a.Sensitivity != "private" || !a.Start.Equal(day) {
		t.Fatalf("create: %+v, %v", a, err)
	}
	b, err := c.CreateEvent(ctx, mailbox, w)
	if err != nil || b.ID != a.ID {
		t.Fatalf("retried create: %+v, %v (want the first event %s)", b, err, a.ID)
	}
	found, err := c.FindEvents(ctx, mailbox, prop, "00U000000000001AAA")
	if err != nil || len(found) != 1 || found[0].ID != a.ID {
		t.Fatalf("find: %+v, %v", found, err)
	}
	w.Subject, w.IsAllDay, w.Start, w.End = "Offsite", true, day.Truncate(24*time.Hour), day.Truncate(24*time.Hour).Add(24*time.Hour)
	u, err := c.UpdateEvent(ctx, mailbox, a.ID, w)
	if err != nil || u.Subject != "Offsite" || !u.IsAllDay || u.ChangeKey == a.ChangeKey {
		t.Fatalf("update: %+v, %v", u, err)
	}
	if err := c.DeleteEvent(ctx, mailbox, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteEvent(ctx, mailbox, a.ID); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
