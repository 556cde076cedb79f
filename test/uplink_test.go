package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// startUpCloud runs a real mosquitto standing in for the cloud broker, with
// persistence autosaved every second, which the test can Stop and Restart
// on the same port and persistence dir.
func startUpCloud(t *testing.T) *mosquittotest.Server {
	t.Helper()
	return mosquittotest.Start(t, mosquittotest.Options{
		AllowAnonymous:   true,
		Persistence:      true,
		AutosaveInterval: 1,
		LogTypes:         []string{"error", "warning"},
		Extra:            []string{"max_queued_messages 0"},
	})
}

// upProxy forwards TCP to the cloud and can cut every connection at once.
type upProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newUpProxy(t *testing.T, target string) *upProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &upProxy{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, a, b)
			p.mu.Unlock()
			wg.Go(func() { io.Copy(a, b); a.Close(); b.Close() })
			wg.Go(func() { io.Copy(b, a); a.Close(); b.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); p.cut(); wg.Wait() })
	return p
}

func (p *upProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// upCounter is an independent client (paho.mqtt.golang, MQTT 3.1.1) with
// a persistent QoS 2 session on the cloud, recording every arrival.
//
// mosquitto sets DUP only on its own retransmissions to the counter (after
// the counter's connection dropped, e.g. across a cloud restart), and
// paho.mqtt.golang hands such a QoS 2 redelivery to the handler again. So
// a repeated payload with DUP set is the cloud-to-counter leg and is not
// recorded; one without DUP is a second PUBLISH the cloud received, which
// is what the tests count.
type upCounter struct {
	mu    sync.Mutex
	got   map[string][]string        // topic -> payloads in arrival order
	seen  map[string]map[string]bool // topic -> payloads received
	dups  map[string]int             // topic -> redeliveries with DUP set (not recorded)
	drops int                        // connections the counter lost
}

func newUpCounter(t *testing.T, addr, filter string) *upCounter {
	t.Helper()
	k := &upCounter{got: map[string][]string{}, seen: map[string]map[string]bool{}, dups: map[string]int{}}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("counter-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetMaxReconnectInterval(100 * time.Millisecond).SetOrderMatters(true)
	opts.SetDefaultPublishHandler(k.on)
	opts.SetConnectionLostHandler(func(mqtt.Client, error) { k.mu.Lock(); k.drops++; k.mu.Unlock() })
	opts.SetOnConnectHandler(func(c mqtt.Client) { c.Subscribe(filter, 2, k.on) })
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("counter connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return k
}

func (k *upCounter) on(_ mqtt.Client, m mqtt.Message) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tp, p := m.Topic(), string(m.Payload())
	if k.seen[tp] == nil {
		k.seen[tp] = map[string]bool{}
	}
	if m.Duplicate() && k.seen[tp][p] {
		k.dups[tp]++
		return
	}
	k.seen[tp][p] = true
	k.got[tp] = append(k.got[tp], p)
}

// wait polls until every payload of want arrived; it returns the arrivals.
func (k *upCounter) wait(t *testing.T, want map[string][]string, d time.Duration) map[string][]string {
	t.Helper()
	var got map[string][]string
	eventually(t, d, func() error {
		k.mu.Lock()
		got = map[string][]string{}
		for tp, ps := range k.got {
			got[tp] = append([]string(nil), ps...)
		}
		k.mu.Unlock()
		for tp, ps := range want {
			seen := map[string]bool{}
			for _, p := range got[tp] {
				seen[p] = true
			}
			for _, p := range ps {
				if !seen[p] {
					return fmt.Errorf("%s %s has not reached the cloud (%d arrivals on the topic)", tp, p, len(got[tp]))
				}
			}
		}
		return nil
	})
	return got
}

// upHub is the part of a hub this test needs: the database, our broker
// with the forwarder's tap, and the forwarder running.
type upHub struct {
	db     *queue.DB
	broker *brokercore.Broker
	fwd    *storeforward.Forwarder
	cancel context.CancelFunc
	done   chan error
	addr   string
}

func startUpHub(t *testing.T, dir string, cfg storeforward.Config) *upHub {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	db, err := queue.Open(dir, queue.Options{Logger: log, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := brokercore.New(brokercore.Config{Listeners: []listener.Config{{Address: "127.0.0.1:0"}}, SysInterval: -1},
		brokercore.Options{Logger: log, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	f, err := storeforward.New(cfg, storeforward.Deps{DB: db, Publisher: b, Sessions: b, Logger: log, Site: "a", SysInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b.AddTap(f.Tap()) // before the listeners open: nothing cloud-bound is missed
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &upHub{db: db, broker: b, fwd: f, cancel: cancel, done: make(chan error, 1), addr: b.Addrs()[0].String()}
	go func() { h.done <- f.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop shuts down in the hub's order: broker, uplink, database.
func (h *upHub) stop() {
	if h.cancel == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.broker.Shutdown(ctx)
	h.cancel()
	<-h.done
	h.db.Close()
	h.cancel = nil
}

// upPublish publishes n messages with sequence numbers from a paho client
// to our broker and returns the payloads the broker acknowledged.
func upPublish(t *testing.T, addr, topic string, qos byte, from, n int) []string {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("pub-%s-%d", topic, from)).SetOrderMatters(true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	var toks []mqtt.Token
	var ps []string
	for i := from; i < from+n; i++ {
		p := fmt.Sprintf("%09d", i)
		ps = append(ps, p)
		toks = append(toks, c.Publish(topic, qos, false, p))
	}
	var acked []string
	for i, tok := range toks {
		if tok.WaitTimeout(20*time.Second) && tok.Error() == nil {
			acked = append(acked, ps[i])
		}
	}
	if len(acked) != n {
		t.Fatalf("%s: our broker acknowledged %d of %d publishes", topic, len(acked), n)
	}
	return acked
}

// TestUplinkEndToEnd: paho publishers at QoS 1 and 2 into our broker, the
// forwarder's tap and queue, the uplink to a real mosquitto: through a
// TCP cut, a cloud restart and a hub restart over the same database, every
// acknowledged publish reaches the cloud, first arrivals in order per
// topic, no QoS 2 duplicate. A downlinked command reaches a local
// subscriber and is not sent back up although it matches a forward rule.
func TestUplinkEndToEnd(t *testing.T) {
	cl := startUpCloud(t)
	px := newUpProxy(t, cl.Addr())
	k := newUpCounter(t, cl.Addr(), "sites/#")
	dir := t.TempDir()
	cfg := storeforward.Config{
		Enabled: true, URL: "mqtt://" + px.ln.Addr().String(), ProtocolVersion: 5, ClientID: "hub-a",
		Forward: []storeforward.ForwardRule{
			{Filter: "sensors/#", QoS: 1, RemotePrefix: "sites/a/"},
			{Filter: "alarm/#", QoS: 2, RemotePrefix: "sites/a/", Priority: 10},
			{Filter: "relay/#", QoS: 1, RemotePrefix: "sites/a/"},
		},
		Downlink:  []storeforward.DownlinkRule{{Filter: "sites/a/cmd/#", QoS: 1, StripPrefix: "sites/a/cmd/", LocalPrefix: "relay/"}},
		Reconnect: storeforward.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	want := map[string][]string{}
	phase := func(h *upHub, from int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, tc := range []struct {
			topic string
			qos   byte
		}{{"sensors/t", 1}, {"alarm/x", 2}} {
			wg.Go(func() {
				acked := upPublish(t, h.addr, tc.topic, tc.qos, from, 500)
				mu.Lock()
				want["sites/a/"+tc.topic] = append(want["sites/a/"+tc.topic], acked...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}

	h := startUpHub(t, dir, cfg)
	phase(h, 0)
	px.cut() // the link drops mid-flight
	phase(h, 1000)
	cl.Stop() // the cloud goes away while the hub takes more
	phase(h, 2000)
	cl.Restart()
	h.stop() // the hub restarts over the same database
	h = startUpHub(t, dir, cfg)
	phase(h, 3000)

	got := k.wait(t, want, 60*time.Second)
	for topic, ps := range want {
		pos := map[string]int{}
		for i, p := range ps {
			pos[p] = i
		}
		seen := map[string]bool{}
		last, dups := -1, 0
		for _, p := range got[topic] {
			if seen[p] {
				dups++
				continue
			}
			seen[p] = true
			if pos[p] < last {
				t.Errorf("%s: %s arrived out of order", topic, p)
			}
			last = pos[p]
		}
		if topic == "sites/a/alarm/x" && dups != 0 {
			t.Errorf("%d QoS 2 duplicates", dups)
		}
		k.mu.Lock()
		t.Logf("%s: %d acknowledged, all arrived, %d duplicates (%d cloud redeliveries to the counter with DUP set; counter drops %d)",
			topic, len(ps), dups, k.dups[topic], k.drops)
		k.mu.Unlock()
	}

	// The link status is in our broker's $SYS tree (retained).
	local := pahoLocal(t, h.addr)
	sys := make(chan string, 64)
	if tok := local.Subscribe("$SYS/outpost/uplink/#", 0, func(_ mqtt.Client, m mqtt.Message) { sys <- m.Topic() + "=" + string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	eventually(t, 10*time.Second, func() error {
		for {
			select {
			case s := <-sys:
				if s == "$SYS/outpost/uplink/state=connected" {
					return nil
				}
			default:
				return fmt.Errorf("no $SYS/outpost/uplink/state=connected yet")
			}
		}
	})

	// Downlink: a command from the cloud reaches a local subscriber.
	cmds := make(chan string, 4)
	if tok := local.Subscribe("relay/#", 1, func(_ mqtt.Client, m mqtt.Message) { cmds <- m.Topic() + " " + string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	app := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + cl.Addr()).SetClientID("cloud-app"))
	if tok := app.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer app.Disconnect(100)
	eventually(t, 10*time.Second, func() error {
		if st := h.fwd.Status(); st.State != storeforward.StateConnected {
			return fmt.Errorf("uplink %s", st.State)
		}
		return nil
	})
	app.Publish("sites/a/cmd/valve", 1, false, "open").WaitTimeout(5 * time.Second)
	select {
	case c := <-cmds:
		if c != "relay/valve open" {
			t.Fatalf("local subscriber got %q", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the downlinked command did not reach the local subscriber")
	}
	// relay/# is also a forward rule: the downlinked message must not loop.
	marker := upPublish(t, h.addr, "sensors/t", 1, 9000, 1)
	k.wait(t, map[string][]string{"sites/a/sensors/t": marker}, 10*time.Second)
	k.mu.Lock()
	echoed := len(k.got["sites/a/relay/valve"])
	k.mu.Unlock()
	if echoed != 0 {
		t.Errorf("the downlinked command went back up to the cloud %d times", echoed)
	}
}

func pahoLocal(t *testing.T, addr string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("local-sub"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}
