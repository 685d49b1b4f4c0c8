// Package postgres is the PostgreSQL backend of store.Store, built on
// github.com/jackc/pgx/v5. It is what several qrlogin servers behind one
// load balancer share.
//
// Every state change of a login session is a transaction that locks the row
// (SELECT ... FOR UPDATE), so a compare-and-set decides races between
// servers, and that sends pg_notify(Channel, id) before it commits. Listen
// turns those notifications into wake-ups for the long-polls held by this
// server, so a desktop waiting on one server learns within milliseconds of
// a confirm that landed on another.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/migration"
)

var _ store.Store = (*DB)(nil)

// Channel is the LISTEN/NOTIFY channel on which every session change is
// announced; the payload is the session id.
const Channel = "qrlogin_session"

// Advisory lock keys (pg_advisory_xact_lock). Arbitrary constants, fixed
// forever so that every version of the server agrees on them.
const (
	migrateLock int64 = 0x71726c6f67696e01 // "qrlogin" 01: schema migrations
	sweepLock   int64 = 0x71726c6f67696e02 // "qrlogin" 02: the sweeper's deletes
)

// DB is a PostgreSQL database holding the qrlogin store. It is safe for
// concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

// IsURL reports whether dsn names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database at url (postgres://user:pass@host/db?...),
// brings its schema up to date and returns it. Besides libpq's parameters
// the URL takes pgxpool's, e.g. pool_max_conns (default: the larger of 10
// and 4 per CPU). Several servers may open one database at once: the
// migrations run under an advisory lock.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors already hide the password.
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// A long-poll holds no connection while it waits, but every
		// request does a few short queries; pgxpool's default of 4 on a
		// small machine queues them.
		cfg.MaxConns = int32(max(10, 4*runtime.GOMAXPROCS(0)))
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "qrlogin-server"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres database %s@%s/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return db, nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes every connection of the pool. Calls after the first do
// nothing.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil. fn's error
// is returned as it is, so that callers can pass sentinels through; a panic
// in fn rolls back and goes on.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Ends the transaction if fn fails or panics; a no-op after Commit.
	// The rollback must run even when ctx is done, or the connection
	// would go back to the pool mid-transaction.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Migrations are applied in file-name order; the number before the first
// '_' is the version recorded in schema_migrations.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies every embedded migration the database has not recorded.
// It all happens in one transaction that first takes an advisory lock, so
// servers starting at once apply each migration exactly once (the others
// wait, then find it recorded), and a failed migration leaves no trace.
// The tables go to the first schema of the connection's search_path.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("lock for migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    bigint      PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var newest int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if len(ms) > 0 && newest > ms[len(ms)-1].Version {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d)", newest, ms[len(ms)-1].Version)
		}
		for _, m := range ms {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if done {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, m.Version); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// SQLSTATE codes the store maps to its sentinel errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isConflict reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint.
func isConflict(err error) bool { return pgCode(err) == uniqueViolation }

// isForeignKey reports whether err is a violated FOREIGN KEY constraint.
func isForeignKey(err error) bool { return pgCode(err) == foreignKeyViolation }

// notFound turns pgx.ErrNoRows into store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// ts is a time.Time query argument: the time, or NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeDest scans a timestamptz column into a UTC time.Time, NULL being the
// zero time.
type timeDest struct{ t *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (d timeDest) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*d.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("timestamp is infinite")
	default:
		*d.t = v.Time.UTC()
	}
	return nil
}

// collect reads every row of a query's result with scan. err is the
// query's; what names the list in errors.
func collect[T any](rows pgx.Rows, err error, what string, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
