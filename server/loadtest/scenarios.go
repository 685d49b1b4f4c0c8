package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

const (
	// errorBackoff keeps a worker whose requests fail (server down, rate
	// limited) from spinning.
	errorBackoff = 10 * time.Millisecond
	// sampleInterval is how often memory is sampled for the peak.
	sampleInterval = 250 * time.Millisecond
	// loginConcurrency bounds concurrent phone sign-ins (each costs the
	// server a password hash).
	loginConcurrency = 8
	// settle is how long idle waits after the last desktop sent its poll,
	// so the server holds them all before the window opens.
	settle = time.Second
)

// window runs fn while sampling the processes and fills res's window,
// request count and process figures. fn starts no new operation once stop
// is done, and sends its requests with req, which ends Config.Drain later, so
// the server is not left with a burst of abandoned requests.
func (r *runner) window(ctx context.Context, res *Result, fn func(stop, req context.Context)) error {
	server, tool, err := r.watch()
	if err != nil {
		return err
	}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sampleEvery(sctx, sampleInterval, server, tool)
	}()
	req0 := r.requests.Load()
	start := time.Now()
	stop, cancelStop := context.WithDeadline(ctx, start.Add(r.cfg.Duration))
	defer cancelStop()
	req, cancelReq := context.WithDeadline(ctx, start.Add(r.cfg.Duration+r.cfg.Drain))
	defer cancelReq()
	fn(stop, req)
	res.Window = time.Since(start)
	res.Requests = r.requests.Load() - req0
	stopSampling()
	<-sampled
	return finishWatch(res, server, tool)
}

