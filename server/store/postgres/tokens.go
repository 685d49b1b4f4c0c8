package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/store"
)

const selectRefreshToken = `SELECT id, hash, user_id, family_id, kind, amr, auth_time,
	created_at, expires_at, used_at, revoked_at, client_id, scope
	FROM refresh_tokens`

// Statements that change several tokens lock them in id order first, so
// that two of them (a sign-out racing the sweeper, say) cannot deadlock.
const (
	revokeFamilyTokens = `UPDATE refresh_tokens SET revoked_at = $1 WHERE id IN (
		SELECT id FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NULL ORDER BY id FOR UPDATE)`
	revokeUserTokens = `UPDATE refresh_tokens SET revoked_at = $1 WHERE id IN (
		SELECT id FROM refresh_tokens WHERE user_id = $2 AND revoked_at IS NULL ORDER BY id FOR UPDATE)`
	deleteExpiredTokens = `DELETE FROM refresh_tokens WHERE id IN (
		SELECT id FROM refresh_tokens WHERE expires_at < $1 ORDER BY id FOR UPDATE)`
)

func scanRefreshToken(row pgx.Row) (store.RefreshToken, error) {
	var rt store.RefreshToken
	err := row.Scan(&rt.ID, &rt.Hash, &rt.UserID, &rt.FamilyID, (*string)(&rt.Kind), &rt.AMR, timeDest{&rt.AuthTime},
		timeDest{&rt.CreatedAt}, timeDest{&rt.ExpiresAt}, timeDest{&rt.UsedAt}, timeDest{&rt.RevokedAt}, &rt.ClientID, &rt.Scope)
	return rt, notFound(err)
}

const insertRefreshTokenSQL = `INSERT INTO refresh_tokens
	(id, hash, user_id, family_id, kind, amr, auth_time, created_at, expires_at, used_at, revoked_at, client_id, scope)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

func refreshTokenArgs(rt *store.RefreshToken) []any {
	return []any{rt.ID, rt.Hash, rt.UserID, rt.FamilyID, string(rt.Kind), rt.AMR, ts(rt.AuthTime),
		ts(rt.CreatedAt), ts(rt.ExpiresAt), ts(rt.UsedAt), ts(rt.RevokedAt), rt.ClientID, rt.Scope}
}

// refreshTokenError maps the failure to store rt: a taken id or hash is
// store.ErrConflict, an unknown user store.ErrNotFound.
func refreshTokenError(err error, rt *store.RefreshToken) error {
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

// insertRefreshToken stores rt in tx.
func insertRefreshToken(ctx context.Context, tx pgx.Tx, rt *store.RefreshToken) error {
	_, err := tx.Exec(ctx, insertRefreshTokenSQL, refreshTokenArgs(rt)...)
	return refreshTokenError(err, rt)
}

// queueInsertRefreshToken queues the insert of rt on w. Its failure comes
// back from the batch as a *pgconn.PgError, so it is mapped there.
func queueInsertRefreshToken(w *pgx.Batch, rt *store.RefreshToken) {
	w.Queue(insertRefreshTokenSQL, refreshTokenArgs(rt)...)
}

// CreateRefreshToken stores rt; store.ErrConflict if its id or hash is
// taken, store.ErrNotFound if its user does not exist.
func (db *DB) CreateRefreshToken(ctx context.Context, rt store.RefreshToken) error {
	return db.inTx(ctx, func(tx pgx.Tx) error { return insertRefreshToken(ctx, tx, &rt) })
}

// RefreshToken returns the token with that hash in whatever state, or
// store.ErrNotFound.
func (db *DB) RefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	rt, err := scanRefreshToken(db.pool.QueryRow(ctx, selectRefreshToken+` WHERE hash = $1`, hash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token: %w", err)
	}
	return rt, nil
}

// UpdateRefreshToken locks the token with hash, runs fn on it and saves
// the result in one transaction (see store.Store). Of two servers
// presenting the same token at once, the second waits for the lock and
// finds the token used.
func (db *DB) UpdateRefreshToken(ctx context.Context, hash []byte, fn func(*store.RefreshToken) (*store.RefreshToken, error)) (store.RefreshToken, error) {
	var loaded, saved store.RefreshToken
	var fnErr error
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// Sign-ins are locked before their tokens everywhere (EndDevice,
		// RevokeUserTokens), so a refresh racing a sign-out cannot
		// deadlock. A token's family never changes: reading it unlocked
		// first is safe.
		var family string
		if err := tx.QueryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE hash = $1`, hash).Scan(&family); err != nil {
			return notFound(err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM devices WHERE id = $1 FOR UPDATE`, family); err != nil {
			return err
		}
		rt, err := scanRefreshToken(tx.QueryRow(ctx, selectRefreshToken+` WHERE hash = $1 FOR UPDATE`, hash))
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
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1, revoked_at = $2 WHERE id = $3`,
			ts(rt.UsedAt), ts(rt.RevokedAt), rt.ID); err != nil {
			return err
		}
		if !rt.RevokedAt.IsZero() {
			if _, err := tx.Exec(ctx, revokeFamilyTokens, ts(rt.RevokedAt), rt.FamilyID); err != nil {
				return err
			}
			reason := devices.RevokeReason(fnErr != nil)
			if err := updateFamilyDevice(ctx, tx, rt.FamilyID, func(d *store.Device) { devices.End(d, reason, rt.RevokedAt) }); err != nil {
				return err
			}
		}
		if next != nil {
			if err := insertRefreshToken(ctx, tx, next); err != nil {
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

// DeleteExpiredRefreshTokens removes tokens that expired before cutoff and
// returns how many it removed. Like DeleteEndedSessions it runs under the
// sweep lock, so many servers may call it at once.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.sweep(ctx, deleteExpiredTokens, cutoff)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return n, nil
}

// SigningKeys returns every signing key, newest first.
func (db *DB) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := db.pool.Query(ctx,
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
	_, err := db.pool.Exec(ctx, `INSERT INTO signing_keys (id, private_key, created_at) VALUES ($1, $2, $3)`,
		k.ID, k.PrivateKey, ts(k.CreatedAt))
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
	tag, err := db.pool.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete signing key %q: %w", id, err)
	}
	return nil
}

// RefreshTokens returns up to limit tokens in any state ordered by id in
// byte order, after afterID; all of them when limit is 0.
func (db *DB) RefreshTokens(ctx context.Context, afterID string, limit int) ([]store.RefreshToken, error) {
	query, args := selectRefreshToken+` WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C"`, []any{afterID}
	if limit > 0 {
		query, args = query+` LIMIT $2`, append(args, limit)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	return collect(rows, err, "list refresh tokens", scanRefreshToken)
}
