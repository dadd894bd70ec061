package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"testing/slogtest"

	"github.com/connecthub/connecthub/internal/core"
)

func TestLogHandlerStampsInvocationAndTenant(t *testing.T) {
	t.Parallel()
	tenant, _ := core.ParseTenantID("6F1B3C1E-2D4A-4B5C-8D9E-0A1B2C3D4E5F")
	inv := core.WithInvocation(context.Background(), "ProcessNotification", "inv-1")
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want map[string]any
	}{
		{"no invocation, no tenant", func(l *slog.Logger) { l.InfoContext(context.Background(), "m") },
			map[string]any{"msg": "m"}},
		{"invocation", func(l *slog.Logger) { l.InfoContext(inv, "m") },
			map[string]any{"msg": "m", "function": "ProcessNotification", "invocation_id": "inv-1"}},
		{"invocation and tenant", func(l *slog.Logger) { l.WarnContext(core.WithTenant(inv, tenant), "m", "n", 2) },
			map[string]any{"msg": "m", "n": float64(2), "function": "ProcessNotification", "invocation_id": "inv-1", "tenant_id": string(tenant)}},
		{"the call's own tenant wins", func(l *slog.Logger) { l.InfoContext(core.WithTenant(inv, tenant), "m", "tenant_id", "other") },
			map[string]any{"msg": "m", "function": "ProcessNotification", "invocation_id": "inv-1", "tenant_id": "other"}},
		{"a logger's fixed attribute wins", func(l *slog.Logger) { l.With("function", "job").InfoContext(inv, "m") },
			map[string]any{"msg": "m", "function": "job", "invocation_id": "inv-1"}},
		{"without a context nothing is added", func(l *slog.Logger) { l.Info("m") },
			map[string]any{"msg": "m"}},
		{"inside a group the stamps stay at the top", func(l *slog.Logger) {
			l.WithGroup("g").InfoContext(core.WithTenant(inv, tenant), "m", "a", 1)
		}, map[string]any{"msg": "m", "g": map[string]any{"a": float64(1)}, "function": "ProcessNotification",
			"invocation_id": "inv-1", "tenant_id": string(tenant)}},
		{"attributes before and inside a group", func(l *slog.Logger) {
			l.With("b", 2).WithGroup("g").With("c", 3).InfoContext(inv, "m", "a", 1)
		}, map[string]any{"msg": "m", "b": float64(2), "g": map[string]any{"c": float64(3), "a": float64(1)},
			"function": "ProcessNotification", "invocation_id": "inv-1"}},
		{"nested groups", func(l *slog.Logger) { l.WithGroup("g").WithGroup("h").InfoContext(inv, "m", "a", 1) },
			map[string]any{"msg": "m", "g": map[string]any{"h": map[string]any{"a": float64(1)}},
				"function": "ProcessNotification", "invocation_id": "inv-1"}},
		{"an empty group is left out", func(l *slog.Logger) { l.WithGroup("g").InfoContext(inv, "m") },
			map[string]any{"msg": "m", "function": "ProcessNotification", "invocation_id": "inv-1"}},
		{"a tenant_id inside a group does not count as the line's", func(l *slog.Logger) {
			l.WithGroup("g").InfoContext(core.WithTenant(inv, tenant), "m", "tenant_id", "other")
		}, map[string]any{"msg": "m", "g": map[string]any{"tenant_id": "other"}, "function": "ProcessNotification",
			"invocation_id": "inv-1", "tenant_id": string(tenant)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(core.NewLogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
						return slog.Attr{}
					}
					return a
				}})))
			tt.log(l)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %v, want %v (line %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// The wrapper is a correct slog.Handler by the standard library's own conformance test (groups,
// WithAttrs, zero times, empty attributes).
func TestLogHandlerConformsToSlog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := core.NewLogHandler(slog.NewJSONHandler(&buf, nil))
	results := func() []map[string]any {
		var out []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}
