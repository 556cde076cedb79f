package test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// uplinkHubConfig is the real binary with the uplink to the test's
// mosquitto (%CLOUD%) and two forward rules; no sensors, no MQTT-SN.
const uplinkHubConfig = `
data_dir: %DATA%
site: a
broker:
  listeners:
    - address: "127.0.0.1:0"
  sys_interval: 1s
mqttsn:
  enabled: false
http:
  listen: "off"
uplink:
  enabled: true
  url: "mqtt://%CLOUD%"
  protocol_version: 5
  client_id: hub-crash
  forward:
    - {filter: "sensors/#", qos: 1, remote_prefix: "sites/a/"}
    - {filter: "alarm/#", qos: 2, remote_prefix: "sites/a/", priority: 10}
  reconnect: {min: 50ms, max: 500ms}
`

// TestUplinkHubKill9 runs the real outpost binary with the uplink to a
// real mosquitto and kills it with SIGKILL 10 times while paho publishers
// send QoS 1 and QoS 2 messages with sequence numbers into its broker.
// Every publish the hub acknowledged (PUBACK, PUBCOMP) must reach the
// cloud: first arrivals in order per topic, no QoS 2 duplicate, QoS 1
// duplicates at most a window per kill.
func TestUplinkHubKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("10 kill -9 rounds of the real binary")
	}
	cl := startUpCloud(t)
	k := newUpCounter(t, cl.Addr(), "sites/#")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := strings.ReplaceAll(uplinkHubConfig, "%CLOUD%", cl.Addr())
	acked := map[string][]string{}
	var mu sync.Mutex
	const rounds = 10
	for round := range rounds {
		p := startOutpostIn(t, dir, data, cfg)
		addr := p.addr("MQTT broker")
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, tc := range []struct {
			topic string
			qos   byte
		}{{"sensors/t", 1}, {"alarm/x", 2}} {
			wg.Go(func() {
				got := publishUntilKilled(t, addr, fmt.Sprintf("pub-%d-%d", round, tc.qos), tc.topic, tc.qos, round*1_000_000, stop)
				mu.Lock()
				acked["sites/a/"+tc.topic] = append(acked["sites/a/"+tc.topic], got...)
				mu.Unlock()
			})
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond) // let it run, then pull the plug
		p.kill9()
		close(stop)
		wg.Wait()
		t.Logf("round %d: %d + %d acknowledged so far", round, len(acked["sites/a/sensors/t"]), len(acked["sites/a/alarm/x"]))
	}
	// A last, clean run drains what is left.
	p := startOutpostIn(t, dir, data, cfg)
	got := k.wait(t, acked, 90*time.Second)
	if err := p.stop(); err != nil {
		t.Errorf("outpost did not stop cleanly: %v", err)
	}
	for topic, ps := range acked {
		pos := make(map[string]int, len(ps))
		for i, s := range ps {
			pos[s] = i
		}
		seen := map[string]bool{}
		last, dups := -1, 0
		for _, s := range got[topic] {
			if seen[s] {
				dups++
				continue
			}
			seen[s] = true
			i, ok := pos[s]
			if !ok {
				continue // published but not acknowledged before the kill: may or may not arrive
			}
			if i < last {
				t.Errorf("%s: %s arrived after %s", topic, s, ps[last])
			}
			last = max(last, i)
		}
		switch {
		case topic == "sites/a/alarm/x" && dups != 0:
			t.Errorf("%s: %d QoS 2 duplicates", topic, dups)
		case dups > 20*rounds+20:
			t.Errorf("%s: %d QoS 1 duplicates, more than a window per kill", topic, dups)
		}
		k.mu.Lock()
		t.Logf("%s: %d acknowledged, all reached the cloud, %d duplicates (%d arrivals with DUP set; the counter lost its connection %d times)",
			topic, len(ps), dups, k.dups[topic], k.drops)
		k.mu.Unlock()
	}
}

// publishUntilKilled publishes numbered messages (up to 20 in flight)
// until stop is closed or the hub is gone, and returns the payloads the
// hub acknowledged, in order.
func publishUntilKilled(t *testing.T, addr, id, topic string, qos byte, from int, stop <-chan struct{}) []string {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetOrderMatters(true).SetWriteTimeout(2 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("publisher %s: connect: %v", id, tok.Error())
		return nil
	}
	defer c.Disconnect(0)
	type pending struct {
		tok     mqtt.Token
		payload string
	}
	var window []pending
	var acked []string
	settle := func(p pending) bool {
		if p.tok.WaitTimeout(2*time.Second) && p.tok.Error() == nil {
			acked = append(acked, p.payload)
			return true
		}
		return false
	}
	for i := from; ; i++ {
		select {
		case <-stop:
			for _, p := range window {
				if !settle(p) {
					break
				}
			}
			return acked
		default:
		}
		s := fmt.Sprintf("%09d", i)
		window = append(window, pending{c.Publish(topic, qos, false, s), s})
		if len(window) == 20 {
			if !settle(window[0]) {
				<-stop
				return acked
			}
			window = window[1:]
		}
	}
}
