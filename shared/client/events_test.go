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

// streamServer answers every request with body as an event stream.
func streamServer(t *testing.T, body string, hold <-chan struct{}) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/login-sessions/sess/events" || r.Header.Get("Authorization") != "Bearer poll" ||
			r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request %s %v", r.URL.Path, r.Header)
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL)
}

func TestEventStream(t *testing.T) {
	body := ": ping\n\n" +
		"event: status\ndata: {\"status\":\"pending\",\"expires_at\":\"2026-11-24T12:02:00Z\"}\n\n" +
		"event: later-kind\ndata: {\"ignored\":true}\n\n" + // a type this client does not know
		"retry: 1000\nid: 7\n\n" +
		": ping\r\n\r\n" +
		"event:status\r\ndata:{\"status\":\"scanned\",\r\ndata: \"expires_at\":\"2026-11-24T12:02:00Z\",\"scanned_by\":{\"display_name\":\"Alice\"}}\r\n\r\n" +
		"event: status\ndata: {\"status\":\"confirmed\",\"expires_at\":\"2026-11-24T12:02:00Z\",\"tokens\":{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":900,\"refresh_token\":\"r\"}}\n\n" +
		"event: status\ndata: {\"status\":\"canc" // cut off: never dispatched
	es, err := streamServer(t, body, nil).Events(context.Background(), "sess", "poll")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	var got []api.Status
	for {
		st, err := es.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, st.Status)
		if st.Status == api.StatusScanned && st.ScannedBy.DisplayName != "Alice" {
			t.Errorf("multi-line data decoded to %+v", st)
		}
		if st.Status == api.StatusConfirmed && (st.Tokens == nil || st.Tokens.RefreshToken != "r") {
			t.Errorf("tokens %+v", st.Tokens)
		}
	}
	if len(got) != 3 || got[0] != api.StatusPending || got[1] != api.StatusScanned || got[2] != api.StatusConfirmed {
		t.Fatalf("events %v", got)
	}
}

func TestEventStreamErrorEvent(t *testing.T) {
	body := "event: status\ndata: {\"status\":\"confirmed\",\"expires_at\":\"2026-11-24T12:02:00Z\"}\n\n" +
		"event: error\ndata: {\"error\":\"consumed\",\"message\":\"used\"}\n\n"
	es, err := streamServer(t, body, nil).Events(context.Background(), "sess", "poll")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if _, err := es.Next(); err != nil {
		t.Fatal(err)
	}
	_, err = es.Next()
	var e *client.Error
	if !errors.As(err, &e) || *e != (client.Error{StatusCode: 410, Code: api.ErrConsumed, Message: "used"}) {
		t.Fatalf("error event: %#v", err)
	}
	if _, err := es.Next(); err != io.EOF {
		t.Fatalf("after the error event: %v", err)
	}
}

func TestEventStreamIdle(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	c := streamServer(t, "event: status\ndata: {\"status\":\"pending\",\"expires_at\":\"2026-11-24T12:02:00Z\"}\n\n", hold)
	c.StreamIdleTimeout = 100 * time.Millisecond
	es, err := c.Events(context.Background(), "sess", "poll")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if _, err := es.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Next(); !errors.Is(err, client.ErrStreamIdle) {
		t.Fatalf("silent stream: %v, want ErrStreamIdle", err)
	}
}

func TestEventStreamRefused(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		code   string
	}{
		{"unauthorized", 401, "application/json", `{"error":"unauthorized","message":"no"}`, api.ErrUnauthorized},
		{"over the cap", 503, "application/json", `{"error":"unavailable","message":"busy"}`, api.ErrUnavailable},
		{"not an event stream", 200, "text/html", "<html>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			es, err := client.New(srv.URL).Events(context.Background(), "sess", "poll")
			if err == nil {
				es.Close()
				t.Fatal("no error")
			}
			if tt.code != "" && !client.IsCode(err, tt.code) {
				t.Fatalf("err %v, want %s", err, tt.code)
			}
		})
	}
}
