package tenants

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// Each step runs an operator action at an instant after the previous one and checks the state, the
// outcome and the audit entry it leaves.
func TestLifecycleTransitions(t *testing.T) {
	t.Parallel()
	type step struct {
		after     time.Duration // since the previous step
		action    string
		wantState registry.TenantState
		wantCode  apperr.Code // -1: success
	}
	const ok = apperr.Code(-1)
	tests := []struct {
		name  string
		steps []step
	}{
		{"cancel, reactivate at 23h59m keeps the tenant", []step{
			{0, "cancel", registry.TenantCancelled, ok},
			{23*time.Hour + 59*time.Minute, "reactivate", registry.TenantActive, ok},
		}},
		{"cancel, reactivate at 24h01m is too late", []step{
			{0, "cancel", registry.TenantCancelled, ok},
			{24*time.Hour + time.Minute, "reactivate", registry.TenantCancelled, apperr.Conflict},
		}},
		{"suspend, reactivate at 6d23h", []step{
			{0, "suspend", registry.TenantSuspended, ok},
			{6*24*time.Hour + 23*time.Hour, "reactivate", registry.TenantActive, ok},
		}},
		{"suspend, reactivate at 7d1h is too late", []step{
			{0, "suspend", registry.TenantSuspended, ok},
			{7*24*time.Hour + time.Hour, "reactivate", registry.TenantSuspended, apperr.Conflict},
		}},
		{"suspended then cancelled: the earlier clock decides", []step{
			{0, "suspend", registry.TenantSuspended, ok},
			{6*24*time.Hour + 12*time.Hour, "cancel", registry.TenantCancelled, ok},
			{13 * time.Hour, "reactivate", registry.TenantCancelled, apperr.Conflict}, // 7 d 1 h after suspension
		}},
		{"repeated actions are harmless", []step{
			{0, "suspend", registry.TenantSuspended, ok},
			{time.Hour, "suspend", registry.TenantSuspended, ok},
			{time.Hour, "cancel", registry.TenantCancelled, ok},
			{time.Hour, "cancel", registry.TenantCancelled, ok},
			{time.Hour, "suspend", registry.TenantCancelled, apperr.Conflict},
			{time.Hour, "reactivate", registry.TenantActive, ok},
			{time.Hour, "reactivate", registry.TenantActive, ok},
		}},
	}
	f := newFixture(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			id := f.activeTenant(t, 5)
			var want []string
			for i, s := range tt.steps {
				f.clock.Advance(s.after + time.Second)
				var v View
				var err error
				switch s.action {
				case "suspend":
					v, err = f.svc.Suspend(ctx, operator, id)
				case "cancel":
					v, err = f.svc.Cancel(ctx, operator, id)
				case "reactivate":
					v, err = f.svc.Reactivate(ctx, operator, id)
				}
				outcome := "success"
				if s.wantCode == ok {
					if err != nil || v.State != s.wantState {
						t.Fatalf("step %d %s: %+v, %v; want state %s", i, s.action, v, err, s.wantState)
					}
				} else {
					wantCode(t, err, s.wantCode)
					outcome = "denied"
				}
				want = append(want, "tenant."+s.action+"/"+outcome+"/"+operator.ID)
				if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != s.wantState {
					t.Errorf("step %d %s: stored state %s, want %s", i, s.action, tn.State, s.wantState)
				}
			}
			if got := fmt.Sprint(f.auditTrail(t, id)); got != fmt.Sprint(want) {
				t.Errorf("audit = %s\nwant    %s", got, want)
			}
		})
	}

	t.Run("a reactivated tenant starts its clocks afresh", func(t *testing.T) {
		id := f.activeTenant(t, 1)
		f.clock.Advance(time.Minute)
		if _, err := f.svc.Cancel(ctx, operator, id); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		v, err := f.svc.Reactivate(ctx, operator, id)
		tn, _ := f.st.Tenants.Get(ctx, id)
		if err != nil || !v.DeletionDueAt.IsZero() || !tn.CancelledAt.IsZero() || !tn.ReactivatedAt.Equal(f.clock.Now()) {
			t.Errorf("after reactivation: view %+v, row %+v, %v", v, tn, err)
		}
	})

	t.Run("cancel shows when the deletion is due", func(t *testing.T) {
		id := f.activeTenant(t, 1)
		v, err := f.svc.Cancel(ctx, operator, id)
		if err != nil || !v.DeletionDueAt.Equal(f.clock.Now().Add(24*time.Hour)) {
			t.Errorf("Cancel = %+v, %v", v, err)
		}
	})

	t.Run("a tenant being deleted refuses everything and gets no audit rows", func(t *testing.T) {
		id := f.activeTenant(t, 1)
		if _, err := f.st.Tenants.Update(ctx, id, func(t *registry.Tenant) error { t.State = registry.TenantDeleting; return nil }); err != nil {
			t.Fatal(err)
		}
		for name, fn := range map[string]func() error{
			"suspend":    func() error { _, err := f.svc.Suspend(ctx, operator, id); return err },
			"cancel":     func() error { _, err := f.svc.Cancel(ctx, operator, id); return err },
			"reactivate": func() error { _, err := f.svc.Reactivate(ctx, operator, id); return err },
			"licenses":   func() error { _, err := f.svc.SetPurchasedLicenses(ctx, operator, id, 3); return err },
			"unassign":   func() error { return f.svc.Unassign(ctx, operator, id, "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c") },
		} {
			if err := fn(); apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("%s: err = %v, want Conflict", name, err)
			}
		}
		if got := f.auditTrail(t, id); len(got) != 0 {
			t.Errorf("audit rows written into a deleting tenant: %v", got)
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		id := f.env.NewTenant(t)
		_, err := f.svc.Suspend(ctx, operator, id)
		wantCode(t, err, apperr.NotFound)
		if got := f.auditTrail(t, id); len(got) != 0 {
			t.Errorf("audit rows for an unknown tenant: %v", got)
		}
	})
}

