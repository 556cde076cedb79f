package brokercore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// poolRecorder is a connPool task that records who ran when; a task for
// a connection in hold blocks until released (it stands for work in
// progress), and one in leave leaves the pool before blocking.
type poolRecorder struct {
	mu       sync.Mutex
	order    []*conn
	active   int
	maxAct   int
	more     map[*conn]int // turns a connection still wants after this one
	hold     map[*conn]chan struct{}
	leave    map[*conn]bool
	finished int
}

func newPoolRecorder() *poolRecorder {
	return &poolRecorder{more: map[*conn]int{}, hold: map[*conn]chan struct{}{}, leave: map[*conn]bool{}}
}

func (r *poolRecorder) task(c *conn, w *poolWorker) bool {
	r.mu.Lock()
	r.order = append(r.order, c)
	if w.pooled() {
		r.active++
		r.maxAct = max(r.maxAct, r.active)
	}
	hold, leave := r.hold[c], r.leave[c]
	more := r.more[c] > 0
	if more {
		r.more[c]--
	}
	r.mu.Unlock()
	if leave {
		r.mu.Lock()
		r.active--
		r.mu.Unlock()
		w.leave()
	}
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	if !leave {
		r.active--
	}
	r.finished++
	r.mu.Unlock()
	return more
}

func (r *poolRecorder) done() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

func poolState(p *connPool) (running, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, len(p.queue) - p.head
}

// TestConnPoolBounded: however many connections are handed to a pool at
// once, at most limit goroutines run them; the rest wait their turn, each
// runs once, and an idle pool holds no goroutine.
func TestConnPoolBounded(t *testing.T) {
	b := &Broker{}
	r := newPoolRecorder()
	p := newConnPool(b, r.task)
	p.limit = 3
	release := make(chan struct{})
	conns := make([]*conn, 50)
	for i := range conns {
		conns[i] = &conn{}
		r.hold[conns[i]] = release
	}
	for _, c := range conns {
		p.run(c)
	}
	poll(t, "three connections running", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.order) == 3
	})
	if running, waiting := poolState(p); running != 3 || waiting != 47 {
		t.Fatalf("pool: %d running, %d waiting; want 3 and 47", running, waiting)
	}
	close(release)
	poll(t, "every connection run", func() bool { return r.done() == len(conns) })
	b.wg.Wait()
	if running, waiting := poolState(p); running != 0 || waiting != 0 {
		t.Fatalf("idle pool: %d running, %d waiting", running, waiting)
	}
	seen := map[*conn]int{}
	for _, c := range r.order {
		seen[c]++
	}
	for i, c := range conns {
		if seen[c] != 1 {
			t.Errorf("connection %d ran %d times", i, seen[c])
		}
	}
	if r.maxAct > 3 {
		t.Errorf("%d ran at once; limit 3", r.maxAct)
	}
}

// TestConnPoolLeave: a task that leaves the pool (it is about to wait on
// a client) gives its place to the next connection at once.
func TestConnPoolLeave(t *testing.T) {
	b := &Broker{}
	r := newPoolRecorder()
	p := newConnPool(b, r.task)
	p.limit = 1
	slow, a, c := &conn{}, &conn{}, &conn{}
	release := make(chan struct{})
	r.hold[slow], r.leave[slow] = release, true
	p.run(slow)
	p.run(a)
	p.run(c)
	poll(t, "the others run while the slow one waits outside the pool", func() bool { return r.done() == 2 })
	if running, waiting := poolState(p); running != 0 || waiting != 0 {
		t.Fatalf("pool: %d running, %d waiting; want none (the slow task left it)", running, waiting)
	}
	close(release)
	b.wg.Wait()
	if r.done() != 3 {
		t.Fatalf("%d tasks finished, want 3", r.done())
	}
}

// TestConnPoolTakesTurns: a connection with more to do after a batch goes
// behind the ones waiting instead of keeping its goroutine.
func TestConnPoolTakesTurns(t *testing.T) {
	b := &Broker{}
	r := newPoolRecorder()
	p := newConnPool(b, r.task)
	p.limit = 1
	busy, other := &conn{}, &conn{}
	first := make(chan struct{})
	r.hold[busy] = first
	r.more[busy] = 2
	p.run(busy)
	poll(t, "busy running", func() bool {
		_, w := poolState(p)
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.order) == 1 && w == 0
	})
	p.run(other)
	r.mu.Lock()
	delete(r.hold, busy)
	r.mu.Unlock()
	close(first)
	b.wg.Wait()
	want := []*conn{busy, other, busy, busy}
	if len(r.order) != len(want) {
		t.Fatalf("%d turns, want %d", len(r.order), len(want))
	}
	for i := range want {
		if r.order[i] != want[i] {
			t.Fatalf("turn %d went to the wrong connection (want busy, other, busy, busy)", i)
		}
	}
}

