#!/bin/sh
# qrlogin-server package: before removal (.deb: "remove"; .rpm: 0 = erase,
# 1 = upgrade). Stops and disables the service only when it goes away.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now qrlogin-server.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
