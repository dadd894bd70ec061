// Package audit writes the trail of administrative operations that every module's admin functions share:
// who did what to which target, when, and with which outcome — ids only, never names or addresses.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
)

// Outcomes as the trail records them.
const (
	Success = "success"
	Denied  = "denied"
	Failed  = "failed"
)

// OutcomeOf classifies an action's error: nil succeeded, a classified refusal (invalid, forbidden,
// conflict, …) was denied, anything else — a bug, a dependency down — failed.
func OutcomeOf(err error) string {
	switch {
	case err == nil:
		return Success
	case apperr.CodeOf(err) == apperr.Internal || apperr.CodeOf(err) == apperr.Unavailable:
		return Failed
	default:
		return Denied
	}
}

// Appender is the audit table (Log).
type Appender interface {
	Append(ctx context.Context, tenant core.TenantID, e Entry) (Entry, error)
}

// Trail appends entries to a tenant's audit log.
type Trail struct {
	Table Appender
	Now   func() time.Time
	Log   *slog.Logger
}

// Write appends an entry with the given outcome. A failed append is an apperr Unavailable, so the caller
// fails the request rather than leave a change unaudited.
func (t Trail) Write(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID, outcome string) error {
	_, err := t.Table.Append(ctx, tenant, Entry{
		At: t.Now(), ActorID: a.ID, ActorKind: a.Kind, Action: action,
		TargetType: targetType, TargetID: targetID, Outcome: outcome, InvocationID: a.InvocationID,
	})
	if err != nil {
		t.Log.ErrorContext(ctx, "audit append failed", "action", action, "error", err)
		return apperr.New(apperr.Unavailable, "the action was done but could not be audited; retry it", fmt.Errorf("append audit: %w", err))
	}
	return nil
}

// Record appends the entry of an action whose result is err (its outcome from OutcomeOf) and returns
// what the caller answers: err itself, or the append's failure when the action succeeded.
func (t Trail) Record(ctx context.Context, tenant core.TenantID, a core.Actor, action, targetType, targetID string, err error) error {
	if aerr := t.Write(ctx, tenant, a, action, targetType, targetID, OutcomeOf(err)); aerr != nil && err == nil {
		return aerr
	}
	return err
}
