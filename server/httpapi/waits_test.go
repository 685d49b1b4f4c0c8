package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// Tests of held waits (long-polls and event streams) through the real
// router and a real http.Server on 127.0.0.1. They measure no time: every
// wait is bounded by bound and fails the test when it runs out.

const bound = 10 * time.Second

// panicStore is the store with a switch that makes session reads panic,
// as a bug under a held wait would.
type panicStore struct {
	store.Store
	panicking atomic.Bool
}

func (s *panicStore) Session(ctx context.Context, id string) (login.Session, error) {
	if s.panicking.Load() {
		panic("session read exploded")
	}
	return s.Store.Session(ctx, id)
}

// netEnv is env served over HTTP on 127.0.0.1.
type netEnv struct {
	*env
	hs     *httptest.Server
	store  *panicStore
	client *client.Client
}

// newNetEnv starts the server; hs, when not nil, adjusts the http.Server
// before it starts.
func newNetEnv(t *testing.T, w io.Writer, hs func(*http.Server), opts ...envOption) *netEnv {
	t.Helper()
	ne := &netEnv{store: &panicStore{}}
	ne.env = newEnvDeps(t, w, func(d *httpapi.Deps) {
		ne.store.Store = d.Store
		d.Store = ne.store
	}, opts...)
	ne.hs = httptest.NewUnstartedServer(ne.srv.Handler())
	if hs != nil {
		hs(ne.hs.Config)
	}
	ne.hs.Start()
	ne.client = client.New(ne.hs.URL)
	ne.client.HTTPClient = ne.hs.Client()
	t.Cleanup(func() {
		// Held waits answer first; Close then waits for their requests.
		ne.srv.Shutdown()
		ne.hs.Close()
	})
	return ne
}

// events opens s's event stream with token (none when empty).
func (ne *netEnv) events(t *testing.T, s api.CreateSessionResponse) *client.EventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	es, err := ne.client.Events(ctx, s.ID, s.PollToken)
	if err != nil {
		t.Fatalf("open event stream: %v", err)
	}
	t.Cleanup(func() { es.Close() })
	return es
}

// next reads the stream's next status event.
func next(t *testing.T, es *client.EventStream) api.SessionStatusResponse {
	t.Helper()
	st, err := es.Next()
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	return *st
}

// ended checks that the stream has ended.
func ended(t *testing.T, es *client.EventStream) {
	t.Helper()
	if st, err := es.Next(); err != io.EOF {
		t.Fatalf("after the last event: %+v, %v; want the end of the stream", st, err)
	}
}

type pollResult struct {
	st  *api.SessionStatusResponse
	err error
}

// goPoll long-polls s on a goroutine of its own.
func (ne *netEnv) goPoll(s api.CreateSessionResponse, after api.Status, wait time.Duration) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		st, err := ne.client.SessionStatus(ctx, s.ID, s.PollToken, after, wait)
		ch <- pollResult{st, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan pollResult) (*api.SessionStatusResponse, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-time.After(bound + time.Second):
		t.Fatal("no answer")
		return nil, nil
	}
}

func awaitStatus(t *testing.T, ch <-chan pollResult, want api.Status) {
	t.Helper()
	st, err := await(t, ch)
	if err != nil || st.Status != want {
		t.Fatalf("answer %+v, %v; want %s", st, err, want)
	}
}

// waitUntil polls cond until it holds, failing the test after bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (ne *netEnv) waitHeld(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d waits are held", n), func() bool { return ne.srv.Waiting() == n })
}

func notAnswered(t *testing.T, ch <-chan pollResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered early: %+v, %v", r.st, r.err)
	default:
	}
}

func TestEventsHeadersAndFirstEvent(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	s := e.create()
	r, _ := http.NewRequest("GET", e.hs.URL+"/api/v1/login-sessions/"+s.ID+"/events", nil)
	r.Header.Set("Authorization", "Bearer "+s.PollToken)
	resp, err := e.hs.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-store",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want || resp.StatusCode != 200 {
			t.Errorf("%d %s: %q, want %q", resp.StatusCode, k, got, want)
		}
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 3 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	data, ok := strings.CutPrefix(lines[1], "data:")
	var st api.SessionStatusResponse
	if lines[0] != "event:status\n" || !ok || lines[2] != "\n" || json.Unmarshal([]byte(data), &st) != nil ||
		st.Status != api.StatusPending || !st.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("first event %q", lines)
	}
}

