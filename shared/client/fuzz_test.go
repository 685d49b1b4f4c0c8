package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// FuzzEventStream feeds any bytes, as a server's event stream, to both
// readers of the client: they never panic, and end with an event, an error
// or the end of the stream.
func FuzzEventStream(f *testing.F) {
	for _, seed := range []string{
		"event:status\ndata:{\"status\":\"pending\",\"expires_at\":\"2026-11-24T12:02:00Z\"}\n\n",
		"event: status\r\ndata: {\"status\":\"confirmed\",\"tokens\":{\"access_token\":\"a\"}}\r\n\r\n",
		": ping\n\nevent:revoked\ndata:{\"reason\":\"signed_out\"}\n\n",
		"event:error\ndata:{\"error\":\"consumed\",\"message\":\"x\"}\n\n",
		"event:revoked\ndata:not json\n\n",
		"data:a\ndata:b\n\nevent:status\ndata:null\n\n",
		"event:status\ndata:{\"status\":",
		"retry:10\nid:\x00\n\n",
		"\xff\xfe\n\n",
	} {
		f.Add([]byte(seed))
	}
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.EventStreamType)
		_, _ = w.Write(body)
	}))
	f.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL, StreamIdleTimeout: 5 * time.Second}
	f.Fuzz(func(t *testing.T, b []byte) {
		body = b // the server answers one request at a time below
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		es, err := c.Events(ctx, "session", "poll-token")
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		for range len(b) + 2 { // at most one event per byte, then the end
			st, err := es.Next()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatal("the reader hung")
				}
				break
			}
			if st == nil {
				t.Fatal("no status and no error")
			}
		}
		es.Close()
		rev, err := c.WaitRevoked(ctx, "access-token")
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatal("WaitRevoked hung")
		case err == nil && rev == nil:
			t.Fatal("no revocation and no error")
		case err != nil && rev != nil:
			t.Fatal("a revocation and an error")
		}
	})
}
