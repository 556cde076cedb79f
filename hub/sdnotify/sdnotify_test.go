package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeSystemd listens where NOTIFY_SOCKET points, as systemd does for a
// Type=notify service, and returns the datagrams it receives.
func fakeSystemd(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// next reads one datagram or fails after a deadline.
func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram from the hub: %v", err)
	}
	return string(buf[:n])
}

func socketPath(t *testing.T) string {
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir := t.TempDir()
	if len(dir) > 80 {
		d, err := os.MkdirTemp("", "sd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	return filepath.Join(dir, "notify")
}

func TestMessages(t *testing.T) {
	sock := fakeSystemd(t, socketPath(t))
	for _, tc := range []struct {
		name string
		send func() error
		want string
	}{
		{"ready", Ready, "READY=1"},
		{"stopping", Stopping, "STOPPING=1"},
		{"watchdog", Watchdog, "WATCHDOG=1"},
		{"status", func() error { return Status("broker up\nuplink down") }, "STATUS=broker up uplink down"},
	} {
		if err := tc.send(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := next(t, sock); got != tc.want {
			t.Errorf("%s sent %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	sock := fakeSystemd(t, socketPath(t))
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	got := next(t, sock)
	first, second, ok := strings.Cut(got, "\n")
	usec, found := strings.CutPrefix(second, "MONOTONIC_USEC=")
	if !ok || first != "RELOADING=1" || !found {
		t.Fatalf("sent %q, want RELOADING=1 and MONOTONIC_USEC=", got)
	}
	if n, err := strconv.ParseInt(usec, 10, 64); err != nil || n <= 0 {
		t.Fatalf("MONOTONIC_USEC=%q is not a positive number", usec)
	}
}

func TestAbstractSocket(t *testing.T) {
	sock := fakeSystemd(t, fmt.Sprintf("@outpost-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sock); got != "READY=1" {
		t.Fatalf("sent %q", got)
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	for _, f := range []func() error{Ready, Stopping, Reloading, Watchdog, func() error { return Status("x") }} {
		if err := f(); err != nil {
			t.Fatalf("without NOTIFY_SOCKET: %v", err)
		}
	}
}

func TestDeadSocketErrorNamesOperation(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	err := Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "sd_notify ready: ") {
		t.Fatalf("err = %v, want sd_notify ready: ...", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", strconv.Itoa(os.Getpid()), 30 * time.Second, false},
		{"30000000", strconv.Itoa(os.Getpid() + 1), 0, false}, // meant for another process
		{"soon", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

func TestRunWatchdogPingsUntilCancelled(t *testing.T) {
	sock := fakeSystemd(t, socketPath(t))
	t.Setenv("WATCHDOG_USEC", "20000") // 20ms: pings every 10ms
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, nil) }()
	for range 3 {
		if got := next(t, sock); got != "WATCHDOG=1" {
			t.Fatalf("sent %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWatchdog = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}

func TestRunWatchdogWithholdsPingWhenUnhealthy(t *testing.T) {
	sock := fakeSystemd(t, socketPath(t))
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, func() error { return errors.New("broker stuck") }) }()
	for range 2 {
		if got := next(t, sock); got != "STATUS=unhealthy, withholding watchdog: broker stuck" {
			t.Fatalf("sent %q while unhealthy", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunWatchdogDisabledReturns(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if err := RunWatchdog(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
