#!/bin/sh
# outpost prerm: stop the service before its files go away. On upgrade the
# running hub keeps going until postinst restarts it with the new binary.
set -e
if [ "$1" = remove ] && command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop outpost.service || true
	fi
	systemctl disable outpost.service >/dev/null 2>&1 || true
fi
exit 0
