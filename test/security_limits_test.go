package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Connection limits of the real binary: broker.max_connections and a
// listener's connect_rate, each logged once per cause with counts.

// rawConnect opens a TCP connection, sends an MQTT 3.1.1 CONNECT (clean
// session, keep alive 60) and reads the CONNACK. It returns the CONNACK's
// return code, or -1 if the connection was closed without one.
func rawConnect(addr, clientID string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// [MQTT-3.1]: protocol name "MQTT", level 4, flags 0x02 (clean session).
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, byte(len(clientID) >> 8), byte(len(clientID))}
	body := append(vh, clientID...)
	if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		return -1, nil // closed by the listener before we wrote
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return -1, nil
	}
	if !bytes.Equal(ack[:3], []byte{0x20, 0x02, 0x00}) {
		return 0, fmt.Errorf("not a CONNACK: % x", ack)
	}
	return int(ack[3]), nil
}

// TestSecurityMaxConnections: with max_connections 3 the fourth client is
// refused (3.1.1: CONNACK 3, 5.0: 0x89 server busy), refusals are logged
// once per cause with a count, and a freed slot can be taken again.
func TestSecurityMaxConnections(t *testing.T) {
	t.Parallel()
	p := startOutpost(t, secConfig("  max_connections: 3\n  listeners:\n"+plainListener))
	addr := brokerAddrs(t, p, 1)[0]
	url := "tcp://" + addr
	var held []mqtt.Client
	for i := range 3 {
		held = append(held, mustPaho(t, url, fmt.Sprintf("held-%d", i)))
	}
	if _, err := pahoDial(t, url, "fourth"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "server unavailable") {
		t.Fatalf("paho 3.1.1 as fourth client: %v, want CONNACK 3 (server unavailable)", err)
	}
	if _, ca, err := paho5Dial(t, addr, "fourth-v5", "", "", nil); err == nil || ca == nil || ca.ReasonCode != 0x89 {
		t.Fatalf("paho.golang v5 as fourth client: %v %+v, want CONNACK 0x89 (server busy)", err, ca)
	}
	for i := range 3 {
		if rc, err := rawConnect(addr, fmt.Sprintf("raw-%d", i)); err != nil || rc != 3 {
			t.Fatalf("raw CONNECT as extra client: rc %d %v, want 3", rc, err)
		}
	}
	if out, err := runTool(t, "mosquitto_pub", mosqArgs(t, addr, "-t", "limit", "-m", "x")...); err == nil {
		t.Fatalf("mosquitto_pub got in past max_connections:\n%s", out)
	}
	// Six clients were refused: one line, not six.
	const cause = "connection refused: max_connections reached"
	if ls := logLines(p, cause); len(ls) != 1 || !strings.Contains(ls[0], "max_connections=3") {
		t.Fatalf("want one log line for six refusals, got:\n%s", strings.Join(ls, "\n"))
	}
	// A slot freed by a client leaving can be taken.
	// (Until the broker has seen it leave, tries are refused and counted.)
	held[0].Disconnect(100)
	extra := 0
	eventually(t, 5*time.Second, func() error {
		_, err := pahoDial(t, url, "held-again")
		if err != nil {
			extra++
		}
		return err
	})
	// The refusals counted meanwhile come out with the next line for the
	// cause, at most one every 10 seconds.
	time.Sleep(10 * time.Second) // the log's own interval, not a poll
	if rc, err := rawConnect(addr, "late"); err != nil || rc != 3 {
		t.Fatalf("raw CONNECT after the interval: rc %d %v, want 3", rc, err)
	}
	ls := waitLog(t, p, cause, fmt.Sprintf("refused_since_last_log=%d", 6+extra))
	if n := len(logLines(p, cause)); n != 2 {
		t.Fatalf("want 2 log lines for seven refusals 10s apart, got %d (last %q)", n, ls)
	}
	// Refusals after the last line must not vanish: they are summed up at
	// the latest when the hub stops, as the listeners' refusal logs do.
	t.Run("pending count logged at stop", func(t *testing.T) {
		for i := range 3 {
			if rc, err := rawConnect(addr, fmt.Sprintf("tail-%d", i)); err != nil || rc != 3 {
				t.Fatalf("raw CONNECT: rc %d %v, want 3", rc, err)
			}
		}
		if err := p.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if len(logLines(p, cause, "refused_since_last_log=3")) == 0 {
			t.Fatalf("the three refusals after the last log line were not logged at stop:\n%s", p.out.String())
		}
	})
}

