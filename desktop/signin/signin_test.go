package signin_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

const server = "http://desktop.test:8080"

type harness struct {
	t      *testing.T
	ctx    context.Context // of the current flow; its watcher ends with it
	stop   context.CancelFunc
	clock  *testclock.Clock
	srv    *fakeServer
	tokens *tokenstore.Memory
	cfg    signin.Config
	flow   *signin.Flow

	mu     sync.Mutex
	states []signin.State
}

func newHarness(t *testing.T, opts ...func(*signin.Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock(), tokens: &tokenstore.Memory{}}
	h.srv = newFakeServer(h.clock.Now)
	cfg := signin.Config{
		Server: server,
		API:    h.srv,
		Tokens: h.tokens,
		Device: api.CreateSessionRequest{DeviceName: "workstation", Platform: "linux/amd64", AppName: "qrlogin 1.0.0"},
		Now:    h.clock.Now,
		Jitter: func(d time.Duration) time.Duration { return d },
		OnChange: func(s signin.State) {
			h.mu.Lock()
			h.states = append(h.states, s)
			h.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.cfg = cfg
	h.restart()
	t.Cleanup(h.stopFlow)
	return h
}

// restart replaces the flow with a new one on the same server, storage and
// clock, as starting the app again would.
func (h *harness) restart() {
	if h.stop != nil {
		h.stop()
	}
	h.ctx, h.stop = context.WithCancel(context.Background())
	h.flow = signin.New(h.cfg)
}

// stopFlow ends the flow's goroutines, as quitting the app does.
func (h *harness) stopFlow() { h.stop() }

// step runs one Step.
func (h *harness) step() time.Duration {
	h.t.Helper()
	return h.flow.Step(h.ctx)
}

// stepUntil runs Steps until cond holds, for news that arrives from the
// flow's watcher goroutine; at most 10 seconds.
func (h *harness) stepUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; state %+v", what, h.flow.State())
		}
		h.step()
		time.Sleep(2 * time.Millisecond)
	}
}

// until waits for cond, at most 10 seconds.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; state %+v", what, h.flow.State())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle runs Steps until one asks to wait, and returns that wait, or
// until two steps in a row change nothing (the flow is long-polling; the
// fake answers at once), and returns 0.
func (h *harness) settle() time.Duration {
	h.t.Helper()
	quiet := 0
	for range 20 {
		n := h.emitted()
		if d := h.step(); d != 0 {
			return d
		}
		if h.emitted() == n {
			quiet++
		} else {
			quiet = 0
		}
		if quiet == 2 {
			return 0
		}
	}
	h.t.Fatalf("flow did not settle in 20 steps; state %+v", h.flow.State())
	return 0
}

// stepTo runs Steps until the flow reports phase p.
func (h *harness) stepTo(p signin.Phase) signin.State {
	h.t.Helper()
	for range 20 {
		if st := h.flow.State(); st.Phase == p {
			return st
		}
		h.step()
	}
	h.t.Fatalf("flow never reached %q; state %+v", p, h.flow.State())
	return signin.State{}
}

func (h *harness) emitted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.states)
}

func (h *harness) want(p signin.Phase) signin.State {
	h.t.Helper()
	st := h.flow.State()
	if st.Phase != p {
		h.t.Fatalf("phase = %q, want %q (state %+v)", st.Phase, p, st)
	}
	return st
}

// signIn takes a fresh flow through scan and confirm.
func (h *harness) signIn() signin.State {
	h.t.Helper()
	st := h.stepTo(signin.Waiting)
	h.srv.phone(h.t, st.Code.ID, api.StatusScanned, "Alice Example")
	h.step()
	h.srv.phone(h.t, st.Code.ID, api.StatusConfirmed, "")
	h.step()
	return h.want(signin.SignedIn)
}

func TestFirstStartShowsCode(t *testing.T) {
	h := newHarness(t)
	if st := h.flow.State(); st.Phase != signin.Starting || st.Server != server {
		t.Fatalf("initial state = %+v, want starting for %s", st, server)
	}
	if d := h.settle(); d != 2*time.Second {
		t.Fatalf("settle returned %v, want the 2s interval of a server that answers at once", d)
	}
	st := h.want(signin.Waiting)
	if st.Code == nil || st.Code.VerifyURL != "http://phone.test:8080/m/sess1" || st.Code.UserCode != "BCDF-GH01" {
		t.Fatalf("code = %+v", st.Code)
	}
	if want := h.clock.Now().Add(2 * time.Minute); !st.Code.ExpiresAt.Equal(want) {
		t.Errorf("code expires at %v, want %v", st.Code.ExpiresAt, want)
	}
	if st.Problem != nil || st.Account != nil {
		t.Errorf("unexpected problem or account: %+v", st)
	}
}

