// Command qrlogin-load puts a qrlogin server under load and measures it
// (issue 5, docs/PERFORMANCE.md):
//
//	qrlogin-load --url http://127.0.0.1:8080 --scenario issue -c 16 -d 10s
//	qrlogin-load --url http://127.0.0.1:8080 --scenario flow -c 200 -d 10s [--think 500ms]
//	qrlogin-load --url http://127.0.0.1:8080 --scenario idle -c 10000 -d 60s --pid $(pidof qrlogin-server) [--wait-on stream]
//	qrlogin-load --url http://127.0.0.1:8080 --scenario qr -c 16 -d 10s
//	qrlogin-load bench [--server-bin bin/qrlogin-server]   short run of everything, one table
//
// The server must run with its rate limits lifted (--limit-login 0
// --limit-create 0 --limit-lookup 0) and, for idle and qr, a --session-ttl
// longer than the run. Phones sign in as --username/--password (default: the
// --demo account alice). The tool targets only the URLs it is given, and
// every loop stops by itself after -d (and idle's --probes after it) or
// --max-ops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/qrlogin/qrlogin/server/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "qrlogin-load:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "bench" {
		return bench(ctx, args[1:], stdout, stderr)
	}
	cfg, asJSON, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if limit, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "qrlogin-load: cannot raise the open-file limit: %v\n", err)
	} else if need := uint64(2*cfg.Clients + 64); limit < need {
		fmt.Fprintf(stderr, "qrlogin-load: warning: open-file limit %d is below the %d this run may need (ulimit -n)\n", limit, need)
	}
	fmt.Fprintf(stderr, "qrlogin-load: %s, %d clients, %v, against %s (the server needs %s)\n",
		cfg.Scenario, cfg.Clients, cfg.Duration, strings.Join(cfg.URLs, ", "), loadtest.RateLimitHint)
	res, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return res.WriteJSON(stdout)
	}
	return res.WriteTable(stdout)
}

// parseFlags reads the flags of a single run.
func parseFlags(args []string, stderr io.Writer) (loadtest.Config, bool, error) {
	var cfg loadtest.Config
	fs := flag.NewFlagSet("qrlogin-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("url", "http://127.0.0.1:8080", "server base URL; several comma-separated spread desktops and phones over them")
	scenario := fs.String("scenario", "flow", "issue, flow, idle or qr")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients: creators (issue), desktop+phone pairs (flow), waiting desktops (idle), image fetchers (qr)")
	fs.IntVar(&cfg.Clients, "c", 16, "short for --clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window")
	fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "short for --duration")
	fs.DurationVar(&cfg.Think, "think", 0, "flow: the phone's pause before scanning and before confirming (0: flat out)")
	fs.DurationVar(&cfg.Wait, "wait", loadtest.DefaultWait, "long-poll wait the desktops ask for (1s to 30s)")
	waitOn := fs.String("wait-on", string(loadtest.LongPoll), "how desktops wait (flow, idle): longpoll or stream (the event stream)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: report its CPU and memory from /proc/<pid> (Linux)")
	fs.StringVar(&cfg.Username, "username", loadtest.DefaultUsername, "phone user name (flow, idle probe)")
	fs.StringVar(&cfg.Password, "password", loadtest.DefaultPassword, "phone user password")
	fs.Int64Var(&cfg.MaxOps, "max-ops", loadtest.DefaultMaxOps, "stop after this many sessions, flows or images")
	fs.IntVar(&cfg.Probes, "probes", loadtest.DefaultProbes, "idle: confirm probes to run after the window, with the desktops still waiting (0: none)")
	fs.DurationVar(&cfg.ProbeEvery, "probe-every", loadtest.DefaultProbeEvery, "idle: pause between two probes")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for u := range strings.SplitSeq(*urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.URLs = append(cfg.URLs, u)
		}
	}
	cfg.Scenario = loadtest.Scenario(*scenario)
	cfg.WaitOn = loadtest.WaitOn(*waitOn)
	if cfg.Probes == 0 {
		cfg.Probes = -1 // Config's 0 is the default
	}
	cfg.Log = stderr
	return cfg, *asJSON, nil
}