func TestEventsScanConfirm(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken
	es := e.events(t, s)
	if st := next(t, es); st.Status != api.StatusPending || st.ScannedBy != nil || st.Tokens != nil {
		t.Fatalf("first event %+v", st)
	}
	e.waitHeld(t, 1)
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	if st := next(t, es); st.Status != api.StatusScanned || st.ScannedBy == nil || st.ScannedBy.DisplayName != "Alice" || st.Tokens != nil {
		t.Fatalf("after scan %+v", st)
	}
	expect(t, e.phone("confirm", s.ID, alice), 200, "")
	st := next(t, es)
	if st.Status != api.StatusConfirmed || st.Tokens == nil || st.User == nil || st.User.Username != "alice" {
		t.Fatalf("after confirm %+v", st)
	}
	if w := e.do(req{method: "GET", path: "/api/v1/me", bearer: st.Tokens.AccessToken}); w.Code != 200 {
		t.Fatalf("delivered access token: %d %s", w.Code, w.Body)
	}
	ended(t, es)
	e.waitHeld(t, 0)
	// Delivered once: every later request is refused.
	expect(t, e.status(s, ""), 410, api.ErrConsumed)
	if _, err := e.client.Events(context.Background(), s.ID, s.PollToken); !client.IsCode(err, api.ErrConsumed) {
		t.Fatalf("stream after delivery: %v, want 410 consumed", err)
	}
}

func TestEventsCancel(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	alice := e.login("alice", alicePass).AccessToken
	for _, by := range []string{"phone", "desktop"} {
		t.Run(by, func(t *testing.T) {
			s := e.create()
			es := e.events(t, s)
			next(t, es)
			e.waitHeld(t, 1)
			if by == "phone" {
				expect(t, e.phone("scan", s.ID, alice), 200, "")
				if st := next(t, es); st.Status != api.StatusScanned {
					t.Fatalf("after scan %+v", st)
				}
				expect(t, e.phone("cancel", s.ID, alice), 200, "")
			} else {
				expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: s.PollToken}), 200, "")
			}
			if st := next(t, es); st.Status != api.StatusCancelled || st.Tokens != nil {
				t.Fatalf("after cancel %+v", st)
			}
			ended(t, es)
			// Connecting again reports the end at once.
			again := e.events(t, s)
			if st := next(t, again); st.Status != api.StatusCancelled {
				t.Fatalf("reconnected: %+v", st)
			}
			ended(t, again)
			e.waitHeld(t, 0)
		})
	}
}

func TestEventsExpiry(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.Now = time.Now // the stream's expiry timer runs on real time
		c.SessionTTL = 300 * time.Millisecond
	})
	s := e.create()
	es := e.events(t, s)
	if st := next(t, es); st.Status != api.StatusPending {
		t.Fatalf("first event %+v", st)
	}
	if st := next(t, es); st.Status != api.StatusExpired {
		t.Fatalf("at expiry %+v", st)
	}
	ended(t, es)
	e.waitHeld(t, 0)
}

func TestEventsRefusedBeforeAnyEvent(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	s := e.create()
	other := e.create()
	tests := []struct {
		name, id, token string
		status          int
		code            string
	}{
		{"no poll token", s.ID, "", 401, api.ErrUnauthorized},
		{"wrong poll token", s.ID, other.PollToken, 401, api.ErrUnauthorized},
		{"access token", s.ID, e.login("alice", alicePass).AccessToken, 401, api.ErrUnauthorized},
		{"unknown id", strings.Repeat("A", 22), s.PollToken, 404, api.ErrNotFound},
		{"malformed id", "not*an*id", s.PollToken, 404, api.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: "GET", path: "/api/v1/login-sessions/" + tt.id + "/events", bearer: tt.token})
			expect(t, w, tt.status, tt.code)
			if strings.Contains(w.Body.String(), "event:") {
				t.Fatalf("an event before the refusal: %s", w.Body)
			}
		})
	}
	e.waitHeld(t, 0)
}

