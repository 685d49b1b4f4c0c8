package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store/postgres"
	"github.com/qrlogin/qrlogin/server/store/postgres/pgtest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// One throwaway PostgreSQL (if $QRLOGIN_TEST_POSTGRES names none) serves
// this package's tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// A woken long-poll answers within milliseconds; one that was not woken
// answers when its wait (30 s) runs out. Anything under this bound was a
// wake-up. It is no performance figure (those are in docs/PERFORMANCE.md).
const wokenWithin = 15 * time.Second

// instance is one of several servers sharing a database.
type instance struct {
	*apptest.Server
	// appName is its connections' application_name in pg_stat_activity.
	appName string
}

// startInstances starts n servers on 127.0.0.1 that share one fresh
// PostgreSQL schema, as n qrlogin-server processes behind a load balancer
// would.
func startInstances(t *testing.T, n int) []instance {
	t.Helper()
	base := pgtest.NewURL(t)
	var tag [4]byte
	rand.Read(tag[:])
	var out []instance
	for i := range n {
		name := "qrlogin-test-" + hex.EncodeToString(tag[:]) + "-" + string(rune('a'+i))
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		cfg := apptest.Config(t.TempDir())
		cfg.DB = u.String()
		out = append(out, instance{Server: apptest.StartConfig(t, cfg), appName: name})
	}
	return out
}

