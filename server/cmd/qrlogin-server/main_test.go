package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// server is a qrlogin-server started through run, as the binary would be.
type server struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startServer runs "qrlogin-server serve" on 127.0.0.1 with a free port
// and returns once it prints its address.
func startServer(t *testing.T, db string, extra ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--log-level", "warn"}, extra...)
	s := &server{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, strings.NewReader(""), pw, t.Output())
		pw.Close()
		s.done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "qrlogin server listening on "); ok {
				lines <- addr
			}
		}
		close(lines)
	}()
	select {
	case addr, ok := <-lines:
		if !ok {
			t.Fatalf("server exited before listening: %v", <-s.done)
		}
		s.url = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	<-s.done
}

func TestEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "qrlogin.db")
	srv := startServer(t, db, "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	desktop := client.New(srv.url)
	phone := client.New(srv.url)

	if err := desktop.Health(ctx); err != nil {
		t.Fatal(err)
	}
	sess, err := desktop.CreateSession(ctx, api.CreateSessionRequest{DeviceName: "Test PC", Platform: "linux/amd64", AppName: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sess.VerifyURL, srv.url+"/m/") {
		t.Fatalf("verify_url %s does not point at %s", sess.VerifyURL, srv.url)
	}
	login, err := phone.Login(ctx, "alice", "alice-demo")
	if err != nil {
		t.Fatal(err)
	}

	// The desktop waits; the phone scans; the wait ends with "scanned".
	type result struct {
		st  *api.SessionStatusResponse
		err error
	}
	waitFor := func(after api.Status) chan result {
		ch := make(chan result, 1)
		go func() {
			st, err := desktop.SessionStatus(ctx, sess.ID, sess.PollToken, after, 30*time.Second)
			ch <- result{st, err}
		}()
		return ch
	}
	scanned := waitFor(api.StatusPending)
	info, err := phone.Scan(ctx, login.AccessToken, sess.ID)
	if err != nil || info.Device.Name != "Test PC" {
		t.Fatalf("scan: %v %+v", err, info)
	}
	r := <-scanned
	if r.err != nil || r.st.Status != api.StatusScanned || r.st.ScannedBy.DisplayName != "Alice Chen" {
		t.Fatalf("desktop saw %+v, %v", r.st, r.err)
	}

	confirmed := waitFor(api.StatusScanned)
	if _, err := phone.Confirm(ctx, login.AccessToken, sess.ID); err != nil {
		t.Fatal(err)
	}
	r = <-confirmed
	if r.err != nil || r.st.Tokens == nil || r.st.User.Username != "alice" {
		t.Fatalf("desktop got %+v, %v", r.st, r.err)
	}
	if _, err := desktop.SessionStatus(ctx, sess.ID, sess.PollToken, "", 0); !client.IsCode(err, api.ErrConsumed) {
		t.Fatalf("second delivery: %v, want consumed", err)
	}
	me, err := desktop.Me(ctx, r.st.Tokens.AccessToken)
	if err != nil || me.Username != "alice" {
		t.Fatalf("me: %+v %v", me, err)
	}
	refreshed, err := desktop.Refresh(ctx, r.st.Tokens.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := desktop.Logout(ctx, refreshed.AccessToken, refreshed.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := desktop.Refresh(ctx, refreshed.RefreshToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Fatalf("refresh after logout: %v", err)
	}
}

func TestRestartKeepsUsersSessionsAndKeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "qrlogin.db")
	srv := startServer(t, db, "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := client.New(srv.url)
	sess, err := c.CreateSession(ctx, api.CreateSessionRequest{DeviceName: "Before restart"})
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Login(ctx, "bob", "bob-demo")
	if err != nil {
		t.Fatal(err)
	}

	// A long-poll held during shutdown answers with the current status.
	held := make(chan error, 1)
	go func() {
		st, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, api.StatusPending, 30*time.Second)
		if err == nil && st.Status != api.StatusPending {
			t.Errorf("held poll answered %s", st.Status)
		}
		held <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the poll reach the server; correctness does not depend on it
	srv.stop()
	if err := <-held; err != nil {
		t.Fatalf("held long-poll on shutdown: %v", err)
	}

	srv = startServer(t, db, "--demo")
	c = client.New(srv.url)
	if _, err := c.Me(ctx, login.AccessToken); err != nil {
		t.Fatalf("access token from before the restart: %v (signing key not kept?)", err)
	}
	st, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, "", 0)
	if err != nil || st.Status != api.StatusPending {
		t.Fatalf("session after restart: %+v %v", st, err)
	}
	info, err := c.Scan(ctx, login.AccessToken, sess.ID)
	if err != nil || info.Device.Name != "Before restart" {
		t.Fatalf("scan after restart: %+v %v", info, err)
	}
}

func TestUserCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "users.db")
	cli := func(stdin string, args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), args, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	if _, err := cli("s3cret-password\n", "user", "add", "--db", db, "--username", "carol", "--display-name", "Carol Ng", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"duplicate", "another-password\n", []string{"user", "add", "--db", db, "--username", "carol", "--password-stdin"}, "taken"},
		{"bad username", "another-password\n", []string{"user", "add", "--db", db, "--username", "a b", "--password-stdin"}, "username"},
		{"short password", "short\n", []string{"user", "add", "--db", db, "--username", "dave", "--password-stdin"}, "password"},
		{"no password", "", []string{"user", "add", "--db", db, "--username", "dave", "--password-stdin"}, "no password"},
		{"not a terminal", "", []string{"user", "add", "--db", db, "--username", "dave"}, "--password-stdin"},
		{"no username", "", []string{"user", "delete", "--db", db}, "--username"},
		{"unknown user", "", []string{"user", "delete", "--db", db, "--username", "zed"}, "not found"},
		{"unknown sub", "", []string{"user", "frob", "--db", db}, "unknown"},
		{"unknown command", "", []string{"frob"}, "unknown command"},
		{"bad serve flags", "", []string{"serve", "--addr", "nope", "--session-ttl", "-1s", "--trusted-proxies", "x.y", "--db", db}, "session-ttl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cli(tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	out, err := cli("", "user", "list", "--db", db)
	if err != nil || !strings.Contains(out, "carol") || !strings.Contains(out, "Carol Ng") {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, err := cli("new-password-1\r\n", "user", "passwd", "--db", db, "--username", "carol", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	// The new password works against a running server; the old one does not.
	srv := startServer(t, db)
	c := client.New(srv.url)
	ctx := context.Background()
	if _, err := c.Login(ctx, "carol", "new-password-1"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := c.Login(ctx, "carol", "s3cret-password"); !client.IsCode(err, api.ErrInvalidCredentials) {
		t.Fatalf("login with the old password: %v", err)
	}
	srv.stop()
	if _, err := cli("", "user", "delete", "--db", db, "--username", "carol"); err != nil {
		t.Fatal(err)
	}
	out, _ = cli("", "user", "list", "--db", db)
	if strings.Contains(out, "carol") {
		t.Fatalf("carol still listed: %q", out)
	}
}

func TestVersionAndEnv(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--version"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "qrlogin-server") {
		t.Fatalf("--version: %q %v", out.String(), err)
	}
	db := filepath.Join(t.TempDir(), "env.db")
	t.Setenv("QRLOGIN_DB", db)
	t.Setenv("QRLOGIN_PUBLIC_URL", "https://login.example.test")
	srv := startServer(t, filepath.Join(t.TempDir(), "flag-wins.db"))
	// Flags win over the environment: --db was given, so QRLOGIN_DB is
	// ignored, but QRLOGIN_PUBLIC_URL applies.
	sess, err := client.New(srv.url).CreateSession(context.Background(), api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sess.VerifyURL, "https://login.example.test/m/") {
		t.Fatalf("verify_url %s: QRLOGIN_PUBLIC_URL not applied", sess.VerifyURL)
	}
}

func TestMaxWaiters(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db"), "--max-waiters", "0"},
		strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max-waiters") {
		t.Fatalf("--max-waiters 0: %v", err)
	}

	t.Setenv("QRLOGIN_MAX_WAITERS", "1")
	srv := startServer(t, filepath.Join(t.TempDir(), "waiters.db"))
	c := client.New(srv.url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	held, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Events(ctx, held.ID, held.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if _, err := es.Next(); err != nil {
		t.Fatal(err)
	}
	other, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SessionStatus(ctx, other.ID, other.PollToken, api.StatusPending, 30*time.Second)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 503 || ce.RetryAfter <= 0 {
		t.Fatalf("a second held wait with QRLOGIN_MAX_WAITERS=1: %v, want 503 with Retry-After", err)
	}
}

// The server's logger names the request on every line logged with a
// request's context, in both formats.
func TestLoggerAddsRequestID(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf strings.Builder
		log, err := newLogger(&buf, format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.InfoContext(requestid.NewContext(context.Background(), "req-7"), "hello")
		if !strings.Contains(buf.String(), "req-7") || !strings.Contains(buf.String(), "request_id") {
			t.Errorf("%s line %q lacks the request id", format, buf.String())
		}
	}
}

// logLines collects what the server logs, for a test to wait for a line.
type logLines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestMetricsAddr(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:18080", "--db", filepath.Join(t.TempDir(), "x.db"),
		"--metrics-addr", "127.0.0.1:18080"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "metrics-addr") {
		t.Fatalf("--metrics-addr equal to --addr: %v", err)
	}

	// Set through the environment like every flag; the server says where.
	t.Setenv("QRLOGIN_METRICS_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logLines{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "m.db"), "--log-format", "json"},
			strings.NewReader(""), io.Discard, logs)
	}()
	var addr string
	for i := 0; addr == ""; i++ {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving metrics" {
				addr = rec.Addr
			}
		}
		if i == 500 {
			cancel()
			t.Fatalf("no \"serving metrics\" line logged: %v\n%s", <-done, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "qrlogin_login_sessions_created_total 0") {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
