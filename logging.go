package main

import (
	"io"
	"log/slog"
)

// newLogger is the logger of `herald serve`: JSON lines at level and above,
// every duration written as people read it ("15s", "1m30s") rather than as
// slog's nanosecond integer, whoever logs it.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}))
}

// readableDuration turns a duration attribute into its string.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
