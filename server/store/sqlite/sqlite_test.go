package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/server/store/storetest"
	"github.com/qrlogin/qrlogin/shared/api"
)

// openDB opens path and closes it when the test ends.
func openDB(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), path)
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

// newDB opens a fresh database file in a temporary directory.
func newDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return openDB(tb, filepath.Join(tb.TempDir(), "qrlogin.db"))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newDB(t) })
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openDB(t, sqlite.Memory) })
}

// rawDB opens path with the driver directly, to look behind the API.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

type migrationRow struct {
	version   int64
	appliedAt int64
}

func migrationRows(t *testing.T, path string) []migrationRow {
	t.Helper()
	rows, err := rawDB(t, path).QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ms []migrationRow
	for rows.Next() {
		var m migrationRow
		if err := rows.Scan(&m.version, &m.appliedAt); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestReopenKeepsDataAndAppliesMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files found (%v)", err)
	}

	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := time.Date(2026, time.March, 14, 9, 0, 0, 123456789, time.UTC)
	user := store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "h", CreatedAt: now}
	if err := db.CreateUser(t.Context(), user); err != nil {
		t.Fatal(err)
	}
	sess := login.Session{ID: "s1", PollTokenHash: []byte("hash"), UserCode: "BCDFGHJK", Status: login.Pending,
		CreatedAt: now, ExpiresAt: now.Add(2 * time.Minute)}
	if err := db.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	first := migrationRows(t, path)
	if len(first) != len(files) {
		t.Fatalf("schema_migrations has %d rows after the first open, want %d (one per file)", len(first), len(files))
	}

	db = openDB(t, path)
	gotUser, err := db.User(t.Context(), "u1")
	if err != nil || gotUser.Username != "ada" {
		t.Errorf("user after reopen: %+v, %v", gotUser, err)
	}
	gotSess, err := db.Session(t.Context(), "s1")
	if err != nil || gotSess.Status != login.Pending || !gotSess.CreatedAt.Equal(now) {
		t.Errorf("session after reopen: %+v, %v", gotSess, err)
	}
	// Nanoseconds survive: the SQLite backend stores Unix nanoseconds.
	if gotUser.CreatedAt != now {
		t.Errorf("CreatedAt after reopen = %v, want exactly %v", gotUser.CreatedAt, now)
	}
	if second := migrationRows(t, path); fmt.Sprint(second) != fmt.Sprint(first) {
		t.Errorf("schema_migrations changed on reopen:\n got %v\nwant %v", second, first)
	}
	// Each file recorded under the number it starts with (gaps allowed).
	for i, m := range first {
		num, _, _ := strings.Cut(filepath.Base(files[i]), "_")
		if want, _ := strconv.ParseInt(num, 10, 64); m.version != want {
			t.Errorf("migration %s recorded as version %d", files[i], m.version)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a database from a newer program")
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not name the schema version", err)
	}
}

func TestPragmas(t *testing.T) {
	db := newDB(t)
	var mode string
	if err := rawDB(t, db.Path()).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	// foreign_keys is on: a token of an unknown user is refused.
	err := db.CreateRefreshToken(t.Context(), store.RefreshToken{ID: "t1", Hash: []byte("h"), UserID: "nobody",
		FamilyID: "f", Kind: refresh.KindRefresh, AMR: "pwd", AuthTime: time.Now(), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateRefreshToken for an unknown user: %v, want store.ErrNotFound", err)
	}
}

func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd dir?#%", "a b?c#d%20.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at the path given: %v", err)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
}

// TestConcurrentWriters hammers one file from two handles (a server and,
// say, the user CLI) with mixed reads and writes: none may fail with
// "database is locked".
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	dbs := []*sqlite.DB{openDB(t, path), openDB(t, path)}
	now := time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*3)
	for w := range workers {
		db := dbs[w%len(dbs)]
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("s-%d-%d", w, i)
				sess := login.Session{ID: id, PollTokenHash: []byte(id), UserCode: fmt.Sprintf("C%03d%04d", w, i),
					Status: login.Pending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := db.CreateSession(t.Context(), sess); err != nil {
					errs <- err
					continue
				}
				_, err := db.UpdateSession(t.Context(), id, func(s *login.Session) error {
					return login.Scan(s, "u1", "Ada", now.Add(time.Second))
				})
				if err != nil {
					errs <- err
				}
				if _, err := db.Session(t.Context(), id); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range perWorker {
			if _, err := dbs[0].DeleteEndedSessions(t.Context(), now); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestQueryPlans checks that the lookups and sweeps that run against large
// tables are index searches, never full scans.
func TestQueryPlans(t *testing.T) {
	db := newDB(t)
	raw := rawDB(t, db.Path())
	for _, q := range []string{
		`SELECT * FROM login_sessions WHERE id = 'x'`,
		`SELECT * FROM login_sessions WHERE user_code = 'x'`,
		`DELETE FROM login_sessions WHERE ended_by < 5`,
		`SELECT * FROM refresh_tokens WHERE hash = x'00'`,
		`UPDATE refresh_tokens SET revoked_at = 1 WHERE family_id = 'f' AND revoked_at IS NULL`,
		`UPDATE refresh_tokens SET revoked_at = 1 WHERE user_id = 'u' AND revoked_at IS NULL`,
		`DELETE FROM refresh_tokens WHERE expires_at < 5`,
		`SELECT * FROM users WHERE username = 'ada'`,
	} {
		rows, err := raw.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX") || strings.Contains(p, "SCAN") {
			t.Errorf("%s\nplan: %s\nwant an index search", q, p)
		}
	}
}

// The database holds password hashes, signing keys and token hashes: it
// and the -wal and -shm files beside it are readable by their owner only.
func TestFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	db := openDB(t, path)
	// A write makes sure the WAL and its index exist.
	if err := db.CreateUser(t.Context(), store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "h", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("stat %s: %v", f, err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), mode)
		}
	}
}

