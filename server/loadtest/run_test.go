package loadtest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/server/loadtest"
)

// startServer starts an in-process server with the demo phone account the
// load tool signs in with by default.
func startServer(t *testing.T, opts ...func(*app.Config)) *apptest.Server {
	t.Helper()
	s := apptest.Start(t, opts...)
	s.AddUser(t, loadtest.DefaultUsername, "Alice", loadtest.DefaultPassword)
	return s
}

func run(t *testing.T, cfg loadtest.Config) *loadtest.Result {
	t.Helper()
	res, err := loadtest.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run(%s): %v", cfg.Scenario, err)
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
	return res
}

func TestScenariosAgainstRealServer(t *testing.T) {
	srv := startServer(t)
	tests := []struct {
		name string
		cfg  loadtest.Config
	}{
		{"issue", loadtest.Config{Scenario: loadtest.Issue, Clients: 4}},
		{"qr", loadtest.Config{Scenario: loadtest.QR, Clients: 4}},
		{"flow flat out", loadtest.Config{Scenario: loadtest.Flow, Clients: 4}},
		{"flow with think", loadtest.Config{Scenario: loadtest.Flow, Clients: 3, Think: 20 * time.Millisecond}},
		// The server runs in this process, so --pid is our own.
		{"idle", loadtest.Config{Scenario: loadtest.Idle, Clients: 30, Wait: time.Second, Probes: 5, ProbeEvery: 50 * time.Millisecond, PID: os.Getpid()}},
		{"flow on streams", loadtest.Config{Scenario: loadtest.Flow, Clients: 3, Think: 20 * time.Millisecond, WaitOn: loadtest.Stream}},
		{"idle on streams", loadtest.Config{Scenario: loadtest.Idle, Clients: 30, WaitOn: loadtest.Stream, Probes: 5, ProbeEvery: 50 * time.Millisecond, PID: os.Getpid()}},
		{"idle on streams, no probes", loadtest.Config{Scenario: loadtest.Idle, Clients: 10, WaitOn: loadtest.Stream, Probes: -1, PID: os.Getpid()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URLs = []string{srv.URL}
			cfg.Duration = 1500 * time.Millisecond
			res := run(t, cfg)
			if res.Errors != 0 {
				t.Errorf("errors = %d %v %v", res.Errors, res.ErrorsByCode, res.Notes)
			}
			// Held streams make no requests while they wait.
			quiet := cfg.Scenario == loadtest.Idle && cfg.WaitOn == loadtest.Stream
			if res.Ops <= 0 || (res.Requests <= 0 && !quiet) || res.Window < cfg.Duration {
				t.Errorf("ops %d, requests %d, window %v: want work done over at least %v", res.Ops, res.Requests, res.Window, cfg.Duration)
			}
			switch cfg.Scenario {
			case loadtest.Issue, loadtest.QR:
				if res.Latency.N != int(res.Ops) || res.Rate <= 0 {
					t.Errorf("latency samples %d for %d operations, rate %v", res.Latency.N, res.Ops, res.Rate)
				}
			case loadtest.Flow:
				if res.Notice.N != int(res.Ops) || res.Latency.N != int(res.Ops) {
					t.Errorf("notice samples %d, flow samples %d for %d flows", res.Notice.N, res.Latency.N, res.Ops)
				}
				if cfg.Think > 0 && res.Latency.Min < cfg.Think {
					t.Errorf("a flow took %v, less than its two pauses of at least %v each", res.Latency.Min, cfg.Think/2)
				}
			case loadtest.Idle:
				if res.Ops != int64(cfg.Clients) {
					t.Errorf("%d desktops waiting, want %d", res.Ops, cfg.Clients)
				}
				if res.Notice.N != max(cfg.Probes, 0) {
					t.Errorf("%d confirm probes completed, want %d", res.Notice.N, cfg.Probes)
				}
				if quiet && res.Requests != 0 {
					t.Errorf("%d requests in the window of waiting streams: the probes ran inside it", res.Requests)
				}
				// The streams end with the run (the server notices each
				// closed connection a moment later).
				for i := 0; srv.App.Waiters() != 0; i++ {
					if i > 1000 {
						t.Fatalf("%d waits still held 10s after the run", srv.App.Waiters())
					}
					time.Sleep(10 * time.Millisecond)
				}
				// With a 1 s wait over a 1.5 s window every desktop polled again.
				if cfg.WaitOn != loadtest.Stream && res.Requests < int64(cfg.Clients) {
					t.Errorf("%d requests in the window; %d desktops re-polling every second should make more", res.Requests, cfg.Clients)
				}
				if res.Server == nil || res.Server.RSSMB <= 0 {
					t.Errorf("server stats = %+v", res.Server)
				}
			}
		})
	}
}

