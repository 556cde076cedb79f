#!/bin/sh
# outpost postrm: forget the unit; on purge also delete the state directory
# (the queue of messages not yet forwarded, broker sessions, retained
# messages), as Debian policy asks of purge. The user is kept (sysusers
# convention: UIDs are not recycled).
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/outpost
fi
exit 0
