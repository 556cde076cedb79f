package auth

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
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
