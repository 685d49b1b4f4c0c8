package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

const selectUser = `SELECT id, username, display_name, password_hash, created_at, tokens_valid_after FROM users`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, timeDest{&u.CreatedAt},
		timeDest{&u.TokensValidAfter})
	return u, notFound(err)
}

// CreateUser stores u; store.ErrConflict if its username (or id) is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO users (id, username, display_name, password_hash, created_at, tokens_valid_after)
			VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Username, u.DisplayName, u.PasswordHash, ts(u.CreatedAt), ts(u.TokensValidAfter.Truncate(time.Microsecond)))
	if isConflict(err) {
		return fmt.Errorf("create user %q: %w", u.Username, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return nil
}

// User returns the user with that id, or store.ErrNotFound.
func (db *DB) User(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, selectUser+` WHERE id = $1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("user %q: %w", id, err)
	}
	return u, nil
}

// UserByUsername returns the user with that exact username, or
// store.ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, selectUser+` WHERE username = $1`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("user %q: %w", username, err)
	}
	return u, nil
}

// Users returns every user ordered by username (byte order: the column's
// collation is "C").
func (db *DB) Users(ctx context.Context) ([]store.User, error) {
	rows, err := db.pool.Query(ctx, selectUser+` ORDER BY username`)
	return collect(rows, err, "list users", scanUser)
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash and revokes their tokens
// (as RevokeUserTokens), in one transaction.
func (db *DB) SetPassword(ctx context.Context, userID, passwordHash string, now time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, passwordHash, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return revokeAllTokens(ctx, tx, userID, api.ReasonPasswordChanged, now)
	})
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", userID, err)
	}
	return nil
}

// RevokeUserTokens sets the user's tokens_valid_after to now and revokes
// every refresh token and phone cookie of theirs, in one transaction.
func (db *DB) RevokeUserTokens(ctx context.Context, userID string, now time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error { return revokeAllTokens(ctx, tx, userID, api.ReasonLogoutAll, now) })
	if err != nil {
		return fmt.Errorf("revoke tokens of user %q: %w", userID, err)
	}
	return nil
}

// revokeAllTokens is RevokeUserTokens inside tx, ending the devices for
// reason and notifying the user's event streams on every server.
// tokens_valid_after never moves back; timestamptz keeps microseconds, so
// now is truncated to them.
func revokeAllTokens(ctx context.Context, tx pgx.Tx, userID, reason string, now time.Time) error {
	tag, err := tx.Exec(ctx,
		`UPDATE users SET tokens_valid_after = greatest(tokens_valid_after, $1) WHERE id = $2`,
		ts(now.Truncate(time.Microsecond)), userID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	// Devices before tokens, the order every transaction locks them in.
	if _, err = tx.Exec(ctx, endUserDevicesSQL, ts(now), reason, userID); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, revokeUserTokens, ts(now), userID); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, notifyUser, userID)
	return err
}

// CatchUpUser brings the stored user with u's id forward to u by
// account.CatchUp, revoking their tokens if that moves their sign-out
// everywhere, in one transaction.
func (db *DB) CatchUpUser(ctx context.Context, u store.User) (bool, error) {
	changed := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		have, err := scanUser(tx.QueryRow(ctx, selectUser+` WHERE id = $1 FOR UPDATE`, u.ID))
		if err != nil {
			return err
		}
		hash := have.PasswordHash
		var signedOut bool
		changed, signedOut, err = account.CatchUp(&have, u)
		if err != nil {
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
		if !changed {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET display_name = $1, password_hash = $2 WHERE id = $3`,
			have.DisplayName, have.PasswordHash, u.ID); err != nil {
			return err
		}
		if !signedOut {
			return nil
		}
		return revokeAllTokens(ctx, tx, u.ID, account.SignOutReason(hash, have), have.TokensValidAfter)
	})
	if err != nil {
		return false, fmt.Errorf("catch up user %q: %w", u.ID, err)
	}
	return changed, nil
}

// DeleteUser removes a user; their refresh tokens and devices go with
// them (ON DELETE CASCADE), and their event streams on every server are
// notified. Login sessions they scanned are left to expire.
func (db *DB) DeleteUser(ctx context.Context, userID string) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The user, then the devices, then the tokens: the order every
		// transaction locks them in (the cascades' own order is not
		// defined), so a refresh or sign-out racing the delete cannot
		// deadlock with it.
		var id string
		if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE id IN (
			SELECT id FROM devices WHERE user_id = $1 ORDER BY id FOR UPDATE)`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE id IN (
			SELECT id FROM refresh_tokens WHERE user_id = $1 ORDER BY id FOR UPDATE)`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, notifyUser, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", userID, err)
	}
	return nil
}
