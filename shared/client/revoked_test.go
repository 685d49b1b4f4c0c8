package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// accountStream serves GET /api/v1/me/events for the access token "acc"
// with handle, after checking the request.
func accountStream(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/me/events" ||
			r.Header.Get("Authorization") != "Bearer acc" || r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request %s %s %v", r.Method, r.URL.Path, r.Header)
		}
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL)
}

// sends answers with body as an event stream, then holds the stream
// open until the client leaves.
func sends(body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

func TestWaitRevoked(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"signed out", ": ping\n\nevent: revoked\ndata: {\"reason\":\"signed_out\"}\n\n", api.ReasonSignedOut},
		{"after pings and other events",
			": ping\n\n: ping\n\nevent: later-kind\ndata: {\"reason\":\"nope\"}\n\ndata: {\"reason\":\"untyped\"}\n\n" +
				"retry: 1000\n\nevent: revoked\ndata: {\"reason\":\"password_changed\"}\n\n", api.ReasonPasswordChanged},
		{"CRLF and data over two lines", "event:revoked\r\ndata:{\"reason\":\r\ndata: \"logout_all\"}\r\n\r\n", api.ReasonLogoutAll},
		{"a reason this client does not know", "event: revoked\ndata: {\"reason\":\"moon_phase\"}\n\n", "moon_phase"},
		{"data that does not decode still ends the sign-in", "event: revoked\ndata: {\"reas\n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := accountStream(t, sends(tt.body))
			got, err := c.WaitRevoked(context.Background(), "acc")
			if err != nil {
				t.Fatal(err)
			}
			if got.Reason != tt.reason {
				t.Errorf("reason %q, want %q", got.Reason, tt.reason)
			}
		})
	}
}

func TestWaitRevokedRefused(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		ctype      string
		body       string
		code       string
		retryAfter time.Duration
	}{
		{"expired access token", 401, "application/json", `{"error":"unauthorized","message":"token expired"}`, api.ErrUnauthorized, 0},
		{"server without the stream", 404, "application/json", `{"error":"not_found","message":"No such endpoint."}`, api.ErrNotFound, 0},
		{"over the cap", 503, "application/json", `{"error":"unavailable","message":"busy"}`, api.ErrUnavailable, 5 * time.Second},
		{"a proxy's page", 502, "text/html", "<html>bad gateway</html>", "http_502", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := accountStream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				if tt.retryAfter > 0 {
					w.Header().Set("Retry-After", "5")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.WaitRevoked(context.Background(), "acc")
			var e *client.Error
			if !errors.As(err, &e) || e.StatusCode != tt.status || e.Code != tt.code || e.RetryAfter != tt.retryAfter {
				t.Fatalf("err %#v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
}

func TestWaitRevokedStreamTrouble(t *testing.T) {
	t.Run("not an event stream", func(t *testing.T) {
		c := accountStream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		})
		_, err := c.WaitRevoked(context.Background(), "acc")
		var e *client.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("err %v, want a plain error", err)
		}
	})
	t.Run("ended without a revocation", func(t *testing.T) {
		c := accountStream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ": ping\n\nevent: revoked\ndata: {\"reason\":\"signed_out\"}") // cut off: never dispatched
		})
		if _, err := c.WaitRevoked(context.Background(), "acc"); !errors.Is(err, io.EOF) {
			t.Fatalf("err %v, want io.EOF", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		c := accountStream(t, sends(": ping\n\n"))
		c.StreamIdleTimeout = 100 * time.Millisecond
		if _, err := c.WaitRevoked(context.Background(), "acc"); !errors.Is(err, client.ErrStreamIdle) {
			t.Fatalf("err %v, want ErrStreamIdle", err)
		}
	})
	t.Run("pings keep it open", func(t *testing.T) {
		c := accountStream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for range 10 {
				io.WriteString(w, ": ping\n\n")
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
			io.WriteString(w, "event: revoked\ndata: {\"reason\":\"user_deleted\"}\n\n")
		})
		c.StreamIdleTimeout = 400 * time.Millisecond // well under the 500ms the stream stays open
		got, err := c.WaitRevoked(context.Background(), "acc")
		if err != nil || got.Reason != api.ReasonUserDeleted {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := client.New(srv.URL).WaitRevoked(context.Background(), "acc")
		var e *client.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("err %v, want a network error", err)
		}
	})
}

// Cancelling ctx is how the desktop stops holding the stream (sign out,
// quit): the call returns at once with ctx's error and the server sees
// the client leave.
func TestWaitRevokedCancel(t *testing.T) {
	left := make(chan struct{})
	held := make(chan struct{})
	c := accountStream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": ping\n\n")
		w.(http.Flusher).Flush()
		close(held)
		<-r.Context().Done()
		close(left)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitRevoked(ctx, "acc")
		done <- err
	}()
	<-held
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitRevoked did not return after cancel")
	}
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Fatal("the server still holds the stream")
	}
}