func TestPhoneActions(t *testing.T) {
	tests := []struct {
		name      string
		phone     []api.Status
		want      signin.Phase
		scannedBy string
		idle      bool // the flow waits for NewCode
	}{
		{name: "scan", phone: []api.Status{api.StatusScanned}, want: signin.Scanned, scannedBy: "Alice Example"},
		{name: "cancel before scan", phone: []api.Status{api.StatusCancelled}, want: signin.Cancelled, idle: true},
		{name: "cancel after scan", phone: []api.Status{api.StatusScanned, api.StatusCancelled}, want: signin.Cancelled, idle: true},
		{name: "confirm", phone: []api.Status{api.StatusScanned, api.StatusConfirmed}, want: signin.SignedIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code := h.stepTo(signin.Waiting).Code
			var d time.Duration
			for _, s := range tt.phone {
				h.srv.phone(t, code.ID, s, "Alice Example")
				d = h.step()
			}
			st := h.want(tt.want)
			if st.ScannedBy != tt.scannedBy {
				t.Errorf("scanned by %q, want %q", st.ScannedBy, tt.scannedBy)
			}
			if tt.idle {
				if d != signin.Idle {
					t.Errorf("step returned %v, want Idle", d)
				}
				if st.Code != nil {
					t.Errorf("a dead code is still offered: %+v", st.Code)
				}
				if d := h.step(); d != signin.Idle || h.srv.Calls("create") != 1 {
					t.Errorf("idle flow did work: step %v, %d creates", d, h.srv.Calls("create"))
				}
				h.flow.NewCode()
				h.settle()
				if st := h.want(signin.Waiting); st.Code.ID == code.ID {
					t.Errorf("NewCode kept the old code %s", code.ID)
				}
			}
		})
	}
}

func TestConfirmSignsInAndSaves(t *testing.T) {
	h := newHarness(t)
	signedInAt := h.clock.Now()
	st := h.signIn()
	a := st.Account
	if a == nil || a.User != alice {
		t.Fatalf("account = %+v", a)
	}
	if !a.SignedInAt.Equal(signedInAt) || a.Device != "workstation (linux/amd64)" {
		t.Errorf("signed in at %v via %q", a.SignedInAt, a.Device)
	}
	if want := signedInAt.Add(15 * time.Minute); !a.AccessExpiresAt.Equal(want) {
		t.Errorf("access expires %v, want %v", a.AccessExpiresAt, want)
	}
	// The next step fetches /me and then waits for the refresh time.
	d := h.step()
	if want := 15 * time.Minute * 3 / 4; d != want {
		t.Errorf("waits %v before refreshing, want %v", d, want)
	}
	if st := h.flow.State(); st.Account.MemberSince.IsZero() {
		t.Errorf("member-since not filled from /me: %+v", st.Account)
	}
	raw, err := h.tokens.Load(server)
	if err != nil {
		t.Fatalf("nothing saved: %v", err)
	}
	var saved map[string]any
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		t.Fatalf("saved sign-in is not JSON: %v", err)
	}
	if saved["refresh_token"] == "" || strings.Contains(raw, "access") {
		t.Errorf("saved = %s: want the refresh token and no access token", raw)
	}
}

func TestExpiredCodesRenewAtMostMaxRenewals(t *testing.T) {
	h := newHarness(t, func(c *signin.Config) { c.MaxRenewals = 2 })
	first := h.stepTo(signin.Waiting).Code.ID
	seen := map[string]bool{first: true}
	for i := range 2 {
		h.clock.Advance(2*time.Minute + time.Second)
		h.settle()
		st := h.want(signin.Waiting)
		if seen[st.Code.ID] {
			t.Fatalf("renewal %d kept code %s", i+1, st.Code.ID)
		}
		seen[st.Code.ID] = true
	}
	h.clock.Advance(2*time.Minute + time.Second)
	if d := h.settle(); d != signin.Idle {
		t.Fatalf("after the limit the flow waits %v, want Idle", d)
	}
	h.want(signin.Expired)
	if got := h.srv.Calls("create"); got != 3 {
		t.Errorf("%d codes created, want 3", got)
	}
	h.flow.NewCode()
	h.settle()
	h.want(signin.Waiting)

	// A scan shows someone is there: the count starts again.
	code := h.flow.State().Code
	h.srv.phone(t, code.ID, api.StatusScanned, "Alice Example")
	h.step()
	for range 2 {
		h.clock.Advance(2*time.Minute + time.Second)
		h.settle()
		h.want(signin.Waiting)
	}
}

