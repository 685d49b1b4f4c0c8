-- Initial schema, the PostgreSQL twin of the SQLite backend's 0001_init.sql.
-- Times are timestamptz (microseconds); NULL is the zero time.Time. Text
-- that is compared or ordered uses the "C" collation, so order is byte
-- order whatever the database's locale.

CREATE TABLE users (
	id            text        PRIMARY KEY,
	username      text        COLLATE "C" NOT NULL UNIQUE,
	display_name  text        NOT NULL,
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL
);

CREATE TABLE login_sessions (
	id                text        PRIMARY KEY,
	poll_token_hash   bytea       NOT NULL,
	user_code         text        NOT NULL UNIQUE,
	status            text        NOT NULL,
	device_name       text        NOT NULL,
	device_platform   text        NOT NULL,
	device_app_name   text        NOT NULL,
	device_ip         text        NOT NULL,
	device_user_agent text        NOT NULL,
	created_at        timestamptz NOT NULL,
	expires_at        timestamptz NOT NULL,
	-- The scanning user. No foreign key: a session is a short-lived record
	-- of what happened, and deleting a user must not rewrite it.
	user_id           text        NOT NULL,
	user_display_name text        NOT NULL,
	scanned_at        timestamptz,
	ended_at          timestamptz,
	-- When the session stopped (or will stop) being live: login.Session.EndedBy.
	-- A live session ends at expires_at; a cancelled or consumed one at
	-- ended_at. Indexed so the sweeper touches only the rows it deletes.
	ended_by timestamptz GENERATED ALWAYS AS (
		CASE WHEN status IN ('pending', 'scanned', 'confirmed') THEN expires_at
		     ELSE coalesce(ended_at, expires_at) END
	) STORED
);

CREATE INDEX login_sessions_ended_by ON login_sessions (ended_by);

CREATE TABLE refresh_tokens (
	id         text        PRIMARY KEY,
	hash       bytea       NOT NULL UNIQUE,
	user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	family_id  text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	revoked_at timestamptz
);

CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
	id          text        COLLATE "C" PRIMARY KEY,
	private_key bytea       NOT NULL,
	created_at  timestamptz NOT NULL
);
