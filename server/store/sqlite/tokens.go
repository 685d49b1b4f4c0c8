package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/store"
)

const selectRefreshToken = `SELECT id, hash, user_id, family_id, kind, amr, auth_time,
	created_at, expires_at, used_at, revoked_at, client_id, scope
	FROM refresh_tokens`

func scanRefreshToken(row interface{ Scan(...any) error }) (store.RefreshToken, error) {
	var rt store.RefreshToken
	err := row.Scan(&rt.ID, &rt.Hash, &rt.UserID, &rt.FamilyID, &rt.Kind, &rt.AMR, timeDest{&rt.AuthTime},
		timeDest{&rt.CreatedAt}, timeDest{&rt.ExpiresAt}, timeDest{&rt.UsedAt}, timeDest{&rt.RevokedAt}, &rt.ClientID, &rt.Scope)
	return rt, notFound(err)
}

const insertToken = `INSERT INTO refresh_tokens
		(id, hash, user_id, family_id, kind, amr, auth_time, created_at, expires_at, used_at, revoked_at, client_id, scope)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertRefreshToken stores rt in tx. A taken id or hash is
// store.ErrConflict; an unknown user is store.ErrNotFound.
func (db *DB) insertRefreshToken(ctx context.Context, tx *sql.Tx, rt *store.RefreshToken) error {
	_, err := tx.StmtContext(ctx, db.txInsertToken).ExecContext(ctx,
		rt.ID, rt.Hash, rt.UserID, rt.FamilyID, string(rt.Kind), rt.AMR, nanos(rt.AuthTime),
		nanos(rt.CreatedAt), nanos(rt.ExpiresAt), nanos(rt.UsedAt), nanos(rt.RevokedAt), rt.ClientID, rt.Scope)
	switch {
	case isConflict(err):
		return fmt.Errorf("store refresh token: %w", store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("store refresh token: user %q: %w", rt.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

// CreateRefreshToken stores rt; store.ErrConflict if its id or hash is
// taken, store.ErrNotFound if its user does not exist.
func (db *DB) CreateRefreshToken(ctx context.Context, rt store.RefreshToken) error {
	return db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return db.insertRefreshToken(ctx, tx, &rt) })
}

// RefreshToken returns the token with that hash in whatever state, or
// store.ErrNotFound.
func (db *DB) RefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	rt, err := scanRefreshToken(db.read.QueryRowContext(pointRead(ctx), selectRefreshToken+` WHERE hash = ?`, hash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token: %w", err)
	}
	return rt, nil
}

// UpdateRefreshToken loads the token with hash, runs fn on it and saves
// the result in one transaction (see store.Store). The write transaction is
// IMMEDIATE, so two servers presenting one token are serialised: the
// second finds it used.
func (db *DB) UpdateRefreshToken(ctx context.Context, hash []byte, fn func(*store.RefreshToken) (*store.RefreshToken, error)) (store.RefreshToken, error) {
	var loaded, saved store.RefreshToken
	var fnErr error
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rt, err := scanRefreshToken(tx.QueryRowContext(ctx, selectRefreshToken+` WHERE hash = ?`, hash))
		if err != nil {
			return err
		}
		loaded = rt
		next, err := fn(&rt)
		if err != nil {
			if fnErr = err; !errors.Is(err, store.ErrTokenReused) {
				return err
			}
			next = nil // reuse never issues a token
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ?, revoked_at = ? WHERE id = ?`,
			nanos(rt.UsedAt), nanos(rt.RevokedAt), rt.ID); err != nil {
			return err
		}
		if !rt.RevokedAt.IsZero() {
			if err := revokeFamily(ctx, tx, rt.FamilyID, rt.RevokedAt); err != nil {
				return err
			}
			reason := devices.RevokeReason(fnErr != nil)
			if err := updateFamilyDevice(ctx, tx, rt.FamilyID, func(d *store.Device) { devices.End(d, reason, rt.RevokedAt) }); err != nil {
				return err
			}
		}
		if next != nil {
			if err := db.insertRefreshToken(ctx, tx, next); err != nil {
				return err
			}
			if err := updateFamilyDevice(ctx, tx, next.FamilyID, func(d *store.Device) { devices.Rotated(d, *next) }); err != nil {
				return err
			}
		}
		saved = rt
		return nil
	})
	switch {
	case fnErr != nil && err == nil: // reuse, committed
		return saved, fnErr
	case fnErr != nil && err == fnErr:
		return loaded, fnErr
	case err != nil:
		return loaded, fmt.Errorf("update refresh token: %w", err)
	}
	return saved, nil
}

func revokeFamily(ctx context.Context, tx *sql.Tx, familyID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`,
		nanos(now), familyID)
	return err
}

// DeleteExpiredRefreshTokens removes tokens that expired before cutoff and
// returns how many it removed.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < ?`, nanos(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return n, nil
}

// SigningKeys returns every signing key, newest first.
func (db *DB) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, private_key, created_at FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var ks []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		if err := rows.Scan(&k.ID, &k.PrivateKey, timeDest{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}

// CreateSigningKey stores k; store.ErrConflict if its id is taken.
func (db *DB) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO signing_keys (id, private_key, created_at) VALUES (?, ?, ?)`,
		k.ID, k.PrivateKey, nanos(k.CreatedAt))
	if isConflict(err) {
		return fmt.Errorf("create signing key %q: %w", k.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create signing key %q: %w", k.ID, err)
	}
	return nil
}

// DeleteSigningKey removes the signing key with that id;
// store.ErrNotFound if there is none.
func (db *DB) DeleteSigningKey(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)
	if err == nil {
		var n int
		if n, err = rowsAffected(res); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("delete signing key %q: %w", id, err)
	}
	return nil
}

// RefreshTokens returns up to limit tokens in any state ordered by id,
// after afterID; all of them when limit is 0.
func (db *DB) RefreshTokens(ctx context.Context, afterID string, limit int) ([]store.RefreshToken, error) {
	query, args := selectRefreshToken+` WHERE id > ? ORDER BY id`, []any{afterID}
	if limit > 0 {
		query, args = query+` LIMIT ?`, append(args, limit)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	return collect(rows, err, "list refresh tokens", scanRefreshToken)
}
