package loadtest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func msList(vals ...int) []time.Duration {
	out := make([]time.Duration, len(vals))
	for i, v := range vals {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1 // 1..100 ms
	}
	tests := []struct {
		name string
		data []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", msList(7), 50, 7 * time.Millisecond},
		{"one sample p99", msList(7), 99, 7 * time.Millisecond},
		{"1..100 p50", msList(hundred...), 50, 50 * time.Millisecond},
		{"1..100 p90", msList(hundred...), 90, 90 * time.Millisecond},
		{"1..100 p99", msList(hundred...), 99, 99 * time.Millisecond},
		{"1..100 p100", msList(hundred...), 100, 100 * time.Millisecond},
		{"1..100 p0 is the minimum", msList(hundred...), 0, 1 * time.Millisecond},
		{"ten samples p99 is the max", msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"ten samples p90", msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"four samples p50 takes the lower middle", msList(10, 20, 30, 40), 50, 20 * time.Millisecond},
		{"four samples p51", msList(10, 20, 30, 40), 51, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.data, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted on purpose: Summarize sorts.
	data := msList(30, 10, 50, 20, 40)
	s := Summarize(data)
	want := Summary{N: 5, Min: 10 * time.Millisecond, Mean: 30 * time.Millisecond,
		P50: 30 * time.Millisecond, P90: 50 * time.Millisecond, P99: 50 * time.Millisecond, Max: 50 * time.Millisecond}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", Summarize(nil))
	}
}

func TestSummaryJSONInMilliseconds(t *testing.T) {
	b, err := json.Marshal(Summarize(msList(1, 2, 3)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["p50_ms"] != 2 || m["max_ms"] != 3 || m["n"] != 3 || m["p99_ns"] != 3e6 {
		t.Errorf("JSON = %s", b)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (qrlogin (srv) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 123456789 5000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v (utime 250 + stime 75 ticks)", got, want)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S 1 2", "42 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tqrlogin-server\nVmPeak:\t 900000 kB\nVmRSS:\t   51200 kB\nThreads:\t7\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if got != 50<<20 {
		t.Errorf("rss = %d, want %d", got, 50<<20)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q) succeeded", bad)
		}
	}
}

func TestProcStats(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	first := ProcSample{At: t0, CPU: time.Second, RSS: 10 << 20}
	last := ProcSample{At: t0.Add(10 * time.Second), CPU: 1500 * time.Millisecond, RSS: 20 << 20}
	st := procStats(7, first, last, 30<<20)
	if st.CPUPercent != 5 || st.RSSMB != 20 || st.RSSPeakMB != 30 || st.Window != 10*time.Second {
		t.Errorf("procStats = %+v, want 5%% cpu, 20 MiB, peak 30 MiB over 10s", st)
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if s.RSS <= 0 || s.CPU < 0 {
		t.Errorf("ReadProc(self) = %+v", s)
	}
}

func TestWriteTable(t *testing.T) {
	res := &Result{
		Scenario: Flow, URLs: []string{"http://127.0.0.1:8080"}, Clients: 200, Think: time.Second,
		Window: 10 * time.Second, Ops: 8000, Rate: 800, Unit: "flows/s", Requests: 40000, RequestsPerSec: 4000,
		Errors: 3, ErrorsByCode: map[string]int64{"internal": 2, "transport": 1},
		Latency: Summarize(msList(5, 6, 7)), Notice: Summarize(msList(1, 2, 3)),
		Server: &ProcStats{PID: 99, CPUPercent: 150, RSSMB: 40, RSSPeakMB: 45},
		Notes:  []string{"hello"},
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"qrlogin-load flow against http://127.0.0.1:8080",
		RateLimitHint,
		"concurrent flows   200 (think 1s)",
		"8000 (800 flows/s)",
		"notice latency ms  p50 2.00  p90 3.00  p99 3.00  max 3.00  (n=3)",
		"errors             3 (internal 2, transport 1)",
		"150.0% of one core (pid 99)",
		"note: hello",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	res := &Result{Scenario: Issue, URLs: []string{"http://x"}, Clients: 16, Ops: 10, Rate: 2000, Unit: "sessions/s",
		Latency: Summarize(msList(1, 2, 3, 4)), ErrorsByCode: map[string]int64{"rate_limited": 4}, Errors: 4}
	var b strings.Builder
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenario     string           `json:"scenario"`
		Rate         float64          `json:"rate"`
		Errors       int64            `json:"errors"`
		ErrorsByCode map[string]int64 `json:"errors_by_code"`
		Latency      map[string]float64
	}
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if got.Scenario != "issue" || got.Rate != 2000 || got.Errors != 4 || got.ErrorsByCode["rate_limited"] != 4 || got.Latency["p99_ms"] != 4 {
		t.Errorf("JSON = %s", b.String())
	}
}

func TestHumanThink(t *testing.T) {
	if human(0) != 0 {
		t.Errorf("human(0) = %v", human(0))
	}
	const think = time.Second
	lo, hi := think, time.Duration(0)
	for range 1000 {
		d := human(think)
		if d < think/2 || d >= 3*think/2 {
			t.Fatalf("human(%v) = %v, outside [%v, %v)", think, d, think/2, 3*think/2)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < think/2 {
		t.Errorf("1000 pauses spread over only %v", hi-lo)
	}
}
