// Package loadtest drives a qrlogin server the way many desktops and phones
// would, through shared/client, and measures it: how fast sessions are
// issued, how soon a desktop notices a phone's confirm, and what thousands
// of waiting desktops cost the server. The qrlogin-load command is its
// front end.
//
// Every loop is bounded twice, by a count (Config.MaxOps) and by time
// (Config.Duration plus short ramp and drain limits, and idle's probes
// after its window), so a run always ends by itself. The runner talks only to the URLs it is given.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// Scenario names a kind of load.
type Scenario string

// The scenarios of Run.
const (
	// Issue: Clients desktops create sessions back to back (the answer
	// carries the QR image's URL, not the image).
	Issue Scenario = "issue"
	// Flow: Clients desktop+phone pairs run the whole sign-in: create,
	// long-poll, scan, confirm, token delivery.
	Flow Scenario = "flow"
	// Idle: Clients desktops wait on sessions nobody scans; the window
	// measures them waiting. Then, with all of them still waiting, a probe
	// runs Probes flows to check that a confirm is still noticed at once.
	Idle Scenario = "idle"
	// QR: Clients desktops fetch their session's QR image (qr.png at the
	// default size) back to back.
	QR Scenario = "qr"
)

// WaitOn names how desktops wait for the phone.
type WaitOn string

// The ways of waiting.
const (
	// LongPoll: the status endpoint with after and wait.
	LongPoll WaitOn = "longpoll"
	// Stream: the session's event stream, held open.
	Stream WaitOn = "stream"
)

// RateLimitHint is the server flags a load run needs: with the default
// per-IP limits the server would refuse most requests of a single client
// machine.
const RateLimitHint = "--limit-login 0 --limit-create 0 --limit-lookup 0"

// Defaults of Config's zero fields.
const (
	DefaultMaxOps      = 10_000_000
	DefaultWait        = 30 * time.Second
	DefaultProbes      = 60
	DefaultProbeEvery  = 250 * time.Millisecond
	DefaultRampClients = 64
	DefaultUsername    = "alice"
	DefaultPassword    = "alice-demo" // the server's --demo account
)

// Config describes one load run.
type Config struct {
	// URLs are the servers' base URLs. Desktop i uses URLs[i%n] and its
	// phone URLs[(i+1)%n], so with several servers every notice crosses
	// from one instance to another.
	URLs     []string
	Scenario Scenario
	// Clients is the number of concurrent creators (issue), desktop+phone
	// pairs (flow), waiting desktops (idle) or image fetchers (qr).
	Clients int
	// Duration is the measurement window.
	Duration time.Duration
	// Think is the pause the phone takes before scanning and again before
	// confirming (flow), drawn uniformly from [Think/2, 3·Think/2) each
	// time as a person's would be; 0 runs flat out.
	Think time.Duration
	// Wait is the long-poll wait the desktops ask for (at most 30 s).
	Wait time.Duration
	// WaitOn is how desktops wait (flow, idle and its probe): LongPoll
	// (the default) or Stream.
	WaitOn WaitOn
	// Username and Password sign the phones in (flow, and the idle probe).
	Username, Password string
	// PID is the server process to measure (CPU and memory from /proc);
	// 0 measures nothing.
	PID int
	// Drain is how long operations under way when the window closes may
	// take to finish before their requests are cancelled (default 15 s
	// plus two of the longest think pauses), so the server is not left with a burst of
	// abandoned requests.
	Drain time.Duration
	// MaxOps bounds the operations (sessions, flows, images) of the run.
	MaxOps int64
	// Probes is how many flows the idle probe runs after the window
	// (DefaultProbes when 0; none when negative), and ProbeEvery how far
	// apart they start.
	Probes     int
	ProbeEvery time.Duration
	// RampClients is how many sessions idle creates at once while ramping
	// up.
	RampClients int
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// HTTPClient sends every request; nil means NewHTTPClient(Clients).
	HTTPClient *http.Client
}