func TestEventsPing(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.PingInterval = 20 * time.Millisecond
	})
	s := e.create()
	r, _ := http.NewRequest("GET", e.hs.URL+"/api/v1/login-sessions/"+s.ID+"/events", nil)
	r.Header.Set("Authorization", "Bearer "+s.PollToken)
	resp, err := e.hs.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for len(lines) < 9 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// The status event, then pings: comment lines each ending its frame.
	want := []string{"event:status", "data", "", ": ping", "", ": ping", "", ": ping", ""}
	if len(lines) != len(want) || !strings.HasPrefix(lines[1], "data:") {
		t.Fatalf("stream %q", lines)
	}
	lines[1] = "data"
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("stream %q, want %q", lines, want)
		}
	}
}

// The server's read and write timeouts would end held waits; each wait
// lifts them for itself.
func TestWaitsOutliveServerTimeouts(t *testing.T) {
	e := newNetEnv(t, t.Output(), func(hs *http.Server) {
		hs.ReadTimeout, hs.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	}, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.PingInterval = 50 * time.Millisecond
	})
	alice := e.login("alice", alicePass).AccessToken
	streamed, polled := e.create(), e.create()
	es := e.events(t, streamed)
	next(t, es)
	got := e.goPoll(polled, api.StatusPending, 5*time.Second)
	e.waitHeld(t, 2)
	time.Sleep(3 * 200 * time.Millisecond) // past both timeouts
	expect(t, e.phone("scan", streamed.ID, alice), 200, "")
	expect(t, e.phone("scan", polled.ID, alice), 200, "")
	if st := next(t, es); st.Status != api.StatusScanned {
		t.Fatalf("stream after the timeouts: %+v", st)
	}
	awaitStatus(t, got, api.StatusScanned)
}

// A stream and a long-poll arriving after the confirm race for the tokens:
// exactly one gets them. The loser sees consumed: the long-poll as 410, the
// stream as 410 before any event or, when it read the session before the
// delivery, as an error event "consumed".
func TestStreamAndLongPollRaceForTokens(t *testing.T) {
	e := newNetEnv(t, io.Discard, nil)
	alice := e.login("alice", alicePass).AccessToken
	wins := map[string]int{}
	for i := range 100 {
		s := e.create()
		expect(t, e.phone("scan", s.ID, alice), 200, "")
		expect(t, e.phone("confirm", s.ID, alice), 200, "")
		var wg sync.WaitGroup
		var streamTokens, pollTokens bool
		var streamErr, pollErr error
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			es, err := e.client.Events(ctx, s.ID, s.PollToken)
			if err != nil {
				streamErr = err
				return
			}
			defer es.Close()
			st, err := es.Next()
			if err != nil {
				streamErr = err
				return
			}
			if st.Status != api.StatusConfirmed || st.Tokens == nil {
				streamErr = fmt.Errorf("stream event %+v", st)
				return
			}
			streamTokens = true
			if _, err := es.Next(); err != io.EOF {
				streamErr = fmt.Errorf("after the tokens: %v, want the end", err)
			}
		})
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			st, err := e.client.SessionStatus(ctx, s.ID, s.PollToken, api.StatusScanned, 5*time.Second)
			switch {
			case err != nil:
				pollErr = err
			case st.Status != api.StatusConfirmed || st.Tokens == nil:
				pollErr = fmt.Errorf("poll answer %+v", st)
			default:
				pollTokens = true
			}
		})
		wg.Wait()
		switch {
		case streamTokens && !pollTokens && client.IsCode(pollErr, api.ErrConsumed) && streamErr == nil:
			wins["stream"]++
		case pollTokens && !streamTokens && client.IsCode(streamErr, api.ErrConsumed) && pollErr == nil:
			var ce *client.Error
			errors.As(streamErr, &ce)
			if ce.StatusCode != 410 {
				t.Fatalf("round %d: stream lost with %v, want status 410", i, streamErr)
			}
			wins["long-poll"]++
		default:
			t.Fatalf("round %d: stream tokens %v err %v; long-poll tokens %v err %v",
				i, streamTokens, streamErr, pollTokens, pollErr)
		}
	}
	t.Logf("winners: %v", wins)
	e.waitHeld(t, 0)
}

