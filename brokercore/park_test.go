package brokercore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

func skipNoPark(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle parking is Linux-only (epoll)")
	}
}

// TestParkedConnectionsWork: idle connections park (no reader goroutine),
// and a parked connection behaves as a blocked reader would: a message
// for a parked subscriber is delivered, a parked publisher's next PUBLISH
// is read and routed in order, a PINGREQ is answered.
func TestParkedConnectionsWork(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{}, Options{})
	const n = 20
	subs := make([]*rawClient, n)
	for i := range subs {
		subs[i] = connected(t, b, packet.V5, fmt.Sprintf("s%d", i), true)
		subs[i].subscribe(1, fmt.Sprintf("park/%d", i), 1)
	}
	pub := connected(t, b, packet.V311, "pub", true)
	poll(t, "every idle connection parked", func() bool { return b.Parked() == n+1 })
	before := runtime.NumGoroutine()
	for round := range 3 {
		for i := range subs {
			pub.send(pub1(fmt.Sprintf("park/%d", i), uint16(i+1), fmt.Sprintf("%d-%d", round, i)))
		}
		acks := 0
		for acks < n {
			if a := pub.recvType(packet.PUBACK).(*packet.Ack); a.PacketID != uint16(acks+1) {
				t.Fatalf("round %d: PUBACK %d, want %d (order)", round, a.PacketID, acks+1)
			}
			acks++
		}
		for i, s := range subs {
			p := s.recvType(packet.PUBLISH).(*packet.Publish)
			if want := fmt.Sprintf("%d-%d", round, i); string(p.Payload) != want {
				t.Fatalf("subscriber %d got %q, want %q", i, p.Payload, want)
			}
			s.ack(packet.PUBACK, p.PacketID)
		}
		poll(t, "connections parked again", func() bool { return b.Parked() == n+1 })
	}
	subs[3].send(&packet.PingReq{})
	subs[3].recvType(packet.PINGRESP)
	poll(t, "parked after the ping", func() bool { return b.Parked() == n+1 })
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Errorf("%d goroutines with every connection idle, %d before the traffic: readers not given back", g, before)
	}
}

func pub1(topic string, pid uint16, payload string) *packet.Publish {
	return &packet.Publish{Topic: topic, QoS: 1, PacketID: pid, Payload: []byte(payload)}
}

// TestParkedKeepAliveTimeout: a parked client that goes silent past one
// and a half times its keep alive is disconnected and its will sent, as a
// blocked reader's deadline would ([MQTT-3.1.2-22]).
func TestParkedKeepAliveTimeout(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{}, Options{})
	watch := connected(t, b, packet.V311, "watch", true)
	watch.subscribe(1, "will/#", 0)
	ka := func(cp *packet.Connect) { cp.KeepAlive = 1 }
	c := connected(t, b, packet.V5, "sleepy", true, ka, willOpt("will/sleepy", "gone", 0))
	poll(t, "both parked", func() bool { return b.Parked() == 2 })
	start := time.Now()
	got := c.closed()
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.KeepAliveTimeout {
		t.Fatalf("before the close got %+v, want DISCONNECT 0x8D", got)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("disconnected after %v, before 1.5 × keep alive", took)
	}
	if p := watch.recvType(packet.PUBLISH).(*packet.Publish); p.Topic != "will/sleepy" {
		t.Fatalf("will on %q", p.Topic)
	}
}

// TestParkedKeepAliveTimeoutUnderTraffic: the poller's keep-alive sweep
// keeps its schedule while other parked clients wake it more than once a
// second (it used to be put off by every event, so on a busy site a
// vanished client was never timed out and its will never sent).
func TestParkedKeepAliveTimeoutUnderTraffic(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{}, Options{})
	busy := connected(t, b, packet.V311, "busy", true)
	ka := func(cp *packet.Connect) { cp.KeepAlive = 1 }
	c := connected(t, b, packet.V5, "sleepy", true, ka)
	poll(t, "both parked", func() bool { return b.Parked() == 2 })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				busy.nc.Write([]byte{0xC0, 0}) // PINGREQ; the PINGRESPs are left unread
			}
		}
	}()
	defer func() { close(stop); <-done }()
	got := c.closed()
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.KeepAliveTimeout {
		t.Fatalf("before the close got %+v, want DISCONNECT 0x8D", got)
	}
}

// TestParkedTakeoverCloseAndShutdown: a parked connection is taken over
// (DISCONNECT 0x8E), one whose client hangs up is detached with its will,
// and Shutdown ends the parked rest with 0x8B and returns.
func TestParkedTakeoverCloseAndShutdown(t *testing.T) {
	skipNoPark(t)
	b := testBroker(t, Config{}, Options{})
	watch := connected(t, b, packet.V311, "watch", true)
	watch.subscribe(1, "will/#", 0)
	old := connected(t, b, packet.V5, "dup", true)
	gone := connected(t, b, packet.V311, "gone", true, willOpt("will/gone", "bye", 0))
	rest := connected(t, b, packet.V5, "rest", true)
	poll(t, "all parked", func() bool { return b.Parked() == 4 })

	connected(t, b, packet.V5, "dup", true)
	if got := old.closed(); len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.SessionTakenOver {
		t.Fatalf("taken over: got %+v, want DISCONNECT 0x8E", got)
	}
	gone.nc.Close()
	if p := watch.recvType(packet.PUBLISH).(*packet.Publish); p.Topic != "will/gone" {
		t.Fatalf("will on %q", p.Topic)
	}
	poll(t, "connections counted", func() bool { return b.Stats().ClientsConnected.Load() == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with parked connections: %v", err)
	}
	if got := rest.closed(); len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.ServerShuttingDown {
		t.Fatalf("shutdown: got %+v, want DISCONNECT 0x8B", got)
	}
	if b.Parked() != 0 {
		t.Errorf("%d connections still parked after Shutdown", b.Parked())
	}
}

// TestNoIdlePark: with Options.NoIdlePark nothing parks and the broker
// works the same.
func TestNoIdlePark(t *testing.T) {
	b := testBroker(t, Config{}, Options{NoIdlePark: true})
	s := connected(t, b, packet.V311, "s", true)
	s.subscribe(1, "x", 1)
	p := connected(t, b, packet.V311, "p", true)
	p.send(pub1("x", 1, "hi"))
	p.recvType(packet.PUBACK)
	if got := s.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != "hi" {
		t.Fatalf("got %q", got.Payload)
	}
	if b.Parked() != 0 {
		t.Fatalf("%d parked with NoIdlePark", b.Parked())
	}
}
