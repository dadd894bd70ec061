package presence_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// workerFixture has one tenant with a subscription for u1..u3; u3 then restricts processing.
func workerFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	f := newFixture(t, o)
	f.addUsers(t, u1, u2, u3)
	f.addServiceUser(t, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// u3 objects to processing after the subscription was made.
	if _, err := f.st.Users.Update(ctx, f.tenant, u3, func(u *registry.User) error { u.ProcessingRestricted = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f.applier.ForgetUser(f.tenant, u3)
	return f
}

func TestWorkerPushesMappedPresenceOnce(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})

	busy := f.notify(t, u1, "Busy", "InACall")
	if err := f.worker.Process(ctx, busy[0]); err != nil {
		t.Fatal(err)
	}
	if st, n := f.pusher.last(u1); st != connector.Busy || n != 2 { // initial resync + this
		t.Fatalf("u1 = %s ×%d", st, n)
	}
	row, _ := presence.OpenData(f.st.DB()).Presence.Get(ctx, f.tenant, u1)
	if row.Availability != "Busy" || row.Activity != "InACall" || row.PBXState != "Busy" || row.Sequence == "" {
		t.Errorf("stored presence = %+v", row)
	}
	rk, _ := presence.LedgerKey(u1, "presence")
	if le, err := presence.OpenData(f.st.DB()).Ledger.Get(ctx, f.tenant, rk); err != nil || !le.LastModified.Equal(row.ChangedAt) {
		t.Errorf("ledger = %+v, %v", le, err)
	}

	// Replay: same notification again → no second push.
	if err := f.worker.Process(ctx, busy[0]); err != nil {
		t.Fatal(err)
	}
	// Same PBX state, other activity → stored, not pushed.
	meeting := f.notify(t, u1, "Busy", "InAMeeting")
	if err := f.worker.Process(ctx, meeting[0]); err != nil {
		t.Fatal(err)
	}
	if _, n := f.pusher.last(u1); n != 2 {
		t.Errorf("u1 pushed %d times, want 2 (replay and same-state change not pushed)", n)
	}
	if row, _ := presence.OpenData(f.st.DB()).Presence.Get(ctx, f.tenant, u1); row.Activity != "InAMeeting" {
		t.Errorf("stored activity = %s, want the latest", row.Activity)
	}

	// Older after newer: build both, deliver the newer first.
	older := f.notify(t, u1, "Away", "Away")
	newer := f.notify(t, u1, "DoNotDisturb", "Presenting")
	for _, d := range []*queue.Delivery{newer[0], older[0]} {
		if err := f.worker.Process(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if st, n := f.pusher.last(u1); st != connector.DND || n != 3 {
		t.Errorf("u1 = %s ×%d, want DND ×3 (the older Away dropped)", st, n)
	}

	// Restricted and unknown users are never pushed.
	before := len(f.pusher.all())
	if err := f.worker.Process(ctx, f.notify(t, u3, "Busy", "Busy")[0]); err != nil {
		t.Fatal(err)
	}
	if len(f.pusher.all()) != before {
		t.Error("a user with restricted processing was pushed")
	}
	if f.stats.Snapshot().Stale < 2 || f.stats.Snapshot().Skipped < 1 {
		t.Errorf("stats = %+v", f.stats.Snapshot())
	}
}

func TestWorkerWithoutSequenceNumbers(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	f.graph.IncludeSequence = false
	older := f.notify(t, u2, "Away", "Away")
	newer := f.notify(t, u2, "Busy", "Busy")
	newer[0].EnqueuedTime = time.Now()
	older[0].EnqueuedTime = newer[0].EnqueuedTime.Add(-time.Second)
	if err := f.worker.Process(ctx, newer[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.worker.Process(ctx, older[0]); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.pusher.last(u2); st != connector.Busy {
		t.Errorf("u2 = %s, want Busy: the webhook's acceptance time orders notifications without sequence numbers", st)
	}
}

func TestWorkerRefusesBadContent(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	d := f.notify(t, u1, "Busy", "Busy")[0]
	var n notification.Notification
	_ = json.Unmarshal(d.Body, &n)

	tampered := n
	// Flip one base64 character to another valid one, so the ciphertext always changes (upper-casing
	// a prefix left it unchanged whenever the prefix had no lower-case letter).
	first := "A"
	if n.EncryptedContent.Data[0] == 'A' {
		first = "B"
	}
	tampered.EncryptedContent.Data = first + n.EncryptedContent.Data[1:]
	swapped := n
	swapped.ResourceData.ID = u2 // u1's content under u2's envelope
	plain := n
	plain.EncryptedContent = notification.EncryptedContent{}
	for name, bad := range map[string]notification.Notification{"tampered": tampered, "other user": swapped, "no content": plain} {
		body, _ := json.Marshal(bad)
		dd := *d
		dd.Body = body
		if err := f.worker.Process(ctx, &dd); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	wrongKind := *d
	wrongKind.ApplicationProperties = map[string]string{"tenantId": string(f.tenant), "kind": "booking"}
	if err := f.worker.Process(ctx, &wrongKind); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("booking message: err = %v", err)
	}
}

func TestWorkerRetriesWithBackoffThenGivesUp(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{maxAttempts: 3})
	d := f.notify(t, u1, "Busy", "InACall")[0]

	// 1st push throttled for 20 s: a copy is scheduled at least that far out, same session, new id.
	f.pusher.failNext(&connector.Error{Op: "presence", Status: 429, RetryAfter: 20 * time.Second})
	now := time.Now()
	if err := f.worker.Process(ctx, d); err != nil {
		t.Fatalf("a retryable failure must complete the message after rescheduling: %v", err)
	}
	msgs := f.sender.take()
	if len(msgs) != 1 {
		t.Fatalf("rescheduled = %+v", msgs)
	}
	m := msgs[0]
	if m.SessionID != d.SessionID || m.ID == d.MessageID || m.ApplicationProperties[presence.PropAttempt] != "1" ||
		m.ScheduledEnqueueTime == nil || m.ScheduledEnqueueTime.Sub(now) < 20*time.Second {
		t.Errorf("copy = %+v (at %v)", m, m.ScheduledEnqueueTime)
	}
	rk, _ := presence.SyncErrorKey(u1, "presence")
	se, err := presence.OpenData(f.st.DB()).SyncErrors.Get(ctx, f.tenant, rk)
	if err != nil || se.ErrorCode != "pbx_throttled" || se.Attempts != 1 || se.RecordName != "User a0000000" {
		t.Errorf("sync error = %+v, %v", se, err)
	}

	// 2nd push fails with a 503: the backoff doubles.
	f.pusher.failNext(&connector.Error{Op: "presence", Status: 503})
	if err := f.worker.Process(ctx, redeliver(m)); err != nil {
		t.Fatal(err)
	}
	m2 := f.sender.take()[0]
	if m2.ApplicationProperties[presence.PropAttempt] != "2" || m2.ScheduledEnqueueTime.Sub(time.Now()) < 1500*time.Millisecond {
		t.Errorf("second copy = %+v at %v", m2.ApplicationProperties, m2.ScheduledEnqueueTime)
	}

	// 3rd (last) push fails: the worker gives up with the reason, which the queue router parks at once
	// (apperr.GaveUp is not retryable); nothing more is scheduled.
	f.pusher.failNext(errors.New("dial tcp: connection refused"))
	err = f.worker.Process(ctx, redeliver(m2))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts (pbx_unreachable)") || apperr.Retryable(err) {
		t.Errorf("last attempt err = %v; want a permanent give-up", err)
	}
	if ms := f.sender.take(); len(ms) != 0 {
		t.Errorf("scheduled after giving up: %+v", ms)
	}
	if f.stats.Snapshot().GaveUp != 1 {
		t.Errorf("gave up = %d", f.stats.Snapshot().GaveUp)
	}

	// A later success clears the sync error (the name is not kept longer than needed).
	if err := f.worker.Process(ctx, f.notify(t, u1, "Available", "Available")[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := presence.OpenData(f.st.DB()).SyncErrors.Get(ctx, f.tenant, rk); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("sync error after success: %v", err)
	}
}

func TestWorkerPermanentFailureIsReportedNotRetried(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	f.pusher.failNext(connector.ErrUnmapped)
	if err := f.worker.Process(ctx, f.notify(t, u2, "Busy", "Busy")[0]); err != nil {
		t.Fatalf("permanent failure err = %v, want nil (recorded, completed)", err)
	}
	if msgs := f.sender.take(); len(msgs) != 0 {
		t.Errorf("rescheduled a permanent failure: %+v", msgs)
	}
	rk, _ := presence.SyncErrorKey(u2, "presence")
	if se, err := presence.OpenData(f.st.DB()).SyncErrors.Get(ctx, f.tenant, rk); err != nil || se.ErrorCode != "pbx_unmapped" {
		t.Errorf("sync error = %+v, %v", se, err)
	}
}

func TestWorkerUsesTheTenantsMapping(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	if _, err := f.st.Tenants.Update(ctx, f.tenant, func(tn *registry.Tenant) error {
		tn.PresenceMap = "Busy/InACall=DND; Away=Available"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.applier.Forget(f.tenant)
	for _, tt := range []struct {
		availability, activity string
		want                   connector.State
	}{
		{"Busy", "InACall", connector.DND},
		{"Away", "Away", connector.Available},
		{"Busy", "InAMeeting", connector.Busy},
	} {
		if err := f.worker.Process(ctx, f.notify(t, u1, tt.availability, tt.activity)[0]); err != nil {
			t.Fatal(err)
		}
		if st, _ := f.pusher.last(u1); st != tt.want {
			t.Errorf("%s/%s pushed %s, want %s", tt.availability, tt.activity, st, tt.want)
		}
	}

	// A mapping that no longer parses is reported, not guessed at.
	if _, err := f.st.Tenants.Update(ctx, f.tenant, func(tn *registry.Tenant) error { tn.PresenceMap = "Busy=Sleeping"; return nil }); err != nil {
		t.Fatal(err)
	}
	f.applier.Forget(f.tenant)
	before := len(f.pusher.all())
	if err := f.worker.Process(ctx, f.notify(t, u2, "Busy", "Busy")[0]); err != nil {
		t.Fatalf("invalid mapping err = %v, want nil (recorded, completed)", err)
	}
	rk, _ := presence.SyncErrorKey(u2, "presence")
	if se, err := presence.OpenData(f.st.DB()).SyncErrors.Get(ctx, f.tenant, rk); err != nil || se.ErrorCode != "mapping_invalid" || len(f.pusher.all()) != before {
		t.Errorf("sync error = %+v, %v", se, err)
	}
}

// Another writer changing the user's row between the worker's read and its write (the PBX → Teams worker
// recording its session, a resync) makes the write fail: a conflict, retried on fresh data — not an
// internal error, which reads as a bug in the logs.
func TestConcurrentRowChangeIsAConflictRetried(t *testing.T) {
	t.Parallel()
	f := workerFixture(t, fixtureOptions{})
	busy := f.notify(t, u1, "Busy", "InACall")
	data := presence.OpenData(f.st.DB())
	f.pusher.during = func() {
		if _, err := data.Presence.UpdateOrCreate(ctx, f.tenant, u1, func(p *presence.Presence, _ bool) error {
			p.UserID, p.PBXSequence = u1, p.PBXSequence+1
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	err := f.worker.Process(ctx, busy[0])
	if apperr.CodeOf(err) != apperr.Conflict || !apperr.Retryable(err) {
		t.Fatalf("Process with a concurrent writer = %v (%s), want a retryable conflict", err, apperr.CodeOf(err))
	}
	f.pusher.during = nil
	if err := f.worker.Process(ctx, busy[0]); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if row, err := data.Presence.Get(ctx, f.tenant, u1); err != nil || row.PBXState != "Busy" || row.PBXSequence != 1 {
		t.Errorf("stored presence = %+v, %v; want Busy with the other writer's field kept", row, err)
	}
}
