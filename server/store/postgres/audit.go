package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/store"
)

// AppendAudit adds e to the audit log (see store.Store). An entry copied
// with its id moves the id sequence past it, so later entries still get
// larger ids.
func (db *DB) AppendAudit(ctx context.Context, e audit.Entry) error {
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	args := []any{ts(e.Time.Truncate(time.Microsecond)), string(e.Event), e.UserID, e.Username, e.DeviceID, e.Device, e.IP, detail}
	if e.ID == 0 {
		_, err = db.pool.Exec(ctx, `INSERT INTO audit_log (time, event, user_id, username, device_id, device, ip, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`, args...)
	} else {
		err = db.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO audit_log (time, event, user_id, username, device_id, device, ip, detail, id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)`, append(args, e.ID)...); err != nil {
				return err
			}
			// Never backwards: ids other servers took meanwhile stay taken.
			_, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('audit_log', 'id'),
				greatest((SELECT max(id) FROM audit_log), (SELECT last_value FROM audit_log_id_seq)))`)
			return err
		})
	}
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
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.UserID != "" {
		arg("user_id = ?", q.UserID)
	}
	if !q.Since.IsZero() {
		arg("time >= ?", q.Since)
	}
	if q.AfterID != 0 {
		arg("id > ?", q.AfterID)
	}
	query := `SELECT id, time, event, user_id, username, device_id, device, ip, detail::text FROM audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id"
	if q.Limit > 0 {
		args = append(args, q.Limit)
		query += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := db.pool.Query(ctx, query, args...)
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

// DeleteAuditBefore removes the entries older than cutoff, under the sweep
// lock like the sweeper's other deletes.
func (db *DB) DeleteAuditBefore(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.sweep(ctx, `DELETE FROM audit_log WHERE time < $1`, cutoff)
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