// On a server without event streams the flow long-polls.
func TestPollWaitEndsAtExpiry(t *testing.T) {
	var waits []time.Duration
	h := newHarness(t)
	h.srv.noEvents = true
	h.cfg.API = waitRecorder{h.srv, &waits}
	h.restart()
	h.stepTo(signin.Waiting)
	h.step() // no stream: a status check tells an old server from a lost code
	h.step()
	h.clock.Advance(time.Minute + 50*time.Second)
	h.step()
	if len(waits) != 3 || waits[0] != 0 || waits[1] != 30*time.Second || waits[2] != 11*time.Second {
		t.Errorf("long-poll waits = %v, want [0s 30s 11s]", waits)
	}
	if n := h.srv.Calls("events"); n != 1 {
		t.Errorf("asked for the event stream %d times, want once", n)
	}
}

type waitRecorder struct {
	*fakeServer
	waits *[]time.Duration
}

func (w waitRecorder) SessionStatus(ctx context.Context, id, poll string, after api.Status, wait time.Duration) (*api.SessionStatusResponse, error) {
	*w.waits = append(*w.waits, wait)
	return w.fakeServer.SessionStatus(ctx, id, poll, after, wait)
}

func TestBackoffWhileUnreachable(t *testing.T) {
	h := newHarness(t)
	h.srv.SetDown(errNetwork)
	var delays []time.Duration
	for range 7 {
		d := h.step()
		if d == 0 {
			d = h.step() // the restore step moves on without a request
		}
		delays = append(delays, d)
		st := h.want(signin.Starting)
		if st.Problem == nil || st.Problem.Text != "Can't reach the server at "+server {
			t.Fatalf("problem = %+v", st.Problem)
		}
		if !st.Problem.RetryAt.Equal(h.clock.Now().Add(d)) {
			t.Errorf("retry at %v, want now+%v", st.Problem.RetryAt, d)
		}
		// Before the delay is over, a step does nothing.
		calls := h.srv.Calls("create")
		h.clock.Advance(d / 2)
		if got := h.step(); got != d-d/2 {
			t.Errorf("early step waits %v, want %v", got, d-d/2)
		}
		if h.srv.Calls("create") != calls {
			t.Errorf("early step sent a request")
		}
		h.clock.Advance(d - d/2)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !equal(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}

	// Retry skips the wait; success clears the problem.
	h.step()
	h.srv.SetDown(nil)
	h.flow.Retry()
	h.step()
	if st := h.want(signin.Waiting); st.Problem != nil {
		t.Errorf("problem not cleared: %+v", st.Problem)
	}
}

func TestUnreachableWhileWaitingKeepsCode(t *testing.T) {
	h := newHarness(t)
	code := h.stepTo(signin.Waiting).Code
	h.srv.SetDown(errNetwork)
	if d := h.step(); d != time.Second {
		t.Errorf("first retry after %v, want 1s", d)
	}
	st := h.want(signin.Waiting)
	if st.Problem == nil || st.Code == nil || st.Code.ID != code.ID {
		t.Fatalf("state = %+v, want the same code with a problem", st)
	}
	h.srv.SetDown(nil)
	h.srv.phone(t, code.ID, api.StatusScanned, "Alice Example")
	h.clock.Advance(time.Second)
	h.step()
	if st := h.want(signin.Scanned); st.Problem != nil {
		t.Errorf("problem not cleared: %+v", st.Problem)
	}
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		delay time.Duration
		text  string
	}{
		{
			name:  "rate limited uses Retry-After",
			err:   &client.Error{StatusCode: 429, Code: api.ErrRateLimited, Message: "slow down", RetryAfter: 7 * time.Second},
			delay: 7 * time.Second,
			text:  "The server at " + server + " is busy",
		},
		{
			name:  "internal error",
			err:   &client.Error{StatusCode: 500, Code: api.ErrInternal, Message: "internal error"},
			delay: time.Second,
			text:  "The server at " + server + " answered 500: internal error",
		},
		{
			name:  "not a qrlogin server",
			err:   &client.Error{StatusCode: 404, Code: "http_404", Message: strings.Repeat("<html>", 50)},
			delay: time.Second,
			text:  "The server at " + server + " answered 404",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.createErr = tt.err
			if d := h.settle(); d != tt.delay {
				t.Errorf("retry after %v, want %v", d, tt.delay)
			}
			st := h.want(signin.Starting)
			if st.Problem == nil || st.Problem.Text != tt.text {
				t.Errorf("problem = %+v, want %q", st.Problem, tt.text)
			}
		})
	}
}

