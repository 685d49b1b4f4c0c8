package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/server/loadtest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(loadtest.Config, bool) bool
	}{
		{"defaults", nil, func(c loadtest.Config, j bool) bool {
			return c.Scenario == loadtest.Flow && c.Clients == 16 && c.Duration == 10*time.Second &&
				len(c.URLs) == 1 && c.URLs[0] == "http://127.0.0.1:8080" && c.Username == "alice" && c.WaitOn == loadtest.LongPoll && !j
		}},
		{"short flags", []string{"-c", "200", "-d", "3s", "--scenario", "issue", "--json"}, func(c loadtest.Config, j bool) bool {
			return c.Clients == 200 && c.Duration == 3*time.Second && c.Scenario == loadtest.Issue && j
		}},
		{"long flags", []string{"--clients", "5", "--duration", "1m", "--think", "500ms", "--pid", "42", "--wait", "10s"}, func(c loadtest.Config, _ bool) bool {
			return c.Clients == 5 && c.Duration == time.Minute && c.Think == 500*time.Millisecond && c.PID == 42 && c.Wait == 10*time.Second
		}},
		{"several urls", []string{"--url", "http://a:1, http://b:2,,"}, func(c loadtest.Config, _ bool) bool {
			return len(c.URLs) == 2 && c.URLs[0] == "http://a:1" && c.URLs[1] == "http://b:2"
		}},
		{"stream", []string{"--scenario", "idle", "--wait-on", "stream"}, func(c loadtest.Config, _ bool) bool {
			return c.Scenario == loadtest.Idle && c.WaitOn == loadtest.Stream
		}},
		{"probes", []string{"--scenario", "idle", "--probes", "5", "--probe-every", "1s"}, func(c loadtest.Config, _ bool) bool {
			return c.Probes == 5 && c.ProbeEvery == time.Second
		}},
		{"probes by default", []string{"--scenario", "idle"}, func(c loadtest.Config, _ bool) bool {
			return c.Probes == loadtest.DefaultProbes && c.ProbeEvery == loadtest.DefaultProbeEvery
		}},
		{"no probes", []string{"--scenario", "idle", "--probes", "0"}, func(c loadtest.Config, _ bool) bool {
			return c.Probes < 0
		}},
		{"user", []string{"--username", "bob", "--password", "bob-demo", "--max-ops", "7"}, func(c loadtest.Config, _ bool) bool {
			return c.Username == "bob" && c.Password == "bob-demo" && c.MaxOps == 7
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, j, err := parseFlags(tt.args, &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(cfg, j) {
				t.Errorf("parseFlags(%q) = %+v, json %v", tt.args, cfg, j)
			}
		})
	}
	if _, _, err := parseFlags([]string{"extra"}, &strings.Builder{}); err == nil {
		t.Error("a stray argument was accepted")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkEncode-2          	   20000	     61234 ns/op	   13895 B/op	      20 allocs/op
BenchmarkSessionLookup/100000-2  	    3000	     52.5 ns/op
BenchmarkNoMem-2   	 100	 1500000 ns/op
PASS
ok  	github.com/qrlogin/qrlogin/server/qrpng	2.1s
`
	rows := parseGoBench("./server/qrpng", out)
	if len(rows) != 3 {
		t.Fatalf("rows = %+v, want 3", rows)
	}
	want := []tableRow{
		{"server/qrpng", "Encode", "61.2 µs, 13895 B, 20 allocs /op", "", ""},
		{"server/qrpng", "SessionLookup/100000", "52 ns /op", "", ""},
		{"server/qrpng", "NoMem", "1.50 ms /op", "", ""},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestScenarioRows(t *testing.T) {
	verdicts := func(res *loadtest.Result) map[string]string {
		got := map[string]string{}
		for _, r := range scenarioRows(string(res.Scenario), res) {
			got[r.metric] = r.ok
		}
		return got
	}
	issue := &loadtest.Result{Scenario: loadtest.Issue, Rate: 3500, Latency: loadtest.Summary{P50: 3 * time.Millisecond, P99: 60 * time.Millisecond}}
	if got := verdicts(issue); got["sessions/s (no PNG)"] != "ok" || got["create p50 / p99"] != "MISSED" || got["errors"] != "ok" {
		t.Errorf("issue rows = %v", got)
	}
	issue.Rate = 2500
	if got := verdicts(issue); got["sessions/s (no PNG)"] != "MISSED" {
		t.Errorf("issue rows at 2500/s = %v", got)
	}
	for rate, want := range map[float64]string{1200: "ok", 800: "MISSED"} {
		qr := &loadtest.Result{Scenario: loadtest.QR, Rate: rate}
		if got := verdicts(qr); got["qr.png images/s"] != want {
			t.Errorf("qr rows at %v/s = %v, want %s", rate, got, want)
		}
	}
	idle := &loadtest.Result{Scenario: loadtest.Idle, Clients: 1000, Ops: 1000, Notice: loadtest.Summary{N: 3, P99: 2 * time.Millisecond},
		Server: &loadtest.ProcStats{CPUPercent: 9, RSSPeakMB: 300}}
	for _, r := range scenarioRows("idle", idle) {
		// Below 10,000 desktops there is no verdict on CPU and memory.
		if r.ok == "MISSED" {
			t.Errorf("idle row %+v missed", r)
		}
	}
}

// TestRunAgainstServer runs the command end to end, with JSON output.
func TestRunAgainstServer(t *testing.T) {
	srv := apptest.Start(t)
	srv.AddUser(t, "alice", "Alice", "alice-demo")
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"--url", srv.URL, "--scenario", "flow", "-c", "2", "-d", "500ms", "--json"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var res loadtest.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if res.Scenario != loadtest.Flow || res.Ops == 0 || res.Errors != 0 {
		t.Errorf("result = %+v", res)
	}
	if !strings.Contains(errOut.String(), loadtest.RateLimitHint) {
		t.Errorf("stderr does not name the rate-limit flags:\n%s", errOut.String())
	}
}
