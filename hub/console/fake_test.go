package console

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// fakeBroker is a Publisher and Subscriber in memory: a publish reaches
// every subscription whose filter is "#" (non-$ topics) or "$SYS/#".
type fakeBroker struct {
	mu        sync.Mutex
	subs      map[int]func(msg.Message)
	filters   map[int]string
	next      int
	published []msg.Message
	fail      error
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{subs: map[int]func(msg.Message){}, filters: map[int]string{}}
}

func (b *fakeBroker) Subscribe(filter string, qos byte, fn func(msg.Message)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.subs[id], b.filters[id] = fn, filter
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}, nil
}

func (b *fakeBroker) Publish(ctx context.Context, m msg.Message) error {
	b.mu.Lock()
	if b.fail != nil {
		b.mu.Unlock()
		return b.fail
	}
	b.published = append(b.published, m)
	var fns []func(msg.Message)
	for id, fn := range b.subs {
		sys := strings.HasPrefix(m.Topic, "$")
		if (b.filters[id] == "#" && !sys) || (b.filters[id] == "$SYS/#" && strings.HasPrefix(m.Topic, "$SYS/")) {
			fns = append(fns, fn)
		}
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(m)
	}
	return nil
}

func (b *fakeBroker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.published)
}

func (b *fakeBroker) nsubs() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// fakeParts is the state behind fake Sources; tests change it under mu.
type fakeParts struct {
	mu      sync.Mutex
	broker  BrokerStats
	uplink  UplinkState
	queue   QueueState
	sensors []Sensor
	clients []Client
	peek    []QueueRecord
	purged  []string
	reads   []string
	health  error
	// mayPublish is the broker's ACL for logged-in users (nil: allow all).
	mayPublish func(user, topic string) bool
	aclAsked   []string // user topic, for each MayPublish call
}

func (f *fakeParts) set(fn func(*fakeParts)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func newFakeParts() *fakeParts {
	t0 := time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)
	return &fakeParts{
		broker: BrokerStats{ClientsConnected: 3, ClientsTotal: 7, MessagesReceived: 100, MessagesSent: 250, ReceivedByQoS: [3]int64{60, 30, 10}, Subscriptions: 4, Retained: 2,
			Dropped: map[string]int64{"queue_full": 1}},
		uplink: UplinkState{Enabled: true, State: "connected", URL: "mqtts://cloud.example.com:8883", LastConnect: t0},
		queue: QueueState{Depth: 12, Bytes: 3400, OldestAge: Duration(90 * time.Second), Rate: 2, ETA: Duration(6 * time.Second),
			Lanes: []QueueLane{{Lane: "p0", Depth: 12, Bytes: 3400, OldestAge: Duration(90 * time.Second)}}},
		sensors: []Sensor{{Name: "mast", Driver: "bme280", Bus: "i2c 1 @0x76", Topic: "sensors/mast", Interval: Duration(10 * time.Second),
			State: "ok", Last: &SensorReading{Time: t0, Values: []Value{{Quantity: "temperature", Value: 21.5, Unit: "°C"}}}}},
		clients: []Client{{ID: "paho-1", Protocol: "mqtt 3.1.1", State: "connected", Remote: "127.0.0.1:5000",
			Subscriptions: []Subscription{{Filter: "sensors/#", QoS: 1}}, InFlight: 1, Queued: 2}},
		peek: []QueueRecord{{Lane: "p0", Seq: 1, Topic: "sites/x/sensors/mast", QoS: 1, Size: 5, Payload: "hello"}},
	}
}

func (f *fakeParts) sources(b *fakeBroker) Sources {
	lock := func() func() { f.mu.Lock(); return f.mu.Unlock }
	return Sources{
		Version: "1.2.3",
		Started: time.Now().Add(-time.Hour),
		Broker:  func() BrokerStats { defer lock()(); return f.broker },
		Gateway: func() GatewayStats { return GatewayStats{Clients: map[string]int{"active": 1}} },
		Clients: func() []Client { defer lock()(); return append([]Client(nil), f.clients...) },
		Sensors: func() []Sensor { defer lock()(); return append([]Sensor(nil), f.sensors...) },
		Queue:   func() QueueState { defer lock()(); return f.queue },
		Uplink:  func() UplinkState { defer lock()(); return f.uplink },
		Peek: func(lane string, n int) ([]QueueRecord, error) {
			defer lock()()
			if lane != "" && lane != "p0" {
				return nil, errors.New("no queue lane " + lane)
			}
			return f.peek, nil
		},
		Purge: func(lane string) (int64, error) {
			defer lock()()
			f.purged = append(f.purged, lane)
			n := f.queue.Depth
			f.queue.Depth = 0
			return n, nil
		},
		ReadSensor: func(ctx context.Context, name string) (SensorReading, error) {
			defer lock()()
			f.reads = append(f.reads, name)
			return SensorReading{Time: time.Now(), Values: []Value{{Quantity: "temperature", Value: 22, Unit: "°C"}}}, nil
		},
		Publish: b,
		MayPublish: func(user, topic string) bool {
			defer lock()()
			f.aclAsked = append(f.aclAsked, user+" "+topic)
			return f.mayPublish == nil || f.mayPublish(user, topic)
		},
		Subscribe: b,
		Health:    func() error { defer lock()(); return f.health },
	}
}

// logBuffer collects log lines for the tests to check.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rig is a console on an httptest server with fake parts, Run going.
type rig struct {
	t      *testing.T
	c      *Console
	srv    *httptest.Server
	parts  *fakeParts
	broker *fakeBroker
	logs   *logBuffer
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	r := &rig{t: t, parts: newFakeParts(), broker: newFakeBroker(), logs: &logBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	if opts.Tick == 0 {
		opts.Tick = 50 * time.Millisecond
	}
	c, err := New(r.parts.sources(r.broker), opts)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	r.srv = httptest.NewServer(c)
	t.Cleanup(func() {
		cancel()
		<-done
		r.srv.Close()
	})
	// Run has subscribed once both filters are in.
	eventually(t, 5*time.Second, func() error {
		if r.broker.nsubs() != 2 {
			return errors.New("console has not subscribed yet")
		}
		return nil
	})
	return r
}

// eventually polls f until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends a request with the given cookies and headers.
func (r *rig) do(method, path, body string, hdr map[string]string, cookies ...*http.Cookie) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
