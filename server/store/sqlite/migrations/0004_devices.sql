-- Signed-in devices: one row per sign-in (a refresh chain, a phone
-- cookie, or an OAuth app's access token), which the user can list and
-- end. id is the refresh token family's id. expires_at is the end of its
-- newest token; ended_at (NULL while live) and end_reason say when and why
-- it was ended (signed_out, logout_all, password_changed, reuse_detected).
--
-- Families live at the migration get a row: kind from the token's kind,
-- method and client; the device's own description is unknown.

CREATE TABLE devices (
	id           TEXT    PRIMARY KEY,
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind         TEXT    NOT NULL CHECK (kind IN ('desktop', 'phone', 'app')),
	client_id    TEXT    NOT NULL DEFAULT '',
	name         TEXT    NOT NULL DEFAULT '',
	platform     TEXT    NOT NULL DEFAULT '',
	app_name     TEXT    NOT NULL DEFAULT '',
	ip           TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	last_ip      TEXT    NOT NULL DEFAULT '',
	expires_at   INTEGER NOT NULL,
	ended_at     INTEGER,
	end_reason   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX devices_user_id ON devices (user_id, created_at);
CREATE INDEX devices_expires_at ON devices (expires_at);
CREATE INDEX devices_ended_at ON devices (ended_at) WHERE ended_at IS NOT NULL;

INSERT INTO devices (id, user_id, kind, client_id, app_name, created_at, last_used_at, expires_at)
SELECT t.family_id, t.user_id,
	CASE WHEN t.client_id <> '' THEN 'app'
	     WHEN t.kind = 'phone' OR t.amr = 'pwd' THEN 'phone'
	     ELSE 'desktop' END,
	t.client_id,
	coalesce((SELECT c.name FROM oauth_clients c WHERE c.id = t.client_id), ''),
	min(t.auth_time), max(t.created_at), max(t.expires_at)
FROM refresh_tokens t
WHERE t.revoked_at IS NULL AND t.used_at IS NULL
GROUP BY t.family_id;
