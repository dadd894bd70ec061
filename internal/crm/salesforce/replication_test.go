package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
)

// testClock is a clock the fake org and the client share.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// The windows answer as Salesforce's do: seconds dropped from start and end (a change in the current
// minute waits for the next window), latestDateCovered as the next start, deletions with their date
// and earliestDateAvailable moving when the Recycle Bin is emptied, and a start too far back or not
// before the end refused with INVALID_REPLICATION_DATE.
func TestReplicationWindows(t *testing.T) {
	t.Parallel()
	s := sftest.New(t)
	s.AddUser(sftest.User{Username: "sync@example.com", Approved: true})
	clk := &testClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	s.SetClock(clk.Now)
	c := salesforce.New(salesforce.Options{LoginURL: func(string) string { return s.URL() }, Now: clk.Now})
	cred := salesforce.Credential{ConsumerKey: s.App.ConsumerKey, Username: "sync@example.com", Host: salesforce.LoginHost, PrivateKeyPEM: s.App.PrivateKeyPEM}
	ctx := context.Background()
	t0 := clk.Now()

	clk.Set(t0.Add(30 * time.Second))
	a := s.PutContact(map[string]any{"LastName": "A"}) // 12:00:30
	clk.Set(t0.Add(90 * time.Second))
	b := s.PutContact(map[string]any{"LastName": "B"}) // 12:01:30
	clk.Set(t0.Add(100 * time.Second))                 // 12:01:40

	// The window to now (12:01:40) ends at 12:01: only A, and the next start is 12:01.
	up, h, err := c.Updated(ctx, tenant, cred, "Contact", t0.Add(-time.Hour), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(up.IDs) != 1 || up.IDs[0] != a || !up.LatestDateCovered.Equal(t0.Add(time.Minute)) {
		t.Fatalf("updated %+v, want [A] to 12:01", up)
	}
	if _, ok := salesforce.ParseLimitInfo(h); !ok {
		t.Error("no Sforce-Limit-Info")
	}
	// A start of 12:00:59 is 12:00: A is in again.
	clk.Set(t0.Add(3 * time.Minute))
	up, _, err = c.Updated(ctx, tenant, cred, "Contact", t0.Add(59*time.Second), clk.Now())
	if err != nil || len(up.IDs) != 2 {
		t.Fatalf("seconds of start not dropped: %+v, %v", up, err)
	}
	up, _, err = c.Updated(ctx, tenant, cred, "Contact", t0.Add(time.Minute), clk.Now())
	if err != nil || len(up.IDs) != 1 || up.IDs[0] != b {
		t.Fatalf("from latestDateCovered: %+v, %v", up, err)
	}

	s.DeleteContact(a) // 12:03
	clk.Set(t0.Add(4 * time.Minute))
	del, _, err := c.Deleted(ctx, tenant, cred, "Contact", t0, clk.Now())
	if err != nil || len(del.Records) != 1 || del.Records[0].ID != a || !del.Records[0].DeletedDate.Equal(t0.Add(3*time.Minute)) ||
		!del.LatestDateCovered.Equal(clk.Now()) || del.EarliestDateAvailable.After(t0) {
		t.Fatalf("deleted %+v, %v", del, err)
	}
	if up, _, _ = c.Updated(ctx, tenant, cred, "Contact", t0, clk.Now()); len(up.IDs) != 1 || up.IDs[0] != b {
		t.Fatalf("a deleted record among the updated: %+v", up)
	}
	s.PurgeDeleted()
	del, _, err = c.Deleted(ctx, tenant, cred, "Contact", t0, clk.Now().Add(time.Minute))
	if err != nil || len(del.Records) != 0 || !del.EarliestDateAvailable.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("after the purge %+v, %v", del, err)
	}

	for name, w := range map[string][2]time.Time{
		"updated beyond 30 days": {clk.Now().Add(-31 * 24 * time.Hour), clk.Now()},
		"start not before end":   {clk.Now(), clk.Now().Add(30 * time.Second)}, // both 12:04 once the seconds go
	} {
		_, _, err := c.Updated(ctx, tenant, cred, "Contact", w[0], w[1])
		var ae *salesforce.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.ErrorCode != "INVALID_REPLICATION_DATE" {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, _, err = c.Deleted(ctx, tenant, cred, "Contact", clk.Now().Add(-16*24*time.Hour), clk.Now())
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.ErrorCode != "INVALID_REPLICATION_DATE" {
		t.Errorf("deleted beyond 15 days: %v", err)
	}
	if _, _, err := c.Updated(ctx, tenant, cred, "Contact", clk.Now().Add(-20*24*time.Hour), clk.Now()); err != nil {
		t.Errorf("20 days back is within the updated window: %v", err)
	}
}
