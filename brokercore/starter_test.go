package brokercore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// TestStarterReusesGoroutines: clients connecting one after another are
// served by the goroutine the previous one left when it parked, not by a
// new goroutine each; a burst leaves at most starterIdle waiting, and
// Shutdown ends them.
func TestStarterReusesGoroutines(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{}, Options{})
	const n = 20
	for i := range n {
		// Wait until the goroutine of the last connection waits for the next.
		poll(t, "a starter waiting", func() bool { return i == 0 || b.starter.idle.Load() >= 1 })
		c := connected(t, b, packet.V311, fmt.Sprintf("seq%d", i), true)
		c.subscribe(1, fmt.Sprintf("seq/%d", i), 0)
		poll(t, "parked", func() bool { return b.Parked() == i+1 })
	}
	// One goroutine served them all; allow a few for a waiting goroutine
	// descheduled between counting itself idle and waiting.
	if got := b.starter.spawned.Load(); got > n/4 {
		t.Errorf("%d goroutines started for %d connections made one after another, want about 1", got, n)
	}

	base := runtime.NumGoroutine()
	const burst = 3 * starterIdle
	// Dial them all first: each accepted connection's goroutine waits
	// for its CONNECT, so the burst runs on burst goroutines at once.
	clients := make([]*rawClient, 0, burst)
	for range burst {
		clients = append(clients, dialRaw(t, addr(b), packet.V311))
	}
	poll(t, "burst accepted", func() bool { return b.starter.spawned.Load() >= burst })
	for i, c := range clients {
		c.connect(fmt.Sprintf("burst%d", i), true)
	}
	poll(t, "burst parked", func() bool { return b.Parked() == n+burst })
	if idle := b.starter.idle.Load(); idle > starterIdle {
		t.Errorf("%d starter goroutines wait, want at most %d", idle, starterIdle)
	}
	// Each client has a reader goroutine of its own in this test; the
	// broker's share must not grow with the burst beyond the idle bound.
	if g := runtime.NumGoroutine() - base; g > burst+starterIdle {
		t.Errorf("%d more goroutines after a burst of %d parked connections, want at most %d (clients' readers + waiting starters)", g, burst, burst+starterIdle)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if idle := b.starter.idle.Load(); idle != 0 {
		t.Errorf("%d starter goroutines still wait after Shutdown", idle)
	}
}
