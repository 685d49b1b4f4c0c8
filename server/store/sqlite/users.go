package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

const selectUser = `SELECT id, username, display_name, password_hash, created_at, tokens_valid_after FROM users`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, timeDest{&u.CreatedAt},
		timeDest{&u.TokensValidAfter})
	return u, err
}

// CreateUser stores u; store.ErrConflict if its username (or id) is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO users (id, username, display_name, password_hash, created_at, tokens_valid_after)
			VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.DisplayName, u.PasswordHash, nanos(u.CreatedAt), nanos(u.TokensValidAfter.Truncate(time.Microsecond)))
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
	u, err := scanUser(db.readUser.QueryRowContext(pointRead(ctx), id))
	if err != nil {
		return store.User{}, fmt.Errorf("user %q: %w", id, notFound(err))
	}
	return u, nil
}

// UserByUsername returns the user with that exact username, or
// store.ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(db.read.QueryRowContext(pointRead(ctx), selectUser+` WHERE username = ?`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("user %q: %w", username, notFound(err))
	}
	return u, nil
}

// Users returns every user ordered by username (byte order).
func (db *DB) Users(ctx context.Context) ([]store.User, error) {
	rows, err := db.read.QueryContext(ctx, selectUser+` ORDER BY username`)
	return collect(rows, err, "list users", scanUser)
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash and revokes their tokens
// (as RevokeUserTokens), in one transaction.
func (db *DB) SetPassword(ctx context.Context, userID, passwordHash string, now time.Time) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, userID)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return revokeUserTokens(ctx, tx, userID, api.ReasonPasswordChanged, now)
	})
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", userID, err)
	}
	return nil
}

// RevokeUserTokens sets the user's tokens_valid_after to now and revokes
// every refresh token and phone cookie of theirs, in one transaction.
func (db *DB) RevokeUserTokens(ctx context.Context, userID string, now time.Time) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return revokeUserTokens(ctx, tx, userID, api.ReasonLogoutAll, now)
	})
	if err != nil {
		return fmt.Errorf("revoke tokens of user %q: %w", userID, err)
	}
	return nil
}

// revokeUserTokens is RevokeUserTokens inside tx, ending the devices for
// reason. tokens_valid_after is kept to the microsecond, like the
// PostgreSQL backend, so both compare alike; it never moves back.
func revokeUserTokens(ctx context.Context, tx *sql.Tx, userID, reason string, now time.Time) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE users SET tokens_valid_after = max(coalesce(tokens_valid_after, 0), ?) WHERE id = ?`,
		nanos(now.Truncate(time.Microsecond)), userID)
	if err != nil {
		return err
	}
	if n, err := rowsAffected(res); err != nil {
		return err
	} else if n == 0 {
		return store.ErrNotFound
	}
	if _, err = tx.ExecContext(ctx,
		`UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`,
		nanos(now), userID); err != nil {
		return err
	}
	return endUserDevices(ctx, tx, userID, reason, now)
}

// CatchUpUser brings the stored user with u's id forward to u by
// account.CatchUp, revoking their tokens if that moves their sign-out
// everywhere, in one transaction.
func (db *DB) CatchUpUser(ctx context.Context, u store.User) (bool, error) {
	changed := false
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		have, err := scanUser(tx.QueryRowContext(ctx, selectUser+` WHERE id = ?`, u.ID))
		if err != nil {
			return notFound(err)
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
		if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, password_hash = ? WHERE id = ?`,
			have.DisplayName, have.PasswordHash, u.ID); err != nil {
			return err
		}
		if !signedOut {
			return nil
		}
		return revokeUserTokens(ctx, tx, u.ID, account.SignOutReason(hash, have), have.TokensValidAfter)
	})
	if err != nil {
		return false, fmt.Errorf("catch up user %q: %w", u.ID, err)
	}
	return changed, nil
}

// DeleteUser removes a user; their refresh tokens and devices go with
// them (ON DELETE CASCADE). Login sessions they scanned are left to expire.
func (db *DB) DeleteUser(ctx context.Context, userID string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
	if err == nil {
		var n int
		if n, err = rowsAffected(res); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("delete user %q: %w", userID, err)
	}
	return nil
}
