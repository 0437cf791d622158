package imap

import (
	"context"
	"log/slog"
)

// connHandler adds a session's identity (connection id, remote address,
// user once logged in) to what the session logs. It costs the session two
// words; slog's With would preformat the attributes into a buffer per
// session, most of which never log anything at the default level.
type connHandler struct {
	slog.Handler
	c *conn
}

func (h connHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.Uint64("conn", h.c.id), slog.String("remote", h.c.remote))
	if u := h.c.user; u != "" {
		r.AddAttrs(slog.String("user", u))
	}
	return h.Handler.Handle(ctx, r)
}

func (h connHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return connHandler{h.Handler.WithAttrs(as), h.c}
}

func (h connHandler) WithGroup(name string) slog.Handler {
	return connHandler{h.Handler.WithGroup(name), h.c}
}
