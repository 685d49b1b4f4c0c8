-- The audit log: one row per security event (server/audit.Entry), kept for
-- --audit-retention and pruned by the sweeper. No foreign key to users:
-- the history of a deleted user must stay. detail is a JSON object of
-- strings. AUTOINCREMENT: ids only ever grow, even after the oldest rows
-- are pruned, so an id names one entry for good.

CREATE TABLE audit_log (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	time      INTEGER NOT NULL,
	event     TEXT    NOT NULL,
	user_id   TEXT    NOT NULL,
	username  TEXT    NOT NULL,
	device_id TEXT    NOT NULL,
	device    TEXT    NOT NULL,
	ip        TEXT    NOT NULL,
	detail    TEXT    NOT NULL CHECK (json_valid(detail))
) STRICT;

CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_user_id ON audit_log (user_id, id);
