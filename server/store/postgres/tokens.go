package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/store"
)

const selectRefreshToken = `SELECT id, hash, user_id, family_id, created_at, expires_at, used_at, revoked_at
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
	err := row.Scan(&rt.ID, &rt.Hash, &rt.UserID, &rt.FamilyID,
		timeDest{&rt.CreatedAt}, timeDest{&rt.ExpiresAt}, timeDest{&rt.UsedAt}, timeDest{&rt.RevokedAt})
	return rt, notFound(err)
}

const insertRefreshTokenSQL = `INSERT INTO refresh_tokens
	(id, hash, user_id, family_id, created_at, expires_at, used_at, revoked_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

func refreshTokenArgs(rt *store.RefreshToken) []any {
	return []any{rt.ID, rt.Hash, rt.UserID, rt.FamilyID,
		ts(rt.CreatedAt), ts(rt.ExpiresAt), ts(rt.UsedAt), ts(rt.RevokedAt)}
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

// RotateRefreshToken locks the token with oldHash and, if it is live, marks
// it used and stores next as its successor, in one transaction. Of two
// servers rotating the same token at once, the second waits for the lock,
// finds the token used and treats it as reuse. Presenting a used token
// revokes its family (and that is committed) before store.ErrTokenReused
// is returned.
func (db *DB) RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	var old store.RefreshToken
	reused := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if old, err = scanRefreshToken(tx.QueryRow(ctx, selectRefreshToken+` WHERE hash = $1 FOR UPDATE`, oldHash)); err != nil {
			return err
		}
		switch {
		case !old.UsedAt.IsZero():
			reused = true
			_, err := tx.Exec(ctx, revokeFamilyTokens, now, old.FamilyID)
			return err
		case !old.RevokedAt.IsZero() || !now.Before(old.ExpiresAt):
			return store.ErrTokenInvalid
		}
		tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, now, old.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("refresh token %q changed during its own transaction", old.ID)
		}
		old.UsedAt = now.UTC()
		next.UserID, next.FamilyID = old.UserID, old.FamilyID
		return insertRefreshToken(ctx, tx, &next)
	})
	if reused && err == nil {
		err = store.ErrTokenReused
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	return old, nil
}

// RevokeRefreshToken revokes every token in the family of the token with
// that hash and returns that token as revoked. Tokens already revoked keep
// their first revocation time.
func (db *DB) RevokeRefreshToken(ctx context.Context, hash []byte, now time.Time) (store.RefreshToken, error) {
	var rt store.RefreshToken
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if rt, err = scanRefreshToken(tx.QueryRow(ctx, selectRefreshToken+` WHERE hash = $1`, hash)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, revokeFamilyTokens, now, rt.FamilyID); err != nil {
			return err
		}
		if rt.RevokedAt.IsZero() {
			rt.RevokedAt = now.UTC()
		}
		return nil
	})
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("revoke refresh token: %w", err)
	}
	return rt, nil
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
