package adapters

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sim"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// recPub is a recording msg.Publisher: it keeps every message with the
// (fake) clock time it was published at.
type recPub struct {
	clock interface{ Now() time.Time }
	mu    sync.Mutex
	msgs  []rec
	fail  error
}

type rec struct {
	msg.Message
	At time.Time
}

func (r *recPub) Publish(ctx context.Context, m msg.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	at := time.Now()
	if r.clock != nil {
		at = r.clock.Now()
	}
	r.msgs = append(r.msgs, rec{m.Clone(), at})
	return nil
}

// topic returns the messages published on topic.
func (r *recPub) topic(topic string) []rec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rec
	for _, m := range r.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func (r *recPub) last(topic string) string {
	ms := r.topic(topic)
	if len(ms) == 0 {
		return ""
	}
	return string(ms[len(ms)-1].Payload)
}

// run starts a.Run and returns a stop function that cancels it and waits.
func run(t *testing.T, a *Adapters) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// step advances the manual clock to the next sleeper's deadline once n
// goroutines are asleep on it.
func step(t *testing.T, c *sim.ManualClock, n int) time.Time {
	t.Helper()
	if !c.BlockUntil(n, 10*time.Second) {
		t.Fatalf("only %d of %d goroutines reached the clock", c.Waiters(), n)
	}
	now, _ := c.AdvanceToNext()
	return now
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }

func mathInf() float64 { return math.Inf(1) }

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