var rateSummaryRE = regexp.MustCompile(`(\d+) more connections on listener (\S+) failed or were refused in the last \S+ for the same cause \(connect-rate\)`)

// TestSecurityConnectRate: a burst of 200 connects on a listener with
// connect_rate 20 refuses most of them, logs the first in full and the
// rest as one count, and a client connected before keeps publishing.
func TestSecurityConnectRate(t *testing.T) {
	t.Parallel()
	p := startOutpost(t, secConfig("  listeners:\n    - {address: \"127.0.0.1:0\", connect_rate: 20}\n"))
	addr := brokerAddrs(t, p, 1)[0]
	url := "tcp://" + addr
	sub := mustPaho(t, url, "rate-sub")
	in := pahoSubscribe(t, sub, "rate/#", 1)
	pub := mustPaho(t, url, "rate-pub")

	// The publisher keeps going through the burst.
	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	var pubErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		// Through the burst, and at least 20 messages.
		for i := 0; ctx.Err() == nil || i < 20; i++ {
			tok := pub.Publish("rate/m", 1, false, strconv.Itoa(i))
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				pubErr = fmt.Errorf("publish %d during the burst: %v", i, tok.Error())
				return
			}
			sent.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})

	const burst = 200
	var accepted, refused atomic.Int64
	start := time.Now()
	jobs := make(chan int)
	var workers sync.WaitGroup
	for range 20 {
		workers.Go(func() {
			for i := range jobs {
				rc, err := rawConnect(addr, fmt.Sprintf("burst-%d", i))
				switch {
				case err != nil:
					t.Errorf("burst connect %d: %v", i, err)
				case rc == 0:
					accepted.Add(1)
				case rc == -1:
					refused.Add(1)
				default:
					t.Errorf("burst connect %d: CONNACK %d", i, rc)
				}
			}
		})
	}
	for i := range burst {
		jobs <- i
	}
	close(jobs)
	workers.Wait()
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	a, r := accepted.Load(), refused.Load()
	t.Logf("burst of %d connects in %v: %d accepted, %d refused; %d publishes meanwhile", burst, elapsed, a, r, sent.Load())
	// A bucket of 20 plus 20 a second.
	if limit := 20 + int64(20*elapsed.Seconds()) + 1; a > limit || a < 1 || r == 0 || a+r != burst {
		t.Fatalf("accepted %d, refused %d in %v; want 1..%d accepted and the rest refused", a, r, elapsed, limit)
	}
	// Every message published during the burst arrived, in order.
	for i := range sent.Load() {
		if m := waitPaho(t, in); m.payload != strconv.Itoa(int(i)) {
			t.Fatalf("subscriber got %q, want %d", m.payload, i)
		}
	}
	// One full line for the first refusal...
	first := logLines(p, "cause=connect-rate")
	if len(first) != 1 || !strings.Contains(first[0], "accepts at most 20 new connections per second (connect_rate)") {
		t.Fatalf("want one log line for the refused burst, got:\n%s", strings.Join(first, "\n"))
	}
	// ...and the rest summed up when the interval ends (here: at stop).
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	m := rateSummaryRE.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no summary line for the connect-rate refusals; output:\n%s", p.out.String())
	}
	if n, _ := strconv.Atoi(m[1]); int64(n) != r-1 || m[2] != addr {
		t.Fatalf("summary %q: want %d more refusals on %s", m[0], r-1, addr)
	}
}
