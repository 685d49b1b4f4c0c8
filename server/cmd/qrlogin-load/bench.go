package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/qrlogin/qrlogin/server/loadtest"
)

// benchRun is one load run of the bench and the targets it is held to.
type benchRun struct {
	name string
	cfg  loadtest.Config
}

// goBench is one group of Go benchmarks the bench runs.
type goBench struct {
	pkg, pattern string
}

// goBenches are the hot-path benchmarks of issue 5.
var goBenches = []goBench{
	{"./server/qrpng", "^Benchmark"},
	{"./server/httpapi", "^Benchmark"},
	{"./server/auth", "^Benchmark(Sign|Verify)$"},
	{"./server/notify", "^Benchmark"},
	{"./server/store/sqlite", "^Benchmark"},
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qrlogin-load bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serverBin := fs.String("server-bin", "", "qrlogin-server binary to start (default: build it with --go)")
	goCmd := fs.String("go", "go", "go command, for building the server and running the benchmarks")
	d := fs.Duration("d", 5*time.Second, "window of each load run")
	idle := fs.Int("idle", 2000, "waiting desktops of the idle run")
	benchTime := fs.String("benchtime", "300ms", "go test -benchtime of each benchmark")
	skipGo := fs.Bool("skip-go-bench", false, "run only the load scenarios")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "qrlogin-load: cannot raise the open-file limit: %v\n", err)
	}
	dir, err := os.MkdirTemp("", "qrlogin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *serverBin == "" {
		*serverBin = filepath.Join(dir, "qrlogin-server")
		fmt.Fprintln(stderr, "qrlogin-load: building qrlogin-server")
		if err := runCmd(ctx, stderr, *goCmd, "build", "-o", *serverBin, "./server/cmd/qrlogin-server"); err != nil {
			return fmt.Errorf("build qrlogin-server (run the bench from the repository root): %w", err)
		}
	}
	runs := []benchRun{
		{"issue, 16 clients", loadtest.Config{Scenario: loadtest.Issue, Clients: 16}},
		{"qr.png, 16 clients", loadtest.Config{Scenario: loadtest.QR, Clients: 16}},
		{"flow, 200 concurrent, flat out", loadtest.Config{Scenario: loadtest.Flow, Clients: 200}},
		{"flow, 200 concurrent, think 250ms", loadtest.Config{Scenario: loadtest.Flow, Clients: 200, Think: 250 * time.Millisecond}},
		{fmt.Sprintf("idle, %d desktops on streams", *idle), loadtest.Config{Scenario: loadtest.Idle, Clients: *idle, WaitOn: loadtest.Stream, Probes: 20}},
	}
	var rows []tableRow
	locked, errorLines := 0, 0
	for i, r := range runs {
		// A fresh server for each run, so one run's memory and stored
		// sessions do not weigh on the next.
		srv, err := startServer(ctx, *serverBin, filepath.Join(dir, strconv.Itoa(i)), stderr)
		if err != nil {
			return err
		}
		cfg := r.cfg
		cfg.URLs = []string{srv.url}
		cfg.Duration = *d
		cfg.PID = srv.cmd.Process.Pid
		cfg.Log = stderr
		fmt.Fprintf(stderr, "qrlogin-load: running %s for %v\n", r.name, *d)
		res, err := loadtest.Run(ctx, cfg)
		srv.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		rows = append(rows, scenarioRows(r.name, res)...)
		l, e := srv.logCounts(stderr)
		locked, errorLines = locked+l, errorLines+e
	}
	rows = append(rows,
		tableRow{"server log", `"database is locked"`, strconv.Itoa(locked), "0", verdict(locked == 0)},
		tableRow{"server log", "ERROR lines", strconv.Itoa(errorLines), "0", verdict(errorLines == 0)})

	if !*skipGo {
		for _, gb := range goBenches {
			fmt.Fprintf(stderr, "qrlogin-load: go test -bench %s %s\n", gb.pattern, gb.pkg)
			var out bytes.Buffer
			err := runCmd(ctx, io.MultiWriter(&out, stderr), *goCmd, "test", "-run", "^$", "-bench", gb.pattern,
				"-benchmem", "-benchtime", *benchTime, gb.pkg)
			if err != nil {
				return fmt.Errorf("benchmarks of %s: %w", gb.pkg, err)
			}
			rows = append(rows, parseGoBench(gb.pkg, out.String())...)
		}
	}
	return writeBenchTable(stdout, rows)
}

