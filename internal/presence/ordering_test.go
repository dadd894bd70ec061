package presence_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

const presenceRead = "/communications/getPresencesByUserId"

// orderingFixture is workerFixture on a clock the test moves.
func orderingFixture(t *testing.T, sequence bool) (*fixture, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	f := workerFixture(t, fixtureOptions{now: clk.Now})
	f.graph.IncludeSequence = sequence
	return f, clk
}

// notifyAt changes a presence at the fake Graph and returns its deliveries as accepted by the webhook at at.
func (f *fixture) notifyAt(t *testing.T, at time.Time, user, availability, activity string) *queue.Delivery {
	t.Helper()
	ds, err := f.graph.SetPresence(string(f.tenant), user, availability, activity)
	if err != nil {
		t.Fatal(err)
	}
	return f.deliveries(t, ds, at)[0]
}

func (f *fixture) process(t *testing.T, d *queue.Delivery) {
	t.Helper()
	if err := f.worker.Process(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// The case: Graph delivers an old Away again 11 minutes later, past Service Bus's 10-minute
// duplicate window, after Available was applied. Nothing in the notification says it is old, so it is
// checked against Graph, which says Available: the PBX stays Available.
func TestWorkerLateDuplicateWithoutSequenceIsNotPushed(t *testing.T) {
	t.Parallel()
	f, clk := orderingFixture(t, false)

	away := f.notifyAt(t, clk.Now(), u1, "Away", "Away")
	f.process(t, away)
	clk.Advance(time.Minute)
	f.process(t, f.notifyAt(t, clk.Now(), u1, "Available", "Available"))
	if st, _ := f.pusher.last(u1); st != connector.Available {
		t.Fatalf("u1 = %s, want Available", st)
	}
	_, pushes := f.pusher.last(u1)
	reads := f.graph.Count(http.MethodPost, presenceRead)

	// The same notification, accepted again by the webhook 11 minutes after the first time: a new
	// message to Service Bus, later than Available by arrival.
	clk.Advance(10 * time.Minute)
	replay := *away
	replay.EnqueuedTime = clk.Now()
	f.process(t, &replay)

	if st, n := f.pusher.last(u1); st != connector.Available || n != pushes {
		t.Errorf("u1 = %s ×%d, want Available ×%d: the late Away reached the PBX", st, n, pushes)
	}
	if got := f.graph.Count(http.MethodPost, presenceRead); got != reads+1 {
		t.Errorf("presence reads = %d, want %d (the replay confirmed once)", got, reads+1)
	}
	if row, _ := presence.OpenData(f.st.DB()).Presence.Get(ctx, f.tenant, u1); row.Availability != "Available" || row.PBXState != "Available" {
		t.Errorf("stored presence = %+v, want Available", row)
	}
	// The confirming read went through the service user of the notification's subscription.
	reqs := f.graph.Requests()
	if last := reqs[len(reqs)-1]; last.Path != presenceRead || last.Identity.UserID != su1 || !strings.Contains(string(last.Body), u1) {
		t.Errorf("last Graph call = %s as %s with %s", last.Path, last.Identity.UserID, last.Body)
	}
}

// With sequence numbers the same replay is dropped without asking Graph.
func TestWorkerLateDuplicateWithSequenceIsDroppedWithoutARead(t *testing.T) {
	t.Parallel()
	f, clk := orderingFixture(t, true)
	away := f.notifyAt(t, clk.Now(), u1, "Away", "Away")
	f.process(t, away)
	f.process(t, f.notifyAt(t, clk.Now(), u1, "Available", "Available"))
	reads, stale := f.graph.Count(http.MethodPost, presenceRead), f.stats.Snapshot().Stale

	clk.Advance(11 * time.Minute)
	replay := *away
	replay.EnqueuedTime = clk.Now()
	f.process(t, &replay)
	if st, _ := f.pusher.last(u1); st != connector.Available {
		t.Errorf("u1 = %s, want Available", st)
	}
	if got := f.graph.Count(http.MethodPost, presenceRead); got != reads {
		t.Errorf("presence reads = %d, want %d: the sequence number alone proves the replay old", got, reads)
	}
	if got := f.stats.Snapshot().Stale; got != stale+1 {
		t.Errorf("stale = %d, want %d", got, stale+1)
	}
}

// A genuine change that arrives late is confirmed by the read and pushed; what is pushed is what Graph
// says now, not what the notification said.
func TestWorkerLateChangeIsConfirmedAndPushed(t *testing.T) {
	t.Parallel()
	t.Run("no sequence number, delivered hours late", func(t *testing.T) {
		t.Parallel()
		f, clk := orderingFixture(t, false)
		f.process(t, f.notifyAt(t, clk.Now(), u2, "Available", "Available"))
		dnd := f.notifyAt(t, time.Time{}, u2, "DoNotDisturb", "Presenting")
		clk.Advance(3 * time.Hour) // Graph retried for 3 hours
		dnd.EnqueuedTime = clk.Now()
		confirmed := f.stats.Snapshot().Confirmed
		f.process(t, dnd)
		if st, _ := f.pusher.last(u2); st != connector.DND {
			t.Errorf("u2 = %s, want DND", st)
		}
		if got := f.stats.Snapshot().Confirmed; got != confirmed+1 {
			t.Errorf("confirmed = %d, want %d", got, confirmed+1)
		}
	})
	t.Run("sequence number, but it waited past the freshness bound", func(t *testing.T) {
		t.Parallel()
		f, clk := orderingFixture(t, true)
		busy := f.notifyAt(t, clk.Now(), u2, "Busy", "InACall")
		// Meanwhile the user stepped away and that notification is not here (yet).
		f.graph.SetPresenceQuietly(string(f.tenant), u2, "BeRightBack", "BeRightBack")
		clk.Advance(10 * time.Minute)
		reads := f.graph.Count(http.MethodPost, presenceRead)
		f.process(t, busy)
		if st, _ := f.pusher.last(u2); st != connector.Away {
			t.Errorf("u2 = %s, want Away (Graph's current BeRightBack), not the 10-minute-old Busy", st)
		}
		if got := f.graph.Count(http.MethodPost, presenceRead); got != reads+1 {
			t.Errorf("presence reads = %d, want %d", got, reads+1)
		}
		if row, _ := presence.OpenData(f.st.DB()).Presence.Get(ctx, f.tenant, u2); row.Availability != "BeRightBack" || row.ChangedAt.Sub(clk.Now()).Abs() > time.Millisecond {
			t.Errorf("stored presence = %+v", row)
		}
	})
}

// Graph down while confirming: the message is rescheduled with backoff (not pushed, not lost), keeps its
// first acceptance time, and is dead-lettered with the reason if Graph stays down.
func TestWorkerConfirmationRetriesWhileGraphIsDown(t *testing.T) {
	t.Parallel()
	f, clk := orderingFixture(t, false)
	f.process(t, f.notifyAt(t, clk.Now(), u1, "Available", "Available"))
	_, pushes := f.pusher.last(u1)
	accepted := clk.Now()
	busy := f.notifyAt(t, accepted, u1, "Busy", "InACall")

	// Graph's outage answer: 503 with Retry-After (0 here, so the client's own three retries are quick).
	down := func() {
		for range 4 {
			f.graph.Fail(http.MethodPost, presenceRead, graphtest.Failure{Status: http.StatusServiceUnavailable, RetryAfter: "0", Code: "ServiceNotAvailable"})
		}
	}
	down()
	if err := f.worker.Process(ctx, busy); err != nil {
		t.Fatalf("a failed confirmation must complete the message after rescheduling it: %v", err)
	}
	msgs := f.sender.take()
	if len(msgs) != 1 {
		t.Fatalf("rescheduled = %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.SessionID != busy.SessionID || m.ID == busy.MessageID || m.ApplicationProperties[presence.PropAttempt] != "1" ||
		m.ApplicationProperties[presence.PropLastError] != "graph_unavailable" || m.ScheduledEnqueueTime == nil ||
		!m.ScheduledEnqueueTime.After(clk.Now()) {
		t.Errorf("copy = %+v at %v", m.ApplicationProperties, m.ScheduledEnqueueTime)
	}
	if at, err := time.Parse(time.RFC3339Nano, m.ApplicationProperties[presence.PropObservedAt]); err != nil || !at.Equal(accepted.UTC()) {
		t.Errorf("observedAt = %q, want the first acceptance %v", m.ApplicationProperties[presence.PropObservedAt], accepted)
	}
	if st, n := f.pusher.last(u1); st != connector.Available || n != pushes {
		t.Errorf("u1 = %s ×%d: pushed without confirmation", st, n)
	}
	if row, _ := presence.OpenData(f.st.DB()).Presence.Get(ctx, f.tenant, u1); row.Availability != "Available" {
		t.Errorf("stored %s while unconfirmed", row.Availability)
	}

	// Graph is back when the copy arrives: confirmed, pushed.
	clk.Advance(2 * time.Second)
	f.process(t, redeliver(m))
	if st, n := f.pusher.last(u1); st != connector.Busy || n != pushes+1 {
		t.Errorf("u1 = %s ×%d, want Busy ×%d", st, n, pushes+1)
	}

	// Down for good: the third failed attempt gives up with the reason (parked by the router).
	dnd := f.notifyAt(t, clk.Now(), u1, "DoNotDisturb", "Presenting")
	d := dnd
	for attempt := 1; attempt <= 2; attempt++ {
		down()
		f.process(t, d)
		ms := f.sender.take()
		if len(ms) != 1 {
			t.Fatalf("attempt %d: rescheduled %d", attempt, len(ms))
		}
		d = redeliver(ms[0])
	}
	down()
	err := f.worker.Process(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts (graph_unavailable)") || apperr.Retryable(err) {
		t.Errorf("last attempt err = %v; want a permanent give-up", err)
	}
	if st, _ := f.pusher.last(u1); st != connector.Busy {
		t.Errorf("u1 = %s: pushed without confirmation", st)
	}
}

// The fast path: fresh notifications in order cost no Graph read, with or without sequence numbers
// where the rule can decide alone.
func TestWorkerFreshInOrderNeedsNoRead(t *testing.T) {
	t.Parallel()
	t.Run("sequence numbers", func(t *testing.T) {
		t.Parallel()
		f, clk := orderingFixture(t, true)
		// The resync stored what Graph read for a presence never set (PresenceUnknown, no sequence
		// number): nothing to compare the first notification's number with, so it is confirmed once.
		reads := f.graph.Count(http.MethodPost, presenceRead)
		f.process(t, f.notifyAt(t, clk.Now(), u1, "Busy", "InACall"))
		if got := f.graph.Count(http.MethodPost, presenceRead); got != reads+1 {
			t.Errorf("presence reads = %d, want %d: a number to compare with nothing", got, reads+1)
		}
		reads++
		for i, st := range [][2]string{{"Available", "Available"}, {"Away", "Away"}, {"DoNotDisturb", "Presenting"}} {
			clk.Advance(time.Duration(i) * time.Second)
			f.process(t, f.notifyAt(t, clk.Now(), u1, st[0], st[1]))
		}
		if st, n := f.pusher.last(u1); st != connector.DND || n != 5 { // resync + 4
			t.Errorf("u1 = %s ×%d, want DND ×5", st, n)
		}
		if got := f.graph.Count(http.MethodPost, presenceRead); got != reads {
			t.Errorf("presence reads = %d, want %d: the fast path called Graph", got, reads)
		}
		if got := f.stats.Snapshot().Confirmed; got != 1 {
			t.Errorf("confirmed = %d, want 1", got)
		}
	})
	t.Run("no sequence numbers", func(t *testing.T) {
		t.Parallel()
		f, clk := orderingFixture(t, false)
		f.process(t, f.notifyAt(t, clk.Now(), u1, "Busy", "InACall")) // confirmed: changes the PBX
		reads := f.graph.Count(http.MethodPost, presenceRead)
		_, pushes := f.pusher.last(u1)

		// Another activity of the same PBX state: nothing to push, so nothing to confirm.
		f.process(t, f.notifyAt(t, clk.Now(), u1, "Busy", "InAMeeting"))
		// A change more than Graph's redelivery horizon after the stored state cannot be a late copy
		// of anything stored.
		clk.Advance(6 * time.Hour)
		f.process(t, f.notifyAt(t, clk.Now(), u1, "Away", "Away"))

		if got := f.graph.Count(http.MethodPost, presenceRead); got != reads {
			t.Errorf("presence reads = %d, want %d", got, reads)
		}
		if st, n := f.pusher.last(u1); st != connector.Away || n != pushes+1 {
			t.Errorf("u1 = %s ×%d, want Away ×%d", st, n, pushes+1)
		}
	})
}
