// Package sqlite is the SQLite backend of store.Store, built on the pure-Go
// driver modernc.org/sqlite.
//
// All writes go through one connection whose transactions begin IMMEDIATE,
// so writers queue in Go instead of failing with "database is locked", and a
// read-modify-write can never deadlock on a lock upgrade. Transactions that
// queue at the same moment share one commit, each in its own savepoint
// (group commit, batch.go). Plain reads use a separate pool of read-only
// connections, which WAL lets run while a write is in progress.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/migration"
)

var _ store.Store = (*DB)(nil)

// Memory is the path that opens a private in-memory database. It has a single
// connection for reads and writes and vanishes on Close; use it for
// throwaway tools and tests, never for a server.
const Memory = ":memory:"

// DB is a SQLite database holding the qrlogin store. It is safe for
// concurrent use.
type DB struct {
	path  string
	write *sql.DB // one connection; every transaction is BEGIN IMMEDIATE
	read  *sql.DB // read-only connections; the same pool as write for Memory

	// Prepared statements for the hot paths: the status long-poll reads a
	// session by id, and every phone action updates one.
	readSession     *sql.Stmt
	readSessionCode *sql.Stmt
	txSession       *sql.Stmt // on write, for use inside transactions
	txSaveSession   *sql.Stmt
	// Every session creation inserts, every phone request and delivery
	// reads its user, every delivery inserts a refresh token: preparing
	// these once saves the parse on each (see docs/PERFORMANCE.md).
	createSession *sql.Stmt // on write
	readUser      *sql.Stmt
	txInsertToken *sql.Stmt // on write, for use inside transactions

	// batch runs the transactions of inTx with group commit (batch.go);
	// nil while migrating.
	batch *batcher
}

// Open opens (creating if needed) the database at path, brings its schema up
// to date and returns it. path is a file name, or Memory.
func Open(ctx context.Context, path string) (*DB, error) {
	db := &DB{path: path}
	if err := db.open(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite database %s: %w", path, err), db.Close())
	}
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	if err := createPrivate(db.path); err != nil {
		return err
	}
	writeDSN, err := dsn(db.path, url.Values{
		// busy_timeout first, so a second process holding the lock makes
		// the journal_mode change wait instead of failing.
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"},
		"_txlock": {"immediate"},
	})
	if err != nil {
		return err
	}
	if db.write, err = sql.Open("sqlite", writeDSN); err != nil {
		return err
	}
	// One writer: SQLite allows only one anyway, and queueing in
	// database/sql is fair and honours contexts, unlike lock retries.
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	if err := db.write.PingContext(ctx); err != nil {
		return err
	}

	if db.path == Memory {
		db.read = db.write
	} else {
		readDSN, err := dsn(db.path, url.Values{
			"_pragma": {"busy_timeout(5000)", "foreign_keys(1)", "query_only(1)"},
		})
		if err != nil {
			return err
		}
		if db.read, err = sql.Open("sqlite", readDSN); err != nil {
			return err
		}
		n := max(4, runtime.GOMAXPROCS(0))
		db.read.SetMaxOpenConns(n)
		db.read.SetMaxIdleConns(n)
	}

	if err := db.migrate(ctx); err != nil {
		return err
	}
	if err := db.prepare(ctx); err != nil {
		return err
	}
	db.batch = newBatcher(db.write)
	return nil
}

