package privacy_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/privacy"
)

// Health's privacy counters: a request not completed a month after it was made is overdue, in the
// tenant's view and across tenants; restricted users are counted in the tenant's view, and a lifted
// restriction no longer counts.
func TestRequestClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIncidentEnv(t)
	tenant := e.tenant(t)
	const ada, grace = "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"
	for _, u := range []string{ada, grace} {
		if _, err := e.env.Store.Users.Insert(ctx, tenant, registry.User{ID: u, Licensed: true}); err != nil {
			t.Fatal(err)
		}
	}
	rights := privacy.NewRights(nil, e.data, e.env.Store, audit.Trail{Table: e.audit, Now: e.clock.Now, Log: slog.Default()}, "westeurope", e.clock.Now)
	staff0, err := rights.Clock(ctx, "", e.env.Store)
	if err != nil {
		t.Fatal(err)
	}

	// A failed objection (the cancellation could not start) is open; a restriction on Ada, one on Grace
	// lifted again.
	if _, err := rights.Object(ctx, by, tenant, func(context.Context) error { return errors.New("storage down") }); err == nil {
		t.Fatal("the objection did not fail")
	}
	for _, step := range []struct {
		user string
		on   bool
	}{{ada, true}, {grace, true}, {grace, false}} {
		if _, err := rights.Restrict(ctx, by, tenant, step.user, step.on, "disputed accuracy"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := rights.Clock(ctx, tenant, e.env.Store)
	if err != nil || c.Overdue != 0 || c.Restricted == nil || *c.Restricted != 1 {
		t.Fatalf("tenant clock = %+v, %v; want 1 restricted, nothing overdue within the month", c, err)
	}

	e.clock.Advance(31*24*time.Hour + time.Second)
	c, err = rights.Clock(ctx, tenant, e.env.Store)
	if err != nil || c.Overdue != 1 || *c.Restricted != 1 {
		t.Fatalf("tenant clock a month on = %+v, %v; want the failed request overdue", c, err)
	}
	staff, err := rights.Clock(ctx, "", e.env.Store)
	if err != nil || staff.Overdue < staff0.Overdue+1 || staff.Restricted != nil {
		t.Fatalf("staff clock = %+v (before %+v), %v; want this tenant's overdue request and no restricted count", staff, staff0, err)
	}
}