func TestSetPurchasedLicensesReportsOverAssignment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newFakeDirectory(user("aaaaaaaa-0000-4000-8000-000000000001", "ada"), user("aaaaaaaa-0000-4000-8000-000000000002", "bob"),
		user("aaaaaaaa-0000-4000-8000-000000000003", "cy")))
	id := f.activeTenant(t, 3)
	for i := 1; i <= 3; i++ {
		if _, err := f.svc.Assign(ctx, operator, id, fmt.Sprintf("aaaaaaaa-0000-4000-8000-00000000000%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := f.svc.SetPurchasedLicenses(ctx, operator, id, 1)
	if err != nil || v.PurchasedLicenses != 1 || v.AssignedLicenses != 3 || v.OverAssigned != 2 {
		t.Errorf("after reduction: %+v, %v; want purchased 1, assigned 3 (nothing taken away), over 2", v, err)
	}
	for _, n := range []int{-1, MaxPurchasedLicenses + 1} {
		_, err := f.svc.SetPurchasedLicenses(ctx, operator, id, n)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("SetPurchasedLicenses(%d) err = %v, want Invalid", n, err)
		}
	}
}

// recHook records what the processing capabilities are told, and what was stored by then.
type recHook struct {
	st    *registry.Registry
	err   error
	block bool     // wait for the deadline, like a Graph that does not answer
	calls []string // "state/stored state/audit entries"
	f     *fixture
	t     *testing.T
}

func (h *recHook) OnStateChange(hctx context.Context, tenant core.TenantID, state registry.TenantState) error {
	tn, _ := h.st.Tenants.Get(ctx, tenant)
	h.calls = append(h.calls, fmt.Sprintf("%s/%s/%d", state, tn.State, len(h.f.auditTrail(h.t, tenant))))
	if h.block {
		<-hctx.Done()
		return hctx.Err()
	}
	return h.err
}

// Suspension, cancellation and reactivation tell the processing capabilities once the change is
// stored and audited; a hook that fails (Graph down) does not undo or fail the change; a refused action
// tells nobody.
func TestStateChangesReachTheProcessingHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	hook := &recHook{st: f.st, f: f, t: t}
	o := f.svc.o
	o.Processing = hook
	o.ProcessingTimeout = 100 * time.Millisecond
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	id := f.activeTenant(t, 1)

	if v, err := svc.Suspend(ctx, operator, id); err != nil || v.State != registry.TenantSuspended {
		t.Fatalf("Suspend = %+v, %v", v, err)
	}
	hook.err = errors.New("graph unavailable")
	if v, err := svc.Cancel(ctx, operator, id); err != nil || v.State != registry.TenantCancelled {
		t.Fatalf("Cancel with a failing hook = %+v, %v; want the cancellation to stand", v, err)
	}
	hook.err = nil
	if _, err := svc.Suspend(ctx, operator, id); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("suspending a cancelled tenant = %v, want Conflict", err)
	}
	if v, err := svc.Reactivate(ctx, operator, id); err != nil || v.State != registry.TenantActive {
		t.Fatalf("Reactivate = %+v, %v", v, err)
	}
	// A hook that never answers is cut off at ProcessingTimeout; the suspension stands.
	hook.block = true
	if v, err := svc.Suspend(ctx, operator, id); err != nil || v.State != registry.TenantSuspended {
		t.Fatalf("Suspend with a hanging hook = %+v, %v", v, err)
	}
	want := []string{"suspended/suspended/1", "cancelled/cancelled/2", "active/active/4", "suspended/suspended/5"}
	if fmt.Sprint(hook.calls) != fmt.Sprint(want) {
		t.Errorf("hook calls = %v\nwant         %v", hook.calls, want)
	}
	if tn, _ := f.st.Tenants.Get(ctx, id); tn.State != registry.TenantSuspended {
		t.Errorf("stored state = %s", tn.State)
	}
}
