// Package requestid carries a request's id in its context and adds it to
// every log line written with that context. The HTTP layer puts the id in;
// whoever logs with the request's context (handlers, the store, the
// account service) gets it on the line without passing it by hand.
package requestid

import (
	"context"
	"log/slog"
)

// Key is the log attribute that holds the request id.
const Key = "request_id"

type ctxKey struct{}

// Carrier is what a context carrying a request id holds under CarrierKey.
type Carrier interface{ RequestID() string }

type id string

func (i id) RequestID() string { return string(i) }

// NewContext returns a copy of ctx that carries request id v.
func NewContext(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id(v))
}

// CarrierKey is the context key a Carrier is found under: a context of
// the HTTP layer's own answers Value(CarrierKey) with its Carrier, which
// saves a context.WithValue per request.
var CarrierKey any = ctxKey{}

// FromContext is the request id ctx carries, or "".
func FromContext(ctx context.Context) string {
	if c, ok := ctx.Value(ctxKey{}).(Carrier); ok {
		return c.RequestID()
	}
	return ""
}

// Handler adds the request id of the record's context to every record.
type Handler struct{ next slog.Handler }

var _ slog.Handler = Handler{}

// NewHandler wraps next so that every record logged with a context that
// carries a request id gets a request_id attribute. A handler already
// wrapped is returned as it is, so wrapping twice adds the id once.
func NewHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(Handler); ok {
		return h
	}
	return Handler{next: next}
}

// Enabled implements slog.Handler.
func (h Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if v := FromContext(ctx); v != "" {
			r.AddAttrs(slog.String(Key, v))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{next: h.next.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{next: h.next.WithGroup(name)}
}