func TestNewerWaitAnswersOlder(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	alice := e.login("alice", alicePass).AccessToken

	t.Run("long-poll then long-poll", func(t *testing.T) {
		s := e.create()
		first := e.goPoll(s, api.StatusPending, 30*time.Second)
		e.waitHeld(t, 1)
		second := e.goPoll(s, api.StatusPending, 30*time.Second)
		awaitStatus(t, first, api.StatusPending) // at once, unchanged
		e.waitHeld(t, 1)
		notAnswered(t, second)
		expect(t, e.phone("scan", s.ID, alice), 200, "")
		awaitStatus(t, second, api.StatusScanned)
		e.waitHeld(t, 0)
	})
	t.Run("stream then long-poll", func(t *testing.T) {
		s := e.create()
		es := e.events(t, s)
		next(t, es)
		e.waitHeld(t, 1)
		poll := e.goPoll(s, api.StatusPending, 30*time.Second)
		ended(t, es) // the older stream ends at once
		e.waitHeld(t, 1)
		notAnswered(t, poll)
		expect(t, e.phone("scan", s.ID, alice), 200, "")
		awaitStatus(t, poll, api.StatusScanned)
	})
	t.Run("long-poll then stream", func(t *testing.T) {
		s := e.create()
		poll := e.goPoll(s, api.StatusPending, 30*time.Second)
		e.waitHeld(t, 1)
		es := e.events(t, s)
		if st := next(t, es); st.Status != api.StatusPending {
			t.Fatalf("first event %+v", st)
		}
		awaitStatus(t, poll, api.StatusPending)
		e.waitHeld(t, 1)
		expect(t, e.phone("scan", s.ID, alice), 200, "")
		if st := next(t, es); st.Status != api.StatusScanned {
			t.Fatalf("after scan %+v", st)
		}
	})
	t.Run("stream then stream", func(t *testing.T) {
		s := e.create()
		old := e.events(t, s)
		next(t, old)
		e.waitHeld(t, 1)
		newer := e.events(t, s)
		next(t, newer)
		ended(t, old)
		e.waitHeld(t, 1)
	})
	t.Run("answerable waits are never held", func(t *testing.T) {
		// Status already past after: both answered at once, neither
		// displaces anything. The earlier subtests' streams, closed as
		// they ended, are let go of first.
		e.waitHeld(t, 0)
		s := e.create()
		expect(t, e.phone("scan", s.ID, alice), 200, "")
		held := e.create()
		es := e.events(t, held)
		next(t, es)
		e.waitHeld(t, 1)
		for range 3 {
			awaitStatus(t, e.goPoll(s, api.StatusPending, 30*time.Second), api.StatusScanned)
		}
		if n := e.srv.Waiting(); n != 1 {
			t.Fatalf("held waits %d, want 1", n)
		}
	})
}

func TestWaiterCap(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.MaxWaiters = 2
	})
	a, b, c := e.create(), e.create(), e.create()
	pa := e.goPoll(a, api.StatusPending, 30*time.Second)
	esb := e.events(t, b)
	next(t, esb)
	e.waitHeld(t, 2)

	// A third session's wait, long-poll or stream, is refused.
	w := e.status(c, "?after=pending&wait=30")
	expect(t, w, 503, api.ErrUnavailable)
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	_, err := e.client.Events(context.Background(), c.ID, c.PollToken)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 503 || ce.Code != api.ErrUnavailable || ce.RetryAfter <= 0 {
		t.Fatalf("stream over the cap: %v", err)
	}
	// What does not wait is still answered.
	expect(t, e.status(c, ""), 200, "")
	// A newer wait of a held session takes its place.
	pa2 := e.goPoll(a, api.StatusPending, 30*time.Second)
	awaitStatus(t, pa, api.StatusPending)
	e.waitHeld(t, 2)
	notAnswered(t, pa2)

	// Once a wait ends, there is room again.
	esb.Close()
	e.waitHeld(t, 1)
	pc := e.goPoll(c, api.StatusPending, 30*time.Second)
	e.waitHeld(t, 2)
	notAnswered(t, pc)
}

