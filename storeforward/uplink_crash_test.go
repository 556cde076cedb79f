package storeforward

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// The crash child: a process that runs a Forwarder over a database and
// appends sequence-numbered messages through its tap, printing
// "acked <topic> <n>" once each append is durable, until it is killed.
const (
	envCrashDir   = "UPLINK_CRASH_DIR"
	envCrashURL   = "UPLINK_CRASH_URL"
	envCrashFrom  = "UPLINK_CRASH_FROM"
	envCrashCount = "UPLINK_CRASH_COUNT"
	envCrashProto = "UPLINK_CRASH_PROTOCOL"
)

// TestUplinkCrashChild is the child's body; it runs only under the parent.
func TestUplinkCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("runs as a child of TestUplinkKill9")
	}
	from, _ := strconv.Atoi(os.Getenv(envCrashFrom))
	count, _ := strconv.Atoi(os.Getenv(envCrashCount))
	proto, _ := strconv.Atoi(os.Getenv(envCrashProto))
	db := openDB(t, dir)
	f, err := New(baseConfig(os.Getenv(envCrashURL), proto), Deps{DB: db, Logger: testLogger(t), SysInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	go f.Run(context.Background())
	var outMu sync.Mutex
	say := func(format string, a ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", a...) // one write: a whole line
		outMu.Unlock()
	}
	say("ready")
	slots := make(chan struct{}, 64)
	for i := from; count == 0 || i < from+count; i++ {
		for _, m := range []msg.Message{
			{Topic: "sensors/t", Payload: fmt.Appendf(nil, "%09d", i), QoS: 1, Received: time.Now()},
			{Topic: "alarm/x", Payload: fmt.Appendf(nil, "%09d", i), QoS: 2, Received: time.Now()},
		} {
			slots <- struct{}{}
			f.Tap().Append(m, func(err error) {
				if err == nil {
					say("acked %s %s", m.Topic, m.Payload)
				}
				<-slots
			})
		}
		time.Sleep(time.Millisecond) // a steady stream (about 2000 messages/s), not one burst
	}
	waitDrained(t, f, 50*time.Second)
	say("drained")
	select {} // the parent kills us
}

// TestUplinkKill9 runs the forwarder in a child process and kills it with
// SIGKILL at random moments while messages are appended and drained, 10
// times over the same database, with the link cut now and then; then a
// last child drains the rest. Every message whose append was acknowledged
// must reach the cloud; first arrivals in order; no QoS 2 duplicate; QoS 1
// duplicates at most a window per kill.
func TestUplinkKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes for several seconds")
	}
	t.Run("v5", func(t *testing.T) { testKill9(t, 5, 10) })
	t.Run("v311", func(t *testing.T) { testKill9(t, 4, 5) })
}

func testKill9(t *testing.T, proto, rounds int) {
	cl := startCloud(t)
	k := newCounter(t, cl.URL(), "sites/#")
	px := newProxy(t, cl.Addr())
	dir := t.TempDir()
	acked := map[string][]string{}
	for round := range rounds + 1 {
		last := round == rounds
		count := 0
		if last {
			count = 1 // the final child appends one more and drains everything
		}
		lines, kill := startCrashChild(t, dir, px.url(), proto, round*1_000_000, count)
		n := 0
		select {
		case l := <-lines:
			if l != "ready" {
				t.Fatalf("round %d: child said %q", round, l)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: child not ready", round)
		}
		deadline := time.After(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		if last {
			deadline = time.After(60 * time.Second)
		}
		if round%3 == 1 {
			go func() { time.Sleep(100 * time.Millisecond); px.cut() }()
		}
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early", round)
				}
				if f := strings.Fields(l); len(f) == 3 && f[0] == "acked" {
					acked["sites/a/"+f[1]] = append(acked["sites/a/"+f[1]], f[2])
					n++
				} else if l != "drained" {
					t.Logf("child: %s", l)
				}
				if last && l == "drained" {
					break read
				}
			case <-deadline:
				if last {
					t.Fatal("the last child did not drain the queue within 60 s")
				}
				break read
			}
		}
		kill()
		for l := range lines { // what it printed before it died counts too
			if f := strings.Fields(l); len(f) == 3 && f[0] == "acked" {
				acked["sites/a/"+f[1]] = append(acked["sites/a/"+f[1]], f[2])
				n++
			}
		}
		t.Logf("round %d: %d appends acknowledged before SIGKILL", round, n)
	}
	got := k.waitFor(t, acked, 30*time.Second)
	// First arrivals in order: payloads grow within each topic.
	dups := map[string]int{}
	for topic := range acked {
		seen := map[string]bool{}
		prev := ""
		for _, a := range got {
			if a.topic != topic {
				continue
			}
			if seen[a.payload] {
				dups[topic]++
				continue
			}
			seen[a.payload] = true
			if a.payload < prev {
				t.Errorf("%s: %s arrived after %s", topic, a.payload, prev)
			}
			prev = a.payload
		}
	}
	if dups["sites/a/alarm/x"] != 0 {
		t.Errorf("%d QoS 2 duplicates across %d kills", dups["sites/a/alarm/x"], rounds)
	}
	if dups["sites/a/sensors/t"] > 20*(rounds+rounds/3+1) {
		t.Errorf("%d QoS 1 duplicates: more than a window of 20 per kill or cut", dups["sites/a/sensors/t"])
	}
	t.Logf("acknowledged %d + %d; QoS 1 duplicates %d", len(acked["sites/a/sensors/t"]), len(acked["sites/a/alarm/x"]), dups["sites/a/sensors/t"])
}

// startCrashChild runs TestUplinkCrashChild in a new process; lines
// carries its stdout until it exits; kill sends SIGKILL.
func startCrashChild(t *testing.T, dir, url string, proto, from, count int) (<-chan string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUplinkCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashURL+"="+url,
		envCrashFrom+"="+strconv.Itoa(from), envCrashCount+"="+strconv.Itoa(count), envCrashProto+"="+strconv.Itoa(proto))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		cmd.Wait() // after every read from the pipe
	}()
	kill := func() { cmd.Process.Signal(syscall.SIGKILL) }
	t.Cleanup(func() {
		kill()
		go func() {
			for range lines { // unblock the reader if the test stopped early
			}
		}()
		<-exited
	})
	return lines, kill
}