func TestLostCodeIsReplaced(t *testing.T) {
	h := newHarness(t)
	code := h.stepTo(signin.Waiting).Code
	// The response carrying the tokens got lost: the server now answers
	// 410 consumed, and this code can never sign in.
	h.srv.phone(t, code.ID, api.StatusConfirmed, "")
	h.srv.mu.Lock()
	h.srv.sessions[code.ID].delivered = true
	h.srv.mu.Unlock()
	h.settle()
	st := h.want(signin.Waiting)
	if st.Code.ID == code.ID || st.Notice == "" {
		t.Errorf("state = %+v, want a new code and a notice", st)
	}
}

func TestRestoreSavedSignIn(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.settle()
	saved, _ := h.tokens.Load(server)

	h.restart()
	if h.settle() <= 0 {
		t.Fatalf("restored flow is not waiting to refresh")
	}
	st := h.want(signin.SignedIn)
	if st.Account.User != alice || st.Account.Device != "workstation (linux/amd64)" {
		t.Errorf("account = %+v", st.Account)
	}
	if h.srv.Calls("create") != 1 {
		t.Errorf("a code was created although a saved sign-in works")
	}
	if now, _ := h.tokens.Load(server); now == saved {
		t.Errorf("the rotated refresh token was not saved")
	}
}

func TestRevokedSignInReturnsToCode(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness)
	}{
		{"at start", func(h *harness) { h.restart() }},
		{"at refresh", func(h *harness) {
			h.clock.Advance(15 * time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.signIn()
			h.settle()
			h.srv.RevokeAll()
			tt.run(h)
			h.settle()
			st := h.want(signin.Waiting)
			if !strings.Contains(st.Notice, "ended") {
				t.Errorf("notice = %q, want an explanation", st.Notice)
			}
			if h.tokens.Len() != 0 {
				t.Errorf("the dead sign-in is still saved")
			}
		})
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	d := h.settle()
	before, _ := h.tokens.Load(server)
	h.clock.Advance(d)
	h.settle()
	st := h.want(signin.SignedIn)
	if h.srv.Calls("refresh") != 1 {
		t.Fatalf("%d refreshes, want 1", h.srv.Calls("refresh"))
	}
	if want := h.clock.Now().Add(15 * time.Minute); !st.Account.AccessExpiresAt.Equal(want) {
		t.Errorf("access expires %v, want %v", st.Account.AccessExpiresAt, want)
	}
	if after, _ := h.tokens.Load(server); after == before {
		t.Errorf("rotated refresh token not saved")
	}

	// A network failure at refresh time keeps the user signed in and retries.
	h.srv.SetDown(errNetwork)
	h.clock.Advance(15 * time.Minute * 3 / 4)
	if d := h.step(); d != time.Second {
		t.Errorf("retry after %v, want 1s", d)
	}
	if st := h.want(signin.SignedIn); st.Problem == nil {
		t.Errorf("no problem reported")
	}
	h.srv.SetDown(nil)
	h.clock.Advance(time.Second)
	h.settle()
	if st := h.want(signin.SignedIn); st.Problem != nil || h.srv.Calls("refresh") != 3 {
		t.Errorf("state %+v after %d refreshes", st, h.srv.Calls("refresh"))
	}
}

func TestSignOut(t *testing.T) {
	tests := []struct {
		name   string
		down   bool
		notice string
	}{
		{"revokes on the server", false, "You have signed out."},
		{"server unreachable", true, "Signed out on this computer, but the server could not be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.signIn()
			h.settle()
			raw, _ := h.tokens.Load(server)
			var saved struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.Unmarshal([]byte(raw), &saved); err != nil {
				t.Fatal(err)
			}
			if tt.down {
				h.srv.SetDown(errNetwork)
			}
			h.flow.SignOut()
			h.step()
			st := h.want(signin.Starting)
			if !strings.HasPrefix(st.Notice, tt.notice) || st.Account != nil {
				t.Errorf("state after sign out = %+v", st)
			}
			if h.tokens.Len() != 0 {
				t.Errorf("sign-in still saved")
			}
			h.srv.mu.Lock()
			revoked := !h.srv.refresh[saved.RefreshToken]
			h.srv.mu.Unlock()
			if revoked == tt.down {
				t.Errorf("revoked on server = %v", revoked)
			}
			h.srv.SetDown(nil)
			h.flow.Retry()
			h.settle()
			if st := h.want(signin.Waiting); st.Notice == "" {
				t.Errorf("the sign-out notice is gone from the code screen")
			}
		})
	}
}

