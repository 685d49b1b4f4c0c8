#!/bin/sh
# qrlogin-server package: after install or upgrade (.deb: "configure";
# .rpm: 1 = install, 2 = upgrade).
set -e

# The service runs as its own system user, which owns only /var/lib/qrlogin.
if ! getent passwd qrlogin >/dev/null; then
	useradd --system --user-group --home-dir /var/lib/qrlogin --no-create-home \
		--shell /usr/sbin/nologin --comment "qrlogin sign-in server" qrlogin
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# Not started on a fresh install (set QRLOGIN_PUBLIC_URL first, then
	# `systemctl enable --now qrlogin-server`); restarted on upgrade if running.
	systemctl try-restart qrlogin-server.service >/dev/null 2>&1 || true
fi
exit 0
