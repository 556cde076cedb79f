package auth

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// needTool skips the test when a Debian mosquitto binary is missing
// (apt-get install -y mosquitto mosquitto-clients).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/" + name); err2 == nil {
			return "/usr/sbin/" + name
		}
		t.Skipf("%s not installed (apt-get install -y mosquitto mosquitto-clients): %v", name, err)
	}
	return p
}

// runTool runs a mosquitto tool and fails the test if it fails.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(needTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMosquitto runs a real mosquitto on a free loopback port with the
// given extra config lines and returns the port. It is stopped at cleanup.
func startMosquitto(t *testing.T, conf string) int {
	t.Helper()
	bin := needTool(t, "mosquitto")
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf("listener %d 127.0.0.1\n%s\n", port, conf)
	if os.Geteuid() == 0 {
		cfg += "user root\n" // else mosquitto drops to user mosquitto and cannot read t.TempDir()
	}
	cfgPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", cfgPath, "-v")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return port
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %d after 5s:\n%s", port, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mosquittoPub publishes one message with credentials and returns the
// client's error (nil = CONNACK accepted and published).
func mosquittoPub(t *testing.T, port int, user, password string) error {
	t.Helper()
	bin := needTool(t, "mosquitto_pub")
	out, err := exec.Command(bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-u", user, "-P", password, "-t", "auth/test", "-m", "x").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