func TestRunWithdrawsOnClose(t *testing.T) {
	waiting := make(chan signin.State, 1)
	h := newHarness(t, func(c *signin.Config) {
		c.OnChange = func(s signin.State) {
			if s.Phase == signin.Waiting {
				select {
				case waiting <- s:
				default:
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.flow.Run(ctx)
		close(done)
	}()
	var st signin.State
	select {
	case st = <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("no code within 10s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	if len(h.srv.withdrawn) != 1 || h.srv.withdrawn[0] != st.Code.ID {
		t.Errorf("withdrawn = %v, want [%s]", h.srv.withdrawn, st.Code.ID)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := signin.Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{4, 4 * time.Second},
		{5, 5 * time.Second},
		{100, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestDefaultJitterStaysWithinDelay(t *testing.T) {
	h := newHarness(t, func(c *signin.Config) { c.Jitter = nil })
	h.srv.SetDown(errNetwork)
	for range 20 {
		h.step()
		d := h.step()
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("first retry after %v, want within [0.5s, 1s]", d)
		}
		h.restart()
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWaitsOnEventStream(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	if n := h.srv.Calls("status"); n != 0 {
		t.Errorf("%d status requests; the flow should wait on the event stream", n)
	}
	if n := h.srv.Calls("events"); n == 0 {
		t.Errorf("the event stream was never opened")
	}
}

func TestOldServerIsLongPolled(t *testing.T) {
	h := newHarness(t)
	h.srv.noEvents = true
	h.signIn()
	h.settle()
	// A later code is long-polled at once, without asking for a stream.
	h.flow.SignOut()
	st := h.stepTo(signin.Waiting)
	h.srv.phone(t, st.Code.ID, api.StatusScanned, "Alice Example")
	h.step()
	h.want(signin.Scanned)
	if n := h.srv.Calls("events"); n != 1 {
		t.Errorf("asked for the event stream %d times, want once", n)
	}
	if n := h.srv.Calls("status"); n < 3 {
		t.Errorf("%d status requests; want the long-poll", n)
	}
}

// A 404 for the stream of a session the server no longer has is a lost
// code, not an old server.
func TestStreamOfLostSession(t *testing.T) {
	h := newHarness(t)
	code := h.stepTo(signin.Waiting).Code
	h.srv.mu.Lock()
	delete(h.srv.sessions, code.ID)
	h.srv.mu.Unlock()
	h.step() // 404 for the stream and the status: lost
	h.step() // a new code
	st := h.want(signin.Waiting)
	if st.Code.ID == code.ID || st.Notice == "" {
		t.Fatalf("state = %+v, want a new code and a notice", st)
	}
	h.srv.phone(t, st.Code.ID, api.StatusScanned, "Alice Example")
	h.step()
	h.want(signin.Scanned)
	if n := h.srv.Calls("status"); n != 1 {
		t.Errorf("%d status requests, want 1 (telling a lost code from an old server)", n)
	}
}

func TestDroppedStreamReconnects(t *testing.T) {
	t.Run("after a while: at once", func(t *testing.T) {
		h := newHarness(t)
		h.stepTo(signin.Waiting)
		h.srv.dropStream = func() error {
			h.clock.Advance(time.Minute) // the stream was up a minute
			return errNetwork
		}
		if d := h.step(); d != 0 {
			t.Errorf("step after the drop returned %v, want 0 (connect again at once)", d)
		}
		if st := h.want(signin.Waiting); st.Problem != nil {
			t.Errorf("problem shown for a dropped stream: %+v", st.Problem)
		}
		opened := h.srv.Calls("events")
		h.srv.dropStream = nil
		h.step()
		if n := h.srv.Calls("events"); n != opened+1 {
			t.Errorf("stream opened %d times after the drop, want once", n-opened)
		}
	})
	t.Run("at once: backoff", func(t *testing.T) {
		h := newHarness(t)
		h.stepTo(signin.Waiting)
		h.srv.dropStream = func() error { return errNetwork }
		if d := h.step(); d != time.Second {
			t.Errorf("step after the drop returned %v, want the 1s backoff", d)
		}
		if st := h.want(signin.Waiting); st.Problem == nil {
			t.Errorf("no problem shown for a stream that keeps dropping")
		}
	})
	t.Run("ended by the server: once per interval", func(t *testing.T) {
		h := newHarness(t)
		h.stepTo(signin.Waiting)
		if d := h.step(); d != 2*time.Second {
			t.Errorf("step after the stream ended returned %v, want the 2s interval", d)
		}
		if st := h.want(signin.Waiting); st.Problem != nil {
			t.Errorf("problem shown: %+v", st.Problem)
		}
	})
}