// createPrivate creates the database file at path, if it does not exist,
// readable by its owner only: it holds password hashes, signing keys and
// token hashes. SQLite gives the -wal and -shm files it creates beside it
// the same mode.
func createPrivate(path string) error {
	if path == Memory {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return f.Close()
}

// dsn is the driver's connection string for path with params. A file name
// becomes an absolute file: URI so that characters such as '?' or '#' in it
// cannot be taken for URI syntax.
func dsn(path string, params url.Values) (string, error) {
	if path == Memory {
		return "file::memory:?" + params.Encode(), nil
	}
	if path == "" {
		return "", errors.New("empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	if !strings.HasPrefix(u.Path, "/") { // Windows: file:///C:/...
		u.Path = "/" + u.Path
	}
	return u.String(), nil
}

func (db *DB) prepare(ctx context.Context) error {
	var err error
	prep := func(pool *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = pool.PrepareContext(ctx, query)
		return st
	}
	db.readSession = prep(db.read, selectSession+` WHERE id = ?`)
	db.readSessionCode = prep(db.read, selectSession+` WHERE user_code = ?`)
	db.txSession = prep(db.write, selectSession+` WHERE id = ?`)
	db.txSaveSession = prep(db.write, updateSession)
	db.createSession = prep(db.write, insertSession)
	db.readUser = prep(db.read, selectUser+` WHERE id = ?`)
	db.txInsertToken = prep(db.write, insertToken)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Ping reports whether both the read pool and the writer can reach the
// database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the database. Calls after the first do nothing.
func (db *DB) Close() error {
	if db.batch != nil {
		db.batch.close() // later writes fail with errClosed
	}
	var errs []error
	for _, st := range []*sql.Stmt{db.readSession, db.readSessionCode, db.txSession, db.txSaveSession,
		db.createSession, db.readUser, db.txInsertToken} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	db.readSession, db.readSessionCode, db.txSession, db.txSaveSession = nil, nil, nil, nil
	db.createSession, db.readUser, db.txInsertToken = nil, nil, nil
	if db.read != nil && db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	db.read, db.write = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite database %s: %w", db.path, err)
	}
	return nil
}

// inTx runs fn in a write transaction, committing if it returns nil. fn's
// error is returned as it is, so that callers can pass sentinels through.
// fn must run its statements with the ctx it is given: with group commit
// that context is not cancellable, because the driver answers a cancelled
// statement by interrupting the connection, which would roll back the
// whole shared transaction (batch.go).
func (db *DB) inTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if db.batch != nil {
		return db.batch.do(ctx, fn)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Ends the transaction if fn fails or panics; a no-op after Commit.
	// Without it a panic would keep the only write connection forever.
	defer func() { _ = tx.Rollback() }()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Migrations are applied in file-name order; the number before the first
// '_' is the version recorded in schema_migrations.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies every embedded migration the database has not recorded,
// each in its own transaction together with its schema_migrations row.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int64
	if err := db.write.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(ms) > 0 && newest > ms[len(ms)-1].Version {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d)", newest, ms[len(ms)-1].Version)
	}
	for _, m := range ms {
		err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			// Checked inside the IMMEDIATE transaction, so two processes
			// opening the same new file cannot both apply a migration.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.Version, nanos(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// isConflict reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint.
func isConflict(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports whether err is a violated FOREIGN KEY constraint.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// notFound turns sql.ErrNoRows into store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// The range of times that fit in int64 Unix nanoseconds (years 1677–2262).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos is a time.Time query argument: INTEGER Unix nanoseconds, or NULL
// for the zero time.
type nanos time.Time

// Value implements driver.Valuer.
func (t nanos) Value() (driver.Value, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return nil, nil
	}
	if tt.Before(minTime) || tt.After(maxTime) {
		return nil, fmt.Errorf("time %s is outside the storable range", tt.Format(time.RFC3339))
	}
	return tt.UnixNano(), nil
}

// timeDest scans an INTEGER Unix-nanosecond or NULL column into a UTC
// time.Time, NULL being the zero time.
type timeDest struct{ t *time.Time }

// Scan implements sql.Scanner.
func (d timeDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want INTEGER", v)
	}
	return nil
}

// rowsAffected returns how many rows res changed.
func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}

// collect reads every row of a query's result with scan. err is the
// query's; what names the list in errors.
func collect[T any](rows *sql.Rows, err error, what string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// pointRead is ctx, values and all, for a read of one row by its key, but
// not cancelled with it. Such a read takes microseconds, so cancelling it
// gains nothing, while a cancellable context costs database/sql and the
// driver a goroutine and a child context per query, and a held event
// stream's request would keep that child's room for as long as it waits.
// The read still ends by itself: the pool's connections are never held
// for long, and WAL readers do not wait on the writer.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
