-- Sign-in revocation and typed long-lived tokens; the PostgreSQL twin of
-- the SQLite backend's 0002_token_kinds.sql.
--
-- users.tokens_valid_after: access tokens issued at or before it are
-- refused (NULL: never set).
--
-- refresh_tokens gains the family's kind, sign-in method and first
-- sign-in time. Phone cookies were the families named "phone-..."; the
-- method of older refresh families is unknown, so they get "qr", the
-- one that cannot confirm a login session (a phone signs in again).
-- auth_time is the oldest token left in the family.

ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

ALTER TABLE refresh_tokens ADD COLUMN kind text NOT NULL DEFAULT 'refresh'
	CHECK (kind IN ('refresh', 'phone'));
ALTER TABLE refresh_tokens ADD COLUMN amr text NOT NULL DEFAULT 'qr';
ALTER TABLE refresh_tokens ADD COLUMN auth_time timestamptz;

UPDATE refresh_tokens SET kind = 'phone', amr = 'pwd' WHERE family_id LIKE 'phone-%';
UPDATE refresh_tokens t SET auth_time = f.first
	FROM (SELECT family_id, min(created_at) AS first FROM refresh_tokens GROUP BY family_id) f
	WHERE t.family_id = f.family_id;
ALTER TABLE refresh_tokens ALTER COLUMN auth_time SET NOT NULL;
