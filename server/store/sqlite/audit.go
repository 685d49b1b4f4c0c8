package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/store"
)

// AppendAudit adds e to the audit log (see store.Store).
func (db *DB) AppendAudit(ctx context.Context, e audit.Entry) error {
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	var id any // NULL: the next id
	if e.ID != 0 {
		id = e.ID
	}
	err = db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log
			(id, time, event, user_id, username, device_id, device, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, nanos(e.Time.Truncate(time.Microsecond)), string(e.Event), e.UserID, e.Username, e.DeviceID, e.Device, e.IP, detail)
		return err
	})
	if isConflict(err) {
		return fmt.Errorf("append audit entry %d: %w", e.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// AuditEntries returns the entries q selects, oldest first.
func (db *DB) AuditEntries(ctx context.Context, q store.AuditQuery) ([]audit.Entry, error) {
	var where []string
	var args []any
	if q.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, q.UserID)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, nanos(q.Since))
	}
	if q.AfterID != 0 {
		where, args = append(where, "id > ?"), append(args, q.AfterID)
	}
	query := `SELECT id, time, event, user_id, username, device_id, device, ip, detail FROM audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var detail string
		if err := rows.Scan(&e.ID, timeDest{&e.Time}, (*string)(&e.Event), &e.UserID, &e.Username,
			&e.DeviceID, &e.Device, &e.IP, &detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		if e.Detail, err = decodeDetail(detail); err != nil {
			return nil, fmt.Errorf("read audit entry %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// DeleteAuditBefore removes the entries older than cutoff.
func (db *DB) DeleteAuditBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE time < ?`, nanos(cutoff))
		if err != nil {
			return err
		}
		n, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", err)
	}
	return n, nil
}

// encodeDetail is an entry's detail as the JSON object stored.
func encodeDetail(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode detail: %w", err)
	}
	return string(b), nil
}

// decodeDetail reads a stored detail; an empty object is nil.
func decodeDetail(s string) (map[string]string, error) {
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, fmt.Errorf("decode detail: %w", err)
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}
