-- Sign-in revocation and typed long-lived tokens.
--
-- users.tokens_valid_after: access tokens issued at or before it are
-- refused (Unix nanoseconds; NULL: never set).
--
-- refresh_tokens gains the family's kind, sign-in method and first
-- sign-in time. Phone cookies were the families named "phone-..."; the
-- method of older refresh families is unknown, so they get "qr", the
-- one that cannot confirm a login session (a phone signs in again).
-- auth_time is the oldest token left in the family.

ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER;

ALTER TABLE refresh_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'refresh'
	CHECK (kind IN ('refresh', 'phone'));
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT 'qr';
ALTER TABLE refresh_tokens ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;

UPDATE refresh_tokens SET kind = 'phone', amr = 'pwd' WHERE family_id LIKE 'phone-%';
UPDATE refresh_tokens SET auth_time = (
	SELECT min(f.created_at) FROM refresh_tokens f WHERE f.family_id = refresh_tokens.family_id);
