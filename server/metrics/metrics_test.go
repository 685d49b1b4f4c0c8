package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qrlogin/qrlogin/server/metrics"
)

// The calls made for every held wait and every request allocate nothing:
// the idle server holds 10,000 streams.
func TestHotPathsDoNotAllocate(t *testing.T) {
	m := metrics.New()
	calls := map[string]func(){
		"DesktopWaiting": func() { m.DesktopWaiting(metrics.WaitStream, 1); m.DesktopWaiting(metrics.WaitStream, -1) },
		"UserStreams":    func() { m.UserStreams(1); m.UserStreams(-1) },
		"SessionCreated": m.SessionCreated,
		"SignIn":         func() { m.SignIn(false) },
		"RateLimited":    func() { m.RateLimited(metrics.LimitLookup) },
		"NoticeLatency":  func() { m.NoticeLatency(time.Second) },
		"Request":        func() { m.Request("GET", "/api/v1/login-sessions/:id/status", 200, time.Millisecond) },
	}
	for name, call := range calls {
		call() // the first Request makes its series
		if n := testing.AllocsPerRun(100, call); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

// Whatever clients send, the label values of request durations stay a
// small set: unknown methods and odd status codes share one value.
func TestRequestLabelsAreBounded(t *testing.T) {
	m := metrics.New()
	for _, method := range []string{"GET", "FOO", "BAR", "get"} {
		m.Request(method, "(unmatched)", 404, time.Millisecond)
	}
	m.Request("GET", "(unmatched)", 99, time.Millisecond)
	m.Request("GET", "(unmatched)", 600, time.Millisecond)
	m.Request("GET", "(unmatched)", 499, time.Millisecond)
	// GET 404, other 404, GET other, GET 499.
	if n := testutil.CollectAndCount(m.Registry(), "qrlogin_http_request_duration_seconds"); n != 4 {
		t.Errorf("%d series of request durations, want 4", n)
	}
}

func TestUnknownKindsAreIgnored(t *testing.T) {
	m := metrics.New()
	m.DesktopWaiting("elsewhere", 1)
	m.RateLimited("nope")
	want := `
# HELP qrlogin_desktops_waiting Desktops waiting for their login session now, by kind: longpoll or stream.
# TYPE qrlogin_desktops_waiting gauge
qrlogin_desktops_waiting{kind="longpoll"} 0
qrlogin_desktops_waiting{kind="stream"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "qrlogin_desktops_waiting"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "qrlogin_rate_limited_requests_total"); n != 4 {
		t.Errorf("%d rate limit series, want 4", n)
	}
}

// Each metric of ours has help text, and its name says its unit.
func TestNamesAndHelp(t *testing.T) {
	mfs, err := metrics.New().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "qrlogin_") {
			continue
		}
		n++
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		switch mf.GetType().String() {
		case "COUNTER":
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case "HISTOGRAM":
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram %s does not end in _seconds", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d qrlogin_ metrics gathered", n)
	}
}
