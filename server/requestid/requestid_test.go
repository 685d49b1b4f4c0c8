package requestid_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/requestid"
)

func TestHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	h := requestid.NewHandler(slog.NewTextHandler(&buf, nil))
	if requestid.NewHandler(h) != h {
		t.Fatal("wrapping twice wraps again")
	}
	log := slog.New(h).With("component", "test").WithGroup("g")
	ctx := requestid.NewContext(context.Background(), "abc-1")
	log.InfoContext(ctx, "with id", "k", "v")
	log.Info("without id")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log %q, want two lines", buf.String())
	}
	if !strings.Contains(lines[0], "request_id=abc-1") || !strings.Contains(lines[0], "component=test") {
		t.Errorf("line %q lacks the request id or the logger's attributes", lines[0])
	}
	if strings.Contains(lines[1], "request_id") {
		t.Errorf("line %q has a request id its context does not carry", lines[1])
	}
	if got := requestid.FromContext(ctx); got != "abc-1" {
		t.Errorf("FromContext = %q", got)
	}
	if got := requestid.FromContext(context.Background()); got != "" {
		t.Errorf("FromContext of a bare context = %q", got)
	}
}
