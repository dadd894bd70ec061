package audit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
)

// memory stands in for the audit table only where the test is about the trail's own rules (outcome and
// what a failed append does); the table itself is tested against Azurite in internal/platform/registry.
type memory struct {
	entries []audit.Entry
	fail    error
}

func (m *memory) Append(_ context.Context, _ core.TenantID, e audit.Entry) (audit.Entry, error) {
	if m.fail != nil {
		return audit.Entry{}, m.fail
	}
	m.entries = append(m.entries, e)
	return e, nil
}

func TestRecord(t *testing.T) {
	t.Parallel()
	tenant, _ := core.ParseTenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
	actor := core.Actor{ID: "0b9a3c6e-1f2d-4e5a-8b7c-9d0e1f2a3b4c", Kind: "user", InvocationID: "inv"}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	refused := apperr.New(apperr.Conflict, "no", nil)
	broken := errors.New("storage down")
	tests := []struct {
		name       string
		actionErr  error
		appendErr  error
		wantOut    string // "" when nothing is appended
		wantReturn func(error) bool
	}{
		{"success", nil, nil, audit.Success, func(err error) bool { return err == nil }},
		{"a refusal is denied", refused, nil, audit.Denied, func(err error) bool { return err == refused }},
		{"a failure is failed", broken, nil, audit.Failed, func(err error) bool { return err == broken }},
		{"a lost audit fails a successful action", nil, broken, "", func(err error) bool { return apperr.CodeOf(err) == apperr.Unavailable }},
		{"a lost audit keeps the action's own error", refused, broken, "", func(err error) bool { return err == refused }},
	}
	for _, tt := range tests {
		m := &memory{fail: tt.appendErr}
		tr := audit.Trail{Table: m, Now: func() time.Time { return at }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := tr.Record(context.Background(), tenant, actor, "connector.set", "connector", "ringcentral", tt.actionErr)
		if !tt.wantReturn(err) {
			t.Errorf("%s: Record = %v", tt.name, err)
		}
		if tt.wantOut == "" {
			if len(m.entries) != 0 {
				t.Errorf("%s: entries %v", tt.name, m.entries)
			}
			continue
		}
		want := audit.Entry{At: at, ActorID: actor.ID, ActorKind: "user", Action: "connector.set", TargetType: "connector",
			TargetID: "ringcentral", Outcome: tt.wantOut, InvocationID: "inv"}
		if len(m.entries) != 1 || !reflect.DeepEqual(m.entries[0], want) {
			t.Errorf("%s: entries %+v, want %+v", tt.name, m.entries, want)
		}
	}
}
