package brokercore

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// A tap that fails: v5 publishers get PUBACK/PUBREC 0x97 for
// msg.ErrQuotaExceeded and 0x80 otherwise; nothing is acked before the
// tap's done.
func TestTapFailureV5ReasonCodes(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	tap := &gateTap{}
	b.AddTap(tap)
	p := connected(t, b, packet.V5, "pub", true)
	p.send(pub("t", 1, 1, "a"))
	p.send(pub("t", 2, 2, "b"))
	p.send(pub("t", 1, 3, "c"))
	poll(t, "appends", func() bool { return tap.n() == 3 })
	p.quiet(30e6)
	tap.release(0, fmt.Errorf("queue full: %w", msg.ErrQuotaExceeded))
	tap.release(1, errors.New("disk on fire"))
	tap.release(2, nil)
	want := []struct {
		t    packet.Type
		code byte
	}{{packet.PUBACK, 0x97}, {packet.PUBREC, 0x80}, {packet.PUBACK, packet.Success}} // the tap took it: not 0x10
	for i, w := range want {
		a := p.recvType(w.t).(*packet.Ack)
		if a.PacketID != uint16(i+1) || a.ReasonCode != w.code {
			t.Fatalf("ack %d: %v id %d code 0x%02x, want id %d code 0x%02x", i, a.PacketType, a.PacketID, a.ReasonCode, i+1, w.code)
		}
	}
	// The refused QoS 2 exchange ended: the id is free again and a new
	// publish with it is routed.
	p.send(pub("t", 2, 2, "b2"))
	poll(t, "append", func() bool { return tap.n() == 4 })
	tap.release(3, nil)
	if a := p.recvType(packet.PUBREC).(*packet.Ack); a.ReasonCode >= 0x80 {
		t.Fatalf("PUBREC code 0x%02x", a.ReasonCode)
	}
}

// 3.1.1 has no negative ack: the connection is closed instead.
func TestTapFailureV311ClosesConnection(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	tap := &gateTap{}
	b.AddTap(tap)
	p := connected(t, b, packet.V311, "pub", true)
	p.send(pub("t", 1, 1, "a"))
	poll(t, "append", func() bool { return tap.n() == 1 })
	tap.release(0, errors.New("disk on fire"))
	for _, pk := range p.closed() {
		if pk.Type() == packet.PUBACK {
			t.Fatal("PUBACK sent for a message the tap refused")
		}
	}
}

// In-process Publish returns only after the tap's done, with its error.
func TestInprocPublishWaitsForTap(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	tap := &gateTap{}
	b.AddTap(tap)
	errc := make(chan error, 1)
	go func() { errc <- b.Publish(t.Context(), msg.Message{Topic: "s/1", QoS: 1, Payload: []byte("x")}) }()
	poll(t, "append", func() bool { return tap.n() == 1 })
	select {
	case err := <-errc:
		t.Fatalf("Publish returned %v before the tap's done", err)
	default:
	}
	tap.release(0, msg.ErrQuotaExceeded)
	if err := <-errc; !errors.Is(err, msg.ErrQuotaExceeded) {
		t.Fatalf("Publish = %v, want ErrQuotaExceeded", err)
	}
}

// failStore fails commits while fail is set and can hold them.
type holdStore struct {
	*msg.MemStore
	mu   sync.Mutex
	hold chan struct{}
}

func (h *holdStore) gate() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hold
}

func (h *holdStore) setGate(c chan struct{}) {
	h.mu.Lock()
	h.hold = c
	h.mu.Unlock()
}

func (h *holdStore) Commit(ops []msg.Op, done func(error)) {
	g := h.gate()
	h.MemStore.Commit(ops, func(err error) {
		go func() { <-g; done(err) }()
	})
}

// The PUBACK waits for the store commit of the message queued to an
// offline persistent session (nothing acked is lost by kill -9).
func TestPubackWaitsForStoreCommit(t *testing.T) {
	st := &holdStore{MemStore: msg.NewMemStore(), hold: make(chan struct{})}
	close(st.hold) // let session setup through
	b := testBroker(t, Config{}, Options{Store: st})
	sub := connected(t, b, packet.V311, "sub", false)
	sub.subscribe(1, "t", 1)
	sub.send(&packet.Disconnect{})
	sub.closed()
	gate := make(chan struct{})
	st.setGate(gate)
	p := connected(t, b, packet.V311, "pub", true)
	p.send(pub("t", 1, 7, "keep me"))
	p.quiet(50e6)
	close(gate)
	if a := p.recvType(packet.PUBACK).(*packet.Ack); a.PacketID != 7 {
		t.Fatalf("PUBACK id %d", a.PacketID)
	}
}

// A store failure refuses the message like a tap failure.
func TestStoreFailureRefusesPublish(t *testing.T) {
	st := msg.NewMemStore()
	b := testBroker(t, Config{}, Options{Store: st})
	sub := connected(t, b, packet.V5, "sub", false, func(c *packet.Connect) { e := uint32(3600); c.Props.SessionExpiry = &e })
	sub.subscribe(1, "t", 1)
	p := connected(t, b, packet.V5, "pub", true)
	st.FailNext(errors.New("fsync: input/output error"))
	p.send(pub("t", 1, 1, "x"))
	if a := p.recvType(packet.PUBACK).(*packet.Ack); a.ReasonCode != 0x80 {
		t.Fatalf("PUBACK code 0x%02x, want 0x80", a.ReasonCode)
	}
}

