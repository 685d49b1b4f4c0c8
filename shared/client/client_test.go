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

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		want       client.Error
	}{
		{"json error", 410, `{"error":"consumed","message":"used"}`, "", client.Error{StatusCode: 410, Code: "consumed", Message: "used"}},
		{"rate limited", 429, `{"error":"rate_limited","message":"slow down"}`, "7", client.Error{StatusCode: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 7 * time.Second}},
		{"not json", 502, "<html>bad gateway</html>", "", client.Error{StatusCode: 502, Code: "http_502", Message: "<html>bad gateway</html>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			_, err := client.New(srv.URL).Me(context.Background(), "tok")
			var e *client.Error
			if !errors.As(err, &e) || *e != tt.want {
				t.Fatalf("err = %#v, want %#v", err, tt.want)
			}
			if !client.IsCode(err, tt.want.Code) {
				t.Fatal("IsCode false")
			}
		})
	}
}

func TestRequests(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"scanned","expires_at":"2026-11-24T12:00:00Z","scanned_by":{"display_name":"Alice"}}`))
	}))
	defer srv.Close()
	c := client.New(srv.URL + "/")
	c.UserAgent = "qrlogin-test/1"
	st, err := c.SessionStatus(context.Background(), "id/with?odd", "poll-secret", api.StatusPending, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != api.StatusScanned || st.ScannedBy.DisplayName != "Alice" {
		t.Fatalf("decoded %+v", st)
	}
	if got.URL.EscapedPath() != "/api/v1/login-sessions/id%2Fwith%3Fodd/status" || got.URL.RawQuery != "after=pending&wait=30" {
		t.Fatalf("request %s?%s", got.URL.EscapedPath(), got.URL.RawQuery)
	}
	if got.Header.Get("Authorization") != "Bearer poll-secret" || got.Header.Get("User-Agent") != "qrlogin-test/1" {
		t.Fatalf("headers %v", got.Header)
	}
}
