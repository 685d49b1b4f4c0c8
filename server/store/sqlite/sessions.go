package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// updateSession writes every column but id, and only if the status is
	// still the one read (compare-and-set; the IMMEDIATE transaction already
	// rules out a concurrent writer, this makes the rule visible).
	updateSession = `UPDATE login_sessions SET poll_token_hash = ?, user_code = ?, status = ?,
		device_name = ?, device_platform = ?, device_app_name = ?, device_ip = ?, device_user_agent = ?,
		created_at = ?, expires_at = ?, user_id = ?, user_display_name = ?, scanned_at = ?, ended_at = ?,
		client_id = ?, scope = ?, poll_interval = ?, last_poll_at = ?, confirmed_at = ?
		WHERE id = ? AND status = ?`
)

// sessionArgs are s's columns in the order of insertSession, without id for
// updateSession.
func sessionArgs(s *login.Session) []any {
	return []any{s.PollTokenHash, s.UserCode, string(s.Status),
		s.Device.Name, s.Device.Platform, s.Device.AppName, s.Device.IP, s.Device.UserAgent,
		nanos(s.CreatedAt), nanos(s.ExpiresAt), s.UserID, s.UserDisplayName,
		nanos(s.ScannedAt), nanos(s.EndedAt),
		s.ClientID, s.Scope, int64(s.PollInterval), nanos(s.LastPollAt), nanos(s.ConfirmedAt)}
}

func scanSession(row *sql.Row) (login.Session, error) {
	var s login.Session
	err := row.Scan(&s.ID, &s.PollTokenHash, &s.UserCode, &s.Status,
		&s.Device.Name, &s.Device.Platform, &s.Device.AppName, &s.Device.IP, &s.Device.UserAgent,
		timeDest{&s.CreatedAt}, timeDest{&s.ExpiresAt}, &s.UserID, &s.UserDisplayName,
		timeDest{&s.ScannedAt}, timeDest{&s.EndedAt},
		&s.ClientID, &s.Scope, (*int64)(&s.PollInterval), timeDest{&s.LastPollAt}, timeDest{&s.ConfirmedAt})
	return s, notFound(err)
}

// CreateSession stores a new login session; store.ErrConflict if its id or
// user code is taken.
func (db *DB) CreateSession(ctx context.Context, s login.Session) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.createSession).ExecContext(ctx, append([]any{s.ID}, sessionArgs(&s)...)...)
		return err
	})
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
	s, err := scanSession(db.readSession.QueryRowContext(pointRead(ctx), id))
	if err != nil {
		return login.Session{}, fmt.Errorf("session %q: %w", id, err)
	}
	return s, nil
}

// SessionByUserCode returns the session with that user code, or
// store.ErrNotFound.
func (db *DB) SessionByUserCode(ctx context.Context, code string) (login.Session, error) {
	s, err := scanSession(db.readSessionCode.QueryRowContext(pointRead(ctx), code))
	if err != nil {
		// The code is a short-lived secret; keep it out of error text.
		return login.Session{}, fmt.Errorf("session by user code: %w", err)
	}
	return s, nil
}

// SessionByPollToken returns the session whose poll token (an OAuth
// client's device code) has that hash, or store.ErrNotFound.
func (db *DB) SessionByPollToken(ctx context.Context, hash []byte) (login.Session, error) {
	s, err := scanSession(db.read.QueryRowContext(pointRead(ctx), selectSession+` WHERE poll_token_hash = ?`, hash))
	if err != nil {
		return login.Session{}, fmt.Errorf("session by poll token: %w", err)
	}
	return s, nil
}

// UpdateSession loads the session, calls fn on it and saves the result in
// one transaction. fn's error is returned as it is, with the session as
// loaded, and nothing is saved.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error) {
	var loaded, s login.Session
	var fnErr error
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if loaded, err = scanSession(tx.StmtContext(ctx, db.txSession).QueryRowContext(ctx, id)); err != nil {
			return err
		}
		s = loaded
		s.PollTokenHash = bytes.Clone(loaded.PollTokenHash) // fn may not touch loaded
		if fnErr = fn(&s); fnErr != nil {
			return fnErr
		}
		s.ID = loaded.ID
		return saveSession(ctx, tx, db.txSaveSession, loaded.Status, &s)
	})
	if fnErr != nil {
		return loaded, fnErr
	}
	if err != nil {
		return login.Session{}, fmt.Errorf("update session %q: %w", id, err)
	}
	return s, nil
}

// DeliverSession runs login.Deliver on the session and stores rt and the
// device d for the session's user in the same transaction. login.Deliver's error is returned
// as it is, with the session as loaded.
func (db *DB) DeliverSession(ctx context.Context, id string, d store.Device, rt store.RefreshToken, now time.Time) (login.Session, error) {
	var loaded, s login.Session
	var deliverErr error
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if loaded, err = scanSession(tx.StmtContext(ctx, db.txSession).QueryRowContext(ctx, id)); err != nil {
			return err
		}
		s = loaded
		if deliverErr = login.Deliver(&s, now); deliverErr != nil {
			return deliverErr
		}
		if err := saveSession(ctx, tx, db.txSaveSession, loaded.Status, &s); err != nil {
			return err
		}
		devices.FromSession(&d, s)
		if err := insertDevice(ctx, tx, &d); err != nil {
			return err
		}
		if len(rt.Hash) == 0 {
			return nil // an OAuth client without offline_access
		}
		rt.UserID = s.UserID
		return db.insertRefreshToken(ctx, tx, &rt)
	})
	if deliverErr != nil {
		return loaded, deliverErr
	}
	if err != nil {
		return login.Session{}, fmt.Errorf("deliver session %q: %w", id, err)
	}
	return s, nil
}

// saveSession writes s over the stored row whose status is still old.
func saveSession(ctx context.Context, tx *sql.Tx, update *sql.Stmt, old login.Status, s *login.Session) error {
	res, err := tx.StmtContext(ctx, update).ExecContext(ctx, append(sessionArgs(s), s.ID, string(old))...)
	if isConflict(err) {
		return store.ErrConflict
	}
	if err != nil {
		return err
	}
	if n, err := rowsAffected(res); err != nil {
		return err
	} else if n != 1 {
		return errors.New("session changed during its own transaction")
	}
	return nil
}

// ExpireSessions marks the live sessions whose ExpiresAt is not after now
// as expired, and returns how many it marked. The indexed ended_by column
// (a live session's expires_at) makes this a range scan.
func (db *DB) ExpireSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE login_sessions SET status = 'expired'
		WHERE ended_by <= ? AND status IN ('pending', 'scanned', 'confirmed')`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return n, nil
}

// DeleteEndedSessions removes sessions whose login.Session.EndedBy lies
// before cutoff. The generated, indexed ended_by column makes this a range
// scan over the deleted rows only.
func (db *DB) DeleteEndedSessions(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM login_sessions WHERE ended_by < ?`, nanos(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete ended sessions: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("delete ended sessions: %w", err)
	}
	return n, nil
}
