-- OAuth 2.0 clients and the device authorization grant; the PostgreSQL
-- twin of the SQLite backend's 0003_oauth.sql.
--
-- oauth_clients: apps registered with `qrlogin-server client add`. A
-- public client has no secret_hash; a confidential one stores the SHA-256
-- of its high-entropy secret.
--
-- login_sessions: a session started by an OAuth client records the client
-- and the scope it asked for, and the token endpoint's polling state (the
-- interval, growing with every slow_down; the last poll). The device code
-- is the poll token, looked up by its hash.
--
-- refresh_tokens: a family issued to an OAuth client is bound to it and
-- keeps the scope it was granted ('' for the qrlogin API's own).

CREATE TABLE oauth_clients (
	id          text        COLLATE "C" PRIMARY KEY,
	name        text        NOT NULL,
	secret_hash bytea,
	created_at  timestamptz NOT NULL
);

ALTER TABLE login_sessions ADD COLUMN client_id text NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN scope text NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN poll_interval bigint NOT NULL DEFAULT 0;
ALTER TABLE login_sessions ADD COLUMN last_poll_at timestamptz;
CREATE INDEX login_sessions_poll_token_hash ON login_sessions (poll_token_hash);

ALTER TABLE refresh_tokens ADD COLUMN client_id text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN scope text NOT NULL DEFAULT '';
CREATE INDEX refresh_tokens_client_id ON refresh_tokens (client_id) WHERE client_id <> '';
