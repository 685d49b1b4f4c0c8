-- Initial schema. Times are INTEGER Unix nanoseconds in UTC; NULL is the
-- zero time.Time. Tables are STRICT so a wrong type fails loudly.

CREATE TABLE users (
	id            TEXT    PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE login_sessions (
	id                TEXT    PRIMARY KEY,
	poll_token_hash   BLOB    NOT NULL,
	user_code         TEXT    NOT NULL UNIQUE,
	status            TEXT    NOT NULL,
	device_name       TEXT    NOT NULL,
	device_platform   TEXT    NOT NULL,
	device_app_name   TEXT    NOT NULL,
	device_ip         TEXT    NOT NULL,
	device_user_agent TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	expires_at        INTEGER NOT NULL,
	-- The scanning user. No foreign key: a session is a short-lived record
	-- of what happened, and deleting a user must not rewrite it.
	user_id           TEXT    NOT NULL,
	user_display_name TEXT    NOT NULL,
	scanned_at        INTEGER,
	ended_at          INTEGER,
	-- When the session stopped (or will stop) being live: login.Session.EndedBy.
	-- A live session ends at expires_at; a cancelled or consumed one at
	-- ended_at. Indexed so the sweeper touches only the rows it deletes.
	ended_by INTEGER GENERATED ALWAYS AS (
		CASE WHEN status IN ('pending', 'scanned', 'confirmed') THEN expires_at
		     ELSE coalesce(ended_at, expires_at) END
	) VIRTUAL
) STRICT;

CREATE INDEX login_sessions_ended_by ON login_sessions (ended_by);

CREATE TABLE refresh_tokens (
	id         TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL UNIQUE,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	family_id  TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
	id          TEXT    PRIMARY KEY,
	private_key BLOB    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
