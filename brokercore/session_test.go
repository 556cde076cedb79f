package brokercore

import (
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

func TestSessionExpiryAndCleanStart(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := newMem()
	b := testBroker(t, Config{}, Options{Now: clock, Store: st})
	exp := func(cp *packet.Connect) { cp.Props.SessionExpiry = u32(10) }
	c := connected(t, b, packet.V5, "x", false, exp)
	c.subscribe(1, "a", 1)
	c.send(&packet.Disconnect{})
	c.closed()
	advance(5 * time.Second)
	b.sweep(clock())
	c = dialRaw(t, addr(b), packet.V5)
	if ack := c.connect("x", false, exp); !ack.SessionPresent {
		t.Fatal("session gone before its expiry")
	}
	c.send(&packet.Disconnect{})
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	advance(11 * time.Second)
	b.sweep(clock())
	c = dialRaw(t, addr(b), packet.V5)
	if ack := c.connect("x", false, exp); ack.SessionPresent {
		t.Fatal("session present after its expiry")
	}
	c.send(&packet.Disconnect{})
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	// 3.1.1 clean session = true discards the stored session [MQTT-3.1.2-6].
	c = connected(t, b, packet.V311, "y", false)
	c.subscribe(1, "a", 1)
	c.nc.Close()
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	if ack := dialRaw(t, addr(b), packet.V311).connect("y", true); ack.SessionPresent {
		t.Fatal("clean session resumed the old session")
	}
	poll(t, "store cleaned", func() bool {
		n := 0
		st.Scan([]byte("s/y\x00"), func(k, v []byte) error { n++; return nil })
		return n == 0
	})
}

// max_queued bounds an offline session's queue; the oldest are dropped
// and counted (README "Flow control, not ack-and-drop").
func TestMaxQueuedDropsCounted(t *testing.T) {
	b := testBroker(t, Config{MaxQueued: 2}, Options{})
	c := connected(t, b, packet.V311, "q", false)
	c.subscribe(1, "q", 1)
	c.send(&packet.Disconnect{})
	c.closed()
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	p := connected(t, b, packet.V311, "p", true)
	for i := 1; i <= 3; i++ {
		p.send(pub("q", 1, uint16(i), string(rune('0'+i))))
		p.recvType(packet.PUBACK)
	}
	if n := b.Stats().Dropped.QueueFull.Load(); n != 1 {
		t.Fatalf("QueueFull = %d, want 1", n)
	}
	c = connected(t, b, packet.V311, "q", false)
	for _, want := range []string{"2", "3"} {
		if got := c.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != want {
			t.Fatalf("got %q want %q", got.Payload, want)
		}
	}
}

// A persistent session's expiry counts from its disconnect, also across
// a restart: the disconnect time is in the session record.
func TestSessionExpirySurvivesRestart(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := newMem()
	start := func() *Broker {
		b, err := New(Config{Listeners: testListeners(), SysInterval: -1}, Options{Store: st, Now: clock, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	stop := func(b *Broker) {
		if err := b.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	has := func(b *Broker, id string) bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sessions[id] != nil
	}
	b := start()
	exp := func(cp *packet.Connect) { cp.Props.SessionExpiry = u32(10) }
	c := connected(t, b, packet.V5, "x", false, exp)
	c.subscribe(1, "a", 1)
	c.send(&packet.Disconnect{})
	c.closed()
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	advance(6 * time.Second)
	stop(b)

	// Restarted 6 s after the disconnect: 4 s left, not 10.
	b = start()
	defer stop(b)
	advance(3 * time.Second)
	b.sweep(clock())
	if !has(b, "x") {
		t.Fatal("session gone 9 s after its disconnect; expiry is 10 s")
	}
	advance(2 * time.Second)
	b.sweep(clock())
	if has(b, "x") {
		t.Fatal("session still there 11 s after its disconnect (expiry 10 s): the restart reset its clock")
	}
}