// Migration 0002 turns the "phone-" family prefix into a kind, and gives
// each family its first sign-in time.
func TestMigrateTokenKinds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, q := range []string{
		string(schema),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, 0)`,
		`INSERT INTO users VALUES ('u1', 'ada', 'Ada', 'h', 0)`,
		`INSERT INTO refresh_tokens VALUES ('t1', x'01', 'u1', 'f1', 100, 9000, 200, NULL)`,
		`INSERT INTO refresh_tokens VALUES ('t2', x'02', 'u1', 'f1', 200, 9000, NULL, NULL)`,
		`INSERT INTO refresh_tokens VALUES ('p1', x'03', 'u1', 'phone-x', 300, 9000, NULL, NULL)`,
	} {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	db := openDB(t, path)
	for _, tt := range []struct {
		hash byte
		kind refresh.Kind
		amr  string
		auth int64
	}{{1, refresh.KindRefresh, "qr", 100}, {2, refresh.KindRefresh, "qr", 100}, {3, refresh.KindPhone, "pwd", 300}} {
		rt, err := db.RefreshToken(t.Context(), []byte{tt.hash})
		if err != nil {
			t.Fatal(err)
		}
		if rt.Kind != tt.kind || rt.AMR != tt.amr || rt.AuthTime.UnixNano() != tt.auth {
			t.Errorf("token %s after migration: kind %q amr %q auth time %d, want %q %q %d",
				rt.ID, rt.Kind, rt.AMR, rt.AuthTime.UnixNano(), tt.kind, tt.amr, tt.auth)
		}
	}
	if u, err := db.User(t.Context(), "u1"); err != nil || !u.TokensValidAfter.IsZero() {
		t.Errorf("user after migration: %+v, %v", u, err)
	}
}

// Migration 0004 gives every live refresh family and phone cookie a
// device, of the kind its sign-in was; ended families get none.
func TestMigrateDevices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrlogin.db")
	raw := rawDB(t, path)
	if _, err := raw.ExecContext(t.Context(), `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"0001_init.sql", "0002_token_kinds.sql", "0003_oauth.sql"} {
		schema, err := os.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(t.Context(), string(schema)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.ExecContext(t.Context(), `INSERT INTO schema_migrations VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	const cols = `(id, hash, user_id, family_id, created_at, expires_at, used_at, revoked_at, kind, amr, auth_time, client_id)`
	for _, q := range []string{
		`INSERT INTO users VALUES ('u1', 'ada', 'Ada', 'h', 0, NULL)`,
		`INSERT INTO oauth_clients VALUES ('cli', 'Editor', NULL, 0)`,
		// A desktop's chain: rotated once.
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('t1', x'01', 'u1', 'desk', 100, 5000, 200, NULL, 'refresh', 'qr', 100, '')`,
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('t2', x'02', 'u1', 'desk', 200, 9000, NULL, NULL, 'refresh', 'qr', 100, '')`,
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('p1', x'03', 'u1', 'phone-x', 300, 9300, NULL, NULL, 'phone', 'pwd', 300, '')`,
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('a1', x'04', 'u1', 'api', 400, 9400, NULL, NULL, 'refresh', 'pwd', 400, '')`,
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('c1', x'05', 'u1', 'app', 500, 9500, NULL, NULL, 'refresh', 'qr', 500, 'cli')`,
		`INSERT INTO refresh_tokens ` + cols + ` VALUES ('r1', x'06', 'u1', 'gone', 600, 9600, NULL, 700, 'refresh', 'qr', 600, '')`,
	} {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db := openDB(t, path)
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
		if d.UserID != "u1" || d.Kind != tt.kind || d.AppName != tt.app || d.CreatedAt.UnixNano() != tt.created ||
			d.ExpiresAt.UnixNano() != tt.expire || d.Ended() {
			t.Errorf("device %s after migration: %+v, want kind %s app %q created %d expires %d", tt.id, d, tt.kind, tt.app, tt.created, tt.expire)
		}
	}
	if _, err := db.Device(t.Context(), "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revoked family got a device: %v", err)
	}
}
