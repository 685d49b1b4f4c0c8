package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/park"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Tests of the parked long-poll through the real router and a real
// http.Server on 127.0.0.1. They measure no time: every wait is bounded
// by bound and fails the test when it runs out.

const bound = 10 * time.Second

// countingStore counts the session reads, to tell a poll answered from
// the kept session from one that read the store.
type countingStore struct {
	store.Store
	sessions atomic.Int64
}

func (s *countingStore) Session(ctx context.Context, id string) (login.Session, error) {
	s.sessions.Add(1)
	return s.Store.Session(ctx, id)
}

// recordingParker parks through the listener and remembers the parked
// connections, so a test can see what the server sees of them.
type recordingParker struct {
	*park.Listener
	mu    sync.Mutex
	conns []*park.Conn
}

func (p *recordingParker) Park(w http.ResponseWriter, r *http.Request) (*park.Conn, error) {
	c, err := p.Listener.Park(w, r)
	if err == nil {
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
	}
	return c, err
}

func (p *recordingParker) last() *park.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[len(p.conns)-1]
}

// parkedEnv is env served by an http.Server on a park.Listener, with the
// listener as the server's Parker.
type parkedEnv struct {
	*env
	ln     *park.Listener
	parker *recordingParker
	hs     *http.Server
	store  *countingStore
	addr   string
	base   string
	client *http.Client
	direct atomic.Int64 // requests the listener served directly
}

