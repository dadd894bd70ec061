package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

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
				if got[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, got[k], v, got)
				}
			}
		})
	}
}