func (c *Config) defaults() error {
	if len(c.URLs) == 0 {
		return errors.New("no server URL given")
	}
	for i, u := range c.URLs {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("url %q: must start with http:// or https://", u)
		}
		c.URLs[i] = u
	}
	switch c.Scenario {
	case Issue, Flow, Idle, QR:
	default:
		return fmt.Errorf("unknown scenario %q (issue, flow, idle or qr)", c.Scenario)
	}
	if c.Clients < 1 {
		return fmt.Errorf("clients: %d must be at least 1", c.Clients)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("duration: %v must be positive", c.Duration)
	}
	if c.Think < 0 {
		return fmt.Errorf("think: %v must not be negative", c.Think)
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.Wait < time.Second || c.Wait > api.MaxWait*time.Second {
		return fmt.Errorf("wait: %v must be between 1s and %ds", c.Wait, api.MaxWait)
	}
	switch c.WaitOn {
	case "":
		c.WaitOn = LongPoll
	case LongPoll, Stream:
	default:
		return fmt.Errorf("wait-on: unknown %q (longpoll or stream)", c.WaitOn)
	}
	if c.Username == "" {
		c.Username, c.Password = DefaultUsername, DefaultPassword
	}
	if c.Drain <= 0 {
		c.Drain = requestTimeout + 3*c.Think
	}
	if c.MaxOps <= 0 {
		c.MaxOps = DefaultMaxOps
	}
	if c.Probes == 0 {
		c.Probes = DefaultProbes
	}
	if c.ProbeEvery <= 0 {
		c.ProbeEvery = DefaultProbeEvery
	}
	if c.RampClients <= 0 {
		c.RampClients = DefaultRampClients
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient(c.Clients)
	}
	return nil
}

// NewHTTPClient returns a client whose transport keeps enough connections
// for conns concurrent long-polls plus their phones, never consults proxy
// variables (the run must reach only the URLs given) and has no overall
// timeout (each request carries its own deadline).
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap
		MaxIdleConnsPerHost: 2*conns + 64,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

// Result is what a run measured.
type Result struct {
	Scenario Scenario      `json:"scenario"`
	URLs     []string      `json:"urls"`
	Clients  int           `json:"clients"`
	Think    time.Duration `json:"think_ns"`
	Wait     time.Duration `json:"wait_ns,omitempty"`
	WaitOn   WaitOn        `json:"wait_on,omitempty"`
	// Window is the measured wall time.
	Window time.Duration `json:"window_ns"`
	// Ops counts sessions created (issue), flows completed (flow),
	// desktops waiting when the window opened (idle) or images fetched
	// (qr).
	Ops int64 `json:"ops"`
	// Rate is Ops per second of the window (issue, flow, qr).
	Rate float64 `json:"rate"`
	Unit string  `json:"unit"`
	// Requests counts HTTP answers received during the window.
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Errors counts failed requests of the whole run (ramp included),
	// ErrorsByCode by the server's error code or "transport"/"timeout".
	Errors       int64            `json:"errors"`
	ErrorsByCode map[string]int64 `json:"errors_by_code,omitempty"`
	// Latency is the create latency (issue), the whole flow (flow) or the
	// image fetch (qr).
	Latency Summary `json:"latency"`
	// Notice is the time from the phone's confirm response returning to
	// the desktop holding the tokens (flow, idle probe). A desktop that
	// had the tokens before the phone heard back counts as 0.
	Notice Summary `json:"notice"`
	// Server is the measured server process (with Config.PID); Tool is
	// this process.
	Server *ProcStats `json:"server,omitempty"`
	Tool   *ProcStats `json:"tool,omitempty"`
	Notes  []string   `json:"notes,omitempty"`
}