// Crash recovery: a broker on a MemStore is killed (no clean shutdown, no
// more writes); a new broker on the same store resumes the persistent
// session with its in-flight and queued messages, in order, and the
// retained messages are back.
func TestCrashRecoveryResumesSessionAndRetained(t *testing.T) {
	st := msg.NewMemStore()
	b1, err := New(Config{Listeners: testListeners(), SysInterval: -1, MaxInflight: 2}, Options{Store: st, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	sub := connected(t, b1, packet.V311, "sub", false)
	sub.subscribe(1, "t/#", 2)
	p := connected(t, b1, packet.V311, "pub", true)
	p.send(&packet.Publish{Topic: "t/retained", QoS: 1, PacketID: 100, Retain: true, Payload: []byte("R")})
	p.recvType(packet.PUBACK)
	r := sub.recvType(packet.PUBLISH).(*packet.Publish) // the retained one, live
	sub.ack(packet.PUBACK, r.PacketID)
	storedFor := func(id string) int {
		n := 0
		st.Scan([]byte("s/"+id+"\x00m"), func(k, v []byte) error { n++; return nil })
		return n
	}
	poll(t, "PUBACK of the retained message processed", func() bool { return storedFor("sub") == 0 })
	for i := 1; i <= 5; i++ {
		p.send(pub("t/x", 1, uint16(i), fmt.Sprint(i)))
		p.recvType(packet.PUBACK) // acked => must survive the crash
	}
	// Window 2: messages 1 and 2 are in flight (unacked), 3..5 queued.
	m1 := sub.recvType(packet.PUBLISH).(*packet.Publish)
	sub.recvType(packet.PUBLISH)
	b1.crash()

	b2, err := New(Config{Listeners: testListeners(), SysInterval: -1, MaxInflight: 2}, Options{Store: st, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Shutdown(t.Context()) })
	sub2 := dialRaw(t, addr(b2), packet.V311)
	if ack := sub2.connect("sub", false); !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	for i := 1; i <= 5; i++ {
		got := sub2.recvType(packet.PUBLISH).(*packet.Publish)
		if string(got.Payload) != fmt.Sprint(i) {
			t.Fatalf("after restart got %q, want %d", got.Payload, i)
		}
		if i == 1 && (!got.Dup || got.PacketID != m1.PacketID) {
			t.Fatalf("in-flight message resent dup=%v id=%d, want dup id=%d", got.Dup, got.PacketID, m1.PacketID)
		}
		sub2.ack(packet.PUBACK, got.PacketID)
	}
	other := connected(t, b2, packet.V311, "other", true)
	other.subscribe(1, "t/retained", 1)
	rm := other.recvType(packet.PUBLISH).(*packet.Publish)
	if !rm.Retain || string(rm.Payload) != "R" {
		t.Fatalf("retained after restart: %+v", rm)
	}
	// Everything acknowledged: the session's message keys are gone.
	poll(t, "store cleaned", func() bool {
		n := 0
		st.Scan([]byte("s/sub\x00m"), func(k, v []byte) error {
			n++
			if om, err := decodeOutMsg(v); err == nil {
				t.Logf("left: %q %q state %d pid %d", k, om.m.Payload, om.state, om.pid)
			}
			return nil
		})
		return n == 0
	})
}

// Exactly once across a crash: the inbound QoS 2 state of a persistent
// publisher survives, so a resent PUBLISH (DUP) after the restart is not
// routed a second time.
func TestCrashRecoveryInboundQoS2(t *testing.T) {
	st := msg.NewMemStore()
	start := func() *Broker {
		b, err := New(Config{Listeners: testListeners(), SysInterval: -1}, Options{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b1 := start()
	watch := connected(t, b1, packet.V311, "watch", false)
	watch.subscribe(1, "q2", 2)
	p := connected(t, b1, packet.V311, "pq", false)
	p.send(pub("q2", 2, 9, "once"))
	p.recvType(packet.PUBREC)
	b1.crash()

	b2 := start()
	t.Cleanup(func() { b2.Shutdown(t.Context()) })
	p2 := connected(t, b2, packet.V311, "pq", false)
	d := pub("q2", 2, 9, "once")
	d.Dup = true
	p2.send(d)
	p2.recvType(packet.PUBREC)
	p2.ack(packet.PUBREL, 9)
	p2.recvType(packet.PUBCOMP)
	w2 := connected(t, b2, packet.V311, "watch", false)
	got := w2.recvType(packet.PUBLISH).(*packet.Publish) // the one queued before the crash
	if string(got.Payload) != "once" {
		t.Fatalf("got %q", got.Payload)
	}
	w2.ack(packet.PUBREC, got.PacketID)
	w2.recvType(packet.PUBREL)
	w2.ack(packet.PUBCOMP, got.PacketID)
	// The restored subscription still routes new messages, and the
	// duplicate was not routed again.
	p2.send(pub("q2", 2, 10, "next"))
	p2.recvType(packet.PUBREC)
	if got := w2.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != "next" {
		t.Fatalf("got %q after restart, want next (duplicate routed?)", got.Payload)
	}
}
