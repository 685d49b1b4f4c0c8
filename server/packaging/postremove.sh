#!/bin/sh
# qrlogin-server package: after removal (.deb: "remove", "purge", …; .rpm:
# 0 = erase, 1 = upgrade).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
# Only `apt purge` deletes the database; the qrlogin user stays, as Debian
# policy asks (its uid may own files elsewhere, e.g. backups).
if [ "$1" = purge ]; then
	rm -rf /var/lib/qrlogin /var/lib/private/qrlogin
fi
exit 0
