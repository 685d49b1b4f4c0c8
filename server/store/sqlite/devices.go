package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/store"
)

const (
	selectDevice = `SELECT id, user_id, kind, client_id, name, platform, app_name, ip,
		created_at, last_used_at, last_ip, expires_at, ended_at, end_reason
		FROM devices`

	insertDeviceSQL = `INSERT INTO devices (id, user_id, kind, client_id, name, platform, app_name, ip,
		created_at, last_used_at, last_ip, expires_at, ended_at, end_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	saveDeviceSQL = `UPDATE devices SET last_used_at = ?, last_ip = ?, expires_at = ?, ended_at = ?, end_reason = ?
		WHERE id = ?`
)

func scanDevice(row interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	err := row.Scan(&d.ID, &d.UserID, &d.Kind, &d.ClientID, &d.Name, &d.Platform, &d.AppName, &d.IP,
		timeDest{&d.CreatedAt}, timeDest{&d.LastUsedAt}, &d.LastIP, timeDest{&d.ExpiresAt}, timeDest{&d.EndedAt}, &d.EndReason)
	return d, notFound(err)
}

// insertDevice stores d in tx. A taken id is store.ErrConflict; an unknown
// user is store.ErrNotFound.
func insertDevice(ctx context.Context, tx *sql.Tx, d *store.Device) error {
	_, err := tx.ExecContext(ctx, insertDeviceSQL, d.ID, d.UserID, d.Kind, d.ClientID, d.Name, d.Platform, d.AppName, d.IP,
		nanos(d.CreatedAt), nanos(d.LastUsedAt), d.LastIP, nanos(d.ExpiresAt), nanos(d.EndedAt), d.EndReason)
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

// saveDevice writes what the rules in server/devices change of d.
func saveDevice(ctx context.Context, tx *sql.Tx, d *store.Device) error {
	_, err := tx.ExecContext(ctx, saveDeviceSQL, nanos(d.LastUsedAt), d.LastIP, nanos(d.ExpiresAt), nanos(d.EndedAt), d.EndReason, d.ID)
	return err
}

// updateFamilyDevice runs fn on the device of a refresh token family in
// tx and saves it. Families from before devices existed and have since
// ended have none; they are left alone.
func updateFamilyDevice(ctx context.Context, tx *sql.Tx, family string, fn func(*store.Device)) error {
	d, err := scanDevice(tx.QueryRowContext(ctx, selectDevice+` WHERE id = ?`, family))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	fn(&d)
	return saveDevice(ctx, tx, &d)
}

// endUserDevices ends every device of userID not ended yet.
func endUserDevices(ctx context.Context, tx *sql.Tx, userID, reason string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE devices SET ended_at = ?, end_reason = ? WHERE user_id = ? AND ended_at IS NULL`,
		nanos(now), reason, userID)
	return err
}

// CreateDevice stores a new sign-in's device and first token in one
// transaction.
func (db *DB) CreateDevice(ctx context.Context, d store.Device, rt store.RefreshToken) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := insertDevice(ctx, tx, &d); err != nil {
			return err
		}
		return db.insertRefreshToken(ctx, tx, &rt)
	})
	if err != nil {
		return fmt.Errorf("create device: %w", err)
	}
	return nil
}

// Device returns the device with that id, or store.ErrNotFound.
func (db *DB) Device(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(db.read.QueryRowContext(pointRead(ctx), selectDevice+` WHERE id = ?`, id))
	if err != nil {
		return store.Device{}, fmt.Errorf("device %q: %w", id, err)
	}
	return d, nil
}

// Devices returns the user's live devices, newest first.
func (db *DB) Devices(ctx context.Context, userID string, now time.Time) ([]store.Device, error) {
	rows, err := db.read.QueryContext(ctx, selectDevice+` WHERE user_id = ? AND ended_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id DESC`, userID, nanos(now))
	ds, err := collect(rows, err, "list devices", scanDevice)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ds, func(d store.Device) bool { return !d.Live(now) }), nil
}

// EndDevice ends the user's device and revokes its tokens in one
// transaction.
func (db *DB) EndDevice(ctx context.Context, userID, id, reason string, now time.Time) (store.Device, error) {
	var d store.Device
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if d, err = scanDevice(tx.QueryRowContext(ctx, selectDevice+` WHERE id = ?`, id)); err != nil {
			return err
		}
		if d.UserID != userID || d.Ended() {
			return store.ErrNotFound
		}
		devices.End(&d, reason, now)
		if err := saveDevice(ctx, tx, &d); err != nil {
			return err
		}
		return revokeFamily(ctx, tx, d.ID, now)
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("end device %q: %w", id, err)
	}
	return d, nil
}

// TouchDevice records a use of a device that has not ended.
func (db *DB) TouchDevice(ctx context.Context, id, ip string, now time.Time) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		d, err := scanDevice(tx.QueryRowContext(ctx, selectDevice+` WHERE id = ?`, id))
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

// DeleteOldDevices removes devices that ended or expired before cutoff.
func (db *DB) DeleteOldDevices(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM devices WHERE expires_at < ? OR ended_at < ?`, nanos(cutoff), nanos(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete old devices: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("delete old devices: %w", err)
	}
	return n, nil
}

// ListDevices returns up to limit devices in any state ordered by id in
// byte order, after afterID; all of them when limit is 0.
func (db *DB) ListDevices(ctx context.Context, afterID string, limit int) ([]store.Device, error) {
	query, args := selectDevice+` WHERE id > ? ORDER BY id`, []any{afterID}
	if limit > 0 {
		query, args = query+` LIMIT ?`, append(args, limit)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	return collect(rows, err, "list every device", scanDevice)
}

// ImportDevice stores d as it is.
func (db *DB) ImportDevice(ctx context.Context, d store.Device) error {
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return insertDevice(ctx, tx, &d)
	})
	if err != nil {
		return fmt.Errorf("import device %q: %w", d.ID, err)
	}
	return nil
}

// CatchUpDevice brings the stored device forward to d, revoking its
// tokens if that ends it, in one transaction.
func (db *DB) CatchUpDevice(ctx context.Context, d store.Device) (bool, error) {
	changed := false
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		there, err := scanDevice(tx.QueryRowContext(ctx, selectDevice+` WHERE id = ?`, d.ID))
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
		if !wasEnded && there.Ended() {
			return revokeFamily(ctx, tx, there.ID, there.EndedAt)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("catch up device %q: %w", d.ID, err)
	}
	return changed, nil
}
