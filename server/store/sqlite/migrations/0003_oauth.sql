-- OAuth 2.0 clients and the device authorization grant.
--
-- oauth_clients: apps registered with `qrlogin-server client add`. A
-- public client has no secret_hash; a confidential one stores the SHA-256
-- of its high-entropy secret.
--
-- login_sessions: a session started by an OAuth client records the client
-- and the scope it asked for, and the token endpoint's polling state
-- (interval in nanoseconds, growing with every slow_down; the last poll).
-- The device code is the poll token, looked up by its hash.
--
-- refresh_tokens: a family issued to an OAuth client is bound to it and
-- keeps the scope it was granted ('' for the qrlogin API's own).

CREATE TABLE oauth_clients (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	secret_hash BLOB,
	created_at  INTEGER NOT NULL
) STRICT;

ALTER TABLE login_sessions ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN poll_interval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_sessions ADD COLUMN last_poll_at INTEGER;
CREATE INDEX login_sessions_poll_token_hash ON login_sessions (poll_token_hash);

ALTER TABLE refresh_tokens ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE INDEX refresh_tokens_client_id ON refresh_tokens (client_id) WHERE client_id <> '';
