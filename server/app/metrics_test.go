package app_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// scrape is one parsed scrape of a server's /metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, srv *apptest.Server) scrape {
	t.Helper()
	addr := srv.App.MetricsAddr()
	if addr == nil {
		t.Fatal("the server serves no metrics")
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metric is the series of family name whose labels include labels
// ("k=v" pairs), or nil.
func (s scrape) metric(name string, labels ...string) *dto.Metric {
	mf := s[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value is a counter's or gauge's value; -1 when the series is missing.
func (s scrape) value(name string, labels ...string) float64 {
	m := s.metric(name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// want checks a counter's or gauge's value.
func (s scrape) want(t *testing.T, value float64, name string, labels ...string) {
	t.Helper()
	if got := s.value(name, labels...); got != value {
		t.Errorf("%s%v = %v, want %v", name, labels, got, value)
	}
}

// waitFor scrapes until the series has value; the gauges of held waits
// change as the handlers return, a moment after the client has its answer.
func waitFor(t *testing.T, srv *apptest.Server, value float64, name string, labels ...string) scrape {
	t.Helper()
	for i := 0; ; i++ {
		s := scrapeMetrics(t, srv)
		if s.value(name, labels...) == value {
			return s
		}
		if i == 200 {
			t.Fatalf("%s%v = %v, want %v", name, labels, s.value(name, labels...), value)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsThroughOneFlow(t *testing.T) {
	clk := testclock.New(time.Now())
	srv := apptest.Start(t, func(c *app.Config) {
		c.Now = clk.Now
		c.MetricsAddr = "127.0.0.1:0"
		c.LimitLookup = 1 // a burst of 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv.AddUser(t, "alice", "Alice", "alice-pass")
	c := srv.Client()

	// Nothing has happened yet, and every labelled series is there at 0,
	// so alerts on rates work from the start.
	s := scrapeMetrics(t, srv)
	s.want(t, 0, "qrlogin_login_sessions_created_total")
	s.want(t, 0, "qrlogin_password_signins_total", "result=ok")
	s.want(t, 0, "qrlogin_password_signins_total", "result=failed")
	for _, l := range []string{"login", "login_user", "create", "lookup"} {
		s.want(t, 0, "qrlogin_rate_limited_requests_total", "limit="+l)
	}
	s.want(t, 0, "qrlogin_desktops_waiting", "kind=longpoll")
	s.want(t, 0, "qrlogin_desktops_waiting", "kind=stream")
	s.want(t, 0, "qrlogin_user_streams_held")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if s[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}

	// Password sign-ins: one failed, one ok.
	if _, err := c.Login(ctx, "alice", "wrong"); !client.IsCode(err, api.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	login, err := c.Login(ctx, "alice", "alice-pass")
	if err != nil {
		t.Fatal(err)
	}
	phone := login.AccessToken

	// A desktop long-polls session a, another holds the event stream of
	// session b; the phone confirms both.
	a, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Scan(ctx, phone, a.ID); err != nil {
		t.Fatal(err)
	}
	polled := make(chan *api.SessionStatusResponse, 1)
	go func() {
		st, err := c.SessionStatus(ctx, a.ID, a.PollToken, api.StatusScanned, 30*time.Second)
		if err != nil {
			t.Errorf("long-poll: %v", err)
		}
		polled <- st
	}()
	events, err := c.Events(ctx, b.ID, b.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if st, err := events.Next(); err != nil || st.Status != api.StatusPending {
		t.Fatalf("first event: %+v %v", st, err)
	}
	waitFor(t, srv, 1, "qrlogin_desktops_waiting", "kind=longpoll")
	waitFor(t, srv, 1, "qrlogin_desktops_waiting", "kind=stream")

	if _, err := c.Confirm(ctx, phone, a.ID); err != nil {
		t.Fatal(err)
	}
	if st := <-polled; st == nil || st.Tokens == nil {
		t.Fatalf("long-poll after confirm: %+v", st)
	}
	if _, err := c.Scan(ctx, phone, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Confirm(ctx, phone, b.ID); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := events.Next()
		if err != nil {
			t.Fatalf("stream ended without tokens: %v", err)
		}
		if st.Tokens != nil {
			break
		}
	}
	waitFor(t, srv, 0, "qrlogin_desktops_waiting", "kind=longpoll")
	waitFor(t, srv, 0, "qrlogin_desktops_waiting", "kind=stream")

	// Session d: its desktop polls 1.5 s (of the server's clock) after the
	// confirm, which is what the notice latency measures.
	d, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Scan(ctx, phone, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Confirm(ctx, phone, d.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1500 * time.Millisecond)
	if st, err := c.SessionStatus(ctx, d.ID, d.PollToken, "", 0); err != nil || st.Tokens == nil {
		t.Fatalf("poll after confirm: %+v %v", st, err)
	}

	// Cancelled on the phone, and withdrawn twice by a desktop: two.
	e, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, phone, e.ID); err != nil {
		t.Fatal(err)
	}
	f, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.WithdrawSession(ctx, f.ID, f.PollToken); err != nil {
			t.Fatal(err)
		}
	}

	// User-code look-ups beyond the burst of 3.
	var limited int
	for range 5 {
		_, err := c.SessionByCode(ctx, phone, "BCDF-GHJK")
		if client.IsCode(err, api.ErrRateLimited) {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("%d of 5 look-ups rate limited, want 2", limited)
	}

	// A refresh token used twice (last: it ends the phone's sign-in).
	if _, err := c.Refresh(ctx, login.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, login.RefreshToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Fatalf("reused refresh token: %v", err)
	}

	s = scrapeMetrics(t, srv)
	s.want(t, 5, "qrlogin_login_sessions_created_total")
	s.want(t, 3, "qrlogin_login_sessions_confirmed_total")
	s.want(t, 2, "qrlogin_login_sessions_cancelled_total")
	s.want(t, 0, "qrlogin_login_sessions_expired_total")
	s.want(t, 1, "qrlogin_password_signins_total", "result=ok")
	s.want(t, 1, "qrlogin_password_signins_total", "result=failed")
	s.want(t, 1, "qrlogin_refresh_reuse_detected_total")
	s.want(t, 2, "qrlogin_rate_limited_requests_total", "limit=lookup")
	s.want(t, 0, "qrlogin_rate_limited_requests_total", "limit=create")
	s.want(t, 0, "qrlogin_desktops_waiting", "kind=longpoll")
	s.want(t, 0, "qrlogin_desktops_waiting", "kind=stream")

	// Three deliveries: two at once (the clock stands still), one 1.5 s on.
	h := s.metric("qrlogin_notice_latency_seconds").GetHistogram()
	if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-1.5) > 1e-9 {
		t.Errorf("notice latency: %d samples summing to %v s, want 3 summing to 1.5 s", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(2)
		if b.GetUpperBound() >= 1.5 {
			want = 3
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("notice latency bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}

	// Request durations by route template, never by raw path.
	route := "/api/v1/login-sessions/:id/status"
	m := s.metric("qrlogin_http_request_duration_seconds", "method=GET", "route="+route, "status=200")
	if m.GetHistogram().GetSampleCount() != 2 { // a's long-poll and d's poll
		t.Errorf("requests of %s: %d, want 2", route, m.GetHistogram().GetSampleCount())
	}
	if s.metric("qrlogin_http_request_duration_seconds", "method=GET", "route=/api/v1/login-sessions/by-code/:code", "status=429") == nil {
		t.Error("no series for the rate-limited look-ups")
	}
	for _, m := range s["qrlogin_http_request_duration_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			for _, id := range []string{a.ID, b.ID, d.ID, e.ID, f.ID, "BCDF"} {
				if strings.Contains(lp.GetValue(), id) {
					t.Errorf("label %s=%q holds a raw path", lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func TestMetricsCountExpiredSessionsOnce(t *testing.T) {
	clk := testclock.New(time.Now())
	srv := apptest.Start(t, func(c *app.Config) {
		c.Now = clk.Now
		c.MetricsAddr = "127.0.0.1:0"
		c.SweepInterval = 10 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := srv.Client()
	sess, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	withdrawn, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WithdrawSession(ctx, withdrawn.ID, withdrawn.PollToken); err != nil {
		t.Fatal(err)
	}
	clk.Advance(srv.Config.SessionTTL)
	// Read before and after the sweeper marks it: the desktop is told
	// "expired" either way, and no read counts it.
	for range 3 {
		if st, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, "", 0); err != nil || st.Status != api.StatusExpired {
			t.Fatalf("expired session: %+v %v", st, err)
		}
	}
	waitFor(t, srv, 1, "qrlogin_login_sessions_expired_total")
	time.Sleep(100 * time.Millisecond) // ten more sweeps
	s := scrapeMetrics(t, srv)
	s.want(t, 1, "qrlogin_login_sessions_expired_total")
	s.want(t, 1, "qrlogin_login_sessions_cancelled_total")
	if st, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, "", 0); err != nil || st.Status != api.StatusExpired {
		t.Fatalf("expired session after the sweep: %+v %v", st, err)
	}
}

func TestMetricsOffByDefault(t *testing.T) {
	if app.DefaultConfig().MetricsAddr != "" {
		t.Fatal("metrics are on by default")
	}
	srv := apptest.Start(t)
	if addr := srv.App.MetricsAddr(); addr != nil {
		t.Fatalf("metrics served on %s without MetricsAddr", addr)
	}
	// Nor on the API's own listener.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the API: %s, want 404", resp.Status)
	}
}

func TestMetricsServerStopsWithTheServer(t *testing.T) {
	srv := apptest.Start(t, func(c *app.Config) { c.MetricsAddr = "127.0.0.1:0" })
	addr := srv.App.MetricsAddr().String()
	scrapeMetrics(t, srv)
	srv.Stop(t)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("metrics listener %s still accepts after shutdown", addr)
	}
}

func TestValidateMetricsAddr(t *testing.T) {
	tests := []struct {
		addr, metrics string
		ok            bool
	}{
		{":8080", "", true},
		{":8080", "127.0.0.1:9090", true},
		{":8080", ":9090", true},
		{"127.0.0.1:8080", "127.0.0.2:8080", true},
		{"127.0.0.1:0", "127.0.0.1:0", true}, // a free port each
		{":8080", ":8080", false},
		{":8080", "127.0.0.1:8080", false},
		{"127.0.0.1:8080", "0.0.0.0:8080", false},
		{"[::1]:8080", "[::]:8080", false},
		{"127.0.0.1:8080", "127.0.0.1:8080", false},
		{":8080", "9090", false},
		{":8080", "localhost", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.addr, tt.metrics), func(t *testing.T) {
			c := app.DefaultConfig()
			c.Addr, c.MetricsAddr = tt.addr, tt.metrics
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "metrics-addr") {
				t.Fatalf("error %q does not name metrics-addr", err)
			}
		})
	}
}
