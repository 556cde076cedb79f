package storeforward

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// startCloud runs the stand-in cloud: a real mosquitto on 127.0.0.1 with
// persistence (autosaved every second) that a test can Stop and Restart on
// the same port and data directory. listenerLines follow its listener line
// (max_qos 1, retain_available false, ...).
func startCloud(t testing.TB, listenerLines ...string) *mosquittotest.Server {
	t.Helper()
	return mosquittotest.Start(t, mosquittotest.Options{
		AllowAnonymous:   true,
		Persistence:      true,
		AutosaveInterval: 1,
		LogTypes:         []string{"error", "warning"},
		Extra:            []string{"max_inflight_messages 20", "max_queued_messages 0"},
		Listeners:        []mosquittotest.Listener{{Lines: listenerLines}},
	})
}

// proxy forwards TCP connections to a target and can cut them all, to
// simulate a link that drops mid-flight.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	refuse bool
	cuts   int
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "mqtt://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(c, s)
		go p.pump(s, c)
	}
}

func (p *proxy) pump(src, dst net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	src.Close()
	dst.Close()
}

// cut closes every connection through the proxy at once.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	if len(p.conns) > 0 {
		p.cuts++
	}
	clear(p.conns)
}

// setRefuse makes the proxy close new connections at once (link down).
func (p *proxy) setRefuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// arrival is one message the counter received.
type arrival struct {
	topic   string
	payload string
	qos     byte
	id      string // outpost-id user property (v5)
	ts      string
	dup     bool
}

// counter subscribes to the cloud with a persistent QoS 2 session and
// records every message, reconnecting when the cloud goes away.
type counter struct {
	t      *testing.T
	cloud  string
	filter string
	store  client.MemoryStore
	mu     sync.Mutex
	got    []arrival
	cancel context.CancelFunc
	done   chan struct{}
}

func newCounter(t *testing.T, cloudURL, filter string) *counter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k := &counter{t: t, cloud: cloudURL, filter: filter, cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go k.run(ctx, ready)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("counter did not subscribe")
	}
	t.Cleanup(func() {
		cancel()
		<-k.done
	})
	return k
}

func (k *counter) run(ctx context.Context, ready chan struct{}) {
	defer close(k.done)
	first := true
	// A fresh id with clean start false from the first connection:
	// mosquitto does not restore, after a restart, the session of a
	// client that connected with clean start set.
	id := fmt.Sprintf("counter-%d", time.Now().UnixNano())
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, client.Config{
			URL: k.cloud, ClientID: id, ProtocolVersion: packet.V5,
			CleanStart: false, SessionExpiry: 3600, Store: &k.store, OnMessage: k.on,
			ReceiveMaximum: 100, DialTimeout: 2 * time.Second,
		})
		if err != nil {
			time.Sleep(50 * time.Millisecond) // the cloud is restarting; retry
			continue
		}
		if first {
			if _, err := c.Subscribe(ctx, []packet.Subscription{{Filter: k.filter, QoS: 2}}, k.on); err != nil {
				k.t.Errorf("counter subscribe: %v", err)
			}
			first = false
			close(ready)
		}
		select {
		case <-ctx.Done():
			c.Disconnect(context.Background())
			return
		case <-c.Done():
		}
	}
}

func (k *counter) on(m *client.Message) {
	a := arrival{topic: m.Topic, payload: string(m.Payload), qos: m.QoS, dup: m.Dup}
	for _, u := range m.Props.User {
		switch u.Key {
		case PropID:
			a.id = u.Value
		case PropTime:
			a.ts = u.Value
		}
	}
	k.mu.Lock()
	k.got = append(k.got, a)
	k.mu.Unlock()
}

func (k *counter) arrivals() []arrival {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]arrival(nil), k.got...)
}

// waitFor polls until every payload in want has arrived on its topic.
func (k *counter) waitFor(t *testing.T, want map[string][]string, timeout time.Duration) []arrival {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := k.arrivals()
		missing := missingOf(got, want)
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s (%d arrivals)", timeout, missing, len(got))
		}
		time.Sleep(20 * time.Millisecond) // poll, bounded by the deadline
	}
}

func missingOf(got []arrival, want map[string][]string) string {
	seen := map[string]map[string]bool{}
	for _, a := range got {
		if seen[a.topic] == nil {
			seen[a.topic] = map[string]bool{}
		}
		seen[a.topic][a.payload] = true
	}
	var miss []string
	n := 0
	for topic, ps := range want {
		for _, p := range ps {
			if !seen[topic][p] {
				n++
				if len(miss) < 5 {
					miss = append(miss, topic+" "+p)
				}
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d missing, e.g. %s", n, strings.Join(miss, ", "))
}

// checkOrder checks that on each topic the first arrivals of the payloads
// are in want's order, and returns the number of duplicates per topic.
func checkOrder(t *testing.T, got []arrival, want map[string][]string) map[string]int {
	t.Helper()
	dups := map[string]int{}
	for topic, ps := range want {
		pos := map[string]int{}
		for i, p := range ps {
			pos[p] = i
		}
		seen := map[string]bool{}
		last := -1
		for _, a := range got {
			if a.topic != topic {
				continue
			}
			if seen[a.payload] {
				dups[topic]++
				continue
			}
			seen[a.payload] = true
			i, ok := pos[a.payload]
			if !ok {
				t.Errorf("%s: unexpected payload %q", topic, a.payload)
				continue
			}
			if i < last {
				t.Errorf("%s: %q arrived after %q: out of order", topic, a.payload, ps[last])
			}
			last = max(last, i)
		}
	}
	return dups
}
