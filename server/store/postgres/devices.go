package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/store"
)

const (
	selectDevice = `SELECT id, user_id, kind, client_id, name, platform, app_name, ip,
		created_at, last_used_at, last_ip, expires_at, ended_at, end_reason
		FROM devices`

	insertDeviceSQL = `INSERT INTO devices (id, user_id, kind, client_id, name, platform, app_name, ip,
		created_at, last_used_at, last_ip, expires_at, ended_at, end_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

	saveDeviceSQL = `UPDATE devices SET last_used_at = $1, last_ip = $2, expires_at = $3, ended_at = $4, end_reason = $5
		WHERE id = $6`

	// endUserDevicesSQL locks in id order, like the token statements.
	endUserDevicesSQL = `UPDATE devices SET ended_at = $1, end_reason = $2 WHERE id IN (
		SELECT id FROM devices WHERE user_id = $3 AND ended_at IS NULL ORDER BY id FOR UPDATE)`

	deleteOldDevices = `DELETE FROM devices WHERE id IN (
		SELECT id FROM devices WHERE expires_at < $1 OR ended_at < $1 ORDER BY id FOR UPDATE)`

	// notifyUser announces, on commit, that a user's sign-ins changed:
	// Listen on every server wakes the account's event streams
	// (devices.EventKey).
	notifyUser = `SELECT pg_notify('` + Channel + `', '` + devices.EventKeyPrefix + `' || $1::text)`
)

func scanDevice(row pgx.Row) (store.Device, error) {
	var d store.Device
	err := row.Scan(&d.ID, &d.UserID, &d.Kind, &d.ClientID, &d.Name, &d.Platform, &d.AppName, &d.IP,
		timeDest{&d.CreatedAt}, timeDest{&d.LastUsedAt}, &d.LastIP, timeDest{&d.ExpiresAt}, timeDest{&d.EndedAt}, &d.EndReason)
	return d, notFound(err)
}

func deviceArgs(d *store.Device) []any {
	return []any{d.ID, d.UserID, d.Kind, d.ClientID, d.Name, d.Platform, d.AppName, d.IP,
		ts(d.CreatedAt), ts(d.LastUsedAt), d.LastIP, ts(d.ExpiresAt), ts(d.EndedAt), d.EndReason}
}

// deviceError maps the failure to store d: a taken id is
// store.ErrConflict, an unknown user store.ErrNotFound.
func deviceError(err error, d *store.Device) error {
	switch {
	case isConflict(err):
		return fmt.Errorf("store device: %w", store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("store device: user %q: %w", d.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store device: %w", err)
	}
	return nil
}

func saveDevice(ctx context.Context, tx pgx.Tx, d *store.Device) error {
	_, err := tx.Exec(ctx, saveDeviceSQL, ts(d.LastUsedAt), d.LastIP, ts(d.ExpiresAt), ts(d.EndedAt), d.EndReason, d.ID)
	return err
}

// updateFamilyDevice locks the device of a refresh token family, runs fn
// on it and saves it; if fn ends it, the user is notified. Families from
// before devices existed and have since ended have none.
func updateFamilyDevice(ctx context.Context, tx pgx.Tx, family string, fn func(*store.Device)) error {
	d, err := scanDevice(tx.QueryRow(ctx, selectDevice+` WHERE id = $1 FOR UPDATE`, family))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	wasEnded := d.Ended()
	fn(&d)
	if err := saveDevice(ctx, tx, &d); err != nil {
		return err
	}
	if !wasEnded && d.Ended() {
		_, err = tx.Exec(ctx, notifyUser, d.UserID)
	}
	return err
}

// CreateDevice stores a new sign-in's device and first token in one
// transaction.
func (db *DB) CreateDevice(ctx context.Context, d store.Device, rt store.RefreshToken) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertDeviceSQL, deviceArgs(&d)...); err != nil {
			return deviceError(err, &d)
		}
		return insertRefreshToken(ctx, tx, &rt)
	})
	if err != nil {
		return fmt.Errorf("create device: %w", err)
	}
	return nil
}

// Device returns the device with that id, or store.ErrNotFound.
func (db *DB) Device(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, selectDevice+` WHERE id = $1`, id))
	if err != nil {
		return store.Device{}, fmt.Errorf("device %q: %w", id, err)
	}
	return d, nil
}

// Devices returns the user's live devices, newest first.
func (db *DB) Devices(ctx context.Context, userID string, now time.Time) ([]store.Device, error) {
	rows, err := db.pool.Query(ctx, selectDevice+` WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id DESC`, userID, now)
	ds, err := collect(rows, err, "list devices", scanDevice)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ds, func(d store.Device) bool { return !d.Live(now) }), nil
}

// EndDevice ends the user's device and revokes its tokens in one
// transaction that notifies the user's event streams on every server.
func (db *DB) EndDevice(ctx context.Context, userID, id, reason string, now time.Time) (store.Device, error) {
	var d store.Device
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if d, err = scanDevice(tx.QueryRow(ctx, selectDevice+` WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return err
		}
		if d.UserID != userID || d.Ended() {
			return store.ErrNotFound
		}
		devices.End(&d, reason, now)
		if err := saveDevice(ctx, tx, &d); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, revokeFamilyTokens, ts(now), d.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, notifyUser, userID)
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("end device %q: %w", id, err)
	}
	return d, nil
}

