package core

import (
	"context"
	"log/slog"
	"slices"
)

// Log attributes every line inside an invocation carries, without the code that logs adding them.
const (
	LogFunction   = "function"
	LogInvocation = "invocation_id"
	LogTenant     = "tenant_id"
)

type invocationKey struct{}

type invocation struct{ function, id string }

type tenantKey struct{}

// WithInvocation records in ctx which function runs and the host's invocation id.
func WithInvocation(ctx context.Context, function, id string) context.Context {
	return context.WithValue(ctx, invocationKey{}, invocation{function, id})
}

// InvocationOf returns what WithInvocation recorded ("" outside an invocation).
func InvocationOf(ctx context.Context) (function, id string) {
	v, _ := ctx.Value(invocationKey{}).(invocation)
	return v.function, v.id
}

// WithTenant records in ctx the tenant the work is for, once it is known (from the notification's
// subscription, the request's path, the job's partition).
func WithTenant(ctx context.Context, t TenantID) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// TenantOf returns what WithTenant recorded.
func TenantOf(ctx context.Context) (TenantID, bool) {
	t, ok := ctx.Value(tenantKey{}).(TenantID)
	return t, ok && t != ""
}

// NewLogHandler wraps h so that every record logged with a context (slog's …Context methods) carries
// the function, invocation id and tenant recorded in it. An attribute the call already sets is not
// repeated. Nothing else is read from the context, so no personal data can slip in this way.
func NewLogHandler(h slog.Handler) slog.Handler { return &logHandler{h: h} }

type logHandler struct {
	h slog.Handler
	// set are the top-level keys WithAttrs already fixed on this handler.
	set map[string]bool
	// nested are the groups opened by WithGroup and the attributes added inside them, in order. They
	// are applied in Handle, not passed on, so that the stamped keys stay at the top level of the line
	// whatever group the caller logs in.
	nested []groupOrAttrs
}

type groupOrAttrs struct {
	group string      // a group opened here, or
	attrs []slog.Attr // attributes added inside the groups opened so far
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(l.nested) > 0 {
		r = l.nest(r)
	}
	has := func(key string) bool {
		if l.set[key] {
			return true
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = a.Key == key
			return !found
		})
		return found
	}
	fn, id := InvocationOf(ctx)
	if fn != "" && !has(LogFunction) {
		r.AddAttrs(slog.String(LogFunction, fn))
	}
	if id != "" && !has(LogInvocation) {
		r.AddAttrs(slog.String(LogInvocation, id))
	}
	if t, ok := TenantOf(ctx); ok && !has(LogTenant) {
		r.AddAttrs(slog.String(LogTenant, string(t)))
	}
	return l.h.Handle(ctx, r)
}

// nest rebuilds r with its attributes inside the groups (and beside the attributes) that WithGroup and
// WithAttrs added after the first group.
func (l *logHandler) nest(r slog.Record) slog.Record {
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(l.nested) - 1; i >= 0; i-- {
		g := l.nested[i]
		if g.group == "" {
			attrs = append(slices.Clip(g.attrs), attrs...)
			continue
		}
		if len(attrs) == 0 {
			continue // slog drops empty groups
		}
		args := make([]any, len(attrs))
		for j, a := range attrs {
			args[j] = a
		}
		attrs = []slog.Attr{slog.Group(g.group, args...)}
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(attrs...)
	return out
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return l
	}
	if len(l.nested) > 0 {
		return &logHandler{h: l.h, set: l.set, nested: append(slices.Clip(l.nested), groupOrAttrs{attrs: attrs})}
	}
	set := make(map[string]bool, len(l.set)+len(attrs))
	for k := range l.set {
		set[k] = true
	}
	for _, a := range attrs {
		set[a.Key] = true
	}
	return &logHandler{h: l.h.WithAttrs(attrs), set: set}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return &logHandler{h: l.h, set: l.set, nested: append(slices.Clip(l.nested), groupOrAttrs{group: name})}
}
