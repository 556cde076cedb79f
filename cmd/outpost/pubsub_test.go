package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// startTestMosquitto runs Debian's mosquitto on a free loopback port with
// every log line captured, and stops it when the test ends.
func startTestMosquitto(t *testing.T, listenerConf ...string) (port string, log func() string) {
	t.Helper()
	srv := mosquittotest.Start(t, mosquittotest.Options{
		AllowAnonymous: true,
		Persistence:    true,
		Listeners:      []mosquittotest.Listener{{Lines: listenerConf}},
	})
	return fmt.Sprint(srv.Port()), srv.Log
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// runCmd runs `outpost pub|sub args` with stdin and returns its stdout.
func runCmd(ctx context.Context, sub bool, stdin string, args ...string) (string, string, error) {
	cmd := newPubCmd()
	if sub {
		cmd = newSubCmd()
	}
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestPubSubCommands(t *testing.T) {
	port, log := startTestMosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hp := []string{"-h", "127.0.0.1", "-p", port}

	t.Run("retained message to sub -C 1 -v", func(t *testing.T) {
		if _, _, err := runCmd(ctx, false, "", append(hp, "-t", "cmd/ret", "-m", "21.5", "-r", "-q", "1", "-V", "mqttv5")...); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCmd(ctx, true, "", append(hp, "-t", "cmd/#", "-C", "1", "-v")...)
		if err != nil || out != "cmd/ret 21.5\n" {
			t.Fatalf("sub: %q %v", out, err)
		}
	})

	t.Run("sub -R skips retained, -W times out with 27", func(t *testing.T) {
		out, stderr, err := runCmd(ctx, true, "", append(hp, "-t", "cmd/ret", "-R", "-W", "1")...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 27 || out != "" || !strings.Contains(stderr, "Timed out") {
			t.Fatalf("sub -R -W 1: out %q stderr %q err %v, want exit status 27 and no output", out, stderr, err)
		}
	})

	t.Run("pub -l lines to a QoS 2 sub", func(t *testing.T) {
		type result struct {
			out string
			err error
		}
		res := make(chan result, 1)
		go func() {
			out, _, err := runCmd(ctx, true, "", append(hp, "-t", "cmd/lines", "-q", "2", "-C", "3", "-N", "-i", "lines-sub", "-V", "5")...)
			res <- result{out, err}
		}()
		poll(t, "the subscription", func() bool { return strings.Contains(log(), "Received SUBSCRIBE from lines-sub") })
		if _, _, err := runCmd(ctx, false, "a\nbb\nccc\n", append(hp, "-t", "cmd/lines", "-l", "-q", "2")...); err != nil {
			t.Fatal(err)
		}
		r := <-res
		if r.err != nil || r.out != "abbccc" {
			t.Fatalf("sub: %q %v, want the three lines without newlines", r.out, r.err)
		}
	})

	t.Run("-L URL and mosquitto_sub as the reader", func(t *testing.T) {
		ms, err := exec.LookPath("mosquitto_sub")
		if err != nil {
			t.Skip("mosquitto_sub not installed")
		}
		sub := exec.CommandContext(ctx, ms, "-h", "127.0.0.1", "-p", port, "-t", "cmd/url", "-C", "1", "-i", "ref-sub", "-q", "1")
		var out bytes.Buffer
		sub.Stdout = &out
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		poll(t, "mosquitto_sub's subscription", func() bool { return strings.Contains(log(), "Received SUBSCRIBE from ref-sub") })
		if _, _, err := runCmd(ctx, false, "", "-L", "mqtt://u:p@127.0.0.1:"+port+"/cmd/url", "-m", "via-url", "-q", "1"); err != nil {
			t.Fatal(err)
		}
		if err := sub.Wait(); err != nil || out.String() != "via-url\n" {
			t.Fatalf("mosquitto_sub: %q %v", out.String(), err)
		}
	})

	t.Run("persistent session with -c", func(t *testing.T) {
		// Subscribe with a kept session, go away, get the message later.
		if _, _, err := runCmd(ctx, true, "", append(hp, "-t", "cmd/later", "-q", "1", "-c", "-i", "later", "-W", "1")...); err == nil {
			t.Fatal("expected the timeout")
		}
		if _, _, err := runCmd(ctx, false, "", append(hp, "-t", "cmd/later", "-q", "1", "-m", "queued")...); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCmd(ctx, true, "", append(hp, "-t", "cmd/later", "-q", "1", "-c", "-i", "later", "-C", "1")...)
		if err != nil || out != "queued\n" {
			t.Fatalf("resumed sub: %q %v", out, err)
		}
	})
}

func TestPubSubFlagErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		sub  bool
		args []string
		want string
	}{
		{false, []string{"-t", "a", "-m", "x", "-V", "mqttv6"}, "-V"},
		{false, []string{"-t", "a", "-m", "x", "-q", "3"}, "-q 3"},
		{false, []string{"-t", "a"}, "exactly one of -m"},
		{false, []string{"-t", "a", "-m", "x", "-n"}, "exactly one of -m"},
		{false, []string{"-m", "x"}, "one topic"},
		{true, []string{"-t", "a", "-c"}, "-c needs a client id"},
		{true, []string{}, "topic filter"},
		{true, []string{"-t", "a", "-x", "soon"}, "-x"},
		{false, []string{"-L", "http://h/t", "-m", "x"}, "scheme"},
		{false, []string{"-t", "a", "-m", "x", "--cafile", "/nonexistent/ca.pem"}, "--cafile"},
	} {
		_, _, err := runCmd(ctx, tc.sub, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