// TouchDevice records a use of a device that has not ended.
func (db *DB) TouchDevice(ctx context.Context, id, ip string, now time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		d, err := scanDevice(tx.QueryRow(ctx, selectDevice+` WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if d.Ended() {
			return store.ErrNotFound
		}
		devices.Touch(&d, ip, now)
		return saveDevice(ctx, tx, &d)
	})
	if err != nil {
		return fmt.Errorf("touch device %q: %w", id, err)
	}
	return nil
}

// DeleteOldDevices removes devices that ended or expired before cutoff,
// under the sweep lock like the other sweeps.
func (db *DB) DeleteOldDevices(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.sweep(ctx, deleteOldDevices, cutoff)
	if err != nil {
		return 0, fmt.Errorf("delete old devices: %w", err)
	}
	return n, nil
}

// ListDevices returns up to limit devices in any state ordered by id in
// byte order, after afterID; all of them when limit is 0.
func (db *DB) ListDevices(ctx context.Context, afterID string, limit int) ([]store.Device, error) {
	query, args := selectDevice+` WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C"`, []any{afterID}
	if limit > 0 {
		query, args = query+` LIMIT $2`, append(args, limit)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	return collect(rows, err, "list every device", scanDevice)
}

// ImportDevice stores d as it is. No stream waits on a sign-in the store
// did not hold, so nobody is notified.
func (db *DB) ImportDevice(ctx context.Context, d store.Device) error {
	if _, err := db.pool.Exec(ctx, insertDeviceSQL, deviceArgs(&d)...); err != nil {
		return fmt.Errorf("import device %q: %w", d.ID, deviceError(err, &d))
	}
	return nil
}

// CatchUpDevice brings the stored device forward to d in one transaction,
// locking it before its tokens like every other; if that ends it, its
// tokens are revoked and the user's event streams on every server told.
func (db *DB) CatchUpDevice(ctx context.Context, d store.Device) (bool, error) {
	changed := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		there, err := scanDevice(tx.QueryRow(ctx, selectDevice+` WHERE id = $1 FOR UPDATE`, d.ID))
		if err != nil {
			return err
		}
		if !devices.SameSignIn(there, d) {
			return store.ErrConflict
		}
		wasEnded := there.Ended()
		if changed = devices.CatchUp(&there, d); !changed {
			return nil
		}
		if err := saveDevice(ctx, tx, &there); err != nil {
			return err
		}
		if wasEnded || !there.Ended() {
			return nil
		}
		if _, err := tx.Exec(ctx, revokeFamilyTokens, ts(there.EndedAt), there.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, notifyUser, there.UserID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("catch up device %q: %w", d.ID, err)
	}
	return changed, nil
}
