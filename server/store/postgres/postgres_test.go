package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres"
	"github.com/qrlogin/qrlogin/server/store/postgres/pgtest"
	"github.com/qrlogin/qrlogin/server/store/storetest"
	"github.com/qrlogin/qrlogin/shared/api"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openDB opens url and closes it when the test ends.
func openDB(tb testing.TB, url string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(tb.Context(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// newDB opens a store in a fresh schema.
func newDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	return openDB(tb, pgtest.NewURL(tb))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newDB(t) })
}

func TestIsURL(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://qrlogin@db.example.com/qrlogin", true},
		{"postgresql://qrlogin@db.example.com:5432/qrlogin?sslmode=verify-full", true},
		{"qrlogin.db", false},
		{"sqlite://qrlogin.db", false},
		{"/var/lib/qrlogin/postgres://odd-but-a-file", false},
	}
	for _, tt := range tests {
		if got := postgres.IsURL(tt.dsn); got != tt.want {
			t.Errorf("IsURL(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
}

// queryInt runs a one-number query on the test server.
func queryInt(t *testing.T, url, sql string, args ...any) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewURL(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), url)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files found (%v)", err)
	}
	if got := queryInt(t, url, `SELECT count(*) FROM schema_migrations`); got != int64(len(files)) {
		t.Errorf("schema_migrations has %d rows, want %d (one per migration)", got, len(files))
	}
	// Opening again applies nothing and keeps the data.
	db := openDB(t, url)
	if err := db.CreateUser(t.Context(), store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db2 := openDB(t, url)
	if n, err := db2.CountUsers(t.Context()); err != nil || n != 1 {
		t.Errorf("CountUsers after reopening = %d, %v; want 1", n, err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	url := pgtest.NewURL(t)
	openDB(t, url)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, now())`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), url)
	if err == nil || !strings.Contains(err.Error(), "newer than this program knows") {
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://qrlogin:hunter2-secret@127.0.0.1:1/qrlogin?connect_timeout=2",
		"postgres://qrlogin:hunter2-secret@127.0.0.1:1/qrlogin?pool_max_conns=zero",
	} {
		_, err := postgres.Open(ctx, url)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", url)
		}
		if strings.Contains(err.Error(), "hunter2-secret") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

func TestSweepFromManyServers(t *testing.T) {
	url := pgtest.NewURL(t)
	dbs := []*postgres.DB{openDB(t, url), openDB(t, url), openDB(t, url)}
	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	const sessions = 60
	for i := range sessions {
		s := login.Session{
			ID: "s" + strings.Repeat("x", i), PollTokenHash: []byte{byte(i)}, UserCode: "CODE" + strings.Repeat("B", i),
			Status: login.Cancelled, CreatedAt: base, ExpiresAt: base.Add(2 * time.Minute), EndedAt: base.Add(time.Second),
		}
		if err := dbs[0].CreateSession(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	// Every server's sweeper fires at once, several times.
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for i := range 3 * len(dbs) {
		wg.Go(func() {
			n, err := dbs[i%len(dbs)].DeleteEndedSessions(t.Context(), base.Add(time.Hour))
			if err != nil {
				t.Errorf("DeleteEndedSessions: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != sessions {
		t.Errorf("the sweeps deleted %d sessions in all, want %d (each exactly once)", total, sessions)
	}
}

// recorder collects the ids Listen reports and counts its (re)connections.
type recorder struct {
	mu        sync.Mutex
	ids       []string
	changed   chan string
	connected chan struct{}
	waiting   []string
}

func newRecorder(waiting ...string) *recorder {
	return &recorder{changed: make(chan string, 100), connected: make(chan struct{}, 10), waiting: waiting}
}

func (r *recorder) onChanged(id string) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
	select {
	case r.changed <- id:
	default:
	}
}

func (r *recorder) onWaiting() []string {
	r.connected <- struct{}{}
	return r.waiting
}

// listen runs db.Listen until the test ends and waits for its first
// connection.
func listen(t *testing.T, db *postgres.DB, r *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.Listen(ctx, nil, r.onChanged, r.onWaiting) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Listen returned %v after its context ended, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Listen did not return within 10s of its context ending")
		}
	})
	waitFor(t, r.connected, "Listen to connect")
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// expectID waits for a notification of id, skipping others' (the channel
// is shared by every schema in the database).
func expectID(t *testing.T, r *recorder, id, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.changed:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("no notification of %s (%s) within 10s", id, what)
		}
	}
}

func newPending(id string, code int, now time.Time) login.Session {
	return login.Session{
		ID: id, PollTokenHash: []byte("poll-" + id), UserCode: strings.Repeat(string(rune('B'+code)), 8),
		Status: login.Pending, CreatedAt: now, ExpiresAt: now.Add(2 * time.Minute),
	}
}

func TestListenSeesChangesFromAnotherServer(t *testing.T) {
	url := pgtest.NewURL(t)
	a, b := openDB(t, url), openDB(t, url)
	r := newRecorder()
	listen(t, a, r)

	ctx := t.Context()
	now := time.Now().UTC()
	for _, s := range []login.Session{newPending("s-scan", 0, now), newPending("s-refused", 1, now), newPending("s-after", 2, now)} {
		if err := b.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CreateUser(ctx, store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "x", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	// A change that fails saves nothing and must announce nothing: the
	// notification is part of the transaction.
	boom := errors.New("boom")
	if _, err := b.UpdateSession(ctx, "s-refused", func(s *login.Session) error {
		s.Status = login.Cancelled
		return boom
	}); err != boom {
		t.Fatalf("UpdateSession: %v, want boom", err)
	}
	steps := []struct {
		id string
		do func() error
	}{
		{"s-scan", func() error {
			_, err := b.UpdateSession(ctx, "s-scan", func(s *login.Session) error { return login.Scan(s, "u1", "Ada", now) })
			return err
		}},
		{"s-scan", func() error {
			_, err := b.UpdateSession(ctx, "s-scan", func(s *login.Session) error { return login.Confirm(s, "u1", now) })
			return err
		}},
		{"s-scan", func() error {
			rt := store.RefreshToken{ID: "t1", Hash: []byte("h1"), FamilyID: "f1", Kind: refresh.KindRefresh, AMR: "qr", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			_, err := b.DeliverSession(ctx, "s-scan", devices.Start(rt, devices.Info{}, ""), rt, now)
			return err
		}},
		{"s-after", func() error {
			_, err := b.UpdateSession(ctx, "s-after", func(s *login.Session) error { return login.Withdraw(s, now) })
			return err
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("change of %s: %v", st.id, err)
		}
		expectID(t, r, st.id, "a committed change")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.ids {
		if id == "s-refused" {
			t.Error("a rolled-back change was announced")
		}
	}
}

func TestListenReconnectsAndRechecksWaiters(t *testing.T) {
	app := "qrlogin-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	url := pgtest.NewURL(t, "application_name", app)
	a := openDB(t, url)
	r := newRecorder("s-held-1", "s-held-2")
	listen(t, a, r)

	// The first connection already re-checks whatever is waiting (a
	// long-poll may have begun before LISTEN took effect).
	expectID(t, r, "s-held-1", "the first connection's re-check")
	expectID(t, r, "s-held-2", "the first connection's re-check")

	for round := range 2 {
		killed := pgtest.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app+postgres.ListenerAppName)
		if killed != 1 {
			t.Fatalf("round %d: terminated %d listener connections, want 1", round, killed)
		}
		waitFor(t, r.connected, "Listen to reconnect")
		expectID(t, r, "s-held-1", "the re-check after reconnecting")
		expectID(t, r, "s-held-2", "the re-check after reconnecting")
	}

	// And it listens again.
	b := openDB(t, url)
	now := time.Now().UTC()
	if err := b.CreateSession(t.Context(), newPending("s-new", 3, now)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateSession(t.Context(), "s-new", func(s *login.Session) error { return login.Withdraw(s, now) }); err != nil {
		t.Fatal(err)
	}
	expectID(t, r, "s-new", "a change after reconnecting")
}

func TestListenSurvivesQuietPeriods(t *testing.T) {
	// Restored after the listener stops (cleanups run last-in first-out).
	t.Cleanup(postgres.SetListenHeartbeat(20 * time.Millisecond))
	url := pgtest.NewURL(t)
	a, b := openDB(t, url), openDB(t, url)
	r := newRecorder()
	listen(t, a, r)
	now := time.Now().UTC()
	if err := b.CreateSession(t.Context(), newPending("s1", 0, now)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // several heartbeats, each a ping
	if _, err := b.UpdateSession(t.Context(), "s1", func(s *login.Session) error { return login.Withdraw(s, now) }); err != nil {
		t.Fatal(err)
	}
	expectID(t, r, "s1", "a change after quiet heartbeats")
	select {
	case <-r.connected:
		t.Error("the listener reconnected during a quiet period; its heartbeat broke the connection")
	default:
	}
}

// Migration 0002 turns the "phone-" family prefix into a kind, and gives
// each family its first sign-in time.
func TestMigrateTokenKinds(t *testing.T) {
	url := pgtest.NewURL(t)
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		string(schema),
		`CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, now())`,
		`INSERT INTO users VALUES ('u1', 'ada', 'Ada', 'h', now())`,
		`INSERT INTO refresh_tokens VALUES ('t1', '\x01', 'u1', 'f1', '2026-03-01T12:00:00Z', now() + interval '1 day', now(), NULL)`,
		`INSERT INTO refresh_tokens VALUES ('t2', '\x02', 'u1', 'f1', '2026-03-01T13:00:00Z', now() + interval '1 day', NULL, NULL)`,
		`INSERT INTO refresh_tokens VALUES ('p1', '\x03', 'u1', 'phone-x', '2026-03-01T14:00:00Z', now() + interval '1 day', NULL, NULL)`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	db := openDB(t, url)
	for _, tt := range []struct {
		hash byte
		kind refresh.Kind
		amr  string
		auth time.Time
	}{{1, refresh.KindRefresh, "qr", t0}, {2, refresh.KindRefresh, "qr", t0}, {3, refresh.KindPhone, "pwd", t0.Add(2 * time.Hour)}} {
		rt, err := db.RefreshToken(t.Context(), []byte{tt.hash})
		if err != nil {
			t.Fatal(err)
		}
		if rt.Kind != tt.kind || rt.AMR != tt.amr || !rt.AuthTime.Equal(tt.auth) {
			t.Errorf("token %s after migration: kind %q amr %q auth time %v, want %q %q %v",
				rt.ID, rt.Kind, rt.AMR, rt.AuthTime, tt.kind, tt.amr, tt.auth)
		}
	}
}

// Migration 0004 gives every live refresh family and phone cookie a
// device, of the kind its sign-in was; ended families get none.
func TestMigrateDevices(t *testing.T) {
	url := pgtest.NewURL(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL)`)
	for i, name := range []string{"0001_init.sql", "0002_token_kinds.sql", "0003_oauth.sql"} {
		schema, err := os.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(schema))
		exec(`INSERT INTO schema_migrations VALUES ($1, now())`, i+1)
	}
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	exec(`INSERT INTO users VALUES ('u1', 'ada', 'Ada', 'h', now(), NULL)`)
	exec(`INSERT INTO oauth_clients VALUES ('cli', 'Editor', NULL, now())`)
	const ins = `INSERT INTO refresh_tokens (id, hash, user_id, family_id, created_at, expires_at, used_at, revoked_at, kind, amr, auth_time, client_id)
		VALUES ($1, $2, 'u1', $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	var null *time.Time
	exec(ins, "t1", []byte{1}, "desk", at(100), at(5000), at(200), null, "refresh", "qr", at(100), "")
	exec(ins, "t2", []byte{2}, "desk", at(200), at(9000), null, null, "refresh", "qr", at(100), "")
	exec(ins, "p1", []byte{3}, "phone-x", at(300), at(9300), null, null, "phone", "pwd", at(300), "")
	exec(ins, "a1", []byte{4}, "api", at(400), at(9400), null, null, "refresh", "pwd", at(400), "")
	exec(ins, "c1", []byte{5}, "app", at(500), at(9500), null, null, "refresh", "qr", at(500), "cli")
	exec(ins, "r1", []byte{6}, "gone", at(600), at(9600), null, at(700), "refresh", "qr", at(600), "")

	db := openDB(t, url)
	for _, tt := range []struct {
		id, kind, app   string
		created, expire int64
	}{
		{"desk", api.DeviceDesktop, "", 100, 9000},
		{"phone-x", api.DevicePhone, "", 300, 9300},
		{"api", api.DevicePhone, "", 400, 9400},
		{"app", api.DeviceApp, "Editor", 500, 9500},
	} {
		d, err := db.Device(t.Context(), tt.id)
		if err != nil {
			t.Errorf("device %s after migration: %v", tt.id, err)
			continue
		}
		if d.UserID != "u1" || d.Kind != tt.kind || d.AppName != tt.app || d.CreatedAt.Unix() != tt.created ||
			d.ExpiresAt.Unix() != tt.expire || d.Ended() {
			t.Errorf("device %s after migration: %+v, want kind %s app %q created %d expires %d", tt.id, d, tt.kind, tt.app, tt.created, tt.expire)
		}
	}
	if _, err := db.Device(t.Context(), "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revoked family got a device: %v", err)
	}
}

// Every transaction that ends a user's sign-ins announces "user:<id>", so
// the account event streams held by other servers wake.
func TestListenSeesEndedSignIns(t *testing.T) {
	url := pgtest.NewURL(t)
	a, b := openDB(t, url), openDB(t, url)
	r := newRecorder()
	listen(t, a, r)
	ctx := t.Context()
	now := time.Now().UTC()
	for _, id := range []string{"u1", "u2", "u3", "u4", "u5"} {
		if err := b.CreateUser(ctx, store.User{ID: id, Username: id, DisplayName: id, PasswordHash: "x", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(userID, family string) store.RefreshToken {
		rt := store.RefreshToken{ID: "t-" + family, Hash: []byte("h-" + family), UserID: userID, FamilyID: family,
			Kind: refresh.KindRefresh, AMR: "qr", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := b.CreateDevice(ctx, devices.Start(rt, devices.Info{}, ""), rt); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	signIn("u1", "f1")
	rt2 := signIn("u2", "f2")
	signIn("u3", "f3")

	steps := []struct {
		key string
		do  func() error
	}{
		{devices.EventKey("u1"), func() error { _, err := b.EndDevice(ctx, "u1", "f1", api.ReasonSignedOut, now); return err }},
		{"user:u2", func() error {
			_, err := b.UpdateRefreshToken(ctx, rt2.Hash, func(rt *store.RefreshToken) (*store.RefreshToken, error) {
				refresh.Revoke(rt, now)
				return nil, nil
			})
			return err
		}},
		{"user:u3", func() error { return b.RevokeUserTokens(ctx, "u3", now) }},
		{"user:u4", func() error { return b.SetPassword(ctx, "u4", "y", now) }},
		{"user:u5", func() error { return b.DeleteUser(ctx, "u5") }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("change for %s: %v", st.key, err)
		}
		expectID(t, r, st.key, "a committed end of sign-ins")
	}
}