func (r *runner) issue(ctx context.Context, res *Result) error {
	lat := make([][]time.Duration, r.cfg.Clients)
	err := r.window(ctx, res, func(stop, ctx context.Context) {
		var wg sync.WaitGroup
		for w := range r.cfg.Clients {
			wg.Go(func() {
				c := r.desktop(w)
				for stop.Err() == nil && r.claim() {
					t0 := time.Now()
					if _, err := r.create(ctx, c); err != nil {
						r.fail(ctx, "create session", err)
						pause(stop, errorBackoff)
						continue
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
	})
	if err != nil {
		return err
	}
	all := merge(lat)
	res.Ops = int64(len(all))
	res.Latency = Summarize(all)
	return nil
}

func merge(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// signIn signs in one phone per worker and returns their access tokens.
func (r *runner) signIn(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, loginConcurrency)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			resp, err := r.phone(w).Login(rctx, r.cfg.Username, r.cfg.Password)
			if err != nil {
				errs[w] = err
				return
			}
			tokens[w] = resp.AccessToken
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		hint := ""
		switch {
		case client.IsCode(err, api.ErrInvalidCredentials):
			hint = " (start the server with --demo, or pass --username and --password of an existing user)"
		case client.IsCode(err, api.ErrRateLimited):
			hint = " (start the server with " + RateLimitHint + ")"
		}
		return nil, fmt.Errorf("phone sign-in as %q%s: %w", r.cfg.Username, hint, firstError(errs))
	}
	return tokens, nil
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// flowResult is one completed sign-in.
type flowResult struct {
	total  time.Duration // create to tokens held
	notice time.Duration // confirm answered to tokens held
}

// oneFlow runs a whole sign-in as worker w: the desktop creates a session
// and long-polls it while the phone (signed in with access) scans and
// confirms. Failures are counted; ok is false after one.
func (r *runner) oneFlow(ctx context.Context, w int, access string, think time.Duration) (flowResult, bool) {
	start := time.Now()
	desk := r.desktop(w)
	sess, err := r.create(ctx, desk)
	if err != nil {
		r.fail(ctx, "create session", err)
		return flowResult{}, false
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan time.Time, 1)
	go func() { got <- r.await(fctx, desk, sess) }()

	phone := r.phone(w)
	rctx, rcancel := context.WithTimeout(ctx, requestTimeout+3*think)
	defer rcancel()
	pause(rctx, human(think))
	if _, err := phone.Scan(rctx, access, sess.ID); err != nil {
		r.fail(ctx, "scan", err)
		cancel()
		<-got
		return flowResult{}, false
	}
	pause(rctx, human(think))
	_, err = phone.Confirm(rctx, access, sess.ID)
	confirmed := time.Now()
	if err != nil {
		r.fail(ctx, "confirm", err)
		cancel()
		<-got
		return flowResult{}, false
	}
	held := <-got
	if held.IsZero() {
		return flowResult{}, false
	}
	return flowResult{total: held.Sub(start), notice: max(0, held.Sub(confirmed))}, true
}

// human is a think time as a person takes it: uniformly between half and
// one and a half times think, so that pairs started together do not go on
// scanning and confirming in lockstep.
func human(think time.Duration) time.Duration {
	if think <= 0 {
		return 0
	}
	return think/2 + rand.N(think)
}

// maxFlowPolls bounds the polls of one flow's desktop: pending→scanned and
// scanned→confirmed take two answers; the rest is room for waits that run
// out during long think times.
const maxFlowPolls = 8

// await waits on sess until its tokens arrive and returns when the
// desktop held them, or the zero time after a failure (counted).
func (r *runner) await(ctx context.Context, c *client.Client, sess *api.CreateSessionResponse) time.Time {
	if r.cfg.WaitOn == Stream {
		return r.awaitStream(ctx, c, sess)
	}
	after := api.StatusPending
	for range maxFlowPolls {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.Wait+requestTimeout)
		st, err := c.SessionStatus(rctx, sess.ID, sess.PollToken, after, r.cfg.Wait)
		cancel()
		if err != nil {
			r.fail(ctx, "status", err)
			return time.Time{}
		}
		if st.Tokens != nil && st.Tokens.AccessToken != "" {
			return time.Now()
		}
		if st.Status.Final() || st.Status == api.StatusConfirmed {
			r.fail(ctx, "status", fmt.Errorf("session answered %s without tokens", st.Status))
			return time.Time{}
		}
		after = st.Status
	}
	r.fail(ctx, "status", fmt.Errorf("no tokens after %d polls", maxFlowPolls))
	return time.Time{}
}

// awaitStream is await on the session's event stream. A stream that
// ends early is opened again, at most maxFlowPolls times.
func (r *runner) awaitStream(ctx context.Context, c *client.Client, sess *api.CreateSessionResponse) time.Time {
	for range maxFlowPolls {
		es, err := c.Events(ctx, sess.ID, sess.PollToken)
		if err != nil {
			r.fail(ctx, "events", err)
			return time.Time{}
		}
		for {
			st, err := es.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				es.Close()
				r.fail(ctx, "events", err)
				return time.Time{}
			}
			if st.Tokens != nil && st.Tokens.AccessToken != "" {
				es.Close()
				return time.Now()
			}
			if st.Status.Final() || st.Status == api.StatusConfirmed {
				es.Close()
				r.fail(ctx, "events", fmt.Errorf("session reported %s without tokens", st.Status))
				return time.Time{}
			}
		}
		es.Close()
	}
	r.fail(ctx, "events", fmt.Errorf("no tokens after %d streams", maxFlowPolls))
	return time.Time{}
}

func (r *runner) flow(ctx context.Context, res *Result) error {
	r.logf("signing in %d phones as %s", r.cfg.Clients, r.cfg.Username)
	tokens, err := r.signIn(ctx, r.cfg.Clients)
	if err != nil {
		return err
	}
	totals := make([][]time.Duration, r.cfg.Clients)
	notices := make([][]time.Duration, r.cfg.Clients)
	err = r.window(ctx, res, func(stop, ctx context.Context) {
		var wg sync.WaitGroup
		for w := range r.cfg.Clients {
			wg.Go(func() {
				for stop.Err() == nil && r.claim() {
					f, ok := r.oneFlow(ctx, w, tokens[w], r.cfg.Think)
					if !ok {
						pause(stop, errorBackoff)
						continue
					}
					totals[w] = append(totals[w], f.total)
					notices[w] = append(notices[w], f.notice)
				}
			})
		}
		wg.Wait()
	})
	if err != nil {
		return err
	}
	all := merge(totals)
	res.Ops = int64(len(all))
	res.Latency = Summarize(all)
	res.Notice = Summarize(merge(notices))
	return nil
}

// idleStream holds sess's event stream open until ctx ends, opening it
// again (at most tries times) when it ends early. It adds the desktop to
// waiting once the stream is first open, until it returns.
func (r *runner) idleStream(ctx context.Context, c *client.Client, sess *api.CreateSessionResponse, tries int, waiting *atomic.Int64) {
	counted := false
	defer func() {
		if counted {
			waiting.Add(-1)
		}
	}()
	for range tries {
		if ctx.Err() != nil {
			return
		}
		es, err := c.Events(ctx, sess.ID, sess.PollToken)
		if err != nil {
			r.fail(ctx, "events", err)
			pause(ctx, time.Second)
			continue
		}
		if !counted {
			counted = true
			waiting.Add(1)
		}
		for {
			st, err := es.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.fail(ctx, "events", err)
				break
			}
			if st.Status != api.StatusPending {
				es.Close()
				r.fail(ctx, "events", fmt.Errorf("unscanned session reported %s", st.Status))
				return
			}
		}
		es.Close()
	}
}

// rampLimit bounds how long idle may take to get its desktops waiting.
func rampLimit(desktops int) time.Duration {
	return 30*time.Second + time.Duration(desktops)*2*time.Millisecond
}

func (r *runner) idle(ctx context.Context, res *Result) error {
	w := r.cfg.Clients
	// The probe's phone signs in up front, not among the measured work.
	var phone string
	if r.cfg.Probes > 0 {
		tokens, err := r.signIn(ctx, 1)
		if err != nil {
			return err
		}
		phone = tokens[0]
	}
	first, err := r.create(ctx, r.desktop(0))
	if err != nil {
		return fmt.Errorf("create the first session: %w", err)
	}
	ramp := rampLimit(w)
	probing := probeLimit(r.cfg.Probes, r.cfg.ProbeEvery)
	if need := ramp + r.cfg.Duration + probing + r.cfg.Wait; time.Duration(first.ExpiresIn)*time.Second < need {
		return fmt.Errorf("sessions live %ds, but this run may need %v: start the server with --session-ttl of at least %v (up to 1h)",
			first.ExpiresIn, need, need.Round(time.Minute)+time.Minute)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	rampCtx, rampDone := context.WithTimeout(runCtx, ramp)
	defer rampDone()
	maxPolls := int((ramp+r.cfg.Duration+probing)/r.cfg.Wait) + 3
	var waiting atomic.Int64
	sem := make(chan struct{}, r.cfg.RampClients)
	var wg sync.WaitGroup
	r.logf("starting %d waiting desktops", w)
	rampStart := time.Now()
	for i := range w {
		wg.Go(func() {
			c := r.desktop(i)
			sess := first
			if i > 0 {
				select {
				case sem <- struct{}{}:
				case <-rampCtx.Done():
					return
				}
				s, err := r.create(rampCtx, c)
				<-sem
				if err != nil {
					r.fail(rampCtx, "create session", err)
					return
				}
				sess = s
			}
			if r.cfg.WaitOn == Stream {
				r.idleStream(runCtx, c, sess, maxPolls, &waiting)
				return
			}
			// A long-poll desktop waits from its first poll on.
			waiting.Add(1)
			defer waiting.Add(-1)
			for range maxPolls {
				if runCtx.Err() != nil {
					return
				}
				pctx, cancel := context.WithTimeout(runCtx, r.cfg.Wait+requestTimeout)
				st, err := c.SessionStatus(pctx, sess.ID, sess.PollToken, api.StatusPending, r.cfg.Wait)
				cancel()
				if err != nil {
					r.fail(runCtx, "status", err)
					pause(runCtx, time.Second)
					continue
				}
				if st.Status != api.StatusPending {
					r.fail(runCtx, "status", fmt.Errorf("unscanned session answered %s", st.Status))
					return
				}
			}
		})
	}
	// Bounded by the ramp limit: every 50 ms until all desktops wait.
	for rampCtx.Err() == nil && waiting.Load() < int64(w) {
		pause(rampCtx, 50*time.Millisecond)
	}
	pause(runCtx, settle)
	res.Ops = waiting.Load()
	r.logf("%d of %d desktops waiting after %v; measuring for %v", res.Ops, w, time.Since(rampStart).Round(time.Millisecond), r.cfg.Duration)
	if res.Ops < int64(w) {
		res.Notes = append(res.Notes, fmt.Sprintf("only %d of %d desktops were waiting when the window opened", res.Ops, w))
	}

	// The window measures the desktops waiting and nothing else; the
	// probes come after it, with every desktop still waiting, so their
	// sign-ins are not counted as the cost of waiting.
	err = r.window(runCtx, res, func(stop, _ context.Context) { <-stop.Done() })
	if left := waiting.Load(); left < res.Ops {
		res.Notes = append(res.Notes, fmt.Sprintf("%d desktops stopped waiting during the window", res.Ops-left))
	}
	if err == nil && r.cfg.Probes > 0 {
		probeCtx, probed := context.WithTimeout(runCtx, probing)
		res.Notice = Summarize(r.probe(probeCtx, phone))
		probed()
		if res.Notice.N < r.cfg.Probes {
			res.Notes = append(res.Notes, fmt.Sprintf("%d of %d probes completed", res.Notice.N, r.cfg.Probes))
		}
		if left := waiting.Load(); left < res.Ops {
			res.Notes = append(res.Notes, fmt.Sprintf("%d desktops stopped waiting by the end of the probes", res.Ops-left))
		}
	}
	stop()
	wg.Wait()
	return err
}

// probe runs r.cfg.Probes flows, the i-th starting r.cfg.ProbeEvery·i
// after the first (at once, if the one before took longer), and returns
// how soon each confirm was noticed.
func (r *runner) probe(ctx context.Context, access string) []time.Duration {
	var notices []time.Duration
	start := time.Now()
	for i := range r.cfg.Probes {
		pause(ctx, time.Until(start.Add(time.Duration(i)*r.cfg.ProbeEvery)))
		if ctx.Err() != nil {
			break
		}
		if f, ok := r.oneFlow(ctx, 0, access, 0); ok {
			notices = append(notices, f.notice)
		}
	}
	return notices
}

// probeLimit bounds how long n probes every ProbeEvery may take: the
// schedule, and time for the last flow (each takes milliseconds).
func probeLimit(n int, every time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(n)*every + 2*requestTimeout
}