func TestPanicInWaitRecovered(t *testing.T) {
	var buf syncBuffer
	e := newNetEnv(t, &buf, nil)
	poll, stream := e.create(), e.create()

	got := e.goPoll(poll, api.StatusPending, 30*time.Second)
	es := e.events(t, stream)
	next(t, es)
	e.waitHeld(t, 2)
	e.store.panicking.Store(true)
	// The wake-up makes both re-read their session: a panic on each.
	e.srv.Hub().Publish(poll.ID)
	e.srv.Hub().Publish(stream.ID)
	_, err := await(t, got)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 500 || ce.Code != api.ErrInternal {
		t.Fatalf("long-poll after a panic: %v, want 500 internal", err)
	}
	// The stream is cut, not ended cleanly as a finished one would be.
	if st, err := es.Next(); err == nil || err == io.EOF {
		t.Fatalf("stream after a panic: %+v, %v; want a broken stream", st, err)
	}
	e.waitHeld(t, 0)
	e.store.panicking.Store(false)

	// The server lives on, and logged both with their request ids.
	expect(t, e.status(poll, ""), 200, "")
	var panics []string
	waitUntil(t, "both panics logged", func() bool {
		panics = panics[:0]
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, "msg=panic ") {
				panics = append(panics, l)
			}
		}
		return len(panics) == 2
	})
	for _, l := range panics {
		if !strings.Contains(l, "request_id=") || strings.Contains(l, "request_id= ") || !strings.Contains(l, "session read exploded") {
			t.Errorf("panic line %q", l)
		}
	}
}

func TestShutdownEndsHeldWaits(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	poll, stream := e.create(), e.create()
	got := e.goPoll(poll, api.StatusPending, 30*time.Second)
	es := e.events(t, stream)
	next(t, es)
	e.waitHeld(t, 2)
	e.srv.Shutdown()
	awaitStatus(t, got, api.StatusPending)
	// The stream sends the current status (unless it had just sent it),
	// then ends.
	for {
		st, err := es.Next()
		if err == io.EOF {
			break
		}
		if err != nil || st.Status != api.StatusPending {
			t.Fatalf("on shutdown %+v, %v", st, err)
		}
	}
	e.waitHeld(t, 0)
	// Waits arriving later are answered at once.
	awaitStatus(t, e.goPoll(poll, api.StatusPending, 30*time.Second), api.StatusPending)
	late := e.events(t, stream)
	next(t, late)
	ended(t, late)
}

func TestClientGoneEndsWait(t *testing.T) {
	var buf syncBuffer
	e := newNetEnv(t, &buf, nil)
	s := e.create()
	ctx, cancel := context.WithCancel(context.Background())
	es, err := e.client.Events(ctx, s.ID, s.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	next(t, es)
	e.waitHeld(t, 1)
	es.Close()
	cancel()
	e.waitHeld(t, 0)
	waitUntil(t, "the stream is logged", func() bool {
		return strings.Contains(buf.String(), "route=/api/v1/login-sessions/:id/events status=499")
	})
	if strings.Contains(buf.String(), s.PollToken) {
		t.Fatal("poll token in the log")
	}
}

// A stream that idled past its last write's deadline still ends cleanly
// when a newer wait takes over: its client reads the end of the stream,
// not a broken connection, and connects again at once.
func TestIdleStreamEndsCleanly(t *testing.T) {
	httpapi.SetStreamWriteTimeouts(t, 50*time.Millisecond, 50*time.Millisecond)
	e := newNetEnv(t, t.Output(), nil)
	s := e.create()
	old := e.events(t, s)
	next(t, old)
	e.waitHeld(t, 1)
	time.Sleep(200 * time.Millisecond) // past the first event's write deadline
	newer := e.events(t, s)
	next(t, newer)
	ended(t, old)
}
