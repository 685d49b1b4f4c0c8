package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
)

const (
	selectSession = `SELECT id, poll_token_hash, user_code, status,
		device_name, device_platform, device_app_name, device_ip, device_user_agent,
		created_at, expires_at, user_id, user_display_name, scanned_at, ended_at,
		client_id, scope, poll_interval, last_poll_at, confirmed_at
		FROM login_sessions`

	insertSession = `INSERT INTO login_sessions (id, poll_token_hash, user_code, status,
		device_name, device_platform, device_app_name, device_ip, device_user_agent,
		created_at, expires_at, user_id, user_display_name, scanned_at, ended_at,
		client_id, scope, poll_interval, last_poll_at, confirmed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`

	// lockSession reads a session and locks its row until the transaction
	// ends: a concurrent change on any server waits, then reads the
	// result, so the state machine always runs on the latest state.
	lockSession = selectSession + ` WHERE id = $1 FOR UPDATE`

	// saveSession writes every column but id, only if the status is still
	// the one read (compare-and-set; the row lock already rules out a
	// concurrent writer, this makes the rule visible).
	saveSession = `UPDATE login_sessions SET poll_token_hash = $2, user_code = $3, status = $4,
		device_name = $5, device_platform = $6, device_app_name = $7, device_ip = $8, device_user_agent = $9,
		created_at = $10, expires_at = $11, user_id = $12, user_display_name = $13, scanned_at = $14, ended_at = $15,
		client_id = $16, scope = $17, poll_interval = $18, last_poll_at = $19, confirmed_at = $20
		WHERE id = $1 AND status = $21`

	// notifySession announces a change to Listen, in a transaction of its
	// own that follows the change's COMMIT in the same pipeline. Not inside
	// the change's transaction: PostgreSQL serialises the commits of
	// notifying transactions under one lock, which would then be held
	// across each change's WAL flush. This transaction writes nothing worth
	// a flush, so its commit does not wait for one, and the lock is brief.
	notifySession = `SELECT set_config('synchronous_commit', 'off', true), pg_notify('` + Channel + `', $1)`
)

// sessionArgs are s's columns in the order of insertSession.
func sessionArgs(s *login.Session) []any {
	return []any{s.ID, s.PollTokenHash, s.UserCode, string(s.Status),
		s.Device.Name, s.Device.Platform, s.Device.AppName, s.Device.IP, s.Device.UserAgent,
		ts(s.CreatedAt), ts(s.ExpiresAt), s.UserID, s.UserDisplayName,
		ts(s.ScannedAt), ts(s.EndedAt),
		s.ClientID, s.Scope, int64(s.PollInterval), ts(s.LastPollAt), ts(s.ConfirmedAt)}
}

func scanSession(row pgx.Row) (login.Session, error) {
	var s login.Session
	var status string
	err := row.Scan(&s.ID, &s.PollTokenHash, &s.UserCode, &status,
		&s.Device.Name, &s.Device.Platform, &s.Device.AppName, &s.Device.IP, &s.Device.UserAgent,
		timeDest{&s.CreatedAt}, timeDest{&s.ExpiresAt}, &s.UserID, &s.UserDisplayName,
		timeDest{&s.ScannedAt}, timeDest{&s.EndedAt},
		&s.ClientID, &s.Scope, (*int64)(&s.PollInterval), timeDest{&s.LastPollAt}, timeDest{&s.ConfirmedAt})
	s.Status = login.Status(status)
	return s, notFound(err)
}

// CreateSession stores a new login session; store.ErrConflict if its id or
// user code is taken.
func (db *DB) CreateSession(ctx context.Context, s login.Session) error {
	_, err := db.pool.Exec(ctx, insertSession, sessionArgs(&s)...)
	if isConflict(err) {
		return fmt.Errorf("create session: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session with that id, or store.ErrNotFound.
func (db *DB) Session(ctx context.Context, id string) (login.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx, selectSession+` WHERE id = $1`, id))
	if err != nil {
		return login.Session{}, fmt.Errorf("session %q: %w", id, err)
	}
	return s, nil
}

// SessionByUserCode returns the session with that user code, or
// store.ErrNotFound.
func (db *DB) SessionByUserCode(ctx context.Context, code string) (login.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx, selectSession+` WHERE user_code = $1`, code))
	if err != nil {
		// The code is a short-lived secret; keep it out of error text.
		return login.Session{}, fmt.Errorf("session by user code: %w", err)
	}
	return s, nil
}

// SessionByPollToken returns the session whose poll token (an OAuth
// client's device code) has that hash, or store.ErrNotFound.
func (db *DB) SessionByPollToken(ctx context.Context, hash []byte) (login.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx, selectSession+` WHERE poll_token_hash = $1`, hash))
	if err != nil {
		return login.Session{}, fmt.Errorf("session by poll token: %w", err)
	}
	return s, nil
}