func TestSeveralURLs(t *testing.T) {
	srv := startServer(t)
	// Two URLs of one server: desktops and phones alternate between them.
	res := run(t, loadtest.Config{URLs: []string{srv.URL, srv.URL + "/"}, Scenario: loadtest.Flow, Clients: 3, Duration: time.Second})
	if res.Errors != 0 || res.Ops == 0 || len(res.URLs) != 2 || res.URLs[1] != srv.URL {
		t.Errorf("ops %d errors %d urls %q", res.Ops, res.Errors, res.URLs)
	}
}

func TestStopsAtMaxOps(t *testing.T) {
	srv := startServer(t)
	for _, sc := range []loadtest.Scenario{loadtest.Issue, loadtest.Flow, loadtest.QR} {
		t.Run(string(sc), func(t *testing.T) {
			// A minute-long window: only the count can end this run early.
			res := run(t, loadtest.Config{URLs: []string{srv.URL}, Scenario: sc, Clients: 4, Duration: time.Minute, MaxOps: 25})
			if res.Ops != 25 || res.Errors != 0 {
				t.Errorf("ops = %d, errors = %d; want exactly 25 and none", res.Ops, res.Errors)
			}
			if res.Window >= time.Minute {
				t.Errorf("window %v: the run did not stop at its count", res.Window)
			}
		})
	}
}

// TestStopsAtDeadline runs against a server that never answers: the run
// must still end at its deadline plus the drain, and the requests cut off
// by the end of the run are not counted as errors.
func TestStopsAtDeadline(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	const d = 300 * time.Millisecond
	const drain = 200 * time.Millisecond
	res := run(t, loadtest.Config{URLs: []string{hang.URL}, Scenario: loadtest.Issue, Clients: 8, Duration: d, Drain: drain})
	if res.Ops != 0 || res.Errors != 0 {
		t.Errorf("ops %d errors %d, want 0 and 0", res.Ops, res.Errors)
	}
	if res.Window < d+drain || res.Window > d+drain+5*time.Second {
		t.Errorf("window %v, want about %v", res.Window, d+drain)
	}
}

func TestCountsErrors(t *testing.T) {
	// Session creation limited to 1 a minute: nearly every create is refused.
	srv := startServer(t, func(c *app.Config) { c.LimitCreate = 1 })
	res := run(t, loadtest.Config{URLs: []string{srv.URL}, Scenario: loadtest.Issue, Clients: 2, Duration: 300 * time.Millisecond})
	if res.ErrorsByCode["rate_limited"] == 0 || res.Errors != res.ErrorsByCode["rate_limited"] {
		t.Errorf("errors %d by code %v, want all rate_limited", res.Errors, res.ErrorsByCode)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), loadtest.RateLimitHint) {
		t.Errorf("notes %q do not tell how to lift the limits", res.Notes)
	}
}

func TestRunRefuses(t *testing.T) {
	srv := startServer(t)
	short := startServer(t, func(c *app.Config) { c.SessionTTL = 30 * time.Second })
	tests := []struct {
		name string
		cfg  loadtest.Config
		want string
	}{
		{"no url", loadtest.Config{Scenario: loadtest.Issue, Clients: 1, Duration: time.Second}, "no server URL"},
		{"bad url", loadtest.Config{URLs: []string{"localhost:8080"}, Scenario: loadtest.Issue, Clients: 1, Duration: time.Second}, "http://"},
		{"bad scenario", loadtest.Config{URLs: []string{srv.URL}, Scenario: "soak", Clients: 1, Duration: time.Second}, "unknown scenario"},
		{"no clients", loadtest.Config{URLs: []string{srv.URL}, Scenario: loadtest.Issue, Duration: time.Second}, "clients"},
		{"no duration", loadtest.Config{URLs: []string{srv.URL}, Scenario: loadtest.Issue, Clients: 1}, "duration"},
		{"wait too long", loadtest.Config{URLs: []string{srv.URL}, Scenario: loadtest.Idle, Clients: 1, Duration: time.Second, Wait: time.Minute}, "wait"},
		{"wrong password", loadtest.Config{URLs: []string{srv.URL}, Scenario: loadtest.Flow, Clients: 2, Duration: time.Second,
			Username: "alice", Password: "not-her-password"}, "--demo"},
		{"sessions expire too soon", loadtest.Config{URLs: []string{short.URL}, Scenario: loadtest.Idle, Clients: 2, Duration: time.Second}, "--session-ttl"},
		{"images outlive their sessions", loadtest.Config{URLs: []string{short.URL}, Scenario: loadtest.QR, Clients: 2, Duration: time.Minute}, "--session-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			res, err := loadtest.Run(ctx, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %+v, %v; want an error mentioning %q", res, err, tt.want)
			}
		})
	}
}
