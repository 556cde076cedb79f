// Package sdnotify tells systemd how the hub is doing, as sd_notify(3)
// describes: READY=1 once every part listens, STOPPING=1 when shutdown
// begins, RELOADING=1 around a SIGHUP reload, WATCHDOG=1 keep-alives for
// WatchdogSec=, and a free-text STATUS= line shown by `systemctl status`.
//
// Every function is a no-op returning nil when NOTIFY_SOCKET is unset (the
// hub was not started by systemd with Type=notify), so callers need no
// special case. The socket may be a path or an abstract name starting
// with '@'.
//
// The datagrams are sent by github.com/coreos/go-systemd/v22/daemon, which
// is already a dependency, is maintained next to systemd, and gets the
// corner cases right (abstract sockets, WATCHDOG_PID naming another
// process); this package adds error text that names the operation, the
// reload timestamp systemd wants, and the watchdog loop.
//
// It imports nothing from Outpost and holds no state: each call reads the
// environment.
package sdnotify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Ready tells systemd that start-up is finished: with Type=notify,
// `systemctl start` returns and units ordered after outpost start now.
func Ready() error { return notify("ready", daemon.SdNotifyReady) }

// Stopping tells systemd that shutdown has begun (then TimeoutStopSec
// runs while the hub drains).
func Stopping() error { return notify("stopping", daemon.SdNotifyStopping) }

// Reloading tells systemd that a reload (SIGHUP: password file, ACL, TLS
// certificates) has begun; call Ready when it is done. The monotonic
// timestamp lets Type=notify-reload match the two.
func Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify reloading: read monotonic clock: %w", err)
	}
	usec := int64(ts.Sec)*1_000_000 + int64(ts.Nsec)/1_000
	return notify("reloading", fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, usec))
}

// Watchdog tells systemd the hub is alive; with WatchdogSec= set it must
// come more often than WatchdogInterval (RunWatchdog does this).
func Watchdog() error { return notify("watchdog", daemon.SdNotifyWatchdog) }

// Status sets the one-line status `systemctl status outpost` shows, e.g.
// "broker 127.0.0.1:1883, uplink connected, queue 12 msgs". Line breaks
// are replaced by spaces: a newline would start a new assignment.
func Status(s string) error {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return notify("status", "STATUS="+s)
}

// WatchdogInterval returns systemd's watchdog timeout for this process
// (WATCHDOG_USEC, when WATCHDOG_PID is unset or names this process), or 0
// when no watchdog is armed. Ping at half of it.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("sd_notify watchdog interval: %w", err)
	}
	return d, nil
}

// RunWatchdog sends WATCHDOG=1 every half WatchdogInterval until ctx is
// done, and returns nil then. When healthy is not nil it is asked first,
// and a failing check withholds the ping (and says why in the status), so a
// wedged hub is restarted by systemd rather than kept alive by a goroutine
// that still runs. Without a watchdog it returns nil at once. The caller
// owns the goroutine it runs in.
func RunWatchdog(ctx context.Context, healthy func() error) error {
	d, err := WatchdogInterval()
	if err != nil || d == 0 {
		return err
	}
	t := time.NewTicker(d / 2)
	defer t.Stop()
	for {
		if healthy != nil {
			if herr := healthy(); herr != nil {
				if err := Status("unhealthy, withholding watchdog: " + herr.Error()); err != nil {
					return err
				}
			} else if err := Watchdog(); err != nil {
				return err
			}
		} else if err := Watchdog(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func notify(op, state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify %s: %w", op, err)
	}
	return nil
}
