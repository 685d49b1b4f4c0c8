package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/store"
)

const selectClient = `SELECT id, name, secret_hash, created_at FROM oauth_clients`

func scanClient(row pgx.Row) (store.Client, error) {
	var c store.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, timeDest{&c.CreatedAt})
	return c, notFound(err)
}

// CreateClient stores an OAuth client; store.ErrConflict if its id is
// taken.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	var secret any // NULL for a public client
	if len(c.SecretHash) > 0 {
		secret = c.SecretHash
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO oauth_clients (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)`,
		c.ID, c.Name, secret, ts(c.CreatedAt))
	if isConflict(err) {
		return fmt.Errorf("create client %q: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	return nil
}

// Client returns the OAuth client with that id, or store.ErrNotFound.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, selectClient+` WHERE id = $1`, id))
	if err != nil {
		return store.Client{}, fmt.Errorf("client %q: %w", id, err)
	}
	return c, nil
}

// Clients returns every OAuth client ordered by id.
func (db *DB) Clients(ctx context.Context) ([]store.Client, error) {
	rows, err := db.pool.Query(ctx, selectClient+` ORDER BY id`)
	return collect(rows, err, "list clients", scanClient)
}

// DeleteClient removes an OAuth client, its refresh tokens and its
// devices in one
// transaction; store.ErrNotFound if there is none.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM oauth_clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		// Devices before tokens, the order every transaction locks them in.
		if _, err = tx.Exec(ctx, `DELETE FROM devices WHERE id IN (
			SELECT id FROM devices WHERE client_id = $1 ORDER BY id FOR UPDATE)`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE id IN (
			SELECT id FROM refresh_tokens WHERE client_id = $1 ORDER BY id FOR UPDATE)`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}