// waitForWaiters waits until the servers hold n waits between them.
func waitForWaiters(t *testing.T, n int, servers ...instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, s := range servers {
			got += s.App.Waiters()
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers hold %d waits after 10s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// poll is the outcome of a long-poll.
type poll struct {
	resp *api.SessionStatusResponse
	err  error
	at   time.Time
}

// longPoll starts a status long-poll (after, up to 30 s) in the background.
func longPoll(ctx context.Context, c *client.Client, sess *api.CreateSessionResponse, after api.Status) <-chan poll {
	ch := make(chan poll, 1)
	go func() {
		resp, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, after, api.MaxWait*time.Second)
		ch <- poll{resp, err, time.Now()}
	}()
	return ch
}

// awaitWake waits for a long-poll that an action at acted should have
// woken, and fails unless it answered want well before its wait ran out.
func awaitWake(t *testing.T, ch <-chan poll, acted time.Time, want api.Status) *api.SessionStatusResponse {
	t.Helper()
	var p poll
	select {
	case p = <-ch:
	case <-time.After(40 * time.Second):
		t.Fatal("the long-poll did not answer within 40s")
	}
	if p.err != nil {
		t.Fatalf("long-poll: %v", p.err)
	}
	if p.resp.Status != want {
		t.Fatalf("long-poll answered %s, want %s", p.resp.Status, want)
	}
	if d := p.at.Sub(acted); d > wokenWithin {
		t.Fatalf("long-poll answered %v after the change: it ran out its wait instead of being woken", d)
	} else {
		t.Logf("woken %v after the change on the other server", d.Round(time.Microsecond))
	}
	return p.resp
}

func TestMultiInstanceWakeUps(t *testing.T) {
	servers := startInstances(t, 2)
	a, b := servers[0], servers[1]
	a.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The phone signs in on B: the user created through A is there.
	phone := b.Client()
	access := b.Login(t, "alice", "alice-password-1")

	// The desktop talks to A only.
	desk := a.Client()
	sess, err := desk.CreateSession(ctx, api.CreateSessionRequest{DeviceName: "Alice's laptop"})
	if err != nil {
		t.Fatal(err)
	}
	waiting := longPoll(ctx, desk, sess, api.StatusPending)
	waitForWaiters(t, 1, a)
	if _, err := phone.Scan(ctx, access, sess.ID); err != nil {
		t.Fatal(err)
	}
	got := awaitWake(t, waiting, time.Now(), api.StatusScanned)
	if got.ScannedBy == nil || got.ScannedBy.DisplayName != "Alice Chen" {
		t.Errorf("scanned_by = %+v, want Alice Chen", got.ScannedBy)
	}

	waiting = longPoll(ctx, desk, sess, api.StatusScanned)
	waitForWaiters(t, 1, a)
	if _, err := phone.Confirm(ctx, access, sess.ID); err != nil {
		t.Fatal(err)
	}
	got = awaitWake(t, waiting, time.Now(), api.StatusConfirmed)
	if got.Tokens == nil || got.User == nil || got.User.Username != "alice" {
		t.Fatalf("confirmed answer without tokens for alice: %+v", got)
	}

	// The tokens A issued work on both servers: the signing keys, the
	// refresh tokens and the JWKS are shared.
	for _, s := range servers {
		if me, err := s.Client().Me(ctx, got.Tokens.AccessToken); err != nil || me.Username != "alice" {
			t.Errorf("%s: GET /me with A's access token: %+v, %v", s.appName, me, err)
		}
	}
	refreshed, err := b.Client().Refresh(ctx, got.Tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh A's token on B: %v", err)
	}
	if _, err := a.Client().Me(ctx, refreshed.AccessToken); err != nil {
		t.Errorf("B's access token on A: %v", err)
	}
	if _, err := a.Client().Refresh(ctx, got.Tokens.RefreshToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("reusing the rotated refresh token on A: %v, want unauthorized", err)
	}
	// The reuse ended the sign-in: its access tokens are refused at once,
	// on every server.
	for _, s := range servers {
		if _, err := s.Client().Me(ctx, refreshed.AccessToken); !client.IsCode(err, api.ErrUnauthorized) {
			t.Errorf("%s: the access token of a sign-in ended for reuse: %v, want unauthorized", s.appName, err)
		}
	}
	if ja, jb := jwks(t, a.URL), jwks(t, b.URL); !reflect.DeepEqual(ja, jb) || len(ja.Keys) != 1 {
		t.Errorf("JWKS differ or have not one key:\nA: %+v\nB: %+v", ja, jb)
	}
}

func TestMultiInstanceSingleDelivery(t *testing.T) {
	servers := startInstances(t, 2)
	a, b := servers[0], servers[1]
	a.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	phone := b.Client()
	access := b.Login(t, "alice", "alice-password-1")

	sess, err := a.Client().CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Scan(ctx, access, sess.ID); err != nil {
		t.Fatal(err)
	}

	// Each server holds one wait of the session (one per session is all
	// a server holds): a stream on A, a long-poll on B. The confirm lands
	// on B; at the same moment 18 more requests (a desktop's retries, or
	// a stolen poll token) arrive at both.
	es, err := a.Client().Events(ctx, sess.ID, sess.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if st, err := es.Next(); err != nil || st.Status != api.StatusScanned {
		t.Fatalf("first event %+v, %v", st, err)
	}
	streamed := make(chan poll, 1)
	go func() {
		resp, err := es.Next()
		streamed <- poll{resp, err, time.Now()}
	}()
	const n = 20
	polls := []<-chan poll{streamed, longPoll(ctx, b.Client(), sess, api.StatusScanned)}
	waitForWaiters(t, 2, a, b)
	if _, err := phone.Confirm(ctx, access, sess.ID); err != nil {
		t.Fatal(err)
	}
	acted := time.Now()
	for i := 2; i < n; i++ {
		polls = append(polls, longPoll(ctx, servers[i%2].Client(), sess, api.StatusScanned))
	}

	withTokens, consumed := 0, 0
	for i, ch := range polls {
		var p poll
		select {
		case p = <-ch:
		case <-time.After(40 * time.Second):
			t.Fatalf("wait %d did not answer within 40s", i)
		}
		switch {
		case p.err == nil && p.resp.Status == api.StatusConfirmed && p.resp.Tokens != nil:
			withTokens++
		case client.IsCode(p.err, api.ErrConsumed):
			consumed++
		default:
			t.Errorf("wait %d (server %s): %+v, %v; want tokens or 410 consumed", i, servers[i%2].appName, p.resp, p.err)
		}
		if d := p.at.Sub(acted); d > wokenWithin {
			t.Errorf("wait %d answered %v after the confirm: not woken", i, d)
		}
	}
	if withTokens != 1 || consumed != n-1 {
		t.Errorf("%d waits got tokens and %d were told consumed; want exactly 1 and %d", withTokens, consumed, n-1)
	}
}

func TestMultiInstanceListenerReconnects(t *testing.T) {
	servers := startInstances(t, 2)
	a, b := servers[0], servers[1]
	a.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	phone := b.Client()
	access := b.Login(t, "alice", "alice-password-1")
	desk := a.Client()
	listener := a.appName + postgres.ListenerAppName

	for round := range 3 {
		sess, err := desk.CreateSession(ctx, api.CreateSessionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := phone.Scan(ctx, access, sess.ID); err != nil {
			t.Fatal(err)
		}
		waitForListener(t, listener)
		waiting := longPoll(ctx, desk, sess, api.StatusScanned)
		waitForWaiters(t, 1, a)

		// A's LISTEN connection dies; the confirm follows at once, most
		// likely before A has reconnected, so its notification is lost and
		// only the re-check after reconnecting can wake the desktop.
		if killed := pgtest.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, listener); killed != 1 {
			t.Fatalf("round %d: terminated %d listener connections of A, want 1", round, killed)
		}
		if _, err := phone.Confirm(ctx, access, sess.ID); err != nil {
			t.Fatal(err)
		}
		got := awaitWake(t, waiting, time.Now(), api.StatusConfirmed)
		if got.Tokens == nil {
			t.Fatalf("round %d: confirmed without tokens", round)
		}
	}
}

// waitForListener waits until a connection with that application_name is
// listening.
func waitForListener(t *testing.T, appName string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pgtest.Exec(t, `SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, appName) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no connection %q after 10s", appName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jwks(t *testing.T, base string) auth.JWKS {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out auth.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Several servers starting at once on an empty database: the migrations
// run once, demo accounts are created once, and although each server may
// create a signing key, every token verifies everywhere and the JWKS agree
// after a key reload.
func TestMultiInstanceStartTogether(t *testing.T) {
	base := pgtest.NewURL(t)
	const n = 3
	apps := make([]*app.App, n)
	errs := make([]error, n)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	var wg sync.WaitGroup
	for i := range n {
		cfg := apptest.Config(t.TempDir())
		cfg.DB = base
		cfg.Demo = true
		cfg.KeyReload = 20 * time.Millisecond
		wg.Go(func() { apps[i], errs[i] = app.New(t.Context(), cfg, log) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var serving sync.WaitGroup
	t.Cleanup(func() { stop(); serving.Wait() })
	for _, a := range apps {
		serving.Go(func() {
			if err := a.Serve(ctx); err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}

	// Whichever server signed a token, every other verifies it.
	for i, a := range apps {
		login, err := client.New(a.URL()).Login(ctx, "bob", "bob-demo")
		if err != nil {
			t.Fatalf("server %d: demo login: %v", i, err)
		}
		for j, o := range apps {
			if _, err := client.New(o.URL()).Me(ctx, login.AccessToken); err != nil {
				t.Errorf("token from server %d on server %d: %v", i, j, err)
			}
		}
	}
	if got, err := apps[0].Store().CountUsers(ctx); err != nil || got != 2 {
		t.Errorf("CountUsers = %d, %v; want the 2 demo users once", got, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, same := jwks(t, apps[0].URL()), true
		for _, a := range apps[1:] {
			same = same && reflect.DeepEqual(jwks(t, a.URL()), first)
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the servers' JWKS still differ 10s after starting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
