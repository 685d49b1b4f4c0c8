-- When the phone confirmed a login session: with the delivery time it
-- gives how long the desktop took to notice (qrlogin_notice_latency_seconds).
-- Numbered 6 to follow the devices (4) and audit log (5) migrations.

ALTER TABLE login_sessions ADD COLUMN confirmed_at INTEGER;
