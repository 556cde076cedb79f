package test

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotifySequence runs the real binary as systemd would with
// Type=notify and WatchdogSec=: it says READY=1 once listening, keeps the
// watchdog fed, says RELOADING=1 then READY=1 around a SIGHUP and
// STOPPING=1 on SIGTERM, on a fake NOTIFY_SOCKET.
func TestSystemdNotifySequence(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %q", want)
				}
				if strings.Contains(m, want) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q on NOTIFY_SOCKET within 15s", want)
			}
		}
	}
	cfg := `
data_dir: %DATA%
http: {listen: "off"}
mqttsn: {enabled: false}
broker:
  listeners: [{address: "127.0.0.1:0"}]
sensors: []
`
	p := startOutpostEnv(t, dir, filepath.Join(dir, "data"), cfg,
		[]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"})
	next("READY=1")
	next("WATCHDOG=1")
	next("WATCHDOG=1") // fed repeatedly, not once
	p.cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1")
	next("READY=1")
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.out.String())
	}
	next("STOPPING=1")
}