// Run performs one load run and returns what it measured. It returns an
// error only when the run could not be done at all (bad config, the
// phones could not sign in, sessions would expire during the run);
// request failures during the run are counted in Result.Errors.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, errs: map[string]int64{}}
	r.hc = &http.Client{Transport: &countingTransport{next: cfg.HTTPClient.Transport, n: &r.requests}}
	if r.hc.Transport.(*countingTransport).next == nil {
		r.hc.Transport = &countingTransport{next: http.DefaultTransport, n: &r.requests}
	}
	for _, u := range cfg.URLs {
		c := client.New(u)
		c.HTTPClient = r.hc
		c.UserAgent = "qrlogin-load"
		r.clients = append(r.clients, c)
	}
	res := &Result{Scenario: cfg.Scenario, URLs: cfg.URLs, Clients: cfg.Clients, Think: cfg.Think}
	if cfg.Scenario != Issue {
		res.WaitOn = cfg.WaitOn
	}
	var err error
	switch cfg.Scenario {
	case Issue:
		res.Unit = "sessions/s"
		err = r.issue(ctx, res)
	case Flow:
		res.Unit = "flows/s"
		err = r.flow(ctx, res)
	case Idle:
		res.Unit = "desktops"
		res.Wait = cfg.Wait
		err = r.idle(ctx, res)
	case QR:
		res.Unit = "images/s"
		err = r.qr(ctx, res)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Errors = r.nerr
	if len(r.errs) > 0 {
		res.ErrorsByCode = r.errs
	}
	if res.Window > 0 {
		if cfg.Scenario != Idle {
			res.Rate = float64(res.Ops) / res.Window.Seconds()
		}
		res.RequestsPerSec = float64(res.Requests) / res.Window.Seconds()
	}
	if r.errs[api.ErrRateLimited] > 0 {
		res.Notes = append(res.Notes, "the server refused requests with 429: start it with "+RateLimitHint)
	}
	res.Notes = append(res.Notes, r.samples...)
	return res, nil
}

// runner holds the state shared by a run's workers.
type runner struct {
	cfg      Config
	hc       *http.Client
	clients  []*client.Client
	requests atomic.Int64
	ops      atomic.Int64 // operations claimed, against MaxOps

	mu      sync.Mutex
	nerr    int64
	errs    map[string]int64
	samples []string // a few distinct error messages
}

// desktop and phone return the clients worker w uses.
func (r *runner) desktop(w int) *client.Client { return r.clients[w%len(r.clients)] }
func (r *runner) phone(w int) *client.Client   { return r.clients[(w+1)%len(r.clients)] }

// claim takes one operation from the run's budget.
func (r *runner) claim() bool { return r.ops.Add(1) <= r.cfg.MaxOps }

// fail counts a failed request. Failures caused by the run itself ending
// (ctx done) are not failures and are not counted.
func (r *runner) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	code := "transport"
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		code = ce.Code
	case errors.Is(err, context.DeadlineExceeded):
		code = "timeout"
	case err == nil:
		code = "unexpected"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nerr++
	r.errs[code]++
	if len(r.samples) < 5 {
		msg := fmt.Sprintf("error sample: %s: %v", what, err)
		for _, s := range r.samples {
			if s == msg {
				return
			}
		}
		r.samples = append(r.samples, msg)
	}
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "qrlogin-load: "+format+"\n", args...)
}

// pause sleeps for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// countingTransport counts the answers it receives.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		t.n.Add(1)
	}
	return resp, err
}

// requestTimeout bounds an ordinary (not long-poll) request.
const requestTimeout = 15 * time.Second

var createReq = api.CreateSessionRequest{DeviceName: "load test", Platform: "linux/amd64", AppName: "qrlogin-load"}

// create makes one session and checks it carries what a desktop needs.
func (r *runner) create(ctx context.Context, c *client.Client) (*api.CreateSessionResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := c.CreateSession(rctx, createReq)
	if err != nil {
		return nil, err
	}
	if s.ID == "" || s.PollToken == "" || !strings.HasSuffix(s.QRURL, "/"+s.ID+"/qr.png") {
		return nil, fmt.Errorf("create session: answer without id, poll token or QR image URL")
	}
	return s, nil
}

// watch starts sampling this process and, with Config.PID, the server.
func (r *runner) watch() (server, tool *procWatch, err error) {
	if r.cfg.PID > 0 {
		if server, err = startWatch(r.cfg.PID); err != nil {
			return nil, nil, err
		}
	}
	tool, _ = startWatch(os.Getpid()) // nil off Linux
	return server, tool, nil
}

// sampleEvery takes peak-memory samples until ctx ends.
func sampleEvery(ctx context.Context, d time.Duration, ws ...*procWatch) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, w := range ws {
				if w != nil {
					w.sample()
				}
			}
		}
	}
}

// finishWatch fills res.Server and res.Tool.
func finishWatch(res *Result, server, tool *procWatch) error {
	if server != nil {
		st, err := server.stop()
		if err != nil {
			return err
		}
		res.Server = &st
	}
	if tool != nil {
		if st, err := tool.stop(); err == nil {
			res.Tool = &st
		}
	}
	return nil
}
