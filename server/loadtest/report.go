package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes res as indented JSON.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteTable writes res as a table a person reads.
func (res *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "qrlogin-load %s against %s\n", res.Scenario, strings.Join(res.URLs, ", "))
	fmt.Fprintf(tw, "(expects the server's rate limits lifted: %s)\n", RateLimitHint)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{name}, args...)...)
	}
	switch res.Scenario {
	case Idle:
		if res.WaitOn == Stream {
			row("waiting desktops", "%d (event streams)", res.Ops)
		} else {
			row("waiting desktops", "%d (long-poll wait %v)", res.Ops, res.Wait)
		}
	case Flow:
		if res.WaitOn == Stream {
			row("concurrent flows", "%d (think %v, event streams)", res.Clients, res.Think)
		} else {
			row("concurrent flows", "%d (think %v)", res.Clients, res.Think)
		}
	default:
		row("clients", "%d", res.Clients)
	}
	row("window", "%.1fs", res.Window.Seconds())
	switch res.Scenario {
	case Issue:
		row("sessions", "%d (%.0f sessions/s)", res.Ops, res.Rate)
		row("create latency ms", "%s", latencyCells(res.Latency))
	case Flow:
		row("flows", "%d (%.0f flows/s)", res.Ops, res.Rate)
		row("flow latency ms", "%s", latencyCells(res.Latency))
		row("notice latency ms", "%s", latencyCells(res.Notice))
	case Idle:
		row("confirm noticed ms", "%s, probes after the window", latencyCells(res.Notice))
	case QR:
		row("images", "%d (%.0f images/s)", res.Ops, res.Rate)
		row("fetch latency ms", "%s", latencyCells(res.Latency))
	}
	row("requests", "%d (%.0f/s)", res.Requests, res.RequestsPerSec)
	row("errors", "%d%s", res.Errors, errorCodes(res.ErrorsByCode))
	if s := res.Server; s != nil {
		row("server cpu", "%.1f%% of one core (pid %d)", s.CPUPercent, s.PID)
		row("server rss", "%.1f MiB (peak %.1f MiB)", s.RSSMB, s.RSSPeakMB)
	}
	if s := res.Tool; s != nil {
		row("load tool cpu", "%.1f%% of one core", s.CPUPercent)
		row("load tool rss", "%.1f MiB", s.RSSMB)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(tw, "  note: %s\n", n)
	}
	return tw.Flush()
}

// latencyCells is "p50 x  p90 y  p99 z  max m (n)" in milliseconds.
func latencyCells(s Summary) string {
	if s.N == 0 {
		return "no samples"
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%.2f", ms(d)) }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", f(s.P50), f(s.P90), f(s.P99), f(s.Max), s.N)
}

func errorCodes(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