// TestConnPoolLineStaysSmall: connections that keep taking turns while
// others wait (steady load: the line never empties) do not grow the
// line's array with every turn.
func TestConnPoolLineStaysSmall(t *testing.T) {
	b := &Broker{}
	r := newPoolRecorder()
	var p *connPool
	maxCap := 0
	p = newConnPool(b, func(c *conn, w *poolWorker) bool {
		p.mu.Lock()
		maxCap = max(maxCap, cap(p.queue))
		p.mu.Unlock()
		return r.task(c, w)
	})
	p.limit = 1
	a, c := &conn{}, &conn{}
	first := make(chan struct{})
	r.hold[a] = first
	r.more[a], r.more[c] = 5000, 5000
	p.run(a)
	poll(t, "a running", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.order) == 1 })
	p.run(c)
	r.mu.Lock()
	delete(r.hold, a)
	r.mu.Unlock()
	close(first)
	b.wg.Wait()
	if r.done() != 10002 {
		t.Fatalf("%d turns, want 10002", r.done())
	}
	if maxCap > 64 {
		t.Fatalf("line array reached capacity %d over 10,000 turns of two connections", maxCap)
	}
}

// stuckSubscriber connects, subscribes to filter at QoS 0 and then never
// reads, with a small receive buffer, so the broker's writes to it soon
// find the socket full.
func stuckSubscriber(t *testing.T, address, id, filter string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.(*net.TCPConn).SetReadBuffer(4096)
	br := bufio.NewReader(nc)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	for _, p := range []packet.Packet{
		&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: true, KeepAlive: 60, ClientID: id},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 0}}},
	} {
		raw, err := packet.Append(nil, p, packet.V311)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(raw); err != nil {
			t.Fatal(err)
		}
		if _, err := packet.ReadPacket(br, packet.V311, 0); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	nc.SetDeadline(time.Time{})
}

// TestPoolWritersLeaveForFullSockets: more subscribers than the writer
// pool has goroutines stop reading while a publisher floods them. Their
// writers wait on full sockets outside the pool, so a message for
// another, idle subscriber is still written at once.
func TestPoolWritersLeaveForFullSockets(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{MaxQueued: 8}, Options{})
	live := connected(t, b, packet.V311, "live", true)
	live.subscribe(1, "live/x", 0)

	// Each stuck subscriber has a flood of its own, held by flow control
	// once that subscriber's queue is full, which takes its writer waiting
	// on the full socket.
	ctx, cancel := context.WithCancel(context.Background())
	var floods sync.WaitGroup
	defer floods.Wait()
	defer cancel()
	stuck := b.writers.limit + 2
	for i := range stuck {
		stuckSubscriber(t, addr(b), fmt.Sprintf("stuck-%d", i), fmt.Sprintf("flood/%d", i))
		flood, err := net.Dial("tcp", addr(b))
		if err != nil {
			t.Fatal(err)
		}
		floods.Go(func() {
			defer flood.Close()
			go func() { <-ctx.Done(); flood.Close() }()
			raw, _ := packet.Append(nil, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: true, KeepAlive: 60, ClientID: fmt.Sprintf("flood-%d", i)}, packet.V311)
			flood.Write(raw)
			go io.Copy(io.Discard, flood)
			raw, _ = packet.Append(nil, &packet.Publish{Topic: fmt.Sprintf("flood/%d", i), Payload: make([]byte, 32<<10)}, packet.V311)
			for ctx.Err() == nil {
				if _, err := flood.Write(raw); err != nil {
					return
				}
			}
		})
	}
	poll(t, "every stuck subscriber's queue full (its writer waits on the socket)", func() bool {
		return b.fullGates.Load() >= int64(stuck)
	})

	pub := connected(t, b, packet.V311, "pub", true)
	pub.send(&packet.Publish{Topic: "live/x", Payload: []byte("still moving")})
	if p := live.recvType(packet.PUBLISH).(*packet.Publish); string(p.Payload) != "still moving" {
		t.Fatalf("live subscriber got %q", p.Payload)
	}

	// Publishers woken from their park to send to the full queues are held
	// by flow control outside the resumer pool: a parked client's PINGREQ
	// is still answered.
	held := make([]*rawClient, b.resumers.limit+2)
	for i := range held {
		held[i] = connected(t, b, packet.V311, fmt.Sprintf("held-%d", i), true)
	}
	for i := range held {
		poll(t, "held publisher parked", func() bool { return parkedID(b, fmt.Sprintf("held-%d", i)) })
		held[i].send(&packet.Publish{Topic: "flood/0", QoS: 1, PacketID: 1, Payload: []byte("held")})
	}
	poll(t, "live parked", func() bool { return parkedID(b, "live") })
	live.send(&packet.PingReq{})
	live.recvType(packet.PINGRESP)

}

// parkedID reports whether client id's connection is parked.
func parkedID(b *Broker, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		if c.clientID == id {
			b.poller.mu.Lock()
			defer b.poller.mu.Unlock()
			return c.park.parked
		}
	}
	return false
}
