#!/bin/sh
# outpost postinst: create the user and device groups, the state directory,
# then enable and start (fresh install) or restart (upgrade) the service.
set -e

case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove) ;;
*) exit 0 ;;
esac

if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/outpost.conf
elif ! getent passwd outpost >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /var/lib/outpost --no-create-home \
		--shell /usr/sbin/nologin --comment "Outpost edge IoT hub" outpost
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/outpost.conf || true
fi

if command -v systemctl >/dev/null 2>&1; then
	if [ -z "$2" ]; then
		# Fresh install: enabled like any Debian service. Works in a chroot
		# image build too (it only writes the symlink).
		systemctl enable outpost.service >/dev/null 2>&1 || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if [ -z "$2" ]; then
			systemctl start outpost.service || true
		else
			systemctl try-restart outpost.service || true
		fi
	fi
fi
exit 0
