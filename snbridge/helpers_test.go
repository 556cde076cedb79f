package snbridge

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/internal/fakebroker"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// fakeClock is a settable clock for the keepalive, sleep and retry timers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// logCounter counts log records by message, to check rate limiting.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs[r.Message]++
	l.mu.Unlock()
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for m, c := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n += c
		}
	}
	return n
}

type env struct {
	g     *Gateway
	b     *fakebroker.Broker
	clock *fakeClock
	logs  *logCounter
	addr  string
}

// start runs a gateway on 127.0.0.1:0 with a fake broker and fake clock;
// cleanup stops it and checks that Run returned.
func start(t testing.TB, mut func(*Config)) *env {
	t.Helper()
	clk := newFakeClock()
	cfg := Config{
		Listen:            "127.0.0.1:0",
		Broadcast:         "127.0.0.1:9", // discard; discovery tests set their own
		AdvertiseInterval: -1,
		Clock:             clk.Now,
		TickInterval:      2 * time.Millisecond,
		RetryInterval:     10 * time.Second,
		MaxRetries:        3,
	}
	if mut != nil {
		mut(&cfg)
	}
	b := fakebroker.New()
	lc := &logCounter{msgs: map[string]int{}}
	var h slog.Handler = lc
	if os.Getenv("SNBRIDGE_TEST_DEBUG") != "" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	g, err := New(cfg, b, slog.New(h))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return &env{g: g, b: b, clock: clk, logs: lc, addr: g.Addr().String()}
}

func (e *env) dial(t testing.TB, opts sntest.Options) *sntest.Client {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	c, err := sntest.Dial(e.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) connect(t testing.TB, id string, o sntest.ConnectOptions, opts sntest.Options) *sntest.Client {
	t.Helper()
	c := e.dial(t, opts)
	o.ClientID = id
	rc, err := c.Connect(o)
	if err != nil || rc != 0 {
		t.Fatalf("connect %s: rc %v err %v", id, rc, err)
	}
	return c
}

// recorder is an in-process subscriber on the fake broker.
type recorder struct {
	mu   sync.Mutex
	msgs []msg.Message
	ch   chan struct{}
}

func (e *env) record(t testing.TB, filter string, qos byte) *recorder {
	t.Helper()
	r := &recorder{ch: make(chan struct{}, 1)}
	cancel, err := e.b.Subscribe(filter, qos, func(m msg.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m.Clone())
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return r
}

// wait polls until r holds n messages.
func (r *recorder) wait(t testing.TB, n int) []msg.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]msg.Message(nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder: %d messages, want %d: %+v", len(got), n, got)
		}
		select {
		case <-r.ch:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// eventually polls cond until it holds or 5s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitTicks waits until the gateway's timers ran n more times.
func (e *env) waitTicks(t testing.TB, n uint64) {
	t.Helper()
	target := e.g.ticks.Load() + n
	eventually(t, "timer ticks", func() bool { return e.g.ticks.Load() >= target })
}
