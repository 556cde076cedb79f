package queue

import "golang.org/x/sys/unix"

// clockSynced reports whether the kernel considers the system clock
// synchronized (an NTP client such as systemd-timesyncd or chrony has
// set it and clears STA_UNSYNC), as `timedatectl` shows it.
func clockSynced() bool {
	var t unix.Timex
	state, err := unix.Adjtimex(&t)
	return err == nil && state != unix.TIME_ERROR && t.Status&unix.STA_UNSYNC == 0
}