func newParkedEnv(t *testing.T, w io.Writer, opts ...envOption) *parkedEnv {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := park.NewListener(inner)
	pe := &parkedEnv{ln: ln, parker: &recordingParker{Listener: ln}, store: &countingStore{}, addr: inner.Addr().String()}
	pe.base = "http://" + pe.addr
	pe.env = newEnvDeps(t, w, func(d *httpapi.Deps) {
		pe.store.Store = d.Store
		d.Store = pe.store
		d.Parker = pe.parker
	}, opts...)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	pe.client = &http.Client{Transport: tr}
	h := pe.srv.Handler()
	ln.ServeDirect(park.Direct{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pe.direct.Add(1)
		h.ServeHTTP(w, r)
	}), Match: httpapi.IsStatusPoll})
	pe.hs = &http.Server{Handler: pe.srv.Handler(), ReadHeaderTimeout: bound}
	served := make(chan error, 1)
	go func() { served <- pe.hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		tr.CloseIdleConnections()
		pe.srv.Shutdown()
		if err := pe.hs.Shutdown(ctx); err != nil {
			t.Errorf("http server shutdown: %v", err)
		}
		// Parked polls use the store until answered; the store closes
		// after this (cleanups run last-in first-out).
		if err := ln.Wait(ctx); err != nil {
			t.Errorf("parked polls: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return pe
}

// answer is a response read over the network.
type answer struct {
	code   int
	close  bool // Connection: close
	header http.Header
	body   []byte
	local  string // the client's end of the connection used
	reused bool   // the connection served an earlier request
}

// get sends GET path with the bearer token (none when empty). It may run
// on any goroutine.
func (pe *parkedEnv) get(path, bearer string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var a answer
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		a.local, a.reused = ci.Conn.LocalAddr().String(), ci.Reused
	}})
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, pe.base+path, nil)
	if err != nil {
		return a, err
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := pe.client.Do(r)
	if err != nil {
		return a, fmt.Errorf("GET %s: %w", strings.SplitN(path, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	a.code, a.close, a.header = resp.StatusCode, resp.Close, resp.Header
	a.body, err = io.ReadAll(resp.Body)
	return a, err
}

// poll is the desktop's status poll of s with query.
func (pe *parkedEnv) poll(t *testing.T, s api.CreateSessionResponse, query string) answer {
	t.Helper()
	a, err := pe.get("/api/v1/login-sessions/"+s.ID+"/status"+query, s.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type result struct {
	a   answer
	err error
}

// goPoll starts a poll on a goroutine of its own.
func (pe *parkedEnv) goPoll(s api.CreateSessionResponse, token, query string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		a, err := pe.get("/api/v1/login-sessions/"+s.ID+"/status"+query, token)
		ch <- result{a, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) answer {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.a
	case <-time.After(bound + time.Second):
		t.Fatal("no answer")
		return answer{}
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

// waitParked waits until n polls are parked and counted as waiting.
func (pe *parkedEnv) waitParked(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d polls are parked", n), func() bool {
		return pe.ln.Parked() == n && pe.srv.Waiting() == n
	})
}

func check(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.code != status {
		t.Fatalf("status %d, want %d; body %s", a.code, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	if code != "" {
		var e api.Error
		if err := json.Unmarshal(a.body, &e); err != nil || e.Code != code || e.Message == "" {
			t.Fatalf("body %s, want error %q with a message", a.body, code)
		}
	}
}

func statusOf(t *testing.T, a answer) api.SessionStatusResponse {
	t.Helper()
	check(t, a, 200, "")
	var st api.SessionStatusResponse
	if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatalf("decode status from %s: %v", a.body, err)
	}
	return st
}

func TestParkedPollWakesAndKeepsConnection(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken

	got := e.goPoll(s, s.PollToken, "?after=pending&wait=30")
	e.waitParked(t, 1)
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	first := await(t, got)
	if st := statusOf(t, first); st.Status != api.StatusScanned || st.ScannedBy == nil || st.ScannedBy.DisplayName != "Alice" {
		t.Fatalf("woke with %s", first.body)
	}
	if first.close || first.header.Get("Cache-Control") != "no-store" || first.header.Get("X-Request-ID") == "" {
		t.Fatalf("parked answer lost its headers or its connection: close=%v %v", first.close, first.header)
	}

	// The next poll goes over the same connection, and parks again. (A
	// connection counts as parked until just after its answer is sent.)
	e.waitParked(t, 0)
	got = e.goPoll(s, s.PollToken, "?after=scanned&wait=30")
	e.waitParked(t, 1)
	expect(t, e.phone("cancel", s.ID, alice), 200, "")
	next := await(t, got)
	if !next.reused || next.local != first.local {
		t.Fatalf("next poll on %s (reused %v), want the connection %s again", next.local, next.reused, first.local)
	}
	if n := e.direct.Load(); n != 1 {
		t.Errorf("%d polls served on the answered connection directly, want the second one", n)
	}
	if st := statusOf(t, next); st.Status != api.StatusCancelled {
		t.Fatalf("after cancel: %s", next.body)
	}
}

func TestParkedPollTimeoutKeepsSession(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken

	if st := statusOf(t, e.poll(t, s, "?after=pending&wait=1")); st.Status != api.StatusPending {
		t.Fatalf("wait ran out with %s", st.Status)
	}
	reads := e.store.sessions.Load()
	if reads != 1 {
		t.Fatalf("%d session reads for one poll, want 1", reads)
	}
	if n := e.srv.Waiting(); n != 0 {
		t.Fatalf("Waiting() = %d with no poll parked", n)
	}
	e.waitParked(t, 0)

	// The desktop's next poll is answered from the kept session.
	got := e.goPoll(s, s.PollToken, "?after=pending&wait=1")
	e.waitParked(t, 1)
	if st := statusOf(t, await(t, got)); st.Status != api.StatusPending {
		t.Fatalf("second poll: %s", st.Status)
	}
	if n := e.store.sessions.Load(); n != reads {
		t.Fatalf("second poll read the store (%d reads, want %d)", n, reads)
	}
	if n := e.srv.Waiting(); n != 0 {
		t.Fatalf("Waiting() = %d with no poll parked", n)
	}

	// A change drops the kept session: the next poll reads it anew.
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	st := statusOf(t, e.poll(t, s, "?after=pending&wait=30"))
	if st.Status != api.StatusScanned || st.ScannedBy == nil || st.ScannedBy.DisplayName != "Alice" {
		t.Fatalf("after scan: %+v", st)
	}
	if n := e.store.sessions.Load(); n != reads+1 {
		t.Fatalf("%d session reads after the scan, want %d", n, reads+1)
	}
}

func TestParkedPollWrongTokenAfterCache(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	s := e.create()
	other := e.create()
	for _, tt := range []struct{ name, token string }{
		{"another session's token", other.PollToken},
		{"the session id", s.ID},
		{"missing", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Cache the session: a poll whose wait runs out.
			if st := statusOf(t, e.poll(t, s, "?after=pending&wait=1")); st.Status != api.StatusPending {
				t.Fatalf("status %s", st.Status)
			}
			a, err := e.get("/api/v1/login-sessions/"+s.ID+"/status?after=pending&wait=30", tt.token)
			if err != nil {
				t.Fatal(err)
			}
			check(t, a, 401, api.ErrUnauthorized)
			if strings.Contains(string(a.body), `"status"`) {
				t.Fatalf("401 carries a status: %s", a.body)
			}
			// The right token still works, and the kept session was
			// dropped: it is read from the store.
			reads := e.store.sessions.Load()
			if st := statusOf(t, e.poll(t, s, "?after=scanned&wait=30")); st.Status != api.StatusPending {
				t.Fatalf("right token after a wrong one: %s", st.Status)
			}
			if n := e.store.sessions.Load(); n != reads+1 {
				t.Fatalf("%d session reads, want %d: the kept session outlived a wrong token", n, reads+1)
			}
		})
	}
}

func TestParkedPollConfirm(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	alice := e.login("alice", alicePass).AccessToken

	s := e.create()
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	got := e.goPoll(s, s.PollToken, "?after=scanned&wait=30")
	e.waitParked(t, 1)
	expect(t, e.phone("confirm", s.ID, alice), 200, "")
	st := statusOf(t, await(t, got))
	if st.Status != api.StatusConfirmed || st.Tokens == nil || st.Tokens.AccessToken == "" || st.Tokens.RefreshToken == "" || st.User == nil || st.User.Username != "alice" {
		t.Fatalf("confirmed while parked: %+v", st)
	}
	check(t, e.poll(t, s, "?after=scanned&wait=30"), 410, api.ErrConsumed)
	check(t, e.poll(t, s, ""), 410, api.ErrConsumed)
	e.waitParked(t, 0)

	// Many parked polls of one session: exactly one gets the tokens.
	s = e.create()
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	const polls = 20
	results := make([]<-chan result, polls)
	for i := range results {
		results[i] = e.goPoll(s, s.PollToken, "?after=scanned&wait=30")
	}
	e.waitParked(t, polls)
	expect(t, e.phone("confirm", s.ID, alice), 200, "")
	delivered := 0
	for _, ch := range results {
		a := await(t, ch)
		switch a.code {
		case 200:
			if st := statusOf(t, a); st.Tokens == nil || st.User == nil {
				t.Fatalf("200 without tokens: %s", a.body)
			}
			delivered++
		case 410:
			check(t, a, 410, api.ErrConsumed)
		default:
			t.Fatalf("poll got %d: %s", a.code, a.body)
		}
	}
	if delivered != 1 {
		t.Fatalf("%d polls received tokens, want exactly 1", delivered)
	}
}

// rawPoll sends a status poll of s written by hand and returns the
// connection.
func (pe *parkedEnv) rawPoll(t *testing.T, s api.CreateSessionResponse, query, proto, extra string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", pe.addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	req := "GET /api/v1/login-sessions/" + s.ID + "/status" + query + " " + proto + "\r\n" +
		"Host: " + pe.addr + "\r\nAuthorization: Bearer " + s.PollToken + "\r\n" + extra + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParkedPollClientGone(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	alice := e.login("alice", alicePass).AccessToken
	s := e.create()
	expect(t, e.phone("scan", s.ID, alice), 200, "")

	c := e.rawPoll(t, s, "?after=scanned&wait=30", "HTTP/1.1", "")
	e.waitParked(t, 1)
	pc := e.parker.last()
	if !pc.Alive() {
		t.Fatal("parked connection not alive before the client closed it")
	}
	c.Close()
	waitUntil(t, "the server sees the client has gone", func() bool { return !pc.Alive() })

	expect(t, e.phone("confirm", s.ID, alice), 200, "")
	waitUntil(t, "the parked poll is done", func() bool { return e.ln.Parked() == 0 })

	// The tokens were not written into the closed connection.
	st := statusOf(t, e.poll(t, s, "?after=scanned&wait=30"))
	if st.Status != api.StatusConfirmed || st.Tokens == nil || st.User == nil {
		t.Fatalf("poll after the client went away: %+v", st)
	}
	check(t, e.poll(t, s, ""), 410, api.ErrConsumed)
}

func TestParkedPollShutdown(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	s := e.create()
	got := e.goPoll(s, s.PollToken, "?after=pending&wait=30")
	e.waitParked(t, 1)
	e.srv.Shutdown()
	a := await(t, got)
	if st := statusOf(t, a); st.Status != api.StatusPending {
		t.Fatalf("shutdown answer: %s", a.body)
	}
	if !a.close {
		t.Error("shutdown answer without Connection: close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := e.ln.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Hub().Len(); n != 0 {
		t.Errorf("%d subscriptions left after shutdown: nothing is kept for a next poll", n)
	}
}

func TestParkedPollExpires(t *testing.T) {
	e := newParkedEnv(t, t.Output(), func(c *httpapi.Config, _ *httpapi.Limits, _ *clock) {
		c.SessionTTL = 2 * time.Second
		c.Now = time.Now // the timers are real
	})
	s := e.create()
	got := e.goPoll(s, s.PollToken, "?after=pending&wait=30")
	e.waitParked(t, 1)
	// Answered at expiry, long before the wait of 30 s (await is bounded).
	if st := statusOf(t, await(t, got)); st.Status != api.StatusExpired {
		t.Fatalf("status %s, want expired", st.Status)
	}
}

func TestParkedPollLog(t *testing.T) {
	var buf syncBuffer
	e := newParkedEnv(t, &buf)
	s := e.create()
	phone := e.login("alice", alicePass)
	expect(t, e.phone("scan", s.ID, phone.AccessToken), 200, "")

	got := e.goPoll(s, s.PollToken, "?after=scanned&wait=30")
	e.waitParked(t, 1)
	expect(t, e.phone("confirm", s.ID, phone.AccessToken), 200, "")
	st := statusOf(t, await(t, got))
	if st.Tokens == nil {
		t.Fatal("no tokens")
	}
	const route = "route=/api/v1/login-sessions/:id/status "
	var lines []string
	// The answer is logged just after it is sent.
	waitUntil(t, "the parked poll is logged", func() bool {
		lines = lines[:0]
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, "msg=request ") && strings.Contains(l, route) {
				lines = append(lines, l)
			}
		}
		return len(lines) > 0
	})
	if len(lines) != 1 || !strings.Contains(lines[0], " status=200 ") || !strings.Contains(lines[0], " method=GET ") {
		t.Fatalf("want one request line with status=200, got %q", lines)
	}
	log := buf.String()
	for _, secret := range []string{s.PollToken, st.Tokens.AccessToken, st.Tokens.RefreshToken, phone.AccessToken} {
		if strings.Contains(log, secret) {
			t.Fatalf("secret %.8s… in the log", secret)
		}
	}
}

func TestParkedPollConnectionClose(t *testing.T) {
	e := newParkedEnv(t, t.Output())
	alice := e.login("alice", alicePass).AccessToken
	for _, tt := range []struct{ name, proto, extra string }{
		{"HTTP/1.0", "HTTP/1.0", ""},
		{"Connection: close", "HTTP/1.1", "Connection: close\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := e.create()
			c := e.rawPoll(t, s, "?after=pending&wait=30", tt.proto, tt.extra)
			e.waitParked(t, 1)
			expect(t, e.phone("scan", s.ID, alice), 200, "")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			st := statusOf(t, answer{code: resp.StatusCode, header: resp.Header, body: body})
			if st.Status != api.StatusScanned || !resp.Close {
				t.Fatalf("status %s, Connection: close %v; want scanned and close", st.Status, resp.Close)
			}
			if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("connection left open: read %d, %v", n, err)
			}
			e.waitParked(t, 0)
		})
	}
}

// Polls the listener serves on the answered connection go through the
// whole router: answered at once or parked again, each logged once, with
// its client.
func TestDirectPollsLogged(t *testing.T) {
	var buf syncBuffer
	e := newParkedEnv(t, &buf)
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken

	first := e.poll(t, s, "?after=pending&wait=1") // runs out: pending
	if st := statusOf(t, first); st.Status != api.StatusPending {
		t.Fatalf("first poll: %s", st.Status)
	}
	e.waitParked(t, 0)
	got := e.goPoll(s, s.PollToken, "?after=pending&wait=30") // parks again
	e.waitParked(t, 1)
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	second := await(t, got)
	third := e.poll(t, s, "?after=pending&wait=30") // scanned: answered at once
	for i, a := range []answer{second, third} {
		if st := statusOf(t, a); st.Status != api.StatusScanned {
			t.Errorf("poll %d: %s", i+2, st.Status)
		}
		if !a.reused || a.local != first.local {
			t.Errorf("poll %d on %s (reused %v), want %s", i+2, a.local, a.reused, first.local)
		}
		if a.header.Get("X-Request-ID") == "" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("poll %d lost its headers: %v", i+2, a.header)
		}
	}
	if n := e.direct.Load(); n != 2 {
		t.Errorf("%d polls served directly, want 2", n)
	}

	const route = "route=/api/v1/login-sessions/:id/status "
	var lines []string
	waitUntil(t, "three polls logged", func() bool {
		lines = lines[:0]
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, "msg=request ") && strings.Contains(l, route) {
				lines = append(lines, l)
			}
		}
		return len(lines) >= 3
	})
	if len(lines) != 3 {
		t.Fatalf("want 3 request lines, got %q", lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, " status=200 ") || !strings.Contains(l, " client_ip=127.0.0.1 ") {
			t.Errorf("request line %q", l)
		}
	}
	if strings.Contains(buf.String(), s.PollToken) {
		t.Fatal("poll token in the log")
	}
}

func TestIsStatusPoll(t *testing.T) {
	tests := []struct {
		method, target string
		want           bool
	}{
		{"GET", "/api/v1/login-sessions/abc/status?after=pending&wait=30", true},
		{"GET", "/api/v1/login-sessions/abc/status", true},
		{"HEAD", "/api/v1/login-sessions/abc/status", false},
		{"POST", "/api/v1/login-sessions/abc/status", false},
		{"GET", "/api/v1/login-sessions/abc", false},
		{"GET", "/api/v1/login-sessions", false},
		{"POST", "/api/v1/login-sessions", false},
		{"GET", "/api/v1/login-sessions/abc/scan", false},
		{"GET", "/m/status", false},
		{"GET", "/status", false},
	}
	for _, tt := range tests {
		r, err := http.NewRequest(tt.method, "http://x"+tt.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := httpapi.IsStatusPoll(r); got != tt.want {
			t.Errorf("IsStatusPoll(%s %s) = %v, want %v", tt.method, tt.target, got, tt.want)
		}
	}
}
