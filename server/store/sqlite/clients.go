package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/qrlogin/qrlogin/server/store"
)

const selectClient = `SELECT id, name, secret_hash, created_at FROM oauth_clients`

func scanClient(scan func(...any) error) (store.Client, error) {
	var c store.Client
	err := scan(&c.ID, &c.Name, &c.SecretHash, timeDest{&c.CreatedAt})
	return c, notFound(err)
}

// CreateClient stores an OAuth client; store.ErrConflict if its id is
// taken.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	var secret any // NULL for a public client
	if len(c.SecretHash) > 0 {
		secret = c.SecretHash
	}
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)`,
			c.ID, c.Name, secret, nanos(c.CreatedAt))
		return err
	})
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
	c, err := scanClient(db.read.QueryRowContext(pointRead(ctx), selectClient+` WHERE id = ?`, id).Scan)
	if err != nil {
		return store.Client{}, fmt.Errorf("client %q: %w", id, err)
	}
	return c, nil
}

// Clients returns every OAuth client ordered by id.
func (db *DB) Clients(ctx context.Context) ([]store.Client, error) {
	rows, err := db.read.QueryContext(ctx, selectClient+` ORDER BY id`)
	return collect(rows, err, "list clients", func(r interface{ Scan(...any) error }) (store.Client, error) { return scanClient(r.Scan) })
}

// DeleteClient removes an OAuth client, its refresh tokens and its
// devices in one
// transaction; store.ErrNotFound if there is none.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE client_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM devices WHERE client_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}
