package httpapi_test

import (
	"io"
	"log/slog"
	"testing"
)

var logTo io.Writer

func testLogger(t *testing.T) *slog.Logger {
	w := logTo
	if w == nil {
		w = t.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newEnvLog is newEnv with the server's log written to w.
func newEnvLog(t *testing.T, w io.Writer) *env {
	logTo = w
	defer func() { logTo = nil }()
	return newEnv(t)
}