// UpdateSession locks the session's row, calls fn on it and saves the
// result in one transaction, notifying listeners on commit. fn's error is
// returned as it is, with the session as loaded, and nothing is saved.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error) {
	var s login.Session
	loaded, fnErr, err := db.changeSession(ctx, id, func(loaded login.Session, w *pgx.Batch) error {
		s = loaded
		s.PollTokenHash = bytes.Clone(loaded.PollTokenHash) // fn may not touch loaded
		if err := fn(&s); err != nil {
			return err
		}
		s.ID = loaded.ID
		queueSave(w, loaded.Status, &s)
		return nil
	})
	if fnErr != nil {
		return loaded, fnErr
	}
	if isConflict(err) { // fn gave it a user code that is taken
		err = store.ErrConflict
	}
	if err != nil {
		return login.Session{}, fmt.Errorf("update session %q: %w", id, err)
	}
	return s, nil
}

// DeliverSession runs login.Deliver on the locked session and stores rt
// and the device d for the session's user in the same transaction. login.Deliver's error is
// returned as it is, with the session as loaded.
func (db *DB) DeliverSession(ctx context.Context, id string, d store.Device, rt store.RefreshToken, now time.Time) (login.Session, error) {
	var s login.Session
	loaded, deliverErr, err := db.changeSession(ctx, id, func(loaded login.Session, w *pgx.Batch) error {
		s = loaded
		if err := login.Deliver(&s, now); err != nil {
			return err
		}
		queueSave(w, loaded.Status, &s)
		devices.FromSession(&d, s)
		w.Queue(insertDeviceSQL, deviceArgs(&d)...)
		if len(rt.Hash) == 0 {
			return nil // an OAuth client without offline_access
		}
		rt.UserID = s.UserID
		queueInsertRefreshToken(w, &rt)
		return nil
	})
	if deliverErr != nil {
		return loaded, deliverErr
	}
	if isConflict(err) || isForeignKey(err) {
		err = refreshTokenError(err, &rt)
	}
	if err != nil {
		return login.Session{}, fmt.Errorf("deliver session %q: %w", id, err)
	}
	return s, nil
}

// changeSession is a locked read-modify-write of one session in two round
// trips, which count for more than anything else here: BEGIN and the
// locking read go to the server in one pipeline; then decide queues the
// writes on w, and they go with COMMIT in a second one. If decide returns
// an error (decideErr) or panics, the transaction is rolled back and
// nothing is written. err is every other failure.
func (db *DB) changeSession(ctx context.Context, id string, decide func(loaded login.Session, w *pgx.Batch) error) (loaded login.Session, decideErr, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return loaded, nil, err
	}
	// Release would close a connection left in a transaction rather than
	// pool it; rolling back first keeps it.
	defer conn.Release()
	open := false
	defer func() {
		if open {
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = conn.Exec(rbCtx, "ROLLBACK")
			cancel()
		}
	}()

	read := &pgx.Batch{}
	read.Queue("BEGIN").Exec(func(pgconn.CommandTag) error {
		open = true
		return nil
	})
	read.Queue(lockSession, id).QueryRow(func(row pgx.Row) error {
		var err error
		loaded, err = scanSession(row)
		return err
	})
	if err := conn.SendBatch(ctx, read).Close(); err != nil {
		return login.Session{}, nil, err
	}

	w := &pgx.Batch{}
	if decideErr = decide(loaded, w); decideErr != nil {
		return loaded, decideErr, nil
	}
	committed := false
	w.Queue("COMMIT").Exec(func(pgconn.CommandTag) error {
		open, committed = false, true
		return nil
	})
	// After an error PostgreSQL skips the rest of the pipeline, so the
	// notification goes out only when the change is committed.
	w.Queue("BEGIN")
	w.Queue(notifySession, loaded.ID)
	w.Queue("COMMIT")
	if err := conn.SendBatch(ctx, w).Close(); err != nil && !committed {
		return loaded, nil, err
	}
	// A failed notification (the change is saved) only makes long-polls on
	// other servers notice at the end of their wait; Release drops the
	// connection if it was left inside the notifying transaction.
	return loaded, nil, nil
}

// queueSave queues the write of s over the stored row whose status is
// still old. The row lock makes a mismatch
// impossible; were it to happen the caller gets an error, and COMMIT,
// already on its way, would at worst store a refresh token whose value
// nobody was given.
func queueSave(w *pgx.Batch, old login.Status, s *login.Session) {
	w.Queue(saveSession, append(sessionArgs(s), string(old))...).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return errors.New("session changed during its own transaction")
		}
		return nil
	})
}

// ExpireSessions marks the live sessions whose ExpiresAt is not after now
// as expired, and returns how many it marked. Under the sweep lock like
// the deletes, so each session is marked (and counted) by one server.
func (db *DB) ExpireSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := db.sweep(ctx, `UPDATE login_sessions SET status = 'expired'
		WHERE ended_by <= $1 AND status IN ('pending', 'scanned', 'confirmed')`, now)
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return n, nil
}

// DeleteEndedSessions removes sessions whose login.Session.EndedBy lies
// before cutoff (an index range scan over the deleted rows only). Every
// server's sweeper calls it; an advisory lock makes concurrent sweeps run
// one after the other (the later one finds nothing left to delete) instead
// of contending for the same rows.
func (db *DB) DeleteEndedSessions(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.sweep(ctx, `DELETE FROM login_sessions WHERE ended_by < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("delete ended sessions: %w", err)
	}
	return n, nil
}

// sweep runs one of the sweeper's deletes under the sweep lock.
func (db *DB) sweep(ctx context.Context, query string, cutoff time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sweepLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, query, cutoff)
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}