// tableRow is one line of the bench table.
type tableRow struct {
	what, metric, value, target, ok string
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// scenarioRows turns a load result into table rows against the targets of
// issue 5.
func scenarioRows(name string, res *loadtest.Result) []tableRow {
	msf := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	rows := []tableRow{}
	add := func(metric, value, target, ok string) {
		rows = append(rows, tableRow{name, metric, value, target, ok})
	}
	switch res.Scenario {
	case loadtest.Issue:
		add("sessions/s (no PNG)", fmt.Sprintf("%.0f", res.Rate), "≥ 3000", verdict(res.Rate >= 3000))
		add("create p50 / p99", msf(res.Latency.P50)+" / "+msf(res.Latency.P99), "p99 ≤ 50 ms", verdict(res.Latency.P99 <= 50*time.Millisecond))
	case loadtest.QR:
		add("qr.png images/s", fmt.Sprintf("%.0f", res.Rate), "≥ 1000", verdict(res.Rate >= 1000))
		add("fetch p50 / p99", msf(res.Latency.P50)+" / "+msf(res.Latency.P99), "", "")
	case loadtest.Flow:
		if res.Think == 0 {
			add("flows/s", fmt.Sprintf("%.0f", res.Rate), "≥ 800", verdict(res.Rate >= 800))
		} else {
			add("flows/s", fmt.Sprintf("%.0f", res.Rate), "", "")
		}
		if res.Think == 0 {
			// Flat out the server is saturated on purpose and the notice
			// latency is queueing; the target is held at human pace.
			add("notice p50 / p99", msf(res.Notice.P50)+" / "+msf(res.Notice.P99), "(saturated)", "")
		} else {
			add("notice p50 / p99", msf(res.Notice.P50)+" / "+msf(res.Notice.P99), "p99 ≤ 20 ms", verdict(res.Notice.N > 0 && res.Notice.P99 <= 20*time.Millisecond))
		}
	case loadtest.Idle:
		add("desktops waiting", strconv.FormatInt(res.Ops, 10), strconv.Itoa(res.Clients), verdict(res.Ops == int64(res.Clients)))
		add("requests/s", fmt.Sprintf("%.0f", res.RequestsPerSec), "", "")
		add("confirm noticed p99", msf(res.Notice.P99), "≤ 20 ms", verdict(res.Notice.N > 0 && res.Notice.P99 <= 20*time.Millisecond))
		if s := res.Server; s != nil {
			// The targets are for 10,000 desktops; a smaller run is shown
			// against them without a verdict.
			full := res.Ops >= 10_000
			v := func(ok bool) string {
				if !full {
					return ""
				}
				return verdict(ok)
			}
			add("server cpu", fmt.Sprintf("%.2f%% of a core", s.CPUPercent), "≤ 2% at 10k", v(s.CPUPercent <= 2))
			// 400 MB, in the MiB the tool reports.
			add("server rss", fmt.Sprintf("%.1f MiB", s.RSSPeakMB), "≤ 400 MB (381.5 MiB) at 10k", v(s.RSSPeakMB*(1<<20) <= 400e6))
		}
	}
	add("errors", strconv.FormatInt(res.Errors, 10), "0", verdict(res.Errors == 0))
	if s := res.Server; s != nil && res.Scenario != loadtest.Idle {
		add("server cpu / rss", fmt.Sprintf("%.0f%% / %.0f MiB", s.CPUPercent, s.RSSPeakMB), "", "")
	}
	return rows
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

// parseGoBench turns go test -bench output into table rows.
func parseGoBench(pkg, out string) []tableRow {
	var rows []tableRow
	for line := range strings.SplitSeq(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[3], 64)
		value := formatNs(ns)
		if m[4] != "" {
			value += fmt.Sprintf(", %s B, %s allocs", m[4], m[5])
		}
		rows = append(rows, tableRow{strings.TrimPrefix(pkg, "./"), strings.TrimPrefix(m[1], "Benchmark"), value + " /op", "", ""})
	}
	return rows
}

func formatNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func writeBenchTable(w io.Writer, rows []tableRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tMETRIC\tVALUE\tTARGET\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.what, r.metric, r.value, r.target, r.ok)
	}
	return tw.Flush()
}

func runCmd(ctx context.Context, out io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// server is a qrlogin-server process started for the bench.
type server struct {
	cmd  *exec.Cmd
	url  string
	log  *lockedBuffer
	done chan struct{}
	once sync.Once
}

// startServer starts bin on a free loopback port with a fresh database,
// the demo accounts, rate limits off, sessions long enough for idle and
// request logging at warn, and waits until it answers /healthz.
func startServer(ctx context.Context, bin, dir string, stderr io.Writer) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "bench.db"), "--demo",
		"--limit-login", "0", "--limit-create", "0", "--limit-lookup", "0",
		"--session-ttl", "15m", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	fmt.Fprintf(stderr, "qrlogin-load: started %s serve (pid %d)\n", bin, cmd.Process.Pid)

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "qrlogin server listening on "); ok {
				addr <- strings.TrimSpace(a)
			}
		}
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("qrlogin-server exited at start:\n%s", s.log.String())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("qrlogin-server did not print its address within 30s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	for range 100 {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("qrlogin-server at %s is not healthy after 10s", s.url)
}

// stop ends the server (SIGINT, then kill after 15 s) and waits for it.
func (s *server) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// logCounts counts "database is locked" and error-level lines in the
// server's log, and copies the first few error lines to w. Requests the
// load tool itself cancelled at the very end (context canceled) are not
// counted.
func (s *server) logCounts(w io.Writer) (locked, errorLines int) {
	for line := range strings.SplitSeq(s.log.String(), "\n") {
		if strings.Contains(line, "database is locked") {
			locked++
		}
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "err=") && !strings.Contains(line, "context canceled") {
			if errorLines < 3 {
				fmt.Fprintf(w, "qrlogin-load: server logged: %s\n", line)
			}
			errorLines++
		}
	}
	return locked, errorLines
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
